/**
 * A second process for the state store tests, run with Node directly
 * (`node store-child.ts <mode> <dir> [lockWaitMs]`); it prints `locked` and exits 3 on STATE_LOCKED.
 *   hold     opens the store for a run, prints `open`, and keeps it until killed.
 *   commit   opens the store and makes commits 1, 2, 3, ... (Audit.General, 100 records each: Id `id-<n>-<i>`,
 *            CreationTime 2026-11-25T08:5<n>:<i % 60> without a zone, as store-processes.test.ts rebuilds them),
 *            printing `committed <n>` after each, until it has made 5 or is killed (O365_FAILPOINT).
 */
import { ConnectorError } from '../../../connector/core/errors.ts';
import type { StateStore } from '../../../connector/state/store.ts';
import { openStateStore } from './open-store.ts';

const [mode, dir, lockWaitMs = '10000'] = process.argv.slice(2);
if (!dir) throw new Error('usage: store-child.ts hold|commit <dir> [lockWaitMs]');
let store: StateStore;
try {
  store = await openStateStore(dir, { lockWaitMs: Number(lockWaitMs) });
} catch (error) {
  if (!(error instanceof ConnectorError && error.code === 'STATE_LOCKED')) throw error;
  process.stdout.write('locked\n');
  process.exit(3);
}

if (mode === 'hold') {
  process.stdout.write('open\n');
  setInterval(() => {}, 60_000);
} else if (mode === 'commit') {
  for (let n = 1; n <= 5; n += 1) {
    await store.commit(childCommit(n));
    process.stdout.write(`committed ${n}\n`);
  }
  await store.close();
} else {
  throw new Error(`unknown mode ${mode}`);
}

/** The n-th commit of the child: what the test expects to find, or not, after a kill. */
function childCommit(n: number) {
  return {
    contentType: 'Audit.General' as const,
    at: `2026-11-25T10:0${n}:00.000Z`,
    checkpoint: `2026-11-25T09:0${n}:00.000Z`,
    blobs: [{ contentId: `blob-${n}`, contentCreated: `2026-11-25T09:0${n}:00.000Z` }],
    recordKeys: Array.from({ length: 100 }, (_, i) => ({ id: `id-${n}-${i}`, creationTime: `2026-11-25T08:5${n}:${String(i % 60).padStart(2, '0')}` })),
    records: 100,
    sinkPositions: { 'file:/var/log/o365.ndjson': n * 1000 },
  };
}
