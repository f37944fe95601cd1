import type { ApiKeyStore } from './aws/api-gateway.js';
import type { SecretStore } from './aws/secrets-manager.js';
import type { Config } from './config.js';
import type { ProvisionRequest } from './messages.js';
import { apiKeyName, mergeTags, secretName } from './naming.js';

export interface ProvisionDeps {
  config: Pick<Config, 'namePrefix' | 'defaultTags' | 'secretKmsKeyId'>;
  apiKeys: ApiKeyStore;
  secrets: SecretStore;
  /** Wraps each AWS call in the retry policy (lib/retry.ts). */
  retry: <T>(operation: string, call: () => Promise<T>) => Promise<T>;
  now: () => Date;
}

export interface ProvisionedKey {
  apiKeyId: string;
  apiKeyName: string;
  secretArn: string;
  secretName: string;
}

/**
 * Creates the customer's API key and stores its value in a new secret.
 * Validates tags before any AWS call. Retries throttles and transient errors through `deps.retry`;
 * throws RejectedError for permanent failures and RetryableError when time or attempts run out.
 * Not idempotent yet: a repeat creates a second key and fails on the existing secret (`secret-exists`).
 */
export async function provisionKey(request: ProvisionRequest, deps: ProvisionDeps): Promise<ProvisionedKey> {
  const { config } = deps;
  const tags = mergeTags(config.defaultTags, request.tags);
  const name = apiKeyName(config.namePrefix, request.customerId, request.productCode);
  const product = request.productCode ? ` for product ${request.productCode}` : '';

  const key = await deps.retry('CreateApiKey', () =>
    deps.apiKeys.createApiKey({
      name,
      description: `API key of customer ${request.customerId}${product}, provisioned by api-key-provisioner`,
      customerId: request.customerId,
      tags,
    }),
  );

  const secretValue = JSON.stringify({
    apiKeyId: key.id,
    value: key.value,
    customerId: request.customerId,
    productCode: request.productCode ?? null,
    plan: request.plan ?? null,
    createdAt: deps.now().toISOString(),
  });
  const secret = await deps.retry('CreateSecret', () =>
    deps.secrets.createSecret({
      name: secretName(config.namePrefix, request.customerId, request.productCode),
      description: `API key ${key.id} of customer ${request.customerId}${product}`,
      secretString: secretValue,
      tags,
      kmsKeyId: config.secretKmsKeyId,
    }),
  );

  return { apiKeyId: key.id, apiKeyName: name, secretArn: secret.arn, secretName: secret.name };
}
