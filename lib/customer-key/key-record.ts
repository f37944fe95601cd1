import { randomInt, randomUUID } from 'node:crypto';
import type { ApiKeyStore, NewApiKey } from '../aws/api-gateway.js';
import type { SecretStore, StoredSecret } from '../aws/secrets-manager.js';
import type { Config } from '../config.js';
import { RejectedError, TransientError } from '../errors.js';
import { deterministicId } from '../ids.js';
import type { Clock } from '../messages/index.js';
import { createApiKeyOrCapacity } from './capacity.js';
import { activeLicenses, type Licenses } from './licenses.js';
import type { Stamped } from './lifecycle-order.js';
import type { RecordStore } from './record-store.js';

/**
 * What the use cases (provision, revoke, move, roll) work with. Every method of the adapters goes through the call
 * path — the retry policy; API Gateway's also the instance's rate limiter and the usage-plan write turns —
 * put around them where these are built (lib/quota/call-path.ts, lib/pipeline/process-record.ts).
 */
export interface ProvisionDeps {
  config: Pick<Config, 'namePrefix' | 'defaultTags' | 'secretKmsKeyId' | 'usagePlans' | 'revokedSecretPolicy'> &
    Partial<Pick<Config, 'apiKeyQuota' | 'rollGraceSeconds' | 'rotationSchedule'>>;
  /** The function that rotates the customers' secrets (this one: its invokedFunctionArn), for ROTATION_SCHEDULE. */
  rotationFunctionArn?: string;
  apiKeys: ApiKeyStore;
  secrets: SecretStore;
  /** The customers' records (KEY_RECORDS_TABLE), changed only by conditional writes. */
  records: RecordStore;
  /** The configured usage plans' API stages, looked up once per instance (lib/customer-key/usage-plans.ts). */
  knownPlans?: Map<string, Promise<string[]>>;
  now: () => Date;
}

export type KeyStatus = 'active' | 'revoked' | 'failed';

/**
 * The customer's record (one per product and customer, in the record table): written first without `apiKeyId` and
 * `status` (pending), then `active`; `revoked` / `failed` after an unsubscribe / a failed subscription. `lastEventAt`
 * (and its clock) order the lifecycle (lib/customer-key/lifecycle-order.ts). A tombstone (revoked before any key) has
 * no secret. The key's value is never in the record: it is in the secret, and only there.
 */
export interface KeyRecord {
  customerId: string;
  productCode: string | null;
  plan: string | null;
  apiKeyName: string;
  createdAt: string;
  /** The secret that holds the key's value, once it exists. */
  secretArn?: string;
  apiKeyId?: string;
  usagePlanId?: string;
  status?: KeyStatus;
  lastEventAt?: string;
  /** Absent: a producer's time (records written before clocks existed). */
  lastEventClock?: Clock;
  /** When this deployment revoked the key (its own clock, not the notification's): retirement counts from it. */
  revokedAt?: string;
  /** The buyer's AWS account id, when a message named it (2026 Marketplace model). */
  customerAccountId?: string;
  /** The buyer's licenses for this product (concurrent agreements, lib/customer-key/licenses.ts): the key is enabled while one is active. */
  licenses?: Licenses;
  /**
   * The key the maintenance sweep retired (lib/maintenance/retire.ts): set, and `apiKeyId` removed, when the sweep
   * claims a revoked record; the key is then taken out of its plan and deleted. Kept as history afterwards.
   */
  retiredKeyId?: string;
  /** When the sweep finished retiring `retiredKeyId` (deleted). Absent with `retiredKeyId`: a retirement under way. */
  retiredAt?: string;
  /** A roll under way (lib/customer-key/roll.ts): the key page shows *creating* and reveals nothing while it is set. */
  rolling?: Rolling;
  /**
   * Old keys on their way out: each works until `endsAt` (a roll's overlap), then the sweep takes it out of its plan
   * and deletes it. A revoke disables them at once and makes them due.
   */
  endingKeys?: EndingKey[];
  /** The request id (`eventId`) of the last roll done, and its time: a repeat or a replay of it rolls nothing. */
  lastRollId?: string;
  lastRollAt?: string;
}

/** A roll under way: claimed in the record before anything is made, so every delivery finishes the same roll. */
export interface Rolling {
  rollId: string;
  /** The secret version (ClientRequestToken) that holds the new value, as AWSPENDING until the roll switches. */
  token: string;
  graceSeconds: number;
  /** The request's event time. */
  requestedAt: string;
  /** The new key, once made, enabled and in its plan. */
  newKeyId?: string;
  /** The record names the new key as its own; the secret's AWSCURRENT is being moved to the new value. */
  switching?: boolean;
}

export interface EndingKey {
  apiKeyId: string;
  endsAt: string;
}

/**
 * A record whose key the sweep retired (or is retiring): revoked or failed, no key of its own, a retired key id. Its
 * secret may still hold the deleted key's value: nothing may look a key up by it, and a re-subscription gets a new
 * value and a new key.
 */
export const isRetired = (record: KeyRecord): boolean =>
  (record.status === 'revoked' || record.status === 'failed') && !record.apiKeyId && record.retiredKeyId !== undefined;

/**
 * What a secret holds: `{"value": …}` with the customer's names. Before the record table, the secret held the
 * whole record (with `createdAt`, and `value` unless revoked with REVOKED_SECRET_POLICY=delete-value): such a
 * legacy record is moved into the table the first time its customer is touched.
 */
export interface SecretRecord extends KeyRecord {
  value?: string;
}

/** The content of a customer's secret: the value and whose it is (never the record: that is in the table). */
export const secretContent = (value: string | undefined, record: Pick<KeyRecord, 'customerId' | 'productCode' | 'apiKeyName'>): string =>
  JSON.stringify({
    ...(value !== undefined && { value }),
    customerId: record.customerId,
    productCode: record.productCode,
    apiKeyName: record.apiKeyName,
  });

/** Whether a secret's content is a whole record of the time before the record table (only those have `createdAt`). */
export const isLegacyRecord = (content: SecretRecord): boolean => typeof content.createdAt === 'string';

/** A record without the value (what the table holds). */
export function withoutValue(content: SecretRecord): KeyRecord {
  const { value: _, ...record } = content;
  return record;
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
    | 'rolled'
    | 'already-rolled'
    | 'unchanged';
  previousUsagePlanId?: string;
  /** A roll's old key, and when it stops working. */
  previousApiKeyId?: string;
  overlapEndsAt?: string;
  apiKeyId?: string;
  apiKeyName: string;
  /** Absent when no secret exists (a revoke before any key). */
  secretArn?: string;
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

/**
 * How long a "not yet" waits before SQS brings its record back: a key made but not listed yet, a secret written but
 * not readable yet. The control plane and Secrets Manager catch up within seconds; the whole visibility timeout
 * (181 s) would only delay the buyer.
 */
export const NOT_YET_RETRY_MS = 2_000;

/** The result of `outcome` for the customer's key and secret; ids from the record when there is one. */
export function keyResult(outcome: KeyResult['outcome'], keyName: string, name: string, record?: KeyRecord): KeyResult {
  return {
    outcome,
    apiKeyId: record?.apiKeyId,
    apiKeyName: keyName,
    secretArn: record?.secretArn,
    secretName: name,
    usagePlanId: record?.usagePlanId,
    ...(record?.licenses && { activeLicenses: activeLicenses(record.licenses) }),
  };
}

/**
 * The customer's secret, which is known to exist (just created by someone, or just written): one that cannot be
 * read yet is a {@link TransientError} — Secrets Manager is eventually consistent — so SQS tries again shortly.
 */
export async function readExistingSecret(deps: ProvisionDeps, name: string): Promise<StoredSecret> {
  const found = await deps.secrets.getSecret(name);
  if (!found) throw new TransientError(`secret ${name} exists but could not be read yet`, { retryAfterMs: NOT_YET_RETRY_MS });
  return found;
}

/**
 * The id of the key made with `key.value`, for a record that holds the value but no key id (a grant was making its
 * key when a revoke came). GetApiKeys first; when it lists none — never made, or made and not listed yet: GetApiKeys
 * lags behind CreateApiKey — CreateApiKey with that value tells which (values are unique per account and Region): a
 * 409 says the key exists, a {@link TransientError} (SQS brings the record back to look again); else the key is
 * made now, disabled, so that no delivery of that grant can leave an enabled one behind (`made`). In a Region full of
 * keys that CreateApiKey is refused like any other: `capacity-exhausted` (lib/customer-key/capacity.ts), handed back
 * until the sweep frees a slot — the key was never made, so the buyer has none meanwhile.
 */
export async function keyOfValue(deps: ProvisionDeps, key: Omit<NewApiKey, 'enabled'>): Promise<{ apiKeyId: string; made: boolean }> {
  // Each page of GetApiKeys is a call of its own: its own limiter slot, its own retries.
  const listed = await deps.apiKeys.findApiKey(key.name, key.value);
  if (listed) return { apiKeyId: listed, made: false };
  const made = await createApiKeyOrCapacity(deps, { ...key, enabled: false });
  if (!made)
    throw new TransientError(`a key with the value of ${key.name} exists but is not listed yet`, { retryAfterMs: NOT_YET_RETRY_MS });
  return { apiKeyId: made, made: true };
}

/** What a secret holds. Throws {@link RejectedError} `secret-unreadable` for a secret that holds something else. */
export function readSecretContent(secret: StoredSecret): SecretRecord {
  try {
    const record = JSON.parse(secret.secretString) as Partial<SecretRecord>;
    if (typeof record.customerId === 'string' && (record.value === undefined || typeof record.value === 'string'))
      return { ...record, secretArn: secret.arn } as SecretRecord;
  } catch {
    // fall through
  }
  throw new RejectedError('secret-unreadable', `secret ${secret.name} exists but does not hold a key record of this product`);
}

/**
 * The key's value for `record`: from its secret. A secret that holds none (a legacy tombstone, or a value deleted
 * under REVOKED_SECRET_POLICY=delete-value) gets `fallback` if given — the value of a key that exists, or a new one —
 * written back, then read again, so that every writer ends up using the value the secret holds.
 */
export async function valueOfSecret(
  deps: ProvisionDeps,
  name: string,
  record: KeyRecord,
  fallback?: () => Promise<string | undefined>,
): Promise<{ value: string | undefined; secretArn: string }> {
  const secret = await readExistingSecret(deps, name);
  const content = readSecretContent(secret);
  // A whole record still in the secret, though the table has the customer's: a move into the table that stopped
  // before reducing the secret. The table is the record; the secret is reduced to the value now (the move's token).
  if (isLegacyRecord(content))
    await deps.secrets.putSecretValue(
      name,
      secretContent(content.value, record),
      deterministicId('secret-version', name, 'moved-to-table'),
    );
  if (content.value !== undefined || !fallback) return { value: content.value, secretArn: secret.arn };
  const value = await fallback();
  if (value === undefined) return { value: undefined, secretArn: secret.arn };
  await deps.secrets.putSecretValue(name, secretContent(value, record), randomUUID());
  const again = readSecretContent(await readExistingSecret(deps, name));
  if (again.value === undefined)
    throw new TransientError(`secret ${name} was written but does not show its value yet`, { retryAfterMs: NOT_YET_RETRY_MS });
  return { value: again.value, secretArn: secret.arn };
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
