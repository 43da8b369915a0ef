import { readFileSync } from 'node:fs';
import { ConfigError } from '../errors.ts';

/**
 * A sink spec as a URL with query parameters, e.g. `syslog+tls://siem:6514?ca=/etc/ssl/ca.pem&facility=local0`.
 * Secrets never sit in the spec: parameters ending in `Env` name an environment variable, and `File` a file.
 */
export class SinkUrl {
  readonly url: URL;
  readonly #spec: string;
  readonly #env: NodeJS.ProcessEnv;
  readonly #known: Set<string>;

  constructor(spec: string, env: NodeJS.ProcessEnv, known: readonly string[]) {
    this.#spec = spec;
    this.#env = env;
    this.#known = new Set(known);
    try {
      this.url = new URL(spec);
    } catch {
      throw new ConfigError('--sink', `"${sinkLabel(spec)}" is not a valid URL`, 'e.g. syslog+tcp://siem.example:514');
    }
    if (this.url.username || this.url.password) {
      throw new ConfigError('--sink', 'credentials in the sink URL are not accepted (they would show in process lists and logs)', 'use tokenEnv=<VARIABLE> or a *File parameter');
    }
    for (const key of this.url.searchParams.keys()) {
      const prefix = /^[A-Za-z]+\./.exec(key)?.[0];
      if (!this.#known.has(key) && !(prefix && this.#known.has(`${prefix}*`))) {
        throw new ConfigError(`--sink ${key}`, `unknown parameter for ${this.url.protocol}// sinks`, `use any of ${[...this.#known].join(', ')}`);
      }
      if (this.url.searchParams.getAll(key).length > 1) throw new ConfigError(`--sink ${key}`, 'given more than once', 'give each parameter once');
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
   * `host:port` (an IPv6 host in brackets), `origin` is https unless `tls=0`; an `http(s)://` spec keeps its scheme.
   */
  httpEndpoint(ownScheme: string, defaultPort: number): { authority: string; origin: string } {
    const { host, port } = this.host(defaultPort);
    const authority = `${host.includes(':') ? `[${host}]` : host}:${port}`;
    const scheme = this.url.protocol === `${ownScheme}:` ? (this.flag('tls') || this.string('tls') === undefined ? 'https' : 'http') : this.url.protocol.replace(':', '');
    return { authority, origin: `${scheme}://${authority}` };
  }

  string(name: string): string | undefined {
    const value = this.url.searchParams.get(name);
    return value === null || value === '' ? undefined : value;
  }

  number(name: string, fallback: number, min: number, max: number): number {
    const raw = this.string(name);
    if (raw === undefined) return fallback;
    const value = Number(raw);
    if (!Number.isFinite(value) || value < min || value > max) throw new ConfigError(`--sink ${name}`, `"${raw}" must be a number from ${min} to ${max}`);
    return value;
  }

  flag(name: string): boolean {
    const raw = this.string(name);
    if (raw === undefined) return false;
    if (['1', 'true', 'yes'].includes(raw)) return true;
    if (['0', 'false', 'no'].includes(raw)) return false;
    throw new ConfigError(`--sink ${name}`, `"${raw}" is not true or false`);
  }

  oneOf<T extends string>(name: string, allowed: readonly T[], fallback: T): T {
    const raw = this.string(name) ?? fallback;
    if (!(allowed as readonly string[]).includes(raw)) throw new ConfigError(`--sink ${name}`, `unknown value "${raw}"`, `use one of ${allowed.join(', ')}`);
    return raw as T;
  }

  /** A file's text (CA, certificate, key). */
  file(name: string): string | undefined {
    const path = this.string(name);
    if (path === undefined) return undefined;
    try {
      return readFileSync(path, 'utf8');
    } catch (error) {
      throw new ConfigError(`--sink ${name}`, `cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  }

  /** A secret from `<name>Env` (an environment variable) or `<name>File`. */
  secret(name: string): string | undefined {
    const variable = this.string(`${name}Env`);
    if (variable !== undefined) {
      const value = this.#env[variable];
      if (value === undefined || value === '') throw new ConfigError(`--sink ${name}Env`, `environment variable ${variable} is not set`, `export ${variable}=... before starting the connector`);
      return value;
    }
    const file = this.file(`${name}File`);
    return file?.trim();
  }

  /**
   * Custom request headers: `header.<Name>=<value>` for plain values, `headerEnv.<Name>=<VARIABLE>` for secret
   * ones. Authorization and cookies may only come from the environment: the spec shows up in process lists.
   */
  headers(): Record<string, string> {
    const headers: Record<string, string> = {};
    for (const [key, value] of this.url.searchParams) {
      const plain = key.startsWith('header.');
      if (!plain && !key.startsWith('headerEnv.')) continue;
      const name = key.slice(key.indexOf('.') + 1);
      if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)) throw new ConfigError(`--sink ${key}`, `"${name}" is not a valid header name`);
      if (plain && /^(authorization|proxy-authorization|cookie)$/i.test(name)) {
        throw new ConfigError(`--sink ${key}`, 'a credential may not be written into the sink spec', `export it in a variable and use headerEnv.${name}=<VARIABLE> (or tokenEnv=)`);
      }
      if (plain) {
        headers[name.toLowerCase()] = value;
        continue;
      }
      const secret = this.#env[value];
      if (secret === undefined || secret === '') throw new ConfigError(`--sink ${key}`, `environment variable ${value} is not set`, `export ${value}=... before starting the connector`);
      headers[name.toLowerCase()] = secret;
    }
    return headers;
  }

  get spec(): string {
    return this.#spec;
  }
}

export function redact(spec: string): string {
  return spec.replace(/\/\/[^@/]*@/, '//[redacted]@');
}

/** A spec as it may appear in telemetry and logs, before it is validated: no credentials, no query. */
export function sinkLabel(spec: string): string {
  return redact(spec.split(/[?#]/)[0]!);
}
