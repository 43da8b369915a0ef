import { describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { createLogger } from '../../../connector/observe/log.ts';
import { registerSecret } from '../../../connector/observe/secret-values.ts';
import { startEmulator } from '../../emulator/index.ts';
import { workDir, writeOutputs } from '../../e2e/support.ts';

const root = resolve(import.meta.dirname, '../../..');

function capture() {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk, _encoding, done) { lines.push(String(chunk)); done(); },
  });
  return { lines, destination };
}

describe('logger', () => {
  it('redacts secrets by key at any depth it is given', () => {
    const { lines, destination } = capture();
    const log = createLogger({ destination: destination as never });
    log.info({ clientSecret: 's3cr3t-value', config: { clientSecret: 'nested-s3cr3t', tenantId: 't' }, headers: { authorization: 'Bearer abc.def' } }, 'starting');
    const text = lines.join('');
    expect(text).not.toContain('s3cr3t');
    expect(text).not.toContain('abc.def');
    const entry = JSON.parse(lines[0]!);
    expect(entry.config.tenantId).toBe('t');
    expect(entry.level).toBe('info');
    expect(entry.msg).toBe('starting');
  });
});

describe('log lines on a terminal (issue 23, 9)', () => {
  it('are written for people (time, level, message, the fields that matter), with the same redaction', () => {
    const { lines, destination } = capture();
    registerSecret('value-known-0001');
    const log = createLogger({ destination: destination as never, forPeople: true });
    log.warn({ component: 'api', code: 'AF429', attempt: 2, clientSecret: 's3cr3t-value', note: 'quoted value-known-0001 back' }, 'retrying Management Activity API call');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^\d\d:\d\d:\d\d WARN  retrying Management Activity API call  component=api code=AF429 attempt=2 clientSecret=\[redacted\] note="quoted \[redacted\] back"\n$/);
    expect(lines[0]).not.toContain('s3cr3t');
  });

  const script = spawnSync('script', ['--version']).status === 0;
  it.skipIf(!script)('run on a real pty (through script) prints no JSON log line, and JSON when stderr is a pipe', { timeout: 60_000 }, async () => {
    const emulator = await startEmulator({ seed: 9, days: 1 });
    try {
      const dir = await workDir();
      const outputs = await writeOutputs(emulator, dir);
      const args = ['run', '--once', '--outputs', outputs, '--state', join(dir, 'state'), '--sink', `file:${join(dir, 'audit.ndjson')}`, '--content-types', 'Audit.General', '--since', '2h'];
      const env = { ...process.env, NODE_EXTRA_CA_CERTS: emulator.caFile, O365_LOG_LEVEL: 'info' };
      const output = (child: ReturnType<typeof spawn>, stream: 'stdout' | 'stderr') => new Promise<string>((done) => {
        let text = '';
        child[stream]!.on('data', (chunk: Buffer) => { text += chunk.toString(); });
        child.once('exit', () => done(text));
      });
      const command = [join(root, 'bin/o365-connector'), ...args].map((part) => `'${part}'`).join(' ');
      const onTerminal = await output(spawn('script', ['-qfec', command, '/dev/null'], { env, stdio: ['ignore', 'pipe', 'inherit'] }), 'stdout');
      const lines = onTerminal.split(/\r?\n/).map((line) => line.replace(/\x1b\[[0-9;]*[A-Za-z]/g, '')).filter(Boolean);
      expect(lines.filter((line) => line.startsWith('{'))).toEqual([]);
      expect(lines).toContainEqual(expect.stringMatching(/^\d\d:\d\d:\d\d INFO  run finished  summary=\{"records":\d+/));
      expect(onTerminal).not.toContain(emulator.clientSecret);
      const piped = await output(spawn(join(root, 'bin/o365-connector'), [...args, '--state', join(dir, 'state-2')], { env, stdio: ['ignore', 'ignore', 'pipe'] }), 'stderr');
      expect(piped.split('\n').filter(Boolean).map((line) => JSON.parse(line) as { msg: string }).map((entry) => entry.msg)).toContain('run finished');
    } finally {
      await emulator.stop();
    }
  });
});
