/**
 * The workload's OIDC token for workload identity federation, read from its file for every token request: Azure
 * Workload Identity (AKS) and similar agents rewrite the file before the token in it expires (about hourly), so a
 * token read once at start would be refused an hour later (AADSTS700024).
 */
import { maxSettingFileBytes, readSmallFile, SmallFileError } from '../core/small-file.ts';
import { ConfigError } from '../core/errors.ts';

const setUp = 'on AKS, give the pod the label azure.workload.identity/use: "true" and a service account annotated with azure.workload.identity/client-id (the webhook mounts the token and sets AZURE_FEDERATED_TOKEN_FILE); elsewhere write the OIDC token to a file and name it with AZURE_FEDERATED_TOKEN_FILE or --federated-token-file';

export async function readFederatedToken(path: string): Promise<string> {
  let text: string;
  try {
    text = readSmallFile(path, maxSettingFileBytes).toString('utf8');
  } catch (error) {
    const what = error instanceof SmallFileError && error.kind ? `is ${error.kind}, not a token file` : (error as Error).message;
    throw new ConfigError('federatedTokenFile', `the federated token file ${path} ${what}`, setUp);
  }
  const token = text.trim();
  if (!/^[\w-]+\.[\w-]+\.[\w-]*$/.test(token)) {
    throw new ConfigError('federatedTokenFile', `the federated token file ${path} ${token === '' ? 'is empty' : 'does not hold a JWT (header.payload.signature)'}`, setUp);
  }
  return token;
}
