import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../connector/errors.ts';
import { createSink, schemeOf, sinkSpecs } from '../../../connector/sinks/spec.ts';
import { FileSink } from '../../../connector/sinks/file.ts';
import { StdoutSink } from '../../../connector/sinks/stdout.ts';
import { HttpSink } from '../../../connector/sinks/http.ts';
import { SplunkHecSink } from '../../../connector/sinks/splunk-hec.ts';
import { ElasticsearchSink } from '../../../connector/sinks/elasticsearch.ts';
import { SyslogSink } from '../../../connector/sinks/syslog.ts';
import { Telemetry } from '../../../connector/status/telemetry.ts';
import { createLogger } from '../../../connector/status/log.ts';

const env = { COLLECTOR_TOKEN: 'tok-123-secret', SPLUNK_HEC_TOKEN: 'hec-456-secret', ES_API_KEY: 'es-789-secret' };
const context = () => ({ env, telemetry: new Telemetry(), logger: createLogger({ level: 'silent' }) });

describe('which sinks a run uses', () => {
  it('takes the --sink flags first, whatever O365_SINKS says', () => {
    expect(sinkSpecs(['file:/a.ndjson', 'stdout'], { O365_SINKS: 'syslog+tcp://siem:514' })).toEqual(['file:/a.ndjson', 'stdout']);
  });

  it('reads O365_SINKS split on spaces and newlines (a systemd Environment= or an env file)', () => {
    expect(sinkSpecs([], { O365_SINKS: '  file:/var/log/o365/audit.ndjson\n syslog+tls://siem.example:6514?ca=/etc/ca.pem\t\nsplunk-hec://s:8088?tokenEnv=T \n' }))
      .toEqual(['file:/var/log/o365/audit.ndjson', 'syslog+tls://siem.example:6514?ca=/etc/ca.pem', 'splunk-hec://s:8088?tokenEnv=T']);
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
    expect(() => createSink('kafka://broker:9092/o365', context())).toThrow(expect.objectContaining({ field: '--sink', message: '--sink: unknown sink "kafka"', fix: 'use one of: stdout, syslog+tcp, syslog+tls, http, https, splunk-hec, elasticsearch, file' }));
    expect(() => createSink('https://c.example/in?format=csv', context())).toThrow(ConfigError);
  });
});
