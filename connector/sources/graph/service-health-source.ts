/**
 * The ServiceHealth unit as a Source: Microsoft Graph's service announcements collected by change. Issues
 * (incidents and advisories) and messages (message centre) modified since the checkpoint, less the overlap, are
 * listed page by page (`$filter=lastModifiedDateTime ge …`, every `@odata.nextLink` followed); each version of an
 * item is delivered once: its record key is `<id>@<lastModifiedDateTime>` (RecordKey.id, with lastModifiedDateTime
 * as its time), so a changed item arrives again and a re-listed unchanged one is dropped as a duplicate, across
 * restarts too (the keys are in the store). Each page's new versions are committed like an audit batch, as the
 * exact bytes Graph sent. Then every service's health overview is sampled into the state (`status` shows it).
 *
 * The checkpoint is Graph's time when the listing began (from its Date header): every change stamped before it has
 * been delivered once both lists were read to the end. A list that fails holds the checkpoint; the next pass lists
 * from there again, and the versions already delivered are dropped then.
 */
import { serviceHealth } from '../../../contract/content-types.ts';
import type { ConnectorError } from '../../core/errors.ts';
import type { RawRecord } from '../../core/records.ts';
import type { RecordKey, ServiceHealthSample } from '../../core/commit.ts';
import { failureOf, lastErrorOf, type Source, type SourceContext, type SourcePass } from '../source.ts';
import type { AnnouncementItem, AnnouncementKind, ServiceHealthApi } from './service-health-api.ts';

const minute = 60_000;
const hour = 60 * minute;
const kinds: readonly AnnouncementKind[] = ['issues', 'messages'];

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
  return { ...versionKey(item), bytes: item.bytes };
}

/** The tenant's service announcements, read by `graph`. */
export function serviceHealthSource(graph: ServiceHealthApi): Source {
  return {
    contentType: serviceHealth,
    live: (checkpoint, context) => serviceHealthPass(graph, context, checkpoint, checkpoint === undefined ? context.since.getTime() : checkpoint - Math.max(context.settings.overlapMinutes * minute, minimumOverlapMs)),
    // Every change still remembered, listed again: Graph pages by position, so a change made while it pages can slip between two pages.
    sweep: (checkpoint, coveredFrom, context) => serviceHealthPass(graph, context, checkpoint, Math.max(coveredFrom, serviceHealthSweepFrom(context.now().getTime() + graph.clockSkewMs, context.settings.dedupeRetentionHours)), true),
  };
}

function serviceHealthPass(graph: ServiceHealthApi, context: SourceContext, from: number | undefined, listedFrom: number, sweeping = false): SourcePass {
  const { signal, settings, logger } = context;
  const errors: ConnectorError[] = [];
  // Graph's time as the listing begins (the skew known from earlier answers; the overlap covers a first guess).
  const listingStarted = context.now().getTime() + graph.clockSkewMs;
  let checkpoint = from;
  let complete = true;
  /** A list or the overview that failed after retries: the pass carries on with the rest, and the checkpoint holds. */
  const failed = (what: string, error: unknown) => {
    const failure = failureOf(error, context);
    // One missing permission fails the same way on every page and list: reported once.
    if (!errors.some((known) => known.code === failure.code && known.message === failure.message)) errors.push(failure);
    context.reporter.error({ stage: 'receiving', code: failure.code, message: failure.message, discarded: 0 });
    logger.error({ component: 'graph', contentType: serviceHealth, resource: what, code: failure.code, reason: failure.toLine() }, 'Microsoft Graph could not be read: the checkpoint holds and the next pass lists again');
  };

  return {
    listedFrom, errors,
    get checkpoint() {
      return checkpoint;
    },
    async *[Symbol.asyncIterator]() {
      for (const kind of kinds) {
        try {
          for await (const page of graph.listChanged(kind, new Date(listedFrom), { abortSignal: signal })) {
            if (page.length > 0) yield { records: page.map(recordOf), bytes: page.reduce((sum, item) => sum + item.bytes.length, 0), cut: true };
          }
        } catch (error) {
          if (signal.aborted) throw error;
          complete = false;
          failed(kind, error);
        }
      }
    },
    acknowledge: () => ({ records: [], counts: {}, change: () => ({ contentType: serviceHealth, at: context.now().toISOString(), coveredFrom: new Date(listedFrom).toISOString() }) }),
    /** Every service's health overview sampled; the checkpoint moves to where the listing began once both lists were read to the end. */
    async end() {
      let sample: ServiceHealthSample | undefined;
      if (!sweeping) {
        try {
          const services = await graph.healthOverviews({ abortSignal: signal });
          sample = { at: context.now().toISOString(), services: services.map(({ service, status }) => ({ service, status })) };
        } catch (error) {
          if (signal.aborted) throw error;
          failed('healthOverviews', error);
        }
      }
      const moved = !sweeping && complete && listingStarted > (checkpoint ?? Number.NEGATIVE_INFINITY);
      if (moved) checkpoint = listingStarted;
      const last = errors.at(-1);
      const now = context.now();
      const change = sweeping ? (last ? { lastError: lastErrorOf(last, now) } : { sweptAt: now.toISOString() }) : {
        ...(moved ? { checkpoint: new Date(listingStarted).toISOString() } : {}),
        coveredFrom: new Date(listedFrom).toISOString(),
        lastError: last ? lastErrorOf(last, now) : null,
        ...(sample ? { serviceHealth: sample } : {}),
        ...(checkpoint !== undefined ? { forgetRecordsCreatedBefore: new Date(checkpoint - settings.dedupeRetentionHours * hour).toISOString() } : {}),
      };
      return { records: [], counts: {}, change: () => ({ contentType: serviceHealth, at: now.toISOString(), ...change }) };
    },
  };
}
