import { describe, expect, it } from 'vitest';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { parseListen, startHealthServer } from '../../../connector/report/health-server.ts';
import { ConnectorMetrics } from '../../../connector/report/metrics.ts';
import { Telemetry } from '../../../connector/observe/telemetry.ts';
import { quietLogger } from '../../e2e/support.ts';

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

describe('/metrics: the request rate', () => {
  it('exports each tenant\'s rate as o365_api_rate_per_minute beside o365_api_throttled_total', async () => {
    let perMinute = 1900;
    const store = { location: '/nonexistent', cursors: async () => new Map(), sinkPositions: async () => ({}), deliveredBlobs: async () => new Set<string>(), seenRecords: async () => new Set<string>(), commit: async () => {}, close: async () => {} };
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
