import { describe, expect, it } from 'vitest';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../../../connector/core/errors.ts';
import { createSink } from '../../../connector/sinks/spec.ts';
import { httpParameters } from '../../../connector/sinks/http/ndjson-http.ts';
import { hecParameters } from '../../../connector/sinks/http/splunk-hec.ts';
import { elasticsearchParameters } from '../../../connector/sinks/http/elasticsearch.ts';
import { syslogParameters } from '../../../connector/sinks/syslog.ts';
import { Telemetry } from '../../../connector/observe/telemetry.ts';
import { createLogger } from '../../../connector/observe/log.ts';
import { hecReceiver } from '../../receivers/http-receivers.ts';
import { auditRecords } from './records.ts';

const env = { COLLECTOR_TOKEN: 'tok-123-secret', SPLUNK_HEC_TOKEN: 'hec-456-secret', ES_API_KEY: 'es-789-secret', ES_USER: 'u' };
const secrets = Object.values(env).filter((v) => v.length > 3);
const context = () => ({ env, telemetry: new Telemetry(), logger: createLogger({ level: 'silent' }) });

describe('sink specs', () => {
  it('keeps secrets out of sink names and telemetry, even for a spec it refuses', () => {
    const c = context();
    const sinks = [
      createSink('https://c.example/in?tokenEnv=COLLECTOR_TOKEN&headerEnv.X-Key=ES_API_KEY', c),
      createSink('splunk-hec://splunk.example:8088?tokenEnv=SPLUNK_HEC_TOKEN', c),
      createSink('elasticsearch://es.example:9200/o365?apiKeyEnv=ES_API_KEY', c),
    ];
    expect(() => createSink('https://admin:hunter2-secret@c.example/in', c)).toThrow(ConfigError);
    const visible = JSON.stringify([sinks.map((s) => s.name), c.telemetry.snapshot()]);
    for (const secret of [...secrets, 'hunter2-secret', 'tokenEnv']) expect(visible).not.toContain(secret);
  });

  const caDir = mkdtemp(join(tmpdir(), 'sink-spec-'));
  it.each([
    ['syslog+tcp://siem.example:514?facility=local9', '--sink facility', /unknown value "local9".*Fix: use one of kern, user/],
    ['syslog+tcp://siem.example:514?severity=loud', '--sink severity', /unknown value "loud"/],
    ['syslog+tcp://siem.example:514?ca=/etc/ca.pem', '--sink ca', /only for syslog\+tls/],
    ['syslog+tls://siem.example:6514?cert=/etc/passwd', '--sink key', /needs both cert= and key=/],
    ['syslog+tls://siem.example:6514?ca=/nonexistent/ca.pem', '--sink ca', /\/nonexistent\/ca\.pem does not exist/],
    ['syslog+tcp://siem.example:514?colour=blue', '--sink colour', /unknown parameter for syslog\+tcp:\/\/ sinks/],
    ['syslog+tcp://siem.example:514?facility=local0&facility=local1', '--sink facility', /given more than once/],
    ['syslog+tcp:///var/run/syslog', '--sink host', /a syslog\+tcp:\/\/ sink needs a host/],
    ['syslog+tcp://siem.example:514?replayBytes=lots', '--sink replayBytes', /must be a number/],
    ['https://admin:secret@c.example/in', '--sink', /credentials in the sink URL are not accepted/],
    ['https://c.example/in?token=abc', '--sink token', /unknown parameter.*Fix: use any of .*tokenEnv/],
    ['https://c.example/in?tokenEnv=NOT_SET', '--sink tokenEnv', /environment variable NOT_SET is not set/],
    ['https://c.example/in?header.Authorization=Bearer%20abc', '--sink header.Authorization', /a credential may not be written into the sink spec.*headerEnv\.Authorization/],
    ['https://c.example/in?header.Bad%20Name=x', '--sink header.Bad Name', /not a valid header name/],
    ['https://c.example/in?headerEnv.X-Key=NOT_SET', '--sink headerEnv.X-Key', /environment variable NOT_SET is not set/],
    ['https://c.example/in?gzip=maybe', '--sink gzip', /is not true or false/],
    ['https://c.example/in?maxRecords=0', '--sink maxRecords', /must be a number from 1/],
    ['https://c.example/in?format=csv', '--sink format', /unknown format "csv"/],
    ['splunk-hec://splunk.example:8088', '--sink tokenEnv', /the HEC token is required/],
    ['splunk-hec://splunk.example:8088?tokenEnv=SPLUNK_HEC_TOKEN&ack=sometimes', '--sink ack', /is not true or false/],
    ['elasticsearch://es.example:9200/O365', '--sink index', /"O365" is not a valid index name/],
    ['elasticsearch://es.example:9200/', '--sink index', /"" is not a valid index name/],
    ['elasticsearch://es.example:9200/a/b', '--sink index', /"a\/b" is not a valid index name/],
    ['elasticsearch://es.example:9200/o365?usernameEnv=ES_USER', '--sink passwordEnv', /needs both usernameEnv and passwordEnv/],
    ['kafka://broker:9092/topic', '--sink', /unknown sink "kafka"/],
    ['https://[bad', '--sink', /is not a valid URL/],
  ])('refuses %s with a ConfigError naming the parameter', async (spec, field, message) => {
    await caDir;
    let error: unknown;
    try { createSink(spec, context()); } catch (e) { error = e; }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).field).toBe(field);
    expect((error as ConfigError).toLine()).toMatch(message);
    for (const secret of [...secrets, 'secret']) expect((error as ConfigError).toLine()).not.toContain(secret);
  });

  it('takes each parameter\'s default from its sink\'s schema, an empty value counting as not given', () => {
    expect(httpParameters(env).parse({ maxBytes: '' })).toMatchObject({ gzip: false, timeoutMs: 30_000, maxAttempts: 5, maxRecords: 500, maxBytes: 1024 * 1024, header: {}, headerEnv: {} });
    expect(hecParameters(env).parse({ tokenEnv: 'SPLUNK_HEC_TOKEN' })).toMatchObject({ tokenEnv: 'hec-456-secret', tls: true, source: 'o365-connector', ack: false, ackTimeoutMs: 120_000 });
    expect(elasticsearchParameters(env).parse({ gzip: 'yes' })).toMatchObject({ gzip: true, tls: true, timeoutMs: 60_000, maxRecords: 1000, maxBytes: 10 * 1024 * 1024 });
    expect(syslogParameters(false).parse({ severity: 'notice' })).toMatchObject({ facility: 'local0', severity: 'notice', appName: 'o365-connector', replayBytes: 4 * 1024 * 1024, replaySeconds: 10, connectTimeoutMs: 10_000 });
  });

  it('reads a token from tokenFile, trimmed, and sends it', async () => {
    const file = join(await caDir, 'token');
    await writeFile(file, 'file-token-secret\n');
    const splunk = await hecReceiver('file-token-secret');
    const sink = createSink(`splunk-hec://127.0.0.1:${new URL(splunk.url).port}?tls=0&insecure=1&tokenFile=${file}`, context());
    await sink.write({ contentType: 'Audit.General', records: auditRecords(1) });
    await sink.close();
    await splunk.close();
    expect(splunk.events).toHaveLength(1);
  });
});
