/**
 * The claims of a database only one process writes (a state directory, whose lock makes this process its only
 * writer): every unit is this process's for the asking, one worker is connected, and the session never ends
 * under it. Kept so that fleet mode runs unchanged on one machine without a PostgreSQL server.
 */
import { type UnitClaims, type UnitHolder } from '../store.ts';
import { unitName, type UnitKey } from '../../core/commit.ts';

export class LocalUnitClaims implements UnitClaims {
  readonly #worker: string;
  readonly #readOnly: boolean;
  readonly #held = new Map<string, UnitHolder>();

  /** `readOnly`: a database opened for `status`, which claims nothing. */
  constructor(worker: string, options: { readOnly?: boolean } = {}) {
    this.#worker = worker;
    this.#readOnly = options.readOnly ?? false;
  }

  async tryClaimSome(units: readonly UnitKey[], max: number): Promise<UnitKey[]> {
    const taken = units.slice(0, Math.max(0, max));
    for (const unit of taken) {
      const name = unitName(unit);
      if (this.#readOnly) throw new Error(`cannot claim ${name}: the state is open read-only`);
      if (!this.#held.has(name)) this.#held.set(name, { unit: { tenant: unit.tenant, contentType: unit.contentType }, worker: this.#worker, since: new Date().toISOString() });
    }
    return taken;
  }

  async release(unit: UnitKey): Promise<void> {
    this.#held.delete(unitName(unit));
  }

  async workers(): Promise<number> {
    return 1;
  }

  async holders(): Promise<UnitHolder[]> {
    return [...this.#held.values()].sort((a, b) => unitName(a.unit).localeCompare(unitName(b.unit)));
  }

  onLost(): void {
    // The directory lock is held until this process ends: there is no session to lose.
  }

  async reconnect(): Promise<void> {}
}
