/**
 * `format=ocsf` on any sink: the sink receives each batch as OCSF 1.8.0 events, one JSON object per record, in place
 * of the bytes Microsoft sent, and delivers them as it delivers records (NDJSON lines, syslog MSG, HEC `event`, bulk
 * documents). Each event keeps its record's Id and CreationTime, so Elasticsearch's `_id`, HEC's `time` and syslog's
 * timestamp are the record's as with raw records; `raw_data` holds the record's bytes. The transform runs only for
 * the sinks that ask for it, where they receive their batch: raw sinks get the batch untouched. A batch sent to
 * several OCSF sinks, or sent again after a failed write, is mapped once (the events are kept with the batch while it
 * is in flight). Counted as the `transform:ocsf` component: records received and sent, and per OCSF class (tally
 * `class:<uid>:<name>`) with the records no family mapped (`fallback`), of which those whose family's mapping threw
 * (`mapping-error`; they are sent as generic API Activity events all the same).
 */
import type { ComponentReporter, Telemetry } from '../../observe/telemetry.ts';
import type { Sink } from '../sink.ts';
import type { RawRecord, SinkBatch, SinkCallOptions, SinkPosition } from '../../core/records.ts';
import { families as allFamilies, mapRecordText, type Family } from './registry.ts';

export const ocsfTransformComponent = 'transform:ocsf';

export class OcsfTransform {
  readonly #telemetry: ComponentReporter | undefined;
  readonly #mapped = new WeakMap<SinkBatch, SinkBatch>();
  readonly #families: readonly Family[];

  constructor(options: { telemetry?: Telemetry; families?: readonly Family[] } = {}) {
    this.#telemetry = options.telemetry?.component(ocsfTransformComponent, 'transform');
    this.#families = options.families ?? allFamilies;
  }

  /** The batch as OCSF events, mapped on its first call and reused while the batch object lives. */
  apply(batch: SinkBatch): SinkBatch {
    const known = this.#mapped.get(batch);
    if (known) return known;
    const tallies = new Map<string, number>();
    let bytesIn = 0;
    let bytesOut = 0;
    const records: RawRecord[] = batch.records.map((record) => {
      bytesIn += record.bytes.length;
      const mapping = mapRecordText(record.bytes.toString('utf8'), { contentType: batch.contentType, families: this.#families });
      const key = `class:${mapping.classUid}:${mapping.className}`;
      tallies.set(key, (tallies.get(key) ?? 0) + 1);
      if (mapping.fallback) tallies.set('fallback', (tallies.get('fallback') ?? 0) + 1);
      if (mapping.mappingError) tallies.set('mapping-error', (tallies.get('mapping-error') ?? 0) + 1);
      const bytes = Buffer.from(mapping.json, 'utf8');
      bytesOut += bytes.length;
      return { id: record.id, creationTime: record.creationTime, bytes };
    });
    const mapped: SinkBatch = { contentType: batch.contentType, records };
    this.#mapped.set(batch, mapped);
    this.#telemetry?.received(batch.records.length, bytesIn);
    this.#telemetry?.sent(records.length, bytesOut);
    for (const [key, count] of tallies) this.#telemetry?.tally?.(key, count);
    return mapped;
  }
}

/** The name of the OCSF twin of a sink named `name`: its own, so that its stored position and counters are its own. */
export function ocsfSinkName(name: string): string {
  return `${name}${name.includes('?') ? '&' : '?'}format=ocsf`;
}

/**
 * A sink that is handed OCSF events instead of raw records; everything else is the inner sink's but the name (the
 * inner name plus `?format=ocsf`: a raw sink to the same target keeps the name, and stored position, it always had).
 */
export class OcsfSink implements Sink {
  /** The sink that writes the events (for tests and status). */
  readonly inner: Sink;
  readonly #transform: OcsfTransform;
  readonly position?: () => SinkPosition | undefined;
  readonly check?: (options?: SinkCallOptions) => Promise<string>;

  constructor(inner: Sink, transform: OcsfTransform) {
    this.inner = inner;
    this.#transform = transform;
    if (inner.position) this.position = () => inner.position!();
    if (inner.check) this.check = (options) => inner.check!(options);
  }

  get name(): string {
    return ocsfSinkName(this.inner.name);
  }

  async open(resumeFrom: SinkPosition | undefined, options?: SinkCallOptions): Promise<void> {
    await this.inner.open?.(resumeFrom, options);
  }

  write(batch: SinkBatch, options?: SinkCallOptions): Promise<SinkPosition | undefined> {
    return this.inner.write(this.#transform.apply(batch), options);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
