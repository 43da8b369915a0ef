// The Pulumi program: read config, build the components, export the connector's configuration.
import * as pulumi from '@pulumi/pulumi';
import { configNamespace, readConfig } from './config.ts';
import { provision } from './provision.ts';

const outputs = provision(readConfig(new pulumi.Config(configNamespace)));

export const connectorName = outputs.connectorName;
export const tenantId = outputs.tenantId;
export const tenantDomain = outputs.tenantDomain;
export const clientId = outputs.clientId;
export const clientSecret = outputs.clientSecret;
export const clientSecretExpiry = outputs.clientSecretExpiry;
export const certificateKeyId = outputs.certificateKeyId;
export const publisherId = outputs.publisherId;
export const cloud = outputs.cloud;
export const authorityHost = outputs.authorityHost;
export const apiRoot = outputs.apiRoot;
export const contentTypes = outputs.contentTypes;
export const keyVaultUri = outputs.keyVaultUri;
export const keyVaultSecretName = outputs.keyVaultSecretName;
export const subscriptionId = outputs.subscriptionId;
