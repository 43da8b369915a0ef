import type { ProxySettings } from '../http/proxy.ts';
import { ConfigError } from '../core/errors.ts';
import type { Logger } from '../observe/log.ts';
import { Telemetry } from '../observe/telemetry.ts';
import type { HttpProtocol, RecordForm, Sink, SinkIdentity } from './sink.ts';
import { FileSink } from './file.ts';
import { StdoutSink } from './stdout.ts';
import { SyslogSink } from './syslog.ts';
import { HttpSink } from './http/ndjson-http.ts';
import { SplunkHecSink } from './http/splunk-hec.ts';
import { ElasticsearchSink } from './http/elasticsearch.ts';
import { sinkLabel } from './sink-url.ts';
import { OcsfSink, OcsfTransform, ocsfSinkName } from './ocsf/ocsf-sink.ts';
import { SentinelSink } from './sentinel/sentinel-sink.ts';
import { createLogger } from '../observe/log.ts';

export interface SinkContext {
  readonly env: NodeJS.ProcessEnv;
  readonly telemetry: Telemetry;
  readonly logger: Logger;
  /** The forward proxy, for HTTP sinks whose spec says proxy=1. */
  readonly proxy?: ProxySettings | undefined;
  /** How long a sink waits for a lock another connector holds on its target (--state-lock-wait). */
  readonly lockWaitMs?: number;
  /** The connector's own identity (one tenant's run), for the sinks that sign in to Microsoft: Sentinel. */
  readonly identity?: SinkIdentity | undefined;
}

/** `form` is the record form the sink will be handed (a sink whose defaults depend on it reads it). */
export type SinkFactory = (spec: string, context: SinkContext, form: RecordForm) => Sink;

/** A sink's telemetry component, named by its spec without query or credentials (and `?format=ocsf` for OCSF events). */
function sinkTelemetry(spec: string, context: SinkContext, form: RecordForm = 'raw') {
  const label = sinkLabel(spec);
  return context.telemetry.component(`sink:${form === 'ocsf' ? ocsfSinkName(label) : label}`, 'sink');
}

/** An HTTP sink by wire protocol: NDJSON, Splunk HEC (`splunk-hec://`, `protocol=hec`) or Elasticsearch `_bulk` (`elasticsearch://`, `protocol=bulk`). */
function httpFamily(spec: string, context: SinkContext, protocol: HttpProtocol = 'ndjson', form: RecordForm = 'raw'): Sink {
  const options = { env: context.env, telemetry: sinkTelemetry(spec, context, form), proxy: context.proxy };
  if (protocol === 'hec') return new SplunkHecSink(spec, { ...options, form });
  if (protocol === 'bulk') return new ElasticsearchSink(spec, options);
  return new HttpSink(spec, options);
}

const recordForms: readonly string[] = ['raw', 'ocsf'];
const httpProtocols: readonly string[] = ['ndjson', 'hec', 'bulk'];

/**
 * The rule for `format` and `protocol`, the same on every sink: `format` is the record form, `raw` (the default: the
 * bytes Microsoft sent) or `ocsf` (one OCSF 1.8.0 event per record); on `http(s)://` the wire protocol is
 * `protocol=ndjson|hec|bulk` (ndjson by default). `format=ndjson|hec|bulk` on `http(s)://`, its meaning before the
 * record form existed, still selects the protocol with raw records (and `format=hec` on `splunk-hec://`,
 * `format=bulk` on `elasticsearch://`, which those sinks used to accept, still changes nothing). Both parameters are
 * taken out of the spec here; the sink gets the rest. A combination that cannot mean one thing is a ConfigError.
 */
export function outputForm(spec: string): { spec: string; form: RecordForm; protocol: HttpProtocol | undefined } {
  const scheme = schemeOf(spec);
  const question = spec.indexOf('?');
  if (question < 0) return { spec, form: 'raw', protocol: undefined };
  const hash = spec.indexOf('#', question);
  const query = spec.slice(question + 1, hash < 0 ? undefined : hash);
  const segments = query.split('&');
  const keyOf = (segment: string) => { try { return decodeURIComponent(segment.split('=')[0]!.replace(/\+/g, ' ')); } catch { return segment; } };
  const valueOf = (segment: string) => { try { return decodeURIComponent(segment.slice(segment.indexOf('=') + 1).replace(/\+/g, ' ')); } catch { return segment; } };
  const ours = segments.filter((segment) => ['format', 'protocol'].includes(keyOf(segment)));
  if (ours.length === 0) return { spec, form: 'raw', protocol: undefined };
  const formats = ours.filter((segment) => keyOf(segment) === 'format').map(valueOf);
  const protocols = ours.filter((segment) => keyOf(segment) === 'protocol').map(valueOf);
  if (formats.length > 1 || protocols.length > 1) throw new ConfigError(`--sink ${formats.length > 1 ? 'format' : 'protocol'}`, 'given more than once', 'give each parameter once');
  const format = formats[0] === '' ? undefined : formats[0];
  let protocol = protocols[0] === '' ? undefined : protocols[0];
  const http = scheme === 'http' || scheme === 'https';
  if (protocol !== undefined) {
    if (!http) throw new ConfigError('--sink protocol', `protocol= is only for http(s):// sinks (a ${scheme} sink's scheme is its protocol)`, 'remove protocol=; use format=raw or format=ocsf for the record form');
    if (!httpProtocols.includes(protocol)) throw new ConfigError('--sink protocol', `unknown protocol "${protocol}"`, 'use ndjson, hec or bulk');
  }
  let form: RecordForm = 'raw';
  if (format !== undefined && httpProtocols.includes(format)) {
    const own = (scheme === 'splunk-hec' && format === 'hec') || (scheme === 'elasticsearch' && format === 'bulk');
    if (http && protocol !== undefined) {
      throw new ConfigError('--sink format', `format=${format} is the older spelling of protocol=${format}, and protocol=${protocol} is given too`, `give protocol=${protocol} for the wire protocol and format=raw or format=ocsf for the record form`);
    }
    if (!http && !own) throw new ConfigError('--sink format', `format=${format} selects an HTTP wire protocol, which a ${scheme} sink does not have`, 'use format=raw or format=ocsf (the record form)');
    if (http) protocol = format;
  } else if (format !== undefined) {
    if (!recordForms.includes(format)) throw new ConfigError('--sink format', `unknown format "${format}"`, `use raw or ocsf (the record form)${http ? '; the wire protocol is protocol=ndjson|hec|bulk' : ''}`);
    form = format as RecordForm;
  }
  const rest = segments.filter((segment) => !ours.includes(segment)).join('&');
  const stripped = `${spec.slice(0, question)}${rest ? `?${rest}` : ''}${hash < 0 ? '' : spec.slice(hash)}`;
  return { spec: stripped, form, protocol: protocol as HttpProtocol | undefined };
}

/** One OCSF transform per run (per telemetry): a batch that goes to several OCSF sinks is mapped once. */
const transforms = new WeakMap<Telemetry, OcsfTransform>();

function transformFor(telemetry: Telemetry): OcsfTransform {
  const transform = transforms.get(telemetry) ?? new OcsfTransform({ telemetry });
  transforms.set(telemetry, transform);
  return transform;
}

const syslog: SinkFactory = (spec, context, form) => new SyslogSink(spec, { telemetry: sinkTelemetry(spec, context, form), logger: context.logger });

/**
 * Sink specs by scheme: `stdout`, `file:<path>`, and the SIEM sinks. Each sink module contributes one
 * entry; the factory validates the rest of the spec and throws a ConfigError naming what is wrong.
 */
const factories: ReadonlyArray<{ readonly scheme: string; readonly create: SinkFactory }> = [
  { scheme: 'stdout', create: (_spec, context, form) => new StdoutSink({ telemetry: sinkTelemetry('stdout', context, form) }) },
  { scheme: 'syslog+tcp', create: syslog },
  { scheme: 'syslog+tls', create: syslog },
  { scheme: 'http', create: (spec, context, form) => httpFamily(spec, context, 'ndjson', form) },
  { scheme: 'https', create: (spec, context, form) => httpFamily(spec, context, 'ndjson', form) },
  { scheme: 'splunk-hec', create: (spec, context, form) => httpFamily(spec, context, 'hec', form) },
  { scheme: 'elasticsearch', create: (spec, context, form) => httpFamily(spec, context, 'bulk', form) },
  { scheme: 'file', create: (spec, context, form) => new FileSink(filePathOf(spec), { telemetry: context.telemetry.component(`sink:${form === 'ocsf' ? ocsfSinkName(spec) : spec}`, 'sink'), logger: context.logger, ...(context.lockWaitMs === undefined ? {} : { lockWaitMs: context.lockWaitMs }) }) },
  { scheme: 'sentinel', create: (spec, context, form) => new SentinelSink(spec, { identity: context.identity, telemetry: sinkTelemetry(spec, context, form), logger: context.logger, proxy: context.proxy, form }) },
];

/**
 * The path of a `file:<path>[?format=raw|ocsf]` spec (outputForm took `format` out): the first "?" starts the
 * parameters, so a misspelt one is refused instead of becoming part of the file's name.
 */
function filePathOf(spec: string): string {
  const [path, query = ''] = spec.slice('file:'.length).split(/\?(.*)/s);
  const unknown = query.split('&').filter(Boolean)[0];
  if (unknown !== undefined) {
    throw new ConfigError(`--sink ${unknown.split('=')[0]}`, 'unknown parameter for file: sinks', 'use any of format (file:<path>?format=raw|ocsf); a "?" in a file sink always starts its parameters');
  }
  return path!;
}

export function schemeOf(spec: string): string {
  if (spec === 'stdout' || spec.startsWith('stdout?')) return 'stdout';
  if (spec === 'sentinel' || spec.startsWith('sentinel?')) return 'sentinel';
  const match = /^([a-z][a-z0-9+.-]*):/i.exec(spec);
  return match ? match[1]!.toLowerCase() : spec;
}


/**
 * Refuses, in one line, two sinks with one name (they would share a stored position and counters) and two sinks
 * writing one Elasticsearch index or one file, whatever their record form (the second's documents would collide with
 * the first's `_id` and be dropped; two writers would interleave one file). A raw and an OCSF sink to one HEC
 * endpoint, syslog receiver or HTTP collector are fine: each event is sent, none replaces another. Each sink is built
 * (nothing is opened) to read its name; a spec that cannot be built is left for createSink to report.
 */
export function refuseSharedSinks(specs: readonly string[], env: NodeJS.ProcessEnv): void {
  const scratch: SinkContext = { env, telemetry: new Telemetry(), logger: createLogger({ level: 'silent' }) };
  const names = new Set<string>();
  const targets = new Set<string>();
  for (const spec of specs) {
    let sink: Sink;
    try {
      sink = createSink(spec, scratch);
    } catch {
      continue;
    }
    if (names.has(sink.name)) throw new ConfigError('--sink', `two sinks are ${sink.name}: they would share one stored position`, 'give each sink once');
    names.add(sink.name);
    const target = sink instanceof OcsfSink ? sink.inner : sink;
    if (!(target instanceof ElasticsearchSink || target instanceof FileSink)) continue;
    if (targets.has(target.name)) {
      throw new ConfigError('--sink', `two sinks write ${target.name} (raw records and OCSF events would collide there)`, `send OCSF events to an index or file of their own (e.g. ${target instanceof FileSink ? 'file:…/ocsf.ndjson?format=ocsf' : 'elasticsearch://…/o365-ocsf?format=ocsf'})`);
    }
    targets.add(target.name);
  }
}


/** The sink a spec names, handed OCSF events when it says `format=ocsf` (see `outputForm` for the rule). */
export function createSink(spec: string, context: SinkContext): Sink {
  const scheme = schemeOf(spec);
  const entry = factories.find((f) => f.scheme === scheme);
  if (!entry) {
    if (!/^[a-z][a-z0-9+.-]*:/i.test(spec)) throw new ConfigError('--sink', `"${sinkLabel(spec)}" names no kind of sink`, `write file:${sinkLabel(spec)} for a file, or stdout, syslog+tcp://…, https://…, splunk-hec://…, elasticsearch://…`);
    const known = factories.map((f) => f.scheme).join(', ');
    throw new ConfigError('--sink', `unknown sink "${scheme}"`, `use one of: ${known}`);
  }
  const { spec: sinkSpec, form, protocol } = outputForm(spec);
  if (scheme === 'stdout' && sinkSpec !== 'stdout') throw new ConfigError('--sink', `stdout takes only format= ("${spec}")`, 'use stdout or stdout?format=ocsf');
  const sink = protocol !== undefined ? httpFamily(sinkSpec, context, protocol, form) : entry.create(sinkSpec, context, form);
  return form === 'ocsf' ? new OcsfSink(sink, transformFor(context.telemetry)) : sink;
}
