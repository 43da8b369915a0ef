import { readFileSync } from 'node:fs';
import { getCACertificates } from 'node:tls';
import { Agent } from 'undici';
import { ConfigError } from '../errors.ts';

export interface HttpAgentOptions {
  /** Extra CA certificates (PEM file) trusted in addition to the system's; verification is never switched off. */
  readonly caFile?: string | undefined;
  readonly connections?: number;
  readonly connectTimeoutMs?: number;
  readonly bodyTimeoutMs?: number;
}

/** One undici Agent for the identity platform and the API, trusting the default CAs (NODE_EXTRA_CA_CERTS included). */
export function createHttpAgent(options: HttpAgentOptions = {}): Agent {
  let ca: string[] | undefined;
  if (options.caFile) {
    let extra: string;
    try {
      extra = readFileSync(options.caFile, 'utf8');
    } catch (error) {
      throw new ConfigError('caFile', `cannot read ${options.caFile} (${(error as NodeJS.ErrnoException).code ?? 'error'})`, 'point caFile at a readable PEM file or remove it');
    }
    ca = [...getCACertificates('default'), extra];
  }
  return new Agent({
    connections: options.connections ?? 16,
    connectTimeout: options.connectTimeoutMs ?? 15_000,
    headersTimeout: 60_000,
    bodyTimeout: options.bodyTimeoutMs ?? 120_000,
    keepAliveTimeout: 10_000,
    connect: ca ? { ca } : {},
  });
}
