import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../connector/core/errors.ts';
import { createSink, refuseSharedSinks, schemeOf } from '../../../connector/sinks/spec.ts';
import { runConfigurationOf } from '../../../connector/config/run-config.ts';
import { FileSink } from '../../../connector/sinks/file.ts';
import { StdoutSink } from '../../../connector/sinks/stdout.ts';
import { HttpSink } from '../../../connector/sinks/http/ndjson-http.ts';
import { SplunkHecSink } from '../../../connector/sinks/http/splunk-hec.ts';
import { ElasticsearchSink } from '../../../connector/sinks/http/elasticsearch.ts';
import { SyslogSink } from '../../../connector/sinks/syslog.ts';
import { Telemetry } from '../../../connector/observe/telemetry.ts';
import { createLogger } from '../../../connector/observe/log.ts';
import { OcsfSink } from '../../../connector/sinks/ocsf/ocsf-sink.ts';

const env = { COLLECTOR_TOKEN: 'tok-123-secret', SPLUNK_HEC_TOKEN: 'hec-456-secret', ES_API_KEY: 'es-789-secret' };
/** The sinks of a run as its configuration names them, refused as the worker refuses them. */
function sinkSpecs(flags: string[], environment: NodeJS.ProcessEnv): readonly string[] {
  const { sinks } = runConfigurationOf('run', { sink: flags }, { env: environment });
  refuseSharedSinks(sinks, environment);
  return sinks;
}
const context = () => ({ env, telemetry: new Telemetry(), logger: createLogger({ level: 'silent' }) });

describe('which sinks a run uses', () => {
  it('takes the --sink flags first, whatever O365_SINKS says', () => {
    expect(sinkSpecs(['file:/a.ndjson', 'stdout'], { O365_SINKS: 'syslog+tcp://siem:514' })).toEqual(['file:/a.ndjson', 'stdout']);
  });

  it('reads O365_SINKS split on spaces and newlines (a systemd Environment= or an env file)', () => {
    expect(sinkSpecs([], { O365_SINKS: '  file:/var/log/o365/audit.ndjson\n syslog+tls://siem.example:6514?ca=/etc/ca.pem\t\nsplunk-hec://s:8088?tokenEnv=T \n' }))
      .toEqual(['file:/var/log/o365/audit.ndjson', 'syslog+tls://siem.example:6514?ca=/etc/ca.pem', 'splunk-hec://s:8088?tokenEnv=T']);
  });

  it('gives a format=ocsf sink its own name and telemetry, leaving the raw sink\'s name (and so its stored position) as it was', () => {
    const c = context();
    const raw = createSink('elasticsearch://es.example:9200/o365?apiKeyEnv=ES_API_KEY', c);
    const ocsf = createSink('elasticsearch://es.example:9200/o365-ocsf?apiKeyEnv=ES_API_KEY&format=ocsf', c);
    const fileRaw = createSink('file:/var/log/o365/audit.ndjson', c);
    const fileOcsf = createSink('file:/var/log/o365/audit.ndjson?format=ocsf', c);
    expect([raw.name, ocsf.name, fileRaw.name, fileOcsf.name]).toEqual([
      'elasticsearch://es.example:9200/o365', 'elasticsearch://es.example:9200/o365-ocsf?format=ocsf', 'file:/var/log/o365/audit.ndjson', 'file:/var/log/o365/audit.ndjson?format=ocsf',
    ]);
    const hec = 'splunk-hec://s.example:8088?tokenEnv=SPLUNK_HEC_TOKEN';
    createSink(hec, c);
    createSink(`${hec}&format=ocsf`, c);
    expect(c.telemetry.snapshot().map((component) => component.name).filter((name) => name.startsWith('sink:splunk-hec'))).toEqual(['sink:splunk-hec://s.example:8088', 'sink:splunk-hec://s.example:8088?format=ocsf']);
  });

  it.each([
    ['the same sink twice', ['file:/var/log/o365/audit.ndjson', 'stdout', 'file:/var/log/o365/audit.ndjson'], 'two sinks are file:/var/log/o365/audit.ndjson'],
    ['one sink spelled two ways', ['https://es.example:9200/o365?protocol=bulk', 'elasticsearch://es.example:9200/o365?tls=1'], 'two sinks are elasticsearch://es.example:9200/o365'],
    ['a raw and an OCSF sink writing one Elasticsearch index', ['elasticsearch://es.example:9200/o365', 'elasticsearch://es.example:9200/o365?format=ocsf'], 'two sinks write elasticsearch://es.example:9200/o365'],
    ['a raw and an OCSF sink writing one file', ['file:/var/log/o365/audit.ndjson', 'file:/var/log/o365/audit.ndjson?format=ocsf'], 'two sinks write file:/var/log/o365/audit.ndjson'],
  ])('refuses %s in one line', (_title, specs, message) => {
    let thrown: unknown;
    try { sinkSpecs(specs, env); } catch (error) { thrown = error; }
    expect(thrown).toBeInstanceOf(ConfigError);
    expect((thrown as ConfigError).message).toContain(message);
    expect((thrown as ConfigError).message).not.toContain('\n');
    expect((thrown as ConfigError).fix).toBeTruthy();
    expect(() => sinkSpecs([], { ...env, O365_SINKS: specs.join(' ') })).toThrow(ConfigError);
  });

  it('accepts a raw and an OCSF sink to one Splunk HEC endpoint or syslog receiver (their events do not collide)', () => {
    const hec = 'splunk-hec://s.example:8088?tokenEnv=SPLUNK_HEC_TOKEN';
    expect(sinkSpecs([hec, `${hec}&format=ocsf`, 'syslog+tcp://siem:514', 'syslog+tcp://siem:514?format=ocsf'], env)).toHaveLength(4);
  });

  it('falls back to stdout when neither names a sink', () => {
    expect(sinkSpecs([], {})).toEqual(['stdout']);
    expect(sinkSpecs([], { O365_SINKS: ' \n ' })).toEqual(['stdout']);
  });
});

describe('sink factory', () => {
  it('chooses the sink by scheme and by format=, and the spec query never reaches the collector', () => {
    const c = context();
    expect(createSink('https://c.example/in?tokenEnv=COLLECTOR_TOKEN', c)).toBeInstanceOf(HttpSink);
    expect(createSink('https://splunk.example:8088/services/collector/event?format=hec&tokenEnv=SPLUNK_HEC_TOKEN', c)).toBeInstanceOf(SplunkHecSink);
    expect(createSink('https://es.example:9200/o365?format=bulk', c)).toBeInstanceOf(ElasticsearchSink);
    expect(createSink('syslog+tls://siem.example:6514?facility=local3&severity=notice', c)).toBeInstanceOf(SyslogSink);
    expect(createSink('syslog+tcp://siem.example:514', c)).toBeInstanceOf(SyslogSink);
    expect(createSink('splunk-hec://splunk.example:8088?tokenEnv=SPLUNK_HEC_TOKEN', c).name).toBe('splunk-hec://splunk.example:8088');
    expect(createSink('elasticsearch://es.example/o365-audit?apiKeyEnv=ES_API_KEY', c).name).toBe('elasticsearch://es.example:9200/o365-audit');
  });

  it('knows stdout and file specs, and reads the scheme case-insensitively', () => {
    expect(createSink('stdout', context())).toBeInstanceOf(StdoutSink);
    expect(createSink('file:/tmp/o365-spec-test.ndjson', context())).toBeInstanceOf(FileSink);
    expect(schemeOf('SYSLOG+TCP://siem:514')).toBe('syslog+tcp');
  });

  it('refuses an unknown scheme or format with the list of known ones', () => {
    expect(() => createSink('kafka://broker:9092/o365', context())).toThrow(expect.objectContaining({ field: '--sink', message: '--sink: unknown sink "kafka"', fix: 'use one of: stdout, syslog+tcp, syslog+tls, http, https, splunk-hec, elasticsearch, file, sentinel' }));
    expect(() => createSink('https://c.example/in?format=csv', context())).toThrow(ConfigError);
  });
});

describe('format (the record form) and protocol (the HTTP wire protocol)', () => {
  const ocsfInner = (spec: string) => {
    const sink = createSink(spec, context());
    expect(sink).toBeInstanceOf(OcsfSink);
    return (sink as OcsfSink).inner;
  };

  it('gives every sink format=ocsf, and http(s) the protocol by protocol=', () => {
    expect(ocsfInner('stdout?format=ocsf')).toBeInstanceOf(StdoutSink);
    expect(ocsfInner('file:/tmp/o365-spec-test.ndjson?format=ocsf')).toBeInstanceOf(FileSink);
    expect(ocsfInner('syslog+tcp://siem.example:514?format=ocsf&facility=local3')).toBeInstanceOf(SyslogSink);
    expect(ocsfInner('https://c.example/in?format=ocsf&tokenEnv=COLLECTOR_TOKEN')).toBeInstanceOf(HttpSink);
    expect(ocsfInner('https://splunk.example:8088/services/collector/event?protocol=hec&format=ocsf&tokenEnv=SPLUNK_HEC_TOKEN')).toBeInstanceOf(SplunkHecSink);
    expect(ocsfInner('https://es.example:9200/o365?protocol=bulk&format=ocsf')).toBeInstanceOf(ElasticsearchSink);
    expect(ocsfInner('splunk-hec://splunk.example:8088?tokenEnv=SPLUNK_HEC_TOKEN&format=ocsf')).toBeInstanceOf(SplunkHecSink);
    expect(ocsfInner('elasticsearch://es.example/o365-ocsf?format=ocsf').name).toBe('elasticsearch://es.example:9200/o365-ocsf');
  });

  it('keeps the specs of earlier releases working: format=ndjson|hec|bulk on http(s) is the protocol, raw records', () => {
    expect(createSink('https://c.example/in?format=ndjson', context())).toBeInstanceOf(HttpSink);
    expect(createSink('https://s.example:8088/services/collector/event?format=hec&tokenEnv=SPLUNK_HEC_TOKEN', context())).toBeInstanceOf(SplunkHecSink);
    expect(createSink('splunk-hec://s.example:8088?format=hec&tokenEnv=SPLUNK_HEC_TOKEN', context())).toBeInstanceOf(SplunkHecSink);
    expect(createSink('elasticsearch://es.example/o365?format=bulk', context())).toBeInstanceOf(ElasticsearchSink);
    expect(createSink('https://c.example/in?format=raw', context())).toBeInstanceOf(HttpSink);
  });

  it.each([
    ['https://c.example/in?format=hec&protocol=bulk', '--sink format', 'give protocol=bulk for the wire protocol and format=raw or format=ocsf for the record form'],
    ['file:/tmp/a.ndjson?format=bulk', '--sink format', 'use format=raw or format=ocsf (the record form)'],
    ['splunk-hec://s.example:8088?format=bulk&tokenEnv=SPLUNK_HEC_TOKEN', '--sink format', 'use format=raw or format=ocsf (the record form)'],
    ['syslog+tcp://siem:514?protocol=hec', '--sink protocol', 'remove protocol=; use format=raw or format=ocsf for the record form'],
    ['https://c.example/in?protocol=grpc', '--sink protocol', 'use ndjson, hec or bulk'],
    ['https://c.example/in?format=csv', '--sink format', 'use raw or ocsf (the record form); the wire protocol is protocol=ndjson|hec|bulk'],
    ['stdout?format=ocsf&x=1', '--sink', 'use stdout or stdout?format=ocsf'],
    ['file:x.ndjson?fromat=ocsf', '--sink fromat', 'use any of format (file:<path>?format=raw|ocsf); a "?" in a file sink always starts its parameters'],
    ['file:x.ndjson?format=ocsf&fromat=x', '--sink fromat', 'use any of format (file:<path>?format=raw|ocsf); a "?" in a file sink always starts its parameters'],
    ['/var/log/o365/audit.ndjson', '--sink', 'write file:/var/log/o365/audit.ndjson for a file, or stdout, syslog+tcp://…, https://…, splunk-hec://…, elasticsearch://…'],
  ])('refuses %s in one line with the fix', (spec, field, fix) => {
    expect(() => createSink(spec, context())).toThrow(expect.objectContaining({ field, fix }));
  });
});
