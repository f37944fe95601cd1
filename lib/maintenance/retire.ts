import type { ApiKeyStore } from '../aws/api-gateway.js';
import type { KeyRecord, RetryFn } from '../customer-key/key-record.js';
import type { RecordStore } from '../customer-key/record-store.js';

/** What retiring a key works with: the records, API Gateway, the plans and a retry policy per service. */
export interface RetireDeps {
  config: { usagePlans: Record<string, string>; retireAfterDays: number };
  apiKeys: Pick<ApiKeyStore, 'removeFromUsagePlan' | 'deleteApiKey' | 'getApiKey'>;
  records: RecordStore;
  /** Each AWS call under the retry policy; API Gateway's also under the sweep's rate limiter (DeleteApiKey: 5/s). */
  retry: { apiGateway: RetryFn; records: RetryFn };
  now: () => Date;
}

/**
 * `retired`: the key is deleted and the record says so. `finished`: a retirement a crashed sweep left under way is
 * done. `not-due`: nothing to do (not revoked long enough, re-subscribed, already retired, no record). `changed`:
 * someone wrote the record meanwhile (a re-subscription, a replayed revoke): nothing written over it; what the sweep
 * claimed is finished at its next run (the record stays in the index until it is).
 */
export type RetireOutcome = 'retired' | 'finished' | 'not-due' | 'changed';

const DAY_MS = 86_400_000;

/** The latest revocation time that is due at `asOf` (ISO), or undefined when RETIRE_AFTER_DAYS is 0 (never). */
export function dueBefore(asOf: Date, retireAfterDays: number): string | undefined {
  if (retireAfterDays <= 0) return undefined;
  return new Date(asOf.getTime() - retireAfterDays * DAY_MS).toISOString();
}

/** Whether the record's key is due for retirement at `until`: revoked or failed, with a key, revoked at or before it. */
export function isDue(record: KeyRecord, until: string): boolean {
  return (
    (record.status === 'revoked' || record.status === 'failed') &&
    record.apiKeyId !== undefined &&
    record.revokedAt !== undefined &&
    record.revokedAt <= until
  );
}

/**
 * Retires the key of the record `key` if it is due at `asOf`: frees its slot of the Region's 10,000 keys.
 * 1. Reads the record (strongly consistent) and decides on what it holds now: a record that changed since the index
 *    listed it — re-subscribed, already retired — is left alone.
 * 2. Claims the key: the record written (conditional on the version read) without `apiKeyId`, with `retiredKeyId`.
 *    From then on no grant reuses that key: a stale one finds no key and makes none, a newer one makes a new key with
 *    a new value (lib/customer-key/provision.ts); a grant that enabled the key before the claim loses its own write
 *    and decides again on the claimed record. Lost the write: `changed`, nothing deleted.
 * 3. DeleteUsagePlanKey from the product's configured plan (a key not in it: done), then DeleteApiKey (404: done;
 *    when finishing a stopped run, GetApiKey first: IAM's tag condition denies a DELETE of a key that is gone).
 * 4. The record written with `retiredAt`, which takes it out of the index.
 * Idempotent and crash-safe: a stop after 2 or 3 leaves the record in the index with `retiredKeyId` and no
 * `retiredAt`, and the next run does 3 and 4 again (every step is safe to repeat), whatever the record became
 * meanwhile: the claimed key is never the record's `apiKeyId` again. The secret is left as it is: see
 * docs/lifecycle.md, "Retirement", for why. Throws the adapters' domain errors (RetryableError: try again later).
 */
export async function retireKey(key: string, asOf: Date, deps: RetireDeps): Promise<RetireOutcome> {
  const until = dueBefore(asOf, deps.config.retireAfterDays);
  const found = await deps.retry.records('GetItem', () => deps.records.get(key));
  if (!found) return 'not-due';
  const { record, version } = found;
  if (record.retiredKeyId && !record.retiredAt) return finish(key, record, version, record.retiredKeyId, deps, 'finished');
  if (!until || !isDue(record, until) || !record.apiKeyId) return 'not-due';
  const claimed: KeyRecord = {
    ...record,
    apiKeyId: undefined,
    usagePlanId: undefined,
    retiredKeyId: record.apiKeyId,
    retiredAt: undefined,
  };
  if (!(await deps.retry.records('PutItem', () => deps.records.put(key, claimed, version)))) return 'changed';
  return finish(key, claimed, version + 1, record.apiKeyId, deps, 'retired', record.usagePlanId);
}

/** Steps 3 and 4: the claimed key out of its plan and deleted, then the record marked retired. */
async function finish(
  key: string,
  record: KeyRecord,
  version: number,
  keyId: string,
  deps: RetireDeps,
  outcome: 'retired' | 'finished',
  recordedPlan?: string,
): Promise<RetireOutcome> {
  // A record that got this key back as its own (impossible by construction, but a hand edit could): never delete it.
  if (record.apiKeyId === keyId) return 'changed';
  const { apiGateway } = deps.retry;
  for (const plan of new Set([recordedPlan, configuredPlan(deps.config.usagePlans, record)])) {
    if (plan) await apiGateway('DeleteUsagePlanKey', () => deps.apiKeys.removeFromUsagePlan(plan, keyId));
  }
  // Finishing a run that stopped: the key may be gone already. IAM allows DeleteApiKey only on keys that carry the
  // ownership tag, and a key that no longer exists carries none (AccessDenied, not 404): look first.
  const exists = outcome === 'retired' || (await apiGateway('GetApiKey', () => deps.apiKeys.getApiKey(keyId))) !== undefined;
  if (exists) await apiGateway('DeleteApiKey', () => deps.apiKeys.deleteApiKey(keyId));
  const retired: KeyRecord = { ...record, retiredKeyId: keyId, retiredAt: deps.now().toISOString() };
  return (await deps.retry.records('PutItem', () => deps.records.put(key, retired, version))) ? outcome : 'changed';
}

/** The plan USAGE_PLANS gives the record's product (and tier), if any; a product no longer configured has none. */
export function configuredPlan(usagePlans: Record<string, string>, record: KeyRecord): string | undefined {
  if (Object.keys(usagePlans).length === 0 || record.productCode === null) return undefined;
  return (record.plan !== null ? usagePlans[`${record.productCode}:${record.plan}`] : undefined) ?? usagePlans[record.productCode];
}
