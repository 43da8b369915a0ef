import { registerSecret } from '../observe/secret-values.ts';
import { maxSettingFileBytes, readSmallFile } from '../core/small-file.ts';
import { z } from 'zod';
import { ConfigError } from '../core/errors.ts';

/**
 * A sink spec as a URL with query parameters, e.g. `syslog+tls://siem:6514?ca=/etc/ssl/ca.pem&facility=local0`.
 * Each sink kind declares its parameters once, as a zod schema built from the readers below (types, bounds,
 * defaults); `parameters` reads the query through it. Secrets never sit in the spec: parameters ending in
 * `Env` name an environment variable, and `File` a file.
 */
export class SinkUrl {
  readonly url: URL;

  constructor(spec: string) {
    try {
      this.url = new URL(spec);
    } catch {
      throw new ConfigError('--sink', `"${sinkLabel(spec)}" is not a valid URL`, 'e.g. syslog+tcp://siem.example:514');
    }
    if (this.url.username || this.url.password) {
      throw new ConfigError('--sink', 'credentials in the sink URL are not accepted (they would show in process lists and logs)', 'use tokenEnv=<VARIABLE> or a *File parameter');
    }
  }

  /** host:port/path without the query: safe to log. */
  get display(): string {
    return `${this.url.protocol}//${this.url.host}${this.url.pathname === '/' ? '' : this.url.pathname}`;
  }

  host(defaultPort?: number): { host: string; port: number } {
    const host = this.url.hostname.replace(/^\[|\]$/g, '');
    if (!host) throw new ConfigError('--sink host', `a ${this.url.protocol}// sink needs a host`, `e.g. ${this.url.protocol}//siem.example:514`);
    const port = this.url.port ? Number(this.url.port) : defaultPort;
    if (!port) throw new ConfigError('--sink port', `a ${this.url.protocol}// sink needs a port`, `e.g. ${this.url.protocol}//${host}:514`);
    return { host, port };
  }

  /**
   * For sinks with a scheme of their own that speak HTTP (`splunk-hec:`, `elasticsearch:`): `authority` is
   * `host:port` (an IPv6 host in brackets), `origin` is https unless `tls` is off; an `http(s)://` spec keeps its scheme.
   */
  httpEndpoint(ownScheme: string, defaultPort: number, tls: boolean): { authority: string; origin: string } {
    const { host, port } = this.host(defaultPort);
    const authority = `${host.includes(':') ? `[${host}]` : host}:${port}`;
    const scheme = this.url.protocol === `${ownScheme}:` ? (tls ? 'https' : 'http') : this.url.protocol.replace(':', '');
    return { authority, origin: `${scheme}://${authority}` };
  }

  /**
   * The query read through a sink's schema. Only the parameters it declares are accepted, each once;
   * `header.<Name>` and `headerEnv.<Name>` are collected into the `header` and `headerEnv` maps. A problem is
   * one ConfigError naming the parameter; messages quote values, never the secrets variables and files hold.
   */
  parameters<T extends z.ZodObject>(schema: T): z.output<T> {
    const declared = Object.keys(schema.shape);
    const input: Record<string, unknown> = {};
    for (const key of new Set(this.url.searchParams.keys())) {
      const prefix = /^([A-Za-z]+)\./.exec(key)?.[1];
      const group = prefix !== undefined && prefixed.has(prefix) && declared.includes(prefix) ? prefix : undefined;
      if (!group && (!declared.includes(key) || prefixed.has(key))) {
        // format (and protocol on http(s)://) are read before the sink's own parameters (see spec.ts).
        const known = [...declared.map((name) => (prefixed.has(name) ? `${name}.*` : name)), 'format', ...(/^https?:$/.test(this.url.protocol) ? ['protocol'] : [])];
        throw new ConfigError(`--sink ${key}`, `unknown parameter for ${this.url.protocol}// sinks`, `use any of ${known.join(', ')}`);
      }
      const values = this.url.searchParams.getAll(key);
      if (values.length > 1) throw new ConfigError(`--sink ${key}`, 'given more than once', 'give each parameter once');
      if (group) ((input[group] ??= {}) as Record<string, string>)[key.slice(group.length + 1)] = values[0]!;
      else input[key] = values[0];
    }
    const parsed = schema.safeParse(input);
    if (parsed.success) return parsed.data;
    const issue = parsed.error.issues[0]!;
    const fix = issue.code === 'custom' && typeof issue.params?.['fix'] === 'string' ? issue.params['fix'] as string : undefined;
    throw new ConfigError(`--sink ${issue.path.join('.')}`, issue.message, fix);
  }
}

/** Parameters written `<group>.<name>=value`. */
const prefixed = new Set(['header', 'headerEnv']);

/** An empty value (`?index=`) counts as not given. */
const given = <T extends z.ZodType>(schema: T) => z.preprocess((value) => (value === '' ? undefined : value), schema);

/** A custom issue with its fix, as the sink's ConfigError line shows it. */
function fail(ctx: z.RefinementCtx, message: string, fix?: string): never {
  ctx.addIssue({ code: 'custom', message, ...(fix ? { params: { fix } } : {}) });
  return z.NEVER;
}

/** Plain text, optional. */
export const text = () => given(z.string().optional());

/** Plain text with a default. */
export const textOr = (fallback: string) => given(z.string().default(fallback));

/** A number from `min` to `max` (as JavaScript reads it: `1e3` is 1000), `fallback` when not given. */
export const count = (fallback: number, min: number, max: number) => given(z.string()
  .refine((raw) => { const value = Number(raw); return Number.isFinite(value) && value >= min && value <= max; }, { error: (issue) => `"${String(issue.input)}" must be a number from ${min} to ${max}` })
  .transform(Number)
  .default(fallback));

/** 1/true/yes or 0/false/no (as written), `fallback` when not given. */
export const flag = (fallback = false) => given(z.stringbool({ truthy: ['1', 'true', 'yes'], falsy: ['0', 'false', 'no'], case: 'sensitive', error: (issue) => `"${String(issue.input)}" is not true or false` })
  .default(fallback));

/** One of `allowed`, `fallback` when not given; a wrong value is answered with the allowed ones. */
export const choice = <T extends string>(allowed: readonly [T, ...T[]], fallback: T) => given(z.string().default(fallback)
  .refine((raw) => (allowed as readonly string[]).includes(raw), { error: (issue) => `unknown value "${String(issue.input)}"`, params: { fix: `use one of ${allowed.join(', ')}` } })
  .transform((raw) => raw as T));

/** A parameter this kind of sink refuses although its sibling takes it (`ca` on syslog+tcp://). */
export const refused = (message: string, fix: string) => given(z.custom<never>(() => false, { error: message, params: { fix } }).optional());

/** A file's text (CA, certificate, key), read from the path given. */
export const fileText = () => given(z.string().transform((path, ctx) => {
  try {
    return readSmallFile(path, maxSettingFileBytes).toString('utf8');
  } catch (error) {
    return fail(ctx, `${path} ${(error as Error).message}`);
  }
}).optional());

/** A secret file (`tokenFile`): its text without surrounding white space. */
export const secretFile = () => fileText().transform((value) => {
  const secret = value?.trim();
  registerSecret(secret);
  return secret;
});

/** The value of the environment variable the parameter names (`tokenEnv=SPLUNK_HEC_TOKEN`). */
const variable = (env: NodeJS.ProcessEnv) => z.string().transform((name, ctx) => {
  const value = env[name];
  if (value === undefined || value === '') return fail(ctx, `environment variable ${name} is not set`, `export ${name}=... before starting the connector`);
  registerSecret(value);
  return value;
});

export const secretEnv = (env: NodeJS.ProcessEnv) => given(variable(env).optional());

const headerName = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** Header names checked, lower-cased; `plain` ones may not carry a credential (the spec shows up in process lists). */
const headerMap = (values: z.ZodType<string>, plain: boolean) => z.record(z.string(), values).transform((headers, ctx) => {
  const checked: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (!headerName.test(name)) ctx.addIssue({ code: 'custom', path: [name], message: `"${name}" is not a valid header name` });
    else if (plain && /^(authorization|proxy-authorization|cookie)$/i.test(name)) {
      ctx.addIssue({ code: 'custom', path: [name], message: 'a credential may not be written into the sink spec', params: { fix: `export it in a variable and use headerEnv.${name}=<VARIABLE> (or tokenEnv=)` } });
    } else checked[name.toLowerCase()] = value;
  }
  return checked;
}).default({});

/**
 * Custom request headers: `header.<Name>=<value>` for plain values, `headerEnv.<Name>=<VARIABLE>` for secret
 * ones. Authorization and cookies may only come from the environment.
 */
export const headerParameters = (env: NodeJS.ProcessEnv) => ({
  header: headerMap(z.string(), true),
  headerEnv: headerMap(z.string().pipe(variable(env)), false),
});

/** A spec as it may appear in telemetry and logs, before it is validated: no credentials, no query. */
export function sinkLabel(spec: string): string {
  return spec.split(/[?#]/)[0]!.replace(/\/\/[^@/]*@/, '//[redacted]@');
}
