/**
 * Where a run's tenants come from: a fixed tenant (one tenant's outputs file, --stack or the environment: a fleet of
 * one), or a directory. The fleet's tenants: every `*.json` in the `--tenants` directory is one tenant's outputs file, exactly what
 * `pulumi stack output --json --show-secrets` writes. Read again on every scan, so that a file added, changed (a
 * rotated secret) or removed is picked up without a restart. Every `*.json` that cannot be used (unreadable, not a
 * regular file, not an outputs file, a second file of one tenant) is reported once and left out; it never stops the
 * other tenants, and a tenant whose file goes bad keeps its last good configuration until the file is good again.
 */
import { createHash } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { loadConfig, type LoadedConfig } from '../config/config.ts';
import { hostIdentityVariables, perTenantVariables, type TenantSourceSpec } from '../config/run-config.ts';
import { readOutputsBytes, UnreadableOutputsFile } from '../config/outputs-file.ts';
import { ConfigError, ConnectorError } from '../core/errors.ts';

/** A tenant's loaded configuration (the token provider calls its reloadCredential when the credential is refused). */
export interface TenantEntry extends LoadedConfig {
  readonly file: string;
  /** SHA-256 of the file's bytes: a change of any field (a rotated secret) changes it. */
  readonly fingerprint: string;
}

export interface TenantProblem {
  readonly file: string;
  readonly error: ConnectorError;
  /** The tenant that carries on with its last good configuration while its file cannot be used. */
  readonly keptTenant?: string;
}

export interface TenantChanges {
  readonly added: readonly TenantEntry[];
  /** The new entry of a tenant whose file changed. */
  readonly changed: readonly TenantEntry[];
  readonly removed: readonly string[];
  /** Files left out this scan (unchanged problems are reported once). */
  readonly problems: readonly TenantProblem[];
  /** Files reported before that can be used again. */
  readonly resolved?: readonly string[];
}

/** Where the run's tenants come from: the `--tenants` directory, or the one tenant of `--outputs`, `--stack` or the environment. */
export interface TenantSource {
  /** What changed since the last scan (everything, the first time). */
  scan(): Promise<TenantChanges>;
  /** For messages: the directory, or the outputs file. */
  readonly description: string;
  /** Files that cannot be used as of the last scan (status, metrics). */
  unusable(): readonly TenantProblem[];
  /** The tenant of a fixed source (read once, when the source is made); undefined for a directory (read again every scan interval). */
  readonly fixed: TenantEntry | undefined;
}

/** The tenant source a configuration names; a fixed tenant's configuration is read now (a mistake in it stops the command before anything is opened). */
export async function tenantSourceOf(spec: TenantSourceSpec, env: NodeJS.ProcessEnv = process.env): Promise<TenantSource> {
  if (spec.kind === 'directory') {
    return new TenantDirectory(spec.dir, spec.contentTypes, env);
  }
  return fixedTenant(spec, env);
}

async function fixedTenant(spec: Extract<TenantSourceSpec, { kind: 'fixed' }>, env: NodeJS.ProcessEnv): Promise<TenantSource> {
  const loaded = await loadConfig(spec, env);
  const entry: TenantEntry = { ...loaded, file: spec.outputs ?? '', fingerprint: '' };
  let scanned = false;
  return {
    fixed: entry,
    unusable: () => [],
    description: spec.outputs ?? spec.stack ?? 'the environment',
    scan: async (): Promise<TenantChanges> => {
      const added = scanned ? [] : [entry];
      scanned = true;
      return { added, changed: [], removed: [], problems: [] };
    },
  };
}

class TenantDirectory implements TenantSource {
  readonly description: string;
  readonly fixed = undefined;
  /** `--content-types` of the run, over each file's own list. */
  readonly #contentTypes: string | undefined;
  readonly #env: NodeJS.ProcessEnv;
  /** By tenant id. */
  #tenants = new Map<string, TenantEntry>();
  /** What was reported of each unusable file, so that each is reported once until that changes. */
  readonly #reported = new Map<string, string>();
  #unusable: readonly TenantProblem[] = [];

  constructor(dir: string, contentTypes: string | undefined, env: NodeJS.ProcessEnv) {
    this.description = resolve(dir);
    this.#contentTypes = contentTypes;
    this.#env = { ...env };
    for (const name of [...perTenantVariables, ...hostIdentityVariables]) delete this.#env[name];
  }

  /** Every `*.json` that cannot be used as of the last scan (`status`, metrics), reported or not. */
  unusable(): readonly TenantProblem[] {
    return this.#unusable;
  }

  /** Reads the directory again and says what changed since the last scan. An unreadable directory is a ConfigError. */
  async scan(): Promise<TenantChanges> {
    const files = await this.#jsonFiles();
    const next = new Map<string, TenantEntry>();
    const problems: TenantProblem[] = [];
    const unusable: TenantProblem[] = [];
    const resolved: string[] = [];
    const known = new Map([...this.#tenants.values()].map((entry) => [entry.file, entry]));
    /** Reported once until what is wrong with the file changes. */
    const report = (problem: TenantProblem) => {
      unusable.push(problem);
      const line = problem.error.toLine();
      if (this.#reported.get(problem.file) !== line) problems.push(problem);
      this.#reported.set(problem.file, line);
    };
    for (const file of files) {
      let entry: TenantEntry;
      try {
        const bytes = await readOutputsBytes(file, '--tenants');
        const fingerprint = createHash('sha256').update(bytes).digest('hex');
        const previous = known.get(file);
        entry = previous && previous.fingerprint === fingerprint ? previous : await this.#load(file, fingerprint);
      } catch (error) {
        if (error instanceof UnreadableOutputsFile && error.vanished) continue; // removed since the listing: the next scan sees it gone
        const failure = error instanceof ConnectorError ? error : new ConfigError('--tenants', `${file}: ${String((error as Error).message)}`);
        // A file caught mid-rewrite (`pulumi stack output … > file` empties it while Pulumi runs): its tenant carries
        // on with the last good configuration, instead of stopping now and starting over with full sweeps later.
        const previous = known.get(file);
        const kept = previous !== undefined && !next.has(previous.config.tenantId);
        if (kept) next.set(previous.config.tenantId, previous);
        report({ file, error: failure, ...(kept ? { keptTenant: previous.config.tenantId } : {}) });
        continue;
      }
      const other = next.get(entry.config.tenantId);
      if (other) {
        report({ file, error: new ConfigError('--tenants', `${file} names tenant ${entry.config.tenantId}, as ${other.file} does`, 'keep one outputs file per tenant in the directory') });
        continue;
      }
      if (this.#reported.delete(file)) resolved.push(file);
      next.set(entry.config.tenantId, entry);
    }
    const added: TenantEntry[] = [];
    const changed: TenantEntry[] = [];
    for (const [tenant, entry] of next) {
      const before = this.#tenants.get(tenant);
      if (!before) added.push(entry);
      else if (before.fingerprint !== entry.fingerprint || before.file !== entry.file) changed.push(entry);
    }
    const removed = [...this.#tenants.keys()].filter((tenant) => !next.has(tenant));
    for (const file of this.#reported.keys()) if (!unusable.some((problem) => problem.file === file)) this.#reported.delete(file);
    this.#tenants = next;
    this.#unusable = unusable;
    return { added, changed, removed, problems, resolved };
  }

  async #jsonFiles(): Promise<string[]> {
    let names: string[];
    try {
      names = await readdir(this.description);
    } catch (error) {
      throw new ConfigError('--tenants', `cannot read the directory ${this.description} (${(error as NodeJS.ErrnoException).code ?? 'error'})`, 'give a directory holding one `pulumi stack output --json --show-secrets` file per tenant, named <anything>.json');
    }
    // Editors' and tools' temporary files (.x.json.swp, x.json~, .x.json.tmp) are not tenants.
    return names.filter((name) => name.endsWith('.json') && !name.startsWith('.')).sort().map((name) => join(this.description, name));
  }

  async #load(file: string, fingerprint: string): Promise<TenantEntry> {
    const flags = { outputs: file, outputsField: '--tenants', contentTypes: this.#contentTypes };
    const loaded = await loadConfig(flags, this.#env);
    return { ...loaded, file, fingerprint, warnings: [] };
  }
}
