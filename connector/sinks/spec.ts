import { ConfigError } from '../errors.ts';
import type { Logger } from '../status/log.ts';
import type { Telemetry } from '../status/telemetry.ts';
import type { Sink } from './sink.ts';
import { FileSink } from './file.ts';
import { StdoutSink } from './stdout.ts';
import { SyslogSink } from './syslog.ts';

export interface SinkContext {
  readonly env: NodeJS.ProcessEnv;
  readonly telemetry: Telemetry;
  readonly logger: Logger;
}

export type SinkFactory = (spec: string, context: SinkContext) => Sink;

/**
 * Sink specs by scheme: `stdout`, `file:<path>`, and the SIEM sinks. Each sink module contributes one
 * entry; the factory validates the rest of the spec and throws a ConfigError naming what is wrong.
 */
const factories: ReadonlyArray<{ readonly scheme: string; readonly create: SinkFactory }> = [
  { scheme: 'stdout', create: (_spec, context) => new StdoutSink({ telemetry: context.telemetry.component('sink:stdout', 'sink') }) },
  { scheme: 'syslog+tcp', create: (spec, context) => new SyslogSink(spec, { env: context.env, telemetry: context.telemetry.component(`sink:${spec.split('?')[0]}`, 'sink'), logger: context.logger }) },
  { scheme: 'syslog+tls', create: (spec, context) => new SyslogSink(spec, { env: context.env, telemetry: context.telemetry.component(`sink:${spec.split('?')[0]}`, 'sink'), logger: context.logger }) },
  { scheme: 'file', create: (spec, context) => new FileSink(spec.slice('file:'.length), { telemetry: context.telemetry.component(`sink:${spec}`, 'sink'), logger: context.logger }) },
];

export function schemeOf(spec: string): string {
  if (spec === 'stdout') return 'stdout';
  const match = /^([a-z][a-z0-9+.-]*):/i.exec(spec);
  return match ? match[1]!.toLowerCase() : spec;
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
