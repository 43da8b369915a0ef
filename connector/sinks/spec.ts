import type { ProxySettings } from '../api/proxy.ts';
import { ConfigError } from '../errors.ts';
import type { Logger } from '../status/log.ts';
import type { Telemetry } from '../status/telemetry.ts';
import type { Sink } from './sink.ts';
import { FileSink } from './file.ts';
import { StdoutSink } from './stdout.ts';
import { SyslogSink } from './syslog.ts';
import { HttpSink } from './http.ts';
import { SplunkHecSink } from './splunk-hec.ts';
import { ElasticsearchSink } from './elasticsearch.ts';
import { sinkLabel } from './sink-url.ts';

export interface SinkContext {
  readonly env: NodeJS.ProcessEnv;
  readonly telemetry: Telemetry;
  readonly logger: Logger;
  /** The forward proxy, for HTTP sinks whose spec says proxy=1. */
  readonly proxy?: ProxySettings | undefined;
  /** How long a sink waits for a lock another connector holds on its target (--state-lock-wait). */
  readonly lockWaitMs?: number;
}

export type SinkFactory = (spec: string, context: SinkContext) => Sink;

/** A sink's telemetry component, named by its spec without query or credentials. */
function sinkTelemetry(spec: string, context: SinkContext) {
  return context.telemetry.component(`sink:${sinkLabel(spec)}`, 'sink');
}

/** `http(s)://` is NDJSON, or Splunk HEC with `format=hec`, or Elasticsearch `_bulk` with `format=bulk`. */
function httpFamily(spec: string, context: SinkContext): Sink {
  let format = 'ndjson'; // an unreadable URL is reported by the sink's own parser, naming the problem
  try { format = new URL(spec).searchParams.get('format') ?? 'ndjson'; } catch { /* see above */ }
  const options = { env: context.env, telemetry: sinkTelemetry(spec, context), proxy: context.proxy };
  if (format === 'hec') return new SplunkHecSink(spec, options);
  if (format === 'bulk') return new ElasticsearchSink(spec, options);
  if (format !== 'ndjson') throw new ConfigError('--sink format', `unknown format "${format}"`, 'use ndjson, hec or bulk');
  return new HttpSink(spec, options);
}

const syslog: SinkFactory = (spec, context) => new SyslogSink(spec, { telemetry: sinkTelemetry(spec, context), logger: context.logger });

/**
 * Sink specs by scheme: `stdout`, `file:<path>`, and the SIEM sinks. Each sink module contributes one
 * entry; the factory validates the rest of the spec and throws a ConfigError naming what is wrong.
 */
const factories: ReadonlyArray<{ readonly scheme: string; readonly create: SinkFactory }> = [
  { scheme: 'stdout', create: (_spec, context) => new StdoutSink({ telemetry: context.telemetry.component('sink:stdout', 'sink') }) },
  { scheme: 'syslog+tcp', create: syslog },
  { scheme: 'syslog+tls', create: syslog },
  { scheme: 'http', create: httpFamily },
  { scheme: 'https', create: httpFamily },
  { scheme: 'splunk-hec', create: (spec, context) => new SplunkHecSink(spec, { env: context.env, telemetry: sinkTelemetry(spec, context), proxy: context.proxy }) },
  { scheme: 'elasticsearch', create: (spec, context) => new ElasticsearchSink(spec, { env: context.env, telemetry: sinkTelemetry(spec, context), proxy: context.proxy }) },
  { scheme: 'file', create: (spec, context) => new FileSink(spec.slice('file:'.length), { telemetry: context.telemetry.component(`sink:${spec}`, 'sink'), logger: context.logger, ...(context.lockWaitMs === undefined ? {} : { lockWaitMs: context.lockWaitMs }) }) },
];

export function schemeOf(spec: string): string {
  if (spec === 'stdout') return 'stdout';
  const match = /^([a-z][a-z0-9+.-]*):/i.exec(spec);
  return match ? match[1]!.toLowerCase() : spec;
}

/**
 * The sink specs of a run: the `--sink` flags when any were given, else `O365_SINKS` (specs separated by
 * whitespace or newlines, so a systemd `Environment=` or an env file can hold several), else stdout.
 */
export function sinkSpecs(flagSpecs: readonly string[], env: NodeJS.ProcessEnv): string[] {
  const given = configuredSinkSpecs(flagSpecs, env);
  return given.length ? given : ['stdout'];
}

/** The sink specs given by `--sink` or `O365_SINKS`; none when neither names one. */
export function configuredSinkSpecs(flagSpecs: readonly string[], env: NodeJS.ProcessEnv): string[] {
  if (flagSpecs.length) return [...flagSpecs];
  return (env['O365_SINKS'] ?? '').split(/\s+/).filter(Boolean);
}

export function createSink(spec: string, context: SinkContext): Sink {
  const scheme = schemeOf(spec);
  const entry = factories.find((f) => f.scheme === scheme);
  if (!entry) {
    const known = factories.map((f) => f.scheme).join(', ');
    throw new ConfigError('--sink', `unknown sink "${scheme}"`, `use one of: ${known}`);
  }
  return entry.create(spec, context);
}
