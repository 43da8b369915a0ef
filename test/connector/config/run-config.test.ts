import { hostname } from 'node:os';
import { describe, expect, it } from 'vitest';
import { runConfigurationOf } from '../../../connector/config/run-config.ts';
import { defaultRunSettings } from '../../../connector/config/settings.ts';
import { ConfigError, ConnectorError } from '../../../connector/core/errors.ts';
import { redactSecrets } from '../../../connector/observe/secret-values.ts';

const now = new Date('2026-12-01T00:00:00Z');
const of = (command: Parameters<typeof runConfigurationOf>[0], options: object, env: NodeJS.ProcessEnv = {}, stderrIsTTY = false) => runConfigurationOf(command, options, { env, now, stderrIsTTY });

describe('the run configuration: every flag, its variable, and its absence', () => {
  it('applies every default when nothing is given', () => {
    const config = of('run', {});
    expect(config).toMatchObject({
      tenants: { kind: 'fixed', outputs: undefined, stack: undefined }, state: '.o365-state', stateGiven: false, fleet: false,
      workerName: hostname(), sinks: ['stdout'], sinceText: '7d', once: false, emitHealth: false, listen: undefined, progress: false,
      proxy: undefined, logLevel: undefined, settings: defaultRunSettings,
    });
    expect(config.since.getTime()).toBe(now.getTime() - 7 * 86_400_000);
  });

  it.each([
    ['--state', { state: ' /srv/flag ' }, { O365_STATE_DIR: '/srv/env' }, (c: ReturnType<typeof of>) => [c.state, c.stateGiven], ['/srv/flag', true]],
    ['O365_STATE_DIR', {}, { O365_STATE_DIR: '/srv/env' }, (c: ReturnType<typeof of>) => [c.state, c.stateGiven], ['/srv/env', true]],
    ['--sink over O365_SINKS', { sink: ['file:/a.ndjson'] }, { O365_SINKS: 'stdout' }, (c: ReturnType<typeof of>) => c.sinks, ['file:/a.ndjson']],
    ['O365_SINKS', {}, { O365_SINKS: ' file:/a.ndjson\nstdout ' }, (c: ReturnType<typeof of>) => c.sinks, ['file:/a.ndjson', 'stdout']],
    ['--worker-name (trimmed)', { workerName: ' w1 ' }, {}, (c: ReturnType<typeof of>) => c.workerName, 'w1'],
    ['a blank --worker-name', { workerName: ' ' }, {}, (c: ReturnType<typeof of>) => c.workerName, hostname()],
    ['--tenants', { tenants: '/etc/tenants', contentTypes: 'Audit.General' }, {}, (c: ReturnType<typeof of>) => [c.tenants, c.fleet], [{ kind: 'directory', dir: '/etc/tenants', contentTypes: 'Audit.General' }, true]],
    ['a PostgreSQL --state', { state: 'postgres://worker@db/o365' }, {}, (c: ReturnType<typeof of>) => c.fleet, true],
    ['--proxy', { proxy: 'http://proxy.example:3128' }, {}, (c: ReturnType<typeof of>) => c.proxy?.display, 'proxy.example:3128'],
    ['HTTPS_PROXY', {}, { HTTPS_PROXY: 'http://proxy.example:3128' }, (c: ReturnType<typeof of>) => c.proxy?.display, 'proxy.example:3128'],
    ['a setting', { pollInterval: '5', maxInFlight: 3 }, {}, (c: ReturnType<typeof of>) => [c.settings.pollIntervalSeconds, c.settings.maxInFlight], [5, 3]],
    ['--once, --emit-health, --listen', { once: true, emitHealth: true, listen: '127.0.0.1:9464' }, {}, (c: ReturnType<typeof of>) => [c.once, c.emitHealth, c.listen, c.listenToken], [true, true, '127.0.0.1:9464', undefined]],
    ['--listen-token-env', { listen: ':9464', listenTokenEnv: 'PAGE_TOKEN' }, { PAGE_TOKEN: ' 3f1c9e2a77d04b1e ' }, (c: ReturnType<typeof of>) => c.listenToken, '3f1c9e2a77d04b1e'],
  ])('%s', (_title, options, env, pick, expected) => {
    expect(pick(of('run', options, env))).toEqual(expected);
  });

  it('checks only the sinks given for test (none: the API alone)', () => {
    expect(of('test', {}).sinks).toEqual([]);
  });

  it('shows progress lines on a terminal for one tenant only', () => {
    expect(of('run', {}, {}, true).progress).toBe(true);
    expect(of('run', { tenants: '/etc/tenants' }, {}, true).progress).toBe(false);
    expect(of('run', { state: 'postgres://w@db/o365' }, {}, true).progress).toBe(false);
  });

  it('refuses --tenants beside --outputs or a variable naming one tenant; status minds the variables only', () => {
    expect(() => of('run', { tenants: '/t', outputs: 'o.json' })).toThrow(ConfigError);
    expect(() => of('test', { tenants: '/t' }, { O365_CLIENT_SECRET: 's' })).toThrow(/O365_CLIENT_SECRET: names one tenant/);
    expect(of('status', { tenants: '/t', outputs: 'o.json' }).tenants.kind).toBe('directory');
    expect(() => of('status', { tenants: '/t' }, { O365_OUTPUTS_FILE: 'o.json' })).toThrow(ConfigError);
  });

  it('refuses --listen-token-env naming an unset or empty variable, or without --listen, and redacts the token', () => {
    expect(() => of('run', { listen: ':9464', listenTokenEnv: 'PAGE_TOKEN' })).toThrow('--listen-token-env: the variable PAGE_TOKEN is unset or empty');
    expect(() => of('run', { listen: ':9464', listenTokenEnv: 'PAGE_TOKEN' }, { PAGE_TOKEN: '  ' })).toThrow(ConfigError);
    expect(() => of('run', { listenTokenEnv: 'PAGE_TOKEN' }, { PAGE_TOKEN: 'x' })).toThrow('--listen-token-env: has no --listen server to protect');
    of('run', { listen: ':9464', listenTokenEnv: 'PAGE_TOKEN' }, { PAGE_TOKEN: 'token-of-the-page-0451' });
    expect(redactSecrets('sent token-of-the-page-0451')).toBe('sent [redacted]');
  });

  it('refuses a password in a PostgreSQL --state, and a --since in the future', () => {
    expect(() => of('run', { state: 'postgres://w:secret@db/o365' })).toThrow(/holds a password/);
    expect(() => of('run', { since: '2030-01-01' })).toThrow(/in the future/);
  });

  it('a proxy that cannot be used fails run, and is status\'s warning', () => {
    expect(() => of('run', { proxy: 'socks5://proxy.example' })).toThrow(ConfigError);
    expect(of('status', { proxy: 'socks5://proxy.example' }).proxyFailure).toBeInstanceOf(ConnectorError);
  });
});
