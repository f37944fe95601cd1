/**
 * What reconcile talks to: the function's own adapters (lib/aws/), so every AWS call maps its SDK errors to the
 * product's errors in one place and no rule about the services exists twice.
 */
import type { APIGatewayClient } from '@aws-sdk/client-api-gateway';
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { type ApiKeyStore, apiGatewayAdapter } from '../../aws/api-gateway.js';
import { type SecretStore, secretsManagerAdapter } from '../../aws/secrets-manager.js';

export interface ReconcileClients {
  apigw: APIGatewayClient;
  secrets: SecretsManagerClient;
}

/** The adapter methods reconcile calls, and no others (a test's fake implements just these). */
export interface ReconcileStores {
  apiKeys: Pick<
    ApiKeyStore,
    'listApiKeys' | 'getApiKey' | 'usagePlanKeyIds' | 'findApiKey' | 'setEnabled' | 'addToUsagePlan' | 'removeFromUsagePlan'
  >;
  secrets: Pick<SecretStore, 'listSecrets' | 'getSecret' | 'createSecret'>;
}

/** The adapters over the given SDK clients (the CLI's, with the SDK's adaptive retry; a test's, pointed at moto). */
export function storesFor(clients: ReconcileClients): ReconcileStores {
  return { apiKeys: apiGatewayAdapter(clients.apigw), secrets: secretsManagerAdapter(clients.secrets) };
}
