import { describe, expect, it } from 'vitest';
import { Writable } from 'node:stream';
import { StdoutSink } from '../../../connector/sinks/stdout.ts';
import { Telemetry } from '../../../connector/observe/telemetry.ts';
import { auditRecords, ndjsonOf } from './records.ts';

/** A stream that keeps what it is given, acknowledging each write only when `release` is called. */
function slowReader(highWaterMark: number) {
  const chunks: Buffer[] = [];
  const waiting: Array<() => void> = [];
  const stream = new Writable({ highWaterMark, write(chunk: Buffer, _encoding, done) { chunks.push(chunk); waiting.push(done); } });
  return { stream, chunks, release: () => { for (const done of waiting.splice(0)) done(); } };
}

describe('stdout sink', () => {
  it('writes one line per record, the bytes it was given, and reports what it sent', async () => {
    const chunks: Buffer[] = [];
    const stream = new Writable({ write(chunk: Buffer, _encoding, done) { chunks.push(chunk); done(); } });
    const telemetry = new Telemetry();
    const sink = new StdoutSink({ stream, telemetry: telemetry.component('stdout', 'sink') });
    const sent = auditRecords(9);
    await sink.write({ contentType: 'Audit.Exchange', records: sent.slice(0, 4) });
    await sink.write({ contentType: 'Audit.Exchange', records: sent.slice(4) });
    expect(Buffer.concat(chunks).equals(ndjsonOf(sent))).toBe(true);
    expect(telemetry.snapshot()[0]).toMatchObject({ sentRecords: 9, sentBytes: ndjsonOf(sent).length });
  });

  it('acknowledges a batch only once the reader has taken it', async () => {
    const reader = slowReader(16);
    const sink = new StdoutSink({ stream: reader.stream });
    let acknowledged = false;
    const writing = sink.write({ contentType: 'Audit.General', records: auditRecords(3) }).then(() => { acknowledged = true; });
    await new Promise((resolve) => setImmediate(resolve));
    expect(acknowledged).toBe(false);
    reader.release();
    await writing;
    expect(Buffer.concat(reader.chunks).equals(ndjsonOf(auditRecords(3)))).toBe(true);
  });
});
