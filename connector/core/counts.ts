import type { CollectedType } from '../../contract/content-types.ts';

/** What a pass, a unit or a run delivered, counted as each batch commits. */
export interface Counts {
  records: number;
  blobs: number;
  duplicates: number;
  expired: number;
  /** Elements that were not audit records, set aside to the state directory's dead-letter file. */
  setAside: number;
  /** Blobs the sweeps delivered: listed after their window had been. */
  late: number;
}

export function noCounts(): Counts {
  return { records: 0, blobs: 0, duplicates: 0, expired: 0, setAside: 0, late: 0 };
}

const countNames = Object.keys(noCounts()) as ReadonlyArray<keyof Counts>;

export function addCounts(to: Counts, from: Partial<Counts>): void {
  for (const name of countNames) to[name] += from[name] ?? 0;
}

export interface RunSummary extends Counts {
  errors: Array<{ tenant?: string; contentType: CollectedType; code: string; message: string }>;
}
