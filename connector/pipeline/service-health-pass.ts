/**
 * One pass of the ServiceHealth unit: Microsoft Graph's service announcements collected by change. Issues
 * (incidents and advisories) and messages (message centre) modified since the checkpoint, less the overlap, are
 * listed page by page (`$filter=lastModifiedDateTime ge …`, every `@odata.nextLink` followed); each version of an
 * item is delivered once: its record key is `<id>@<lastModifiedDateTime>` (RecordKey.id, with lastModifiedDateTime
 * as its time), so a changed item arrives again and a re-listed unchanged one is dropped as a duplicate, across
 * restarts too (the keys are in the store). Each page's new versions go through the commit lane like an audit batch,
 * as the exact bytes Graph sent. Then every service's health overview is sampled into the state (`status` shows it).
 *
 * The checkpoint is Graph's time when the listing began (from its Date header): every change stamped before it has
 * been delivered once both lists were read to the end. A list that fails holds the checkpoint; the next pass lists
 * from there again, and the versions already delivered are dropped then.
 */
import { serviceHealth } from '../../contract/content-types.ts';
import type { ConnectorError } from '../core/errors.ts';
import type { AnnouncementItem, AnnouncementKind, ServiceHealthApi } from '../sources/graph/service-health-api.ts';
import type { RawRecord } from '../core/records.ts';
import type { Commit, RecordKey, ServiceHealthSample } from '../core/commit.ts';
import { lastErrorOf, toConnectorError, type PassOutcome } from './content-type-pass.ts';
import { RecordDeduplicator } from './record-deduplicator.ts';
import type { UnitPassContext } from './unit-pass-context.ts';

const minute = 60_000;
const hour = 60 * minute;
const kinds: readonly AnnouncementKind[] = ['issues', 'messages'];

export interface ServiceHealthPassContext extends UnitPassContext {
  readonly graph: ServiceHealthApi;
  /**
   * A sweep: list every change since this instant again (ms), for versions a live pass missed (Graph pages by
   * position, so a change made while it pages can slip between two pages); it moves no checkpoint.
   */
  readonly sweepFrom?: number;
}

/** The least overlap of a live pass, whatever --overlap says: Graph's Date header has a one-second resolution, and its stamps are the back end's. */
const minimumOverlapMs = 15 * minute;

/** Where a sweep lists from: as far back as delivered versions are remembered, less a margin (so none is delivered twice). */
export function serviceHealthSweepFrom(now: number, dedupeRetentionHours: number): number {
  return now - Math.max(1, dedupeRetentionHours - 2) * hour;
}

/** The record key of one version of an item: its id and its lastModifiedDateTime (normalized, so one version has one key). */
export function versionKey(item: Pick<AnnouncementItem, 'id' | 'lastModifiedDateTime'>): RecordKey {
  return { id: `${item.id}@${new Date(item.lastModifiedDateTime).toISOString()}`, creationTime: item.lastModifiedDateTime };
}

function recordOf(item: AnnouncementItem): RawRecord {
  const key = versionKey(item);
  return { id: key.id, creationTime: key.creationTime, bytes: item.bytes };
}

export async function runServiceHealthPass(context: ServiceHealthPassContext, checkpoint: number | undefined): Promise<PassOutcome> {
  const { graph, store, lane, settings, abortSignal: signal } = context;
  const dedupe = new RecordDeduplicator(store, serviceHealth, context.pending);
  const sweeping = context.sweepFrom !== undefined;
  const from = context.sweepFrom ?? (checkpoint === undefined ? context.since.getTime() : checkpoint - Math.max(settings.overlapMinutes * minute, minimumOverlapMs));
  const outcome: PassOutcome = { records: 0, blobs: 0, duplicates: 0, expired: 0, setAside: 0, late: 0, listedFrom: from, checkpoint, errors: [] };
  // Graph's time as the listing begins (the skew known from earlier answers; the overlap covers a first guess).
  const listingStarted = context.now().getTime() + graph.clockSkewMs;
  let complete = true;

  const commitPage = async (records: RawRecord[]) => {
    signal?.throwIfAborted();
    const { fresh, duplicates } = await dedupe.select(records);
    const keys = fresh.map((record): RecordKey => ({ id: record.id!, creationTime: record.creationTime }));
    const bytes = fresh.reduce((sum, record) => sum + record.bytes.length, 0);
    await lane.commit(fresh.length > 0 ? { contentType: serviceHealth, records: fresh } : undefined, (): Omit<Commit, 'sinkPositions'> => ({
      contentType: serviceHealth, at: context.now().toISOString(), recordKeys: keys, records: fresh.length, duplicates,
      coveredFrom: new Date(from).toISOString(),
    }), store);
    dedupe.committed(keys);
    context.pipeline.sent(fresh.length, bytes);
    for (const counts of context.totals ? [outcome, context.totals] : [outcome]) {
      counts.records += fresh.length;
      counts.duplicates += duplicates;
    }
    if (fresh.length > 0) context.onProgress?.(serviceHealth, { records: fresh.length, checkpoint: outcome.checkpoint, coveredFrom: from });
  };

  let sample: ServiceHealthSample | undefined;
  try {
    for (const kind of kinds) {
      try {
        for await (const page of graph.listChanged(kind, new Date(from), { abortSignal: signal })) {
          context.pipeline.received(page.length, page.reduce((sum, item) => sum + item.bytes.length, 0));
          if (page.length > 0) await commitPage(page.map(recordOf));
        }
      } catch (error) {
        if (signal?.aborted || lane.failure !== undefined) throw error;
        complete = false;
        failed(context, outcome, kind, error);
      }
    }
    if (!sweeping) {
      try {
        const services = await graph.healthOverviews({ abortSignal: signal });
        sample = { at: context.now().toISOString(), services: services.map(({ service, status }) => ({ service, status })) };
      } catch (error) {
        if (signal?.aborted) throw error;
        failed(context, outcome, 'healthOverviews', error);
      }
    }
  } finally {
    dedupe.reset();
  }

  const moved = !sweeping && complete && listingStarted > (checkpoint ?? Number.NEGATIVE_INFINITY);
  if (moved) outcome.checkpoint = listingStarted;
  const last = outcome.errors.at(-1);
  const now = context.now();
  if (sweeping) {
    await lane.commit(undefined, () => ({
      contentType: serviceHealth, at: now.toISOString(), ...(last ? { lastError: lastErrorOf(last, now) } : { sweptAt: now.toISOString() }),
    }), store);
    return outcome;
  }
  await lane.commit(undefined, () => ({
    contentType: serviceHealth, at: now.toISOString(),
    ...(moved ? { checkpoint: new Date(listingStarted).toISOString() } : {}),
    coveredFrom: new Date(from).toISOString(),
    lastError: last ? lastErrorOf(last, now) : null,
    ...(sample ? { serviceHealth: sample } : {}),
    ...(outcome.checkpoint !== undefined ? { forgetRecordsCreatedBefore: new Date(outcome.checkpoint - settings.dedupeRetentionHours * hour).toISOString() } : {}),
  }), store);
  context.onProgress?.(serviceHealth, { records: 0, checkpoint: outcome.checkpoint, coveredFrom: from });
  return outcome;
}

/** A list or the overview that failed after retries: the pass carries on with the rest, and the checkpoint holds. */
function failed(context: ServiceHealthPassContext, outcome: PassOutcome, what: string, error: unknown): void {
  const failure: ConnectorError = toConnectorError(error);
  // One missing permission fails the same way on every page and list: reported once.
  if (!outcome.errors.some((known) => known.code === failure.code && known.message === failure.message)) outcome.errors.push(failure);
  context.source.error({ stage: 'receiving', code: failure.code, message: failure.message, discarded: 0 });
  context.logger.error({ component: 'graph', contentType: serviceHealth, resource: what, code: failure.code, reason: failure.toLine() }, 'Microsoft Graph could not be read: the checkpoint holds and the next pass lists again');
}
