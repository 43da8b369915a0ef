import { describe, expect, it } from 'vitest';
import { proxySettings, reachedThroughProxy } from '../../../connector/http/proxy.ts';
import { redactSecrets } from '../../../connector/observe/secret-values.ts';
import { transportError } from '../../../connector/http/transport-errors.ts';

describe('proxy settings', () => {
  it('takes --proxy over O365_PROXY over HTTPS_PROXY over https_proxy, and none without them', () => {
    expect(proxySettings({})).toBeUndefined();
    expect(proxySettings({ https_proxy: 'http://low:3128' })?.display).toBe('low:3128');
    expect(proxySettings({ https_proxy: 'http://low:3128', HTTPS_PROXY: 'http://upper:3128' })?.display).toBe('upper:3128');
    expect(proxySettings({ HTTPS_PROXY: 'http://upper:3128', O365_PROXY: 'proxy.corp:8080' })?.display).toBe('proxy.corp:8080');
    expect(proxySettings({ O365_PROXY: 'proxy.corp:8080' }, 'http://flag:1')?.display).toBe('flag:1');
    expect(proxySettings({ HTTPS_PROXY: 'http://p', NO_PROXY: '.corp, localhost' })).toEqual({ url: 'http://p/', display: 'p:80', noProxy: '.corp, localhost' });
  });

  it('takes credentials from the URL or O365_PROXY_USERNAME/PASSWORD (which win), keeps them out of the URL and out of every line', () => {
    const fromUrl = proxySettings({ HTTPS_PROXY: 'http://bob:p%40ss-word-1@proxy:3128' })!;
    expect(fromUrl.url).toBe('http://proxy:3128/');
    expect(fromUrl.token).toBe(`Basic ${Buffer.from('bob:p@ss-word-1').toString('base64')}`);
    const fromEnv = proxySettings({ HTTPS_PROXY: 'http://bob:old@proxy:3128', O365_PROXY_USERNAME: 'carol', O365_PROXY_PASSWORD: 'n3w-password' })!;
    expect(fromEnv.token).toBe(`Basic ${Buffer.from('carol:n3w-password').toString('base64')}`);
    expect(redactSecrets('proxy said n3w-password and p@ss-word-1')).toBe('proxy said [redacted] and [redacted]');
  });

  it('refuses what is not an http(s) proxy URL, naming where it came from', () => {
    expect(() => proxySettings({ HTTPS_PROXY: 'socks5://proxy:1080' })).toThrow('HTTPS_PROXY: proxies over socks5: are not supported');
    expect(() => proxySettings({}, 'http://[bad')).toThrow('--proxy: is not a proxy URL');
  });

  it('turns the proxy\'s refusals of a CONNECT into one line with the fix', () => {
    const refused = transportError(new Error('Proxy response (403) !== 200 when HTTP Tunneling'), 'https://manage.office.com/api/v1.0');
    expect(refused.toLine()).toMatch(/^PROXY_REFUSED: the proxy answered HTTP 403 to the CONNECT to manage\.office\.com: it does not let the connection through\. Fix: the proxy's allow-list must let CONNECT through to manage\.office\.com/);
    expect(transportError(new Error('Proxy response (407) !== 200 when HTTP Tunneling'), 'https://login.microsoftonline.com/t').code).toBe('PROXY_AUTH');
  });
});

describe('which calls go through the proxy (NO_PROXY)', () => {
  const through = (noProxy: string, url: string) => reachedThroughProxy(proxySettings({ HTTPS_PROXY: 'http://proxy.example:3128', NO_PROXY: noProxy })!, url);
  it('follows undici\'s rules: *, a host and its subdomains (with or without a leading dot or *.), host:port', () => {
    expect(through('', 'https://manage.office.com/api')).toBe(true);
    expect(through('*', 'https://manage.office.com/api')).toBe(false);
    expect(through('127.0.0.1', 'https://127.0.0.1:8443/api')).toBe(false);
    expect(through('office.com', 'https://manage.office.com/api')).toBe(false);
    expect(through('.office.com', 'https://manage.office.com/api')).toBe(false);
    expect(through('*.office.com', 'https://office.com/api')).toBe(true);
    expect(through('login.microsoftonline.com', 'https://manage.office.com/api')).toBe(true);
    expect(through('manage.office.com:8443', 'https://manage.office.com/api')).toBe(true);
    expect(through('example.org, manage.office.com:443', 'https://manage.office.com/api')).toBe(false);
  });
});
