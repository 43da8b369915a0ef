import { describe, expect, it } from 'vitest';
import { Writable } from 'node:stream';
import { createLogger } from '../../../connector/status/log.ts';

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
