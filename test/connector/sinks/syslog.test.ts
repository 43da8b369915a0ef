import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { SyslogSink, syslogFrame } from '../../../connector/sinks/syslog.ts';
import { createTestPki } from '../../emulator/tls.ts';
import { rsyslogUnavailable, startRsyslog, type Rsyslog } from '../../receivers/rsyslog.ts';
import { workDir } from '../../e2e/support.ts';
import { auditRecords, rawRecord, trickyFields } from './records.ts';

const records = (prefix: string, n: number) => auditRecords(n, prefix);

async function eventually<T>(read: () => Promise<T>, done: (value: T) => boolean, deadlineMs = 20_000): Promise<T> {
  const deadline = Date.now() + deadlineMs;
  let value = await read();
  while (!done(value) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    value = await read();
  }
  return value;
}

/** Reads RFC 6587 octet-counted frames from a socket's chunks and hands each record's Id and MSG bytes to `onId`. */
function octetCountedIds(onId: (id: string, message: Buffer) => boolean | void): (chunk: Buffer) => void {
  let buffer = Buffer.alloc(0);
  return (chunk) => {
    buffer = Buffer.concat([buffer, chunk]);
    for (;;) {
      const space = buffer.indexOf(0x20);
      if (space < 0) return;
      const length = Number(buffer.subarray(0, space).toString());
      if (buffer.length < space + 1 + length) return;
      const frame = buffer.subarray(space + 1, space + 1 + length);
      buffer = buffer.subarray(space + 1 + length);
      const message = frame.subarray(frame.indexOf(' - ') + 3);
      if (onId((JSON.parse(message.toString('utf8')) as { Id: string }).Id, message) === false) return;
    }
  };
}

describe('syslog framing', () => {
  it('frames one record as an octet-counted RFC 5424 message whose MSG is the bytes it was given', () => {
    const record = rawRecord(`{"Id":"x","CreationTime":"2026-11-25T10:00:00","ObjectId":"ä\\nb"${trickyFields}}`);
    const frame = syslogFrame(record, 'Audit.Exchange', { facility: 16, severity: 6, hostname: 'collector 1', appName: 'o365-connector' });
    const header = `<134>1 2026-11-25T10:00:00.000Z collector1 o365-connector ${process.pid} Audit.Exchange - `;
    const length = Buffer.byteLength(header) + record.bytes.length;
    expect(frame.equals(Buffer.concat([Buffer.from(`${length} ${header}`), record.bytes]))).toBe(true);
  });

  it('stamps a record without a CreationTime with the time of sending', () => {
    const before = Date.now();
    const frame = syslogFrame(rawRecord('{"Id":"x","CreationTime":null}'), 'Audit.General', { facility: 16, severity: 6, hostname: 'h', appName: 'a' }).toString();
    const stamped = Date.parse(frame.split(' ')[2]!);
    expect(stamped).toBeGreaterThanOrEqual(before - 1);
    expect(stamped).toBeLessThanOrEqual(Date.now());
    expect(frame.endsWith(' - {"Id":"x","CreationTime":null}')).toBe(true);
  });

  it.each([
    ['syslog+tcp://siem.example:514?facility=local9', /--sink facility: unknown value "local9"/],
    ['syslog+tcp://siem.example:514?ca=/etc/ca.pem', /--sink ca: only for syslog\+tls/],
    ['syslog+tcp://user:pw@siem.example:514', /credentials in the sink URL are not accepted/],
    ['syslog+tcp://siem.example:514?colour=blue', /--sink colour: unknown parameter/],
  ])('rejects %s naming the parameter', (spec, message) => {
    expect(() => new SyslogSink(spec)).toThrow(message);
  });
});

describe('syslog sink against a plain TCP receiver that drops connections', () => {
  it('reconnects and re-sends the recent records while traffic continues, so a receiver that hangs up loses nothing', async () => {
    const received: string[] = [];
    const messages = new Map<string, Buffer>();
    let connections = 0;
    const server = createServer((socket: Socket) => {
      connections += 1;
      const closeAfter = connections === 1 ? 3 : Infinity; // the first connection dies after three frames
      let frames = 0;
      socket.on('data', octetCountedIds((id, message) => {
        frames += 1;
        if (frames > closeAfter) { socket.destroy(); return false; }
        received.push(id);
        messages.set(id, Buffer.from(message));
      }));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const sink = new SyslogSink(`syslog+tcp://127.0.0.1:${(server.address() as AddressInfo).port}`);
    const all = records('drop', 40);
    for (let i = 0; i < all.length; i += 5) {
      const batch = { contentType: 'Audit.SharePoint' as const, records: all.slice(i, i + 5) };
      for (let attempt = 0; attempt < 50; attempt += 1) {
        try { await sink.write(batch); break; } catch { await new Promise((r) => setTimeout(r, 20)); }
      }
      await new Promise((r) => setTimeout(r, 20)); // batches arrive over time, as in a running connector
    }
    await sink.close();
    const ids = await eventually(async () => new Set(received), (s) => s.size >= all.length, 5000);
    server.close();
    expect([...ids].sort()).toEqual(all.map((r) => r.id).sort());
    for (const record of all) expect(messages.get(record.id!)!.equals(record.bytes)).toBe(true);
    expect(connections).toBeGreaterThanOrEqual(2);
  });
});

describe('syslog sink against a receiver that is down for a while', () => {
  it('replays the records the dead connection may have lost once the receiver is back, even after refused reconnects', async () => {
    const received: string[] = [];
    const sockets = new Set<Socket>();
    let dropUnread = true; // the first receiver dies without reading what it was sent, as a stopped collector does
    const makeServer = () => createServer((socket: Socket) => {
      sockets.add(socket);
      const read = octetCountedIds((id) => { received.push(id); });
      socket.on('data', (chunk) => { if (!dropUnread) read(chunk); });
    });
    let server = makeServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    const sink = new SyslogSink(`syslog+tcp://127.0.0.1:${port}`);
    const lost = records('lost', 10);
    await sink.write({ contentType: 'Audit.General', records: lost });
    // The receiver goes away: its connection is reset and the port refuses connections for a while.
    await new Promise<void>((r) => { server.close(() => r()); for (const socket of sockets) socket.destroy(); });
    const later = records('later', 10);
    let refused = 0;
    const writing = (async () => {
      for (;;) {
        try { await sink.write({ contentType: 'Audit.General', records: later }); return; } catch { refused += 1; await new Promise((r) => setTimeout(r, 20)); }
      }
    })();
    await eventually(async () => refused, (n) => n >= 1, 5000);
    dropUnread = false;
    server = makeServer();
    await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
    await writing;
    await sink.close();
    const ids = await eventually(async () => new Set(received), (s) => s.size >= 20, 5000);
    server.close();
    expect(refused).toBeGreaterThanOrEqual(1);
    expect([...lost, ...later].filter((r) => !ids.has(r.id!))).toEqual([]);
  });
});

const skipReason = rsyslogUnavailable();
if (skipReason) console.warn(`syslog tests against rsyslog skipped: ${skipReason}`);

describe.skipIf(skipReason !== undefined)('syslog sink against a real rsyslog', () => {
  let rsyslog: Rsyslog;
  let caFile: string;
  beforeAll(async () => {
    const dir = await workDir();
    const pki = await createTestPki({ dir: `${dir}/pki` });
    caFile = pki.caFile;
    rsyslog = await startRsyslog(dir, pki);
  });
  afterAll(() => rsyslog?.stop());

  it.each(['tcp', 'tls'] as const)('delivers every record exactly once over %s, framing intact for newlines and non-ASCII', async (transport) => {
    const spec = transport === 'tcp' ? `syslog+tcp://127.0.0.1:${rsyslog.tcpPort}` : `syslog+tls://127.0.0.1:${rsyslog.tlsPort}?ca=${caFile}`;
    const sink = new SyslogSink(spec);
    const sent = records(transport, 1500);
    for (let i = 0; i < sent.length; i += 100) await sink.write({ contentType: 'Audit.SharePoint', records: sent.slice(i, i + 100) });
    await sink.close();
    const got = await eventually(async () => (await rsyslog.received()).filter((r) => String(r.record['Id']).startsWith(`${transport}-`)), (list) => list.length >= sent.length);
    expect(got).toHaveLength(sent.length);
    expect(new Set(got.map((r) => r.record['Id'])).size).toBe(sent.length);
    const byId = new Map(got.map((r) => [r.record['Id'], r]));
    for (const record of sent) {
      // rsyslogd got exactly the bytes sent as MSG: no re-encoding on the way.
      expect(Buffer.from(byId.get(record.id)!.message).equals(record.bytes)).toBe(true);
      expect(byId.get(record.id)!.msgid).toBe('Audit.SharePoint');
    }
  });

  it('loses nothing when rsyslog restarts mid-stream', async () => {
    const sink = new SyslogSink(`syslog+tcp://127.0.0.1:${rsyslog.tcpPort}`);
    const sent = records('restart', 2000);
    for (let i = 0; i < sent.length; i += 50) {
      if (i === 1000) { await rsyslog.stop(); void rsyslog.start(); }
      const batch = { contentType: 'Audit.General' as const, records: sent.slice(i, i + 50) };
      for (let attempt = 0; ; attempt += 1) {
        try { await sink.write(batch); break; } catch (error) {
          if (attempt > 200) throw error;
          await new Promise((r) => setTimeout(r, 50));
        }
      }
    }
    await sink.close();
    const got = await eventually(async () => new Set((await rsyslog.received()).map((r) => String(r.record['Id'])).filter((id) => id.startsWith('restart-'))), (s) => s.size >= sent.length);
    expect(sent.filter((r) => !got.has(r.id!))).toEqual([]);
    expect(sink.connections).toBeGreaterThanOrEqual(2);
  });
});
