import { describe, expect, it } from 'vitest';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { parseListen, startHealthServer } from '../../../connector/report/health-server.ts';
import { ConnectorMetrics } from '../../../connector/report/metrics.ts';
import { Telemetry } from '../../../connector/observe/telemetry.ts';
import { quietLogger } from '../../e2e/support.ts';
import type { StatusPageSource } from '../../../connector/report/status-page/page-source.ts';
import { fleetView } from './status-page/fleet-fixture.ts';

describe('--listen', () => {
  it('reads host:port, [v6]:port and :port, and refuses anything else naming the flag', () => {
    expect(parseListen('127.0.0.1:9464')).toEqual({ host: '127.0.0.1', port: 9464 });
    expect(parseListen('[::1]:9464')).toEqual({ host: '::1', port: 9464 });
    expect(parseListen(':9464')).toEqual({ host: '0.0.0.0', port: 9464 });
    for (const bad of ['9464', 'localhost', 'host:99999', 'host:port']) expect(() => parseListen(bad)).toThrow(/^--listen: ".*" is not host:port$/);
  });

  it('says in one line when the port is taken, and answers only its three paths', async () => {
    const taken = createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    const port = (taken.address() as AddressInfo).port;
    const metrics = new ConnectorMetrics({ defaultTenant: 't', tenants: () => [], telemetry: new Telemetry(), sinkNames: [] });
    const { logger } = quietLogger();
    await expect(startHealthServer(`127.0.0.1:${port}`, { metrics, logger, readiness: async () => ({ ready: true, reasons: [] }) }))
      .rejects.toThrow(`--listen: cannot listen on 127.0.0.1:${port}: EADDRINUSE`);
    taken.close();
    const server = await startHealthServer('127.0.0.1:0', { metrics, logger, readiness: async () => ({ ready: false, reasons: ['stopping'] }) });
    try {
      const get = async (path: string, method = 'GET') => { const answer = await fetch(`http://${server.address}${path}`, { method }); return [answer.status, await answer.text()]; };
      expect(await get('/readyz')).toEqual([503, 'stopping\n']);
      expect(await get('/other')).toEqual([404, 'not found: /metrics, /livez, /readyz\n']);
      expect((await get('/'))[0]).toBe(404); // no status page given
      expect(await get('/metrics', 'POST')).toEqual([405, 'GET only\n']);
      const [status, text] = await get('/metrics');
      expect(status).toBe(200);
      expect(text).toMatch(/^o365_api_throttled_total\{tenant="t"\} 0$/m);
      expect(text).not.toMatch(/^o365_records_delivered_total\{/m); // no store open: no state figures, not zeros
    } finally {
      await server.close();
    }
  });
});

describe('--listen-token-env and the status page', () => {
  it('asks every path but /livez and /readyz for the token, as Bearer or as a Basic password, and serves the page read-only with no external asset allowed', async () => {
    const metrics = new ConnectorMetrics({ defaultTenant: 't', tenants: () => [], telemetry: new Telemetry(), sinkNames: [] });
    const view = fleetView(4);
    const page = { view: async () => view } as unknown as StatusPageSource;
    const { logger } = quietLogger();
    const token = 'a1b2c3d4e5f6-page-token';
    const server = await startHealthServer('127.0.0.1:0', { metrics, logger, page, token, readiness: async () => ({ ready: true, reasons: [] }) });
    try {
      const get = (path: string, authorization?: string, method = 'GET') => fetch(`http://${server.address}${path}`, { method, headers: authorization ? { authorization } : {} });
      expect((await get('/livez')).status).toBe(200);
      expect((await get('/readyz')).status).toBe(200);
      for (const path of ['/', '/metrics', `/tenants/${view.report.tenants[0]!.tenant}`, '/nothing']) {
        for (const wrong of [undefined, 'Bearer nope', `Bearer ${token}x`, `Basic ${Buffer.from(`admin:${token.slice(1)}`).toString('base64')}`]) {
          const answer = await get(path, wrong);
          expect(answer.status, `${path} ${wrong}`).toBe(401);
          expect(answer.headers.get('www-authenticate')).toBe('Bearer realm="o365-connector", Basic realm="o365-connector", charset="UTF-8"');
          expect(await answer.text()).not.toContain(token);
        }
      }
      const html = await get('/?state=Inactive', `Bearer ${token}`);
      expect(html.status).toBe(200);
      expect(html.headers.get('content-type')).toBe('text/html; charset=utf-8');
      expect(html.headers.get('content-security-policy')).toMatch(/^default-src 'none'; style-src 'unsafe-inline'; img-src data:/);
      const text = await html.text();
      expect([...text.matchAll(/<tr data-tenant="[^"]+" data-state="(\w+)">/g)].map((m) => m[1])).toEqual(['Inactive']);
      expect(text).not.toContain(token);
      const basic = await get(`/tenants/${view.report.tenants[1]!.tenant}`, `Basic ${Buffer.from(`anyone:${token}`).toString('base64')}`);
      expect(basic.status).toBe(200);
      expect(await basic.text()).toContain('<h1>tenant-1.example.com');
      expect((await get('/tenants/unknown', `Bearer ${token}`)).status).toBe(404);
      expect((await get('/tenants/%E0%A4%A', `Bearer ${token}`)).status).toBe(404);
      expect((await get('/metrics', `Bearer ${token}`)).status).toBe(200);
      expect((await get('/', `Bearer ${token}`, 'POST')).status).toBe(405);
    } finally {
      await server.close();
    }
  });
});

describe('/metrics: the request rate', () => {
  it('exports each tenant\'s rate as o365_api_rate_per_minute beside o365_api_throttled_total', async () => {
    let perMinute = 1900;
    const store = { location: '/nonexistent', deadLetters: '/nonexistent/dead-letter.ndjson', cursors: async () => new Map(), sinkPositions: async () => ({}), deliveredBlobs: async () => new Set<string>(), seenRecords: async () => new Set<string>(), commit: async () => {}, close: async () => {} };
    const metrics = new ConnectorMetrics({
      defaultTenant: 't', telemetry: new Telemetry(), sinkNames: [],
      tenants: () => [{ tenant: 't', store, secretExpiresAt: undefined, apiRate: { perMinute, ceilingPerMinute: 2000, throttled: 0, throttledNow: false } }],
    });
    expect(await metrics.registry.metrics()).toMatch(/^o365_api_rate_per_minute\{tenant="t"\} 1900$/m);
    perMinute = 80;
    metrics.apiAnswered('audit', 'AF429');
    const text = await metrics.registry.metrics();
    expect(text).toMatch(/^o365_api_rate_per_minute\{tenant="t"\} 80$/m);
    expect(text).toMatch(/^o365_api_throttled_total\{tenant="t"\} 1$/m);
  });
});
