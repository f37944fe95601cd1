import { randomInt, randomUUID } from 'node:crypto';
import type { ApiKeyStore } from './aws/api-gateway.js';
import type { SecretStore, StoredSecret } from './aws/secrets-manager.js';
import type { Config } from './config.js';
import { RejectedError, TransientError } from './errors.js';
import { deterministicId } from './ids.js';
import type { ProvisionRequest, RevokeRequest } from './messages.js';
import { apiKeyName, mergeTags, secretName } from './naming.js';

export type RetryFn = <T>(operation: string, call: () => Promise<T>) => Promise<T>;

export interface ProvisionDeps {
  config: Pick<Config, 'namePrefix' | 'defaultTags' | 'secretKmsKeyId' | 'usagePlans' | 'revokedSecretPolicy'>;
  apiKeys: ApiKeyStore;
  secrets: SecretStore;
  /** Wrap each AWS call in the retry policy (lib/retry.ts); API Gateway's also in the instance's rate limiter. */
  retry: { apiGateway: RetryFn; secrets: RetryFn };
  now: () => Date;
}

export type KeyStatus = 'active' | 'revoked' | 'failed';

/**
 * What the customer's secret holds: the record of its key. Written first without `apiKeyId` and `status`
 * (pending), then `active`; `revoked` / `failed` after an unsubscribe / a failed subscription. A notification
 * older than `lastEventAt` is stale and changes nothing. A tombstone (revoked before any key) has no value.
 */
export interface SecretRecord {
  value?: string;
  customerId: string;
  productCode: string | null;
  plan: string | null;
  apiKeyName: string;
  createdAt: string;
  apiKeyId?: string;
  usagePlanId?: string;
  status?: KeyStatus;
  lastEventAt?: string;
}

export interface KeyResult {
  outcome:
    | 'provisioned'
    | 'already-provisioned'
    | 'enabled'
    | 'revoked'
    | 'failed'
    | 'already-revoked'
    | 'stale'
    | 'plan-changed'
    | 'unchanged';
  previousUsagePlanId?: string;
  apiKeyId?: string;
  apiKeyName: string;
  secretArn: string;
  secretName: string;
  usagePlanId?: string;
}

const ALPHANUMERIC = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
export const KEY_VALUE_LENGTH = 40;

/** A new API key value: 40 alphanumeric characters from the CSPRNG (≈ 238 bits). API Gateway takes 20–128. */
export function generateKeyValue(): string {
  return Array.from({ length: KEY_VALUE_LENGTH }, () => ALPHANUMERIC[randomInt(ALPHANUMERIC.length)]).join('');
}

/**
 * The usage plan of a product (and tier): `"<product>:<tier>"` first, then `"<product>"`. No map configured, or no
 * product: no plan. A product outside a configured map is rejected (`unknown-product`) before any AWS call.
 */
export function usagePlanFor(
  usagePlans: Record<string, string>,
  productCode: string | undefined,
  plan: string | undefined,
): string | undefined {
  if (Object.keys(usagePlans).length === 0 || productCode === undefined) return undefined;
  const id = (plan !== undefined ? usagePlans[`${productCode}:${plan}`] : undefined) ?? usagePlans[productCode];
  if (!id) throw new RejectedError('unknown-product', `product ${productCode} has no usage plan in USAGE_PLANS`);
  return id;
}

/** The result of `outcome` for the customer's key and secret; ids from the record when there is one. */
function keyResult(outcome: KeyResult['outcome'], keyName: string, name: string, secret: StoredSecret, record?: SecretRecord): KeyResult {
  return {
    outcome,
    apiKeyId: record?.apiKeyId,
    apiKeyName: keyName,
    secretArn: secret.arn,
    secretName: name,
    usagePlanId: record?.usagePlanId,
  };
}

function readRecord(secret: StoredSecret): SecretRecord {
  try {
    const record = JSON.parse(secret.secretString) as Partial<SecretRecord>;
    if (typeof record.customerId === 'string' && (record.value === undefined || typeof record.value === 'string'))
      return record as SecretRecord;
  } catch {
    // fall through
  }
  throw new RejectedError('secret-unreadable', `secret ${secret.name} exists but does not hold a key record of this product`);
}

/** Notifications are ordered by their own time, not by arrival: SNS does not keep order, replays come late. */
const isOlder = (eventTime: string, lastEventAt: string | undefined) =>
  lastEventAt !== undefined && Date.parse(eventTime) < Date.parse(lastEventAt);
const isNewer = (eventTime: string, lastEventAt: string | undefined) =>
  lastEventAt === undefined || Date.parse(eventTime) > Date.parse(lastEventAt);

/** A pending record: the value is written before any key exists, so no key ever exists without its value. */
function pendingRecord(request: ProvisionRequest, keyName: string, now: Date): SecretRecord {
  return {
    value: generateKeyValue(),
    customerId: request.customerId,
    productCode: request.productCode ?? null,
    plan: request.plan ?? null,
    apiKeyName: keyName,
    createdAt: now.toISOString(),
    lastEventAt: request.eventTime,
  };
}

/**
 * Makes sure the customer (and product) has exactly one enabled API key, in its usage plan, and one secret holding
 * its value. Idempotent and crash-safe; concurrent calls for the same customer converge:
 * 1. GetSecretValue. An active record means an earlier delivery finished: nothing is created (`already-provisioned`).
 *    A revoked one is re-enabled by a newer notification (`enabled`) and left alone by an older one (`stale`).
 * 2. No secret: generate the key value and CreateSecret with it (pending). Lost a race? Read the winner's value.
 * 3. CreateApiKey with the recorded value. 409 means a key with that value exists — created by a delivery that
 *    stopped before step 5, or by a concurrent one: look its id up by name and value.
 * 4. CreateUsagePlanKey, when a usage plan is configured (an existing association is success).
 * 5. PutSecretValue with the id and `active`, under a ClientRequestToken derived from the content, so repeats are no-ops.
 * Throws RejectedError for permanent failures, RetryableError when SQS should deliver again.
 */
export async function provisionKey(request: ProvisionRequest, deps: ProvisionDeps): Promise<KeyResult> {
  const { config } = deps;
  const { apiGateway, secrets } = deps.retry;
  const usagePlanId = usagePlanFor(config.usagePlans, request.productCode, request.plan);
  const tags = mergeTags(config.defaultTags, request.tags);
  const keyName = apiKeyName(config.namePrefix, request.customerId, request.productCode);
  const name = secretName(config.namePrefix, request.customerId, request.productCode);
  const product = request.productCode ? ` for product ${request.productCode}` : '';
  const result = (secret: StoredSecret, outcome: KeyResult['outcome'], record?: SecretRecord) =>
    keyResult(outcome, keyName, name, secret, record);
  const write = (record: SecretRecord, token: string) =>
    secrets('PutSecretValue', () => deps.secrets.putSecretValue(name, JSON.stringify(record), token));

  let secret = await secrets('GetSecretValue', () => deps.secrets.getSecret(name));
  if (!secret) {
    const created = await secrets('CreateSecret', () =>
      deps.secrets.createSecret({
        name,
        description: `API key of customer ${request.customerId}${product}, provisioned by api-key-provisioner`,
        secretString: JSON.stringify(pendingRecord(request, keyName, deps.now())),
        tags,
        kmsKeyId: config.secretKmsKeyId,
      }),
    );
    secret = created ?? (await secrets('GetSecretValue', () => deps.secrets.getSecret(name)));
    if (!secret) throw new TransientError(`secret ${name} exists but could not be read yet`);
  }
  let record = readRecord(secret);

  if (record.status === 'active' || (record.status === undefined && record.apiKeyId)) return result(secret, 'already-provisioned', record);
  let reenabled = false;
  if (record.status === 'revoked' || record.status === 'failed') {
    if (!isNewer(request.eventTime, record.lastEventAt)) return result(secret, 'stale', record);
    if (record.apiKeyId) {
      // A re-subscription: the same key comes back. Its value, deleted from the secret by REVOKED_SECRET_POLICY
      // delete-value, is read back from API Gateway and recorded again by the final write; a stop before that write
      // leaves the record revoked, so the next delivery repeats these steps.
      const { apiKeyId } = record;
      const value = record.value ?? (await apiGateway('GetApiKeys', () => deps.apiKeys.valueOf(keyName, apiKeyId)));
      if (!value) throw new TransientError(`key ${apiKeyId} is not listed under ${keyName} yet`);
      record = { ...record, value };
      await apiGateway('UpdateApiKey', () => deps.apiKeys.setEnabled(apiKeyId, true));
      reenabled = true;
    } else {
      // Revoked before any key existed (a tombstone): start the key now, value first.
      const pending: SecretRecord = { ...pendingRecord(request, keyName, deps.now()), value: record.value ?? generateKeyValue() };
      await write(pending, randomUUID());
      record = pending;
    }
  }
  const { value } = record;
  if (!value) throw new RejectedError('secret-unreadable', `secret ${name} holds no key value`);

  const apiKeyId =
    record.apiKeyId ??
    (await apiGateway('CreateApiKey', () =>
      deps.apiKeys.createApiKey({
        name: keyName,
        value,
        description: `API key of customer ${request.customerId}${product}, provisioned by api-key-provisioner`,
        customerId: request.customerId,
        tags,
      }),
    )) ??
    (await apiGateway('GetApiKeys', () => deps.apiKeys.findApiKey(keyName, value)));
  // A 409 whose key cannot be listed yet: the control plane is eventually consistent, so SQS tries again later.
  if (!apiKeyId) throw new TransientError(`a key with the recorded value exists but ${keyName} is not listed yet`);
  if (usagePlanId) await apiGateway('CreateUsagePlanKey', () => deps.apiKeys.addToUsagePlan(usagePlanId, apiKeyId));

  const active: SecretRecord = {
    ...record,
    apiKeyId,
    usagePlanId,
    status: 'active',
    lastEventAt: reenabled ? request.eventTime : record.lastEventAt,
  };
  await write(active, deterministicId('secret-version', name, apiKeyId, 'active', active.lastEventAt ?? ''));
  return result(secret, reenabled ? 'enabled' : 'provisioned', active);
}

/**
 * Takes the customer's key away after `unsubscribe-success` (status `revoked`) or `subscribe-fail` (`failed`):
 * disables the key and removes it from its usage plan, then marks the secret (its value is kept). Idempotent and
 * crash-safe: the status is written last. A notification older than the record's last one is `stale`; one that
 * arrives before any key exists leaves a tombstone record, so the subscription it follows cannot create a key later.
 */
export async function revokeKey(request: RevokeRequest, deps: ProvisionDeps): Promise<KeyResult> {
  const { config } = deps;
  const { apiGateway, secrets } = deps.retry;
  const configuredPlan = usagePlanFor(config.usagePlans, request.productCode, undefined);
  const status: KeyStatus = request.action === 'subscribe-fail' ? 'failed' : 'revoked';
  const keyName = apiKeyName(config.namePrefix, request.customerId, request.productCode);
  const name = secretName(config.namePrefix, request.customerId, request.productCode);
  const result = (secret: StoredSecret, outcome: KeyResult['outcome'], record?: SecretRecord) =>
    keyResult(outcome, keyName, name, secret, record);

  let secret = await secrets('GetSecretValue', () => deps.secrets.getSecret(name));
  if (!secret) {
    const tombstone: SecretRecord = {
      customerId: request.customerId,
      productCode: request.productCode,
      plan: null,
      apiKeyName: keyName,
      createdAt: deps.now().toISOString(),
      status,
      lastEventAt: request.eventTime,
    };
    const created = await secrets('CreateSecret', () =>
      deps.secrets.createSecret({
        name,
        description: `API key record of customer ${request.customerId} for product ${request.productCode} (${status} before any key existed)`,
        secretString: JSON.stringify(tombstone),
        tags: config.defaultTags,
        kmsKeyId: config.secretKmsKeyId,
      }),
    );
    if (created) return result(created, status);
    secret = await secrets('GetSecretValue', () => deps.secrets.getSecret(name));
    if (!secret) throw new TransientError(`secret ${name} exists but could not be read yet`);
  }
  const record = readRecord(secret);
  if (isOlder(request.eventTime, record.lastEventAt)) return result(secret, 'stale', record);
  if (record.status === status && record.lastEventAt === request.eventTime) return result(secret, 'already-revoked', record);

  const { value } = record;
  const apiKeyId = record.apiKeyId ?? (value ? await apiGateway('GetApiKeys', () => deps.apiKeys.findApiKey(keyName, value)) : undefined);
  if (apiKeyId) {
    await apiGateway('UpdateApiKey', () => deps.apiKeys.setEnabled(apiKeyId, false));
    const plan = record.usagePlanId ?? configuredPlan;
    if (plan) await apiGateway('DeleteUsagePlanKey', () => deps.apiKeys.removeFromUsagePlan(plan, apiKeyId));
  }
  const { value: _, ...withoutValue } = record;
  const kept = config.revokedSecretPolicy === 'delete-value' ? withoutValue : record;
  const revoked: SecretRecord = { ...kept, apiKeyId, usagePlanId: undefined, status, lastEventAt: request.eventTime };
  await secrets('PutSecretValue', () =>
    deps.secrets.putSecretValue(name, JSON.stringify(revoked), deterministicId('secret-version', name, status, request.eventTime)),
  );
  return result(secret, status, revoked);
}

/**
 * The `entitlement-updated` hook with ON_ENTITLEMENT_UPDATED=move-to-configured-plan: moves an active key to the
 * plan USAGE_PLANS names for its product (and tier) now — the seller changes the map, then the notification (or a
 * replay of it) moves the key. Adds to the new plan before leaving the old one, so the buyer is never without a plan.
 * `unchanged` when there is no active key or it is in that plan already.
 */
export async function moveToConfiguredPlan(request: { customerId: string; productCode?: string }, deps: ProvisionDeps): Promise<KeyResult> {
  const { config } = deps;
  const { apiGateway, secrets } = deps.retry;
  const keyName = apiKeyName(config.namePrefix, request.customerId, request.productCode);
  const name = secretName(config.namePrefix, request.customerId, request.productCode);
  const secret = await secrets('GetSecretValue', () => deps.secrets.getSecret(name));
  if (!secret) return { outcome: 'unchanged', apiKeyName: keyName, secretArn: '', secretName: name };
  const record = readRecord(secret);
  const target = usagePlanFor(config.usagePlans, request.productCode, record.plan ?? undefined);
  const { apiKeyId } = record;
  if (record.status !== 'active' || !apiKeyId || !target || target === record.usagePlanId)
    return keyResult('unchanged', keyName, name, secret, record);

  await apiGateway('CreateUsagePlanKey', () => deps.apiKeys.addToUsagePlan(target, apiKeyId));
  const previous = record.usagePlanId;
  if (previous) await apiGateway('DeleteUsagePlanKey', () => deps.apiKeys.removeFromUsagePlan(previous, apiKeyId));
  const moved: SecretRecord = { ...record, usagePlanId: target };
  await secrets('PutSecretValue', () =>
    deps.secrets.putSecretValue(name, JSON.stringify(moved), deterministicId('secret-version', name, apiKeyId, 'plan', target)),
  );
  return { ...keyResult('plan-changed', keyName, name, secret, moved), previousUsagePlanId: previous };
}
