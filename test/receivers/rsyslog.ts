/**
 * A real rsyslogd for the syslog sink tests: plain TCP, TLS, and mutual TLS (client certificate signed by the
 * test CA required) inputs on 127.0.0.1, all with the OpenSSL driver, writing each message's MSGID and MSG
 * (JSON-escaped, so records with newlines stay on one line) to a file.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import type { TestPki } from '../emulator/tls.ts';

export function rsyslogUnavailable(): string | undefined {
  const probe = spawnSync('rsyslogd', ['-v'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) return 'rsyslogd is not installed (run scripts/setup-test-deps.sh as root)';
  const driver = ['/usr/lib/x86_64-linux-gnu/rsyslog/lmnsd_ossl.so', '/usr/lib/aarch64-linux-gnu/rsyslog/lmnsd_ossl.so'].some(existsSync);
  return driver ? undefined : 'the rsyslog OpenSSL driver is not installed (rsyslog-openssl)';
}

export async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export interface Rsyslog {
  readonly tcpPort: number;
  readonly tlsPort: number;
  /** TLS that refuses clients without a certificate issued by the test CA. */
  readonly mutualTlsPort: number;
  /** Records received so far: the MSGID (content type), the MSG exactly as rsyslogd got it, and MSG parsed. */
  received(): Promise<Array<{ msgid: string; message: string; record: Record<string, unknown> }>>;
  stop(): Promise<void>;
  /** SIGKILL: whatever rsyslogd had read but not yet written is lost with it, as in a crash. */
  kill(): Promise<void>;
  start(): Promise<void>;
}

export async function startRsyslog(dir: string, pki: TestPki): Promise<Rsyslog> {
  const tcpPort = await freePort();
  const tlsPort = await freePort();
  const mutualTlsPort = await freePort();
  const output = join(dir, 'received.log');
  const config = join(dir, 'rsyslog.conf');
  await writeFile(config, `
global(workDirectory="${dir}" maxMessageSize="1m" parser.escapeControlCharactersOnReceive="off"
  DefaultNetstreamDriverCAFile="${pki.caFile}" DefaultNetstreamDriverCertFile="${pki.server.certFile}" DefaultNetstreamDriverKeyFile="${pki.server.keyFile}")
module(load="imtcp" MaxSessions="200")
template(name="recordOnly" type="string" string="%msgid% %msg:::json%\\n")
ruleset(name="received") { action(type="omfile" file="${output}" template="recordOnly" flushOnTXEnd="on" asyncWriting="off") }
input(type="imtcp" address="127.0.0.1" port="${tcpPort}" ruleset="received")
input(type="imtcp" address="127.0.0.1" port="${tlsPort}" ruleset="received" StreamDriver.Name="ossl" StreamDriver.Mode="1" StreamDriver.AuthMode="anon")
input(type="imtcp" address="127.0.0.1" port="${mutualTlsPort}" ruleset="received" StreamDriver.Name="ossl" StreamDriver.Mode="1" StreamDriver.AuthMode="x509/certvalid")
`);
  let child: ChildProcess | undefined;
  const listening = async (port: number) => {
    const { connect } = await import('node:net');
    return new Promise<boolean>((resolve) => {
      const socket = connect({ host: '127.0.0.1', port }, () => { socket.destroy(); resolve(true); });
      socket.on('error', () => resolve(false));
    });
  };
  // The TLS listener is ready once it completes a handshake, not when it accepts a connection: a sink that connects
  // in between can be reset while rsyslogd's TLS driver is still starting.
  const handshakes = async (port: number) => {
    const { connect } = await import('node:tls');
    return new Promise<boolean>((resolve) => {
      const socket = connect({ host: '127.0.0.1', port, ca: pki.caCertPem, servername: 'localhost', checkServerIdentity: () => undefined }, () => { socket.destroy(); resolve(true); });
      socket.on('error', () => resolve(false));
    });
  };
  const end = async (signal: NodeJS.Signals) => {
    const running = child;
    child = undefined;
    if (!running || running.exitCode !== null || running.signalCode !== null) return;
    await new Promise<void>((resolve) => { running.once('exit', () => resolve()); running.kill(signal); });
  };
  const rsyslog: Rsyslog = {
    tcpPort, tlsPort, mutualTlsPort,
    async received() {
      let text = '';
      try { text = await readFile(output, 'utf8'); } catch { return []; }
      // rsyslogd may be mid-write: only whole lines count.
      return text.slice(0, text.lastIndexOf('\n') + 1).split('\n').filter(Boolean).map((line) => {
        const space = line.indexOf(' ');
        const message = JSON.parse(`"${line.slice(space + 1)}"`) as string;
        return { msgid: line.slice(0, space), message, record: JSON.parse(message) as Record<string, unknown> };
      });
    },
    async start() {
      child = spawn('rsyslogd', ['-n', '-f', config, '-i', join(dir, 'rsyslogd.pid')], { stdio: 'ignore' });
      const deadline = Date.now() + 15_000;
      while (Date.now() < deadline) {
        if (await listening(tcpPort) && await handshakes(tlsPort) && await listening(mutualTlsPort)) return;
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error('rsyslogd did not start listening');
    },
    async stop() {
      await end('SIGTERM');
    },
    async kill() {
      await end('SIGKILL');
      await rm(join(dir, 'rsyslogd.pid'), { force: true });
    },
  };
  await rsyslog.start();
  return rsyslog;
}
