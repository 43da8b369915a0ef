import { afterAll, describe, expect, it } from 'vitest';
import { createServer } from 'node:https';
import { connect } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { X509Certificate } from 'node:crypto';
import { createTestPki } from './tls.ts';

const pki = await createTestPki();
const server = createServer({ cert: pki.server.certPem, key: pki.server.keyPem, ca: pki.caCertPem, requestCert: true, rejectUnauthorized: false }, (req, res) => {
  const peer = (req.socket as import('node:tls').TLSSocket).getPeerCertificate();
  res.end(peer && peer.subject ? String(peer.subject.CN) : 'anonymous');
});
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const port = (server.address() as AddressInfo).port;
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

function handshake(options: { host: string; ca?: string; cert?: string; key?: string }): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: options.host, port, ca: options.ca, cert: options.cert, key: options.key, servername: options.host === 'localhost' ? 'localhost' : undefined }, () => {
      socket.write('GET / HTTP/1.0\r\n\r\n');
    });
    let body = '';
    socket.on('data', (d) => (body += d));
    socket.on('end', () => resolve(body.split('\r\n\r\n')[1] ?? ''));
    socket.on('error', reject);
  });
}

describe('test PKI', () => {
  it('issues a server certificate that verifies for 127.0.0.1 and localhost against the throwaway CA only', async () => {
    await expect(handshake({ host: '127.0.0.1', ca: pki.caCertPem })).resolves.toBe('anonymous');
    await expect(handshake({ host: 'localhost', ca: pki.caCertPem })).resolves.toBe('anonymous');
    await expect(handshake({ host: '127.0.0.1' })).rejects.toThrow(/certificate/i);
  });

  it('issues client certificates with thumbprints that match the DER encoding', async () => {
    const client = await pki.issue({ commonName: 'connector-client', usage: 'client' });
    await expect(handshake({ host: '127.0.0.1', ca: pki.caCertPem, cert: client.certPem, key: client.keyPem })).resolves.toBe('connector-client');
    const parsed = new X509Certificate(client.certPem);
    expect(parsed.verify(new X509Certificate(pki.caCertPem).publicKey)).toBe(true);
    expect(client.thumbprintSha1).toBe(parsed.fingerprint.replaceAll(':', ''));
    expect(client.thumbprintSha256).toBe(parsed.fingerprint256.replaceAll(':', ''));
  });
});
