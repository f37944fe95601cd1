import { randomInt } from 'node:crypto';
import type { ApiKeyStore } from './aws/api-gateway.js';
import type { SecretStore, StoredSecret } from './aws/secrets-manager.js';
import { deterministicId } from './completion.js';
import type { Config } from './config.js';
import { RejectedError, TransientError } from './errors.js';
import type { ProvisionRequest } from './messages.js';
import { apiKeyName, mergeTags, secretName } from './naming.js';

export type RetryFn = <T>(operation: string, call: () => Promise<T>) => Promise<T>;

export interface ProvisionDeps {
  config: Pick<Config, 'namePrefix' | 'defaultTags' | 'secretKmsKeyId'>;
  apiKeys: ApiKeyStore;
  secrets: SecretStore;
  /** Wrap each AWS call in the retry policy (lib/retry.ts); API Gateway's also in the instance's rate limiter. */
  retry: { apiGateway: RetryFn; secrets: RetryFn };
  now: () => Date;
}

export interface ProvisionedKey {
  apiKeyId: string;
  apiKeyName: string;
  secretArn: string;
  secretName: string;
  /** True when an earlier delivery had finished the work and nothing was created now. */
  alreadyProvisioned: boolean;
}

/** What the secret holds. Written first without `apiKeyId` (pending), then with it (active). */
export interface SecretRecord {
  value: string;
  customerId: string;
  productCode: string | null;
  plan: string | null;
  apiKeyName: string;
  createdAt: string;
  apiKeyId?: string;
}

const ALPHANUMERIC = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
export const KEY_VALUE_LENGTH = 40;

/** A new API key value: 40 alphanumeric characters from the CSPRNG (≈ 238 bits). API Gateway takes 20–128. */
export function generateKeyValue(): string {
  return Array.from({ length: KEY_VALUE_LENGTH }, () => ALPHANUMERIC[randomInt(ALPHANUMERIC.length)]).join('');
}

function readRecord(secret: StoredSecret): SecretRecord {
  try {
    const record = JSON.parse(secret.secretString) as Partial<SecretRecord>;
    if (typeof record.value === 'string' && typeof record.customerId === 'string') return record as SecretRecord;
  } catch {
    // fall through
  }
  throw new RejectedError('secret-unreadable', `secret ${secret.name} exists but does not hold a key record of this product`);
}

/**
 * Makes sure the customer (and product) has exactly one API key and one secret holding its value. Idempotent and
 * crash-safe; concurrent calls for the same customer converge:
 * 1. GetSecretValue. A secret with `apiKeyId` means an earlier delivery finished: nothing is created.
 * 2. No secret: generate the key value and CreateSecret with it (pending). Lost a race? Read the winner's value.
 * 3. CreateApiKey with the recorded value. 409 means a key with that value exists — created by a delivery that
 *    stopped before step 4, or by a concurrent one: look its id up by name and value.
 * 4. PutSecretValue with the id, under a ClientRequestToken derived from it, so repeats of this write are no-ops.
 * The value is recorded before the key exists, so no key ever exists whose value is not in its secret.
 * Throws RejectedError for permanent failures, RetryableError when SQS should deliver again.
 */
export async function provisionKey(request: ProvisionRequest, deps: ProvisionDeps): Promise<ProvisionedKey> {
  const { config } = deps;
  const { apiGateway, secrets } = deps.retry;
  const tags = mergeTags(config.defaultTags, request.tags);
  const keyName = apiKeyName(config.namePrefix, request.customerId, request.productCode);
  const name = secretName(config.namePrefix, request.customerId, request.productCode);
  const product = request.productCode ? ` for product ${request.productCode}` : '';
  const result = (secret: StoredSecret, apiKeyId: string, alreadyProvisioned: boolean): ProvisionedKey => ({
    apiKeyId,
    apiKeyName: keyName,
    secretArn: secret.arn,
    secretName: name,
    alreadyProvisioned,
  });

  let secret = await secrets('GetSecretValue', () => deps.secrets.getSecret(name));
  if (secret) {
    const { apiKeyId } = readRecord(secret);
    if (apiKeyId) return result(secret, apiKeyId, true);
  } else {
    const pending: SecretRecord = {
      value: generateKeyValue(),
      customerId: request.customerId,
      productCode: request.productCode ?? null,
      plan: request.plan ?? null,
      apiKeyName: keyName,
      createdAt: deps.now().toISOString(),
    };
    const created = await secrets('CreateSecret', () =>
      deps.secrets.createSecret({
        name,
        description: `API key of customer ${request.customerId}${product}, provisioned by api-key-provisioner`,
        secretString: JSON.stringify(pending),
        tags,
        kmsKeyId: config.secretKmsKeyId,
      }),
    );
    secret = created ?? (await secrets('GetSecretValue', () => deps.secrets.getSecret(name)));
    if (!secret) throw new TransientError(`secret ${name} exists but could not be read yet`);
  }
  const record = readRecord(secret);

  const apiKeyId =
    (await apiGateway('CreateApiKey', () =>
      deps.apiKeys.createApiKey({
        name: keyName,
        value: record.value,
        description: `API key of customer ${request.customerId}${product}, provisioned by api-key-provisioner`,
        customerId: request.customerId,
        tags,
      }),
    )) ?? (await apiGateway('GetApiKeys', () => deps.apiKeys.findApiKey(keyName, record.value)));
  // A 409 whose key cannot be listed yet: the control plane is eventually consistent, so SQS tries again later.
  if (!apiKeyId) throw new TransientError(`a key with the recorded value exists but ${keyName} is not listed yet`);

  const active: SecretRecord = { ...record, apiKeyId };
  await secrets('PutSecretValue', () => deps.secrets.putSecretValue(name, JSON.stringify(active), deterministicId('secret-version', name, apiKeyId)));
  return result(secret, apiKeyId, false);
}
