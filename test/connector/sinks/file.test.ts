import { describe, expect, it } from 'vitest';
import { readFile, rename, writeFile } from 'node:fs/promises';
import type { ConnectorError } from '../../../connector/core/errors.ts';
import { spawn } from 'node:child_process';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import type { RawRecord, SinkPosition } from '../../../connector/core/records.ts';
import { FileSink } from '../../../connector/sinks/file.ts';
import { workDir } from '../../e2e/support.ts';
import { auditRecords, ndjsonOf, rawRecord, trickyFields } from './records.ts';

const root = resolve(import.meta.dirname, '../../..');
const record = (id: string) => rawRecord(`{"Id":"${id}","CreationTime":"2026-11-25T10:00:00","Operation":"FileAccessed","ObjectId":"Überprüfung — «x»\\nzweite Zeile"${trickyFields}}`);

/**
 * A connector's file sink in a child process: it writes `first` (the position it prints is what its checkpoint
 * saved), then `second`, and is killed with SIGKILL before anything else (its lock goes with the process).
 */
async function killedAfterTwoWrites(file: string, first: RawRecord, second: RawRecord): Promise<SinkPosition> {
  const script = `
    import { FileSink } from ${JSON.stringify(join(root, 'connector/sinks/file.ts'))};
    const record = (text) => { const bytes = Buffer.from(text); return { id: JSON.parse(text).Id, creationTime: '', bytes }; };
    const [first, second] = JSON.parse(process.argv[1]);
    const sink = new FileSink(${JSON.stringify(file)});
    await sink.open(undefined);
    const committed = await sink.write({ contentType: 'Audit.Exchange', records: [record(first)] });
    await sink.write({ contentType: 'Audit.Exchange', records: [record(second)] });
    process.stdout.write(JSON.stringify(committed) + '\\n');
    setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script, JSON.stringify([first.bytes.toString(), second.bytes.toString()])], { stdio: ['ignore', 'pipe', 'inherit'] });
  const line = await new Promise<string>((resolveLine) => createInterface({ input: child.stdout! }).once('line', resolveLine));
  const exited = new Promise((resolveExit) => child.once('exit', resolveExit));
  child.kill('SIGKILL');
  await exited;
  return JSON.parse(line) as SinkPosition;
}

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
    expect(position).toMatchObject({ offset: bytes.length, writer: expect.any(String), inode: expect.any(String), device: expect.any(String) });
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

  it('holds the file for one connector at a time: a second sink on it waits, then stops with SINK_LOCKED, writing nothing', async () => {
    const file = join(await workDir(), 'audit.ndjson');
    const first = new FileSink(file);
    await first.open(undefined);
    await first.write({ contentType: 'Audit.Exchange', records: [record('a1')] });
    const second = new FileSink(file, { lockWaitMs: 100 });
    const refused = await second.open(undefined).catch((e: unknown) => e);
    expect(refused).toMatchObject({ code: 'SINK_LOCKED' });
    expect((refused as ConnectorError).toLine()).toBe(`SINK_LOCKED: ${file} is being written by another running connector. Fix: give each connector its own file: a file sink belongs to one connector at a time`);
    await first.close();
    await second.open(undefined); // free once the first is closed (or its process gone: test/e2e)
    await second.close();
    expect((await readFile(file)).equals(ndjsonOf([record('a1')]))).toBe(true);
  });

  it('never cuts records another connector appended after its checkpoint, and says so in one line', async () => {
    const file = join(await workDir(), 'audit.ndjson');
    // A writes and commits a1, writes a2 and is killed before committing it.
    const committedA = await killedAfterTwoWrites(file, record('a1'), record('a2'));
    // B, another connector, appends b1 and stops.
    const b = new FileSink(file);
    await b.open(undefined);
    await b.write({ contentType: 'Audit.SharePoint', records: [record('b1')] });
    await b.close();
    const before = await readFile(file);
    const again = new FileSink(file);
    const refused = await again.open(committedA).catch((e: unknown) => e);
    expect(refused).toMatchObject({ code: 'SINK_FOREIGN_BYTES' });
    expect((refused as ConnectorError).toLine()).toMatch(new RegExp(`^SINK_FOREIGN_BYTES: ${file} holds \\d+ bytes after this connector's last checkpoint \\(offset \\d+\\) that another connector wrote; cutting them would lose its records\\. Fix: give each connector its own file; to resume this one, move ${file} aside`));
    expect((await readFile(file)).equals(before)).toBe(true);
    // Moved aside as the fix says: the new file is another file, appended to from its start.
    await rename(file, `${file}.1`);
    await again.open(committedA);
    await again.write({ contentType: 'Audit.Exchange', records: [record('a2')] });
    await again.close();
    expect((await readFile(file)).equals(ndjsonOf([record('a2')]))).toBe(true);
  });

  it('appends after another connector\'s records when its own last run ended cleanly at its checkpoint', async () => {
    const file = join(await workDir(), 'audit.ndjson');
    const a = new FileSink(file);
    await a.open(undefined);
    const committedA = await a.write({ contentType: 'Audit.Exchange', records: [record('a1')] });
    await a.close();
    const b = new FileSink(file);
    await b.open(undefined);
    await b.write({ contentType: 'Audit.SharePoint', records: [record('b1')] });
    await b.close();
    const again = new FileSink(file);
    await again.open(committedA);
    await again.write({ contentType: 'Audit.Exchange', records: [record('a2')] });
    await again.close();
    expect((await readFile(file)).equals(ndjsonOf([record('a1'), record('b1'), record('a2')]))).toBe(true);
  });

  it('appends to a rotated file from its end, leaving the rotated one alone', async () => {
    const file = join(await workDir(), 'audit.ndjson');
    const committed = await killedAfterTwoWrites(file, record('a1'), record('a2'));
    await rename(file, `${file}.1`);
    await writeFile(file, '{"Id":"written by logrotate\'s create"}\n');
    const again = new FileSink(file);
    await again.open(committed);
    await again.write({ contentType: 'Audit.Exchange', records: [record('a2')] });
    await again.close();
    expect((await readFile(`${file}.1`)).equals(ndjsonOf([record('a1'), record('a2')]))).toBe(true);
    expect((await readFile(file)).equals(Buffer.concat([Buffer.from('{"Id":"written by logrotate\'s create"}\n'), ndjsonOf([record('a2')])]))).toBe(true);
  });

  it('understands the bare offset an earlier release saved, on a file no run of this release has held', async () => {
    const file = join(await workDir(), 'audit.ndjson');
    await writeFile(file, Buffer.concat([ndjsonOf([record('1')]), ndjsonOf([record('2')])]));
    const sink = new FileSink(file);
    await sink.open(ndjsonOf([record('1')]).length);
    await sink.close();
    expect((await readFile(file)).equals(ndjsonOf([record('1')]))).toBe(true);
  });

  it('rejects an empty path naming the flag', () => {
    expect(() => new FileSink('')).toThrow(/--sink: file: needs a path/);
  });
});
