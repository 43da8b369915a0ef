import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { OcsfSink, OcsfTransform, ocsfTransformComponent } from '../../../../connector/sinks/ocsf/ocsf-sink.ts';
import { createSink } from '../../../../connector/sinks/spec.ts';
import type { Sink } from '../../../../connector/sinks/sink.ts';
import type { RawRecord, SinkBatch } from '../../../../connector/core/records.ts';
import { createLogger } from '../../../../connector/observe/log.ts';
import { ConnectorMetrics } from '../../../../connector/report/metrics.ts';
import { Telemetry } from '../../../../connector/observe/telemetry.ts';
import { dlpMatch, fileDownload, schema, signIn } from './records.ts';

const record = (text: string): RawRecord => ({ id: JSON.parse(text).Id, creationTime: JSON.parse(text).CreationTime, bytes: Buffer.from(text) });
const batch: SinkBatch = { contentType: 'Audit.SharePoint', records: [record(signIn), record(fileDownload), record(dlpMatch), record('{"Id":"44444444-5555-4666-8777-888888888888","Operation":"TeamCreated","Workload":"MicrosoftTeams","CreationTime":"2026-03-02T15:30:00"}')] };

class Recorder implements Sink {
  readonly name = 'recorder';
  readonly batches: SinkBatch[] = [];
  async open(): Promise<void> {}
  async write(received: SinkBatch) { this.batches.push(received); return undefined; }
  async close(): Promise<void> {}
}

describe('format=ocsf where a sink receives its batch', () => {
  it('hands the sink one valid OCSF event per record, keeping each record\'s Id and CreationTime', async () => {
    const inner = new Recorder();
    await new OcsfSink(inner, new OcsfTransform()).write(batch);
    const [written] = inner.batches;
    expect(written!.records.map((r) => [r.id, r.creationTime])).toEqual(batch.records.map((r) => [r.id, r.creationTime]));
    for (const [n, out] of written!.records.entries()) {
      const event = JSON.parse(out.bytes.toString('utf8'));
      expect(schema.validate(event)).toEqual([]);
      expect(event.raw_data).toBe(batch.records[n]!.bytes.toString('utf8'));
      expect(event.metadata.log_name).toBe('Audit.SharePoint');
    }
  });

  it('maps a batch once for every OCSF sink and every retry, counts per class and fallbacks, and leaves raw sinks the bytes', async () => {
    const telemetry = new Telemetry();
    const transform = new OcsfTransform({ telemetry });
    const [a, b, raw] = [new Recorder(), new Recorder(), new Recorder()];
    await new OcsfSink(a, transform).write(batch);
    await new OcsfSink(b, transform).write(batch);
    await new OcsfSink(a, transform).write(batch); // the retry of a failed write
    await raw.write(batch);
    expect(b.batches[0]).toBe(a.batches[0]);
    expect(raw.batches[0]).toBe(batch);
    const counters = telemetry.snapshot().find((c) => c.name === ocsfTransformComponent)!;
    expect(counters).toMatchObject({ kind: 'transform', receivedRecords: 4, sentRecords: 4 });
    expect(counters.tallies).toEqual({ 'class:3002:Authentication': 1, 'class:6006:File Hosting Activity': 1, 'class:2006:Data Security Finding': 1, 'class:6003:API Activity': 1, fallback: 1 });
    const metrics = new ConnectorMetrics({ defaultTenant: 't', tenants: () => [], telemetry, sinkNames: [] });
    const text = await metrics.registry.metrics();
    expect(text).toContain('o365_ocsf_records_total{class_uid="3002",class_name="Authentication"} 1');
    expect(text).toContain('o365_ocsf_fallback_total 1');
  });

  it('writes OCSF NDJSON to a file sink given file:<path>?format=ocsf, under a name of its own', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'o365-ocsf-'));
    try {
      const sink = createSink(`file:${dir}/ocsf.ndjson?format=ocsf`, { env: {}, telemetry: new Telemetry(), logger: createLogger({ level: 'silent' }) });
      expect(sink).toBeInstanceOf(OcsfSink);
      expect(sink.name).toBe(`file:${dir}/ocsf.ndjson?format=ocsf`);
      await sink.open?.(undefined);
      await sink.write(batch);
      await sink.close();
      const lines = (await readFile(join(dir, 'ocsf.ndjson'), 'utf8')).trimEnd().split('\n');
      expect(lines.map((line) => JSON.parse(line).class_uid)).toEqual([3002, 6006, 2006, 6003]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
