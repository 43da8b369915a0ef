import { describe, expect, it } from 'vitest';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FileSink } from '../../../connector/sinks/file.ts';
import { workDir } from '../../e2e/support.ts';
import { auditRecords, ndjsonOf, rawRecord, trickyFields } from './records.ts';

const record = (id: string) => rawRecord(`{"Id":"${id}","CreationTime":"2026-11-25T10:00:00","Operation":"FileAccessed","ObjectId":"Überprüfung — «x»\\nzweite Zeile"${trickyFields}}`);

describe('file sink', () => {
  it('appends NDJSON, one record per line as the bytes it was given, and acknowledges with the end offset', async () => {
    const file = join(await workDir(), 'audit.ndjson');
    const sink = new FileSink(file);
    await sink.open(undefined);
    const sent = [record('1'), record('2'), ...auditRecords(6)];
    const position = await sink.write({ contentType: 'Audit.SharePoint', records: sent });
    await sink.close();
    const bytes = await readFile(file);
    expect(bytes.equals(ndjsonOf(sent))).toBe(true);
    expect(position).toBe(bytes.length);
  });

  it('cuts the file back to the last acknowledged offset on recovery, and appends across runs', async () => {
    const file = join(await workDir(), 'audit.ndjson');
    const first = new FileSink(file);
    await first.open(undefined);
    const committed = await first.write({ contentType: 'Audit.General', records: [record('1')] });
    await first.write({ contentType: 'Audit.General', records: [record('2')] }); // written, but the checkpoint never saw it
    await first.close();
    const second = new FileSink(file);
    await second.open(committed);
    await second.write({ contentType: 'Audit.General', records: [record('3')] });
    await second.close();
    expect((await readFile(file)).equals(ndjsonOf([record('1'), record('3')]))).toBe(true);
  });

  it('keeps what someone else left when it has no position for the file', async () => {
    const file = join(await workDir(), 'audit.ndjson');
    await writeFile(file, '{"Id":"earlier"}\n');
    const sink = new FileSink(file);
    await sink.open(undefined);
    await sink.write({ contentType: 'Audit.General', records: [record('1')] });
    await sink.close();
    expect((await readFile(file)).equals(Buffer.concat([Buffer.from('{"Id":"earlier"}\n'), ndjsonOf([record('1')])]))).toBe(true);
  });

  it('rejects an empty path naming the flag', () => {
    expect(() => new FileSink('')).toThrow(/--sink: file: needs a path/);
  });
});
