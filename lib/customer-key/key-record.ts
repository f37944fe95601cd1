import { randomInt } from 'node:crypto';
import type { ApiKeyStore, NewApiKey } from '../aws/api-gateway.js';
import type { SecretStore, StoredSecret } from '../aws/secrets-manager.js';
import type { Config } from '../config.js';
import { RejectedError, TransientError } from '../errors.js';
import type { Clock } from '../messages/index.js';
import { activeLicenses, type Licenses } from './licenses.js';
import type { Stamped } from './lifecycle-order.js';

export type RetryFn = <T>(operation: string, call: () => Promise<T>) => Promise<T>;

/** What the use cases (provision, revoke, move) work with. */
export interface ProvisionDeps {
  config: Pick<Config, 'namePrefix' | 'defaultTags' | 'secretKmsKeyId' | 'usagePlans' | 'revokedSecretPolicy'>;
  apiKeys: ApiKeyStore;
  secrets: SecretStore;
  /** Wrap each AWS call in the retry policy (lib/quota/retry.ts); API Gateway's also in the instance's rate limiter. */
  retry: { apiGateway: RetryFn; secrets: RetryFn };
  /** The configured usage plans' API stages, looked up once per instance (lib/customer-key/usage-plans.ts). */
  knownPlans?: Map<string, Promise<string[]>>;
  now: () => Date;
}

export type KeyStatus = 'active' | 'revoked' | 'failed';

/**
 * What the customer's secret holds: the record of its key. Written first without `apiKeyId` and `status`
 * (pending), then `active`; `revoked` / `failed` after an unsubscribe / a failed subscription. `lastEventAt` (and
 * its clock) order the lifecycle (lib/customer-key/lifecycle-order.ts). A tombstone (revoked before any key) has no value.
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
  /** Absent: a producer's time (records written before clocks existed). */
  lastEventClock?: Clock;
  /** The buyer's AWS account id, when a message named it (2026 Marketplace model). */
  customerAccountId?: string;
  /** The buyer's licenses for this product (concurrent agreements, lib/customer-key/licenses.ts): the key is enabled while one is active. */
  licenses?: Licenses;
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
  /** The licenses active after this change, for metering by (account, license). */
  activeLicenses?: string[];
}

const ALPHANUMERIC = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
export const KEY_VALUE_LENGTH = 40;

/** A new API key value: 40 alphanumeric characters from the CSPRNG (≈ 238 bits). API Gateway takes 20–128. */
export function generateKeyValue(): string {
  return Array.from({ length: KEY_VALUE_LENGTH }, () => ALPHANUMERIC[randomInt(ALPHANUMERIC.length)]).join('');
}

/**
 * A pending record stays "not yet" for this long: a revoke that finds no key for it is retried rather than taken
 * as "no key" (a CreateApiKey may be in flight, or GetApiKeys may not list its key yet). Longer than ListSecrets'
 * documented lag ("might not reflect changes from the last five minutes"), which reconcile waits out with it.
 */
export const PENDING_GRACE_MS = 15 * 60_000;

/** The result of `outcome` for the customer's key and secret; ids from the record when there is one. */
export function keyResult(
  outcome: KeyResult['outcome'],
  keyName: string,
  name: string,
  secret: StoredSecret,
  record?: SecretRecord,
): KeyResult {
  return {
    outcome,
    apiKeyId: record?.apiKeyId,
    apiKeyName: keyName,
    secretArn: secret.arn,
    secretName: name,
    usagePlanId: record?.usagePlanId,
    ...(record?.licenses && { activeLicenses: activeLicenses(record.licenses) }),
  };
}

/**
 * The customer's secret, which is known to exist (just created by someone, or just written): one that cannot be
 * read yet is a {@link TransientError} — Secrets Manager is eventually consistent — so SQS tries again later.
 */
export async function readExistingSecret(deps: ProvisionDeps, name: string): Promise<StoredSecret> {
  const found = await deps.retry.secrets('GetSecretValue', () => deps.secrets.getSecret(name));
  if (!found) throw new TransientError(`secret ${name} exists but could not be read yet`);
  return found;
}

/**
 * The id of the key made with `key.value`, for a record that holds the value but no key id (a grant was making its
 * key when a revoke came). GetApiKeys first; when it lists none — never made, or made and not listed yet: GetApiKeys
 * lags behind CreateApiKey — CreateApiKey with that value tells which (values are unique per account and Region): a
 * 409 says the key exists, a {@link TransientError} (SQS brings the record back to look again); else the key is
 * made now, disabled, so that no delivery of that grant can leave an enabled one behind (`made`).
 */
export async function keyOfValue(deps: ProvisionDeps, key: Omit<NewApiKey, 'enabled'>): Promise<{ apiKeyId: string; made: boolean }> {
  const { apiGateway } = deps.retry;
  const listed = await apiGateway('GetApiKeys', () => deps.apiKeys.findApiKey(key.name, key.value));
  if (listed) return { apiKeyId: listed, made: false };
  const made = await apiGateway('CreateApiKey', () => deps.apiKeys.createApiKey({ ...key, enabled: false }));
  if (!made) throw new TransientError(`a key with the value of ${key.name} exists but is not listed yet`);
  return { apiKeyId: made, made: true };
}

/** The record in a secret. Throws {@link RejectedError} `secret-unreadable` for a secret that holds something else. */
export function readRecord(secret: StoredSecret): SecretRecord {
  try {
    const record = JSON.parse(secret.secretString) as Partial<SecretRecord>;
    if (typeof record.customerId === 'string' && (record.value === undefined || typeof record.value === 'string'))
      return record as SecretRecord;
  } catch {
    // fall through
  }
  throw new RejectedError('secret-unreadable', `secret ${secret.name} exists but does not hold a key record of this product`);
}

/** The record's last change as an event time with its clock. */
export const stampOf = (event: { eventTime: string; clock: Clock }): Stamped => ({ time: event.eventTime, clock: event.clock });

/** The fields that store an event's time in a record (the clock only when it is the queue's). */
export const lastEventFields = (event: { eventTime: string; clock: Clock }) => ({
  lastEventAt: event.eventTime,
  lastEventClock: event.clock === 'queue' ? ('queue' as const) : undefined,
});

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
