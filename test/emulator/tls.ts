/**
 * A throwaway public key infrastructure for tests and the local stand-in: one CA, a server certificate for
 * 127.0.0.1/localhost signed by it, and client certificates on demand (msal-node certificate credentials,
 * syslog mutual TLS). Nothing here is ever trusted beyond the process or files that ask for it.
 */
import { createHash, webcrypto } from 'node:crypto';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

const algorithm = {
  name: 'RSASSA-PKCS1-v1_5',
  hash: 'SHA-256',
  publicExponent: new Uint8Array([1, 0, 1]),
  modulusLength: 2048,
} as const;

export interface IssuedCertificate {
  readonly certPem: string;
  /** PKCS#8 private key. */
  readonly keyPem: string;
  /** Hex SHA-1 of the DER certificate (what Entra ID shows as the thumbprint). */
  readonly thumbprintSha1: string;
  /** Hex SHA-256 of the DER certificate (msal-node's preferred `thumbprintSha256`). */
  readonly thumbprintSha256: string;
  readonly certFile: string;
  readonly keyFile: string;
  /** Private key and certificate in one PEM file, the form O365_CLIENT_CERTIFICATE_PATH takes. */
  readonly combinedFile: string;
}

export interface TestPki {
  readonly dir: string;
  readonly caCertPem: string;
  readonly caFile: string;
  /** Valid for 127.0.0.1, ::1 and localhost. */
  readonly server: IssuedCertificate;
  issue(options: { commonName: string; usage: 'server' | 'client'; hosts?: readonly string[]; notAfter?: Date }): Promise<IssuedCertificate>;
}

export interface TestPkiOptions {
  /** Folder for the PEM files; a new temporary folder by default. */
  readonly dir?: string;
  /** Extra names for the server certificate besides 127.0.0.1, ::1 and localhost. */
  readonly hosts?: readonly string[];
}

const defaultHosts = ['127.0.0.1', '::1', 'localhost'];
let serial = 1;

function serialNumber(): string {
  serial += 1;
  return `${Date.now().toString(16)}${serial.toString(16).padStart(4, '0')}`;
}

function generalName(host: string): x509.JsonGeneralName {
  return /^[\d.]+$/.test(host) || host.includes(':') ? { type: 'ip', value: host } : { type: 'dns', value: host };
}

async function privateKeyPem(key: CryptoKey): Promise<string> {
  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', key);
  return x509.PemConverter.encode(pkcs8, 'PRIVATE KEY');
}

export async function createTestPki(options: TestPkiOptions = {}): Promise<TestPki> {
  const dir = options.dir ?? (await mkdtemp(join(tmpdir(), 'o365-pki-')));
  await mkdir(dir, { recursive: true });
  const notBefore = new Date(Date.now() - 60 * 60 * 1000);
  const tenYears = new Date(Date.now() + 10 * 365 * 24 * 60 * 60 * 1000);

  const caKeys = (await webcrypto.subtle.generateKey(algorithm, true, ['sign', 'verify'])) as CryptoKeyPair;
  const caCert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serialNumber(),
    name: 'CN=o365-connector throwaway test CA',
    notBefore,
    notAfter: tenYears,
    keys: caKeys,
    signingAlgorithm: algorithm,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(caKeys.publicKey),
    ],
  });
  const caCertPem = caCert.toString('pem');
  const caFile = join(dir, 'ca.pem');
  await writeFile(caFile, caCertPem + '\n');

  let count = 0;
  async function issue(request: { commonName: string; usage: 'server' | 'client'; hosts?: readonly string[]; notAfter?: Date }): Promise<IssuedCertificate> {
    const keys = (await webcrypto.subtle.generateKey(algorithm, true, ['sign', 'verify'])) as CryptoKeyPair;
    const extensions: x509.Extension[] = [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
      new x509.ExtendedKeyUsageExtension([request.usage === 'server' ? x509.ExtendedKeyUsage.serverAuth : x509.ExtendedKeyUsage.clientAuth]),
      await x509.AuthorityKeyIdentifierExtension.create(caKeys.publicKey),
    ];
    if (request.hosts && request.hosts.length > 0) {
      extensions.push(new x509.SubjectAlternativeNameExtension(request.hosts.map(generalName)));
    }
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: serialNumber(),
      subject: `CN=${request.commonName}`,
      issuer: caCert.subject,
      notBefore,
      notAfter: request.notAfter ?? tenYears,
      publicKey: keys.publicKey,
      signingKey: caKeys.privateKey,
      signingAlgorithm: algorithm,
      extensions,
    });
    const der = Buffer.from(cert.rawData);
    const certPem = cert.toString('pem') + '\n';
    const keyPem = (await privateKeyPem(keys.privateKey)) + '\n';
    count += 1;
    const base = join(dir, `${request.usage}-${count}`);
    const certFile = `${base}.crt.pem`;
    const keyFile = `${base}.key.pem`;
    const combinedFile = `${base}.combined.pem`;
    await writeFile(certFile, certPem);
    await writeFile(keyFile, keyPem, { mode: 0o600 });
    await writeFile(combinedFile, keyPem + certPem, { mode: 0o600 });
    return {
      certPem,
      keyPem,
      thumbprintSha1: createHash('sha1').update(der).digest('hex').toUpperCase(),
      thumbprintSha256: createHash('sha256').update(der).digest('hex').toUpperCase(),
      certFile,
      keyFile,
      combinedFile,
    };
  }

  const server = await issue({ commonName: 'localhost', usage: 'server', hosts: [...defaultHosts, ...(options.hosts ?? [])] });
  return { dir, caCertPem, caFile, server, issue };
}
