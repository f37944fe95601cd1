import { RejectedError, TransientError } from '../errors.js';
import type { ProvisionRequest } from '../messages/index.js';
import { createApiKeyOrCapacity } from './capacity.js';
import {
  isLegacyRecord,
  isRetired,
  type KeyRecord,
  type KeyResult,
  keyResult,
  lastEventFields,
  NOT_YET_RETRY_MS,
  type ProvisionDeps,
  readExistingSecret,
  readSecretContent,
  stampOf,
  usagePlanFor,
  valueOfSecret,
} from './key-record.js';
import { anyActive, applyLicenseEvent, type Licenses, licenseState } from './licenses.js';
import { grantIsProvenNewer, lastChange } from './lifecycle-order.js';
import { apiKeyName, keyDescription, ownedTags, secretName } from './naming.js';
import { CONFLICT, loadRecord, migrateLegacy, recordKey, untilWritten, type Versioned } from './record-store.js';
import { ensureRotationSchedule } from './rotation-schedule.js';
import { createValueSecret, ensureSecret, replaceSecretValue } from './secret-value.js';
import { secureRevokedKey } from './secure-revoked.js';
import { planStages } from './usage-plans.js';

/** A pending record: written once the value is in its secret and before any key exists, so no key exists without it. */
function pendingRecord(
  request: ProvisionRequest,
  keyName: string,
  now: Date,
  secretArn: string | undefined,
  licenses?: Licenses,
): KeyRecord {
  return {
    customerId: request.customerId,
    productCode: request.productCode ?? null,
    plan: request.plan ?? null,
    apiKeyName: keyName,
    createdAt: now.toISOString(),
    ...(secretArn && { secretArn }),
    ...lastEventFields(request),
    ...buyerOf(request, undefined),
    ...((licenses ?? request.licenseArn) && {
      licenses: { ...licenses, ...(request.licenseArn && { [request.licenseArn]: licenseState('active', stampOf(request)) }) },
    }),
  };
}

/** The buyer's account id as the record keeps it: the message's, else the one recorded. */
const buyerOf = (request: ProvisionRequest, record: KeyRecord | undefined) => {
  const customerAccountId = request.customerAccountId ?? record?.customerAccountId;
  return customerAccountId ? { customerAccountId } : {};
};

/**
 * Makes sure the customer (and product) has exactly one enabled API key, in its usage plan, and one secret holding
 * its value. Idempotent and crash-safe; concurrent calls for the same customer converge, because every change of
 * the record is a conditional write on the version read (lib/customer-key/record-store.ts):
 * 0. The usage plan, if any, is checked to exist (once per instance) before anything is created.
 * 1. The record. An active one means an earlier delivery finished: nothing is created (`already-provisioned`).
 *    A revoked one is re-enabled by a notification proven newer (lib/customer-key/lifecycle-order.ts), else left
 *    alone (`stale`), its key made sure to be disabled and out of the plan.
 * 2. No record: the value first (CreateSecret with a new value, or the value an earlier delivery stored), then the
 *    pending record.
 * 3. With ROTATION_SCHEDULE, the secret's rotation schedule (lib/customer-key/rotation-schedule.ts; also before a
 *    re-subscription re-enables its key). CreateApiKey with the secret's value. 409 means a key with that value
 *    exists — created by a delivery that stopped before step 5, or by a concurrent one: look its id up by name and value.
 * 4. CreateUsagePlanKey, when a usage plan is configured (a 409 counts only once the association is seen).
 * 5. The record `active` with the key's id, if nobody changed it since step 1; else back to step 1 — where a revoke
 *    that came in meanwhile wins: the key this delivery enabled or made is disabled again (`stale`).
 * Throws RejectedError for permanent failures, RetryableError when SQS should deliver again.
 */
export async function provisionKey(request: ProvisionRequest, deps: ProvisionDeps): Promise<KeyResult> {
  const usagePlanId = usagePlanFor(deps.config.usagePlans, request.productCode, request.plan);
  if (usagePlanId) await planStages(deps, usagePlanId);
  // The key this delivery made, if a revoke then won the race for the record: the stale path disables that one.
  const made: { apiKeyId?: string; securedId?: string; version?: number } = {};
  const key = recordKey(request.customerId, request.productCode);
  return untilWritten(key, 'being provisioned', () => provisionOnce(request, deps, usagePlanId, made));
}

async function provisionOnce(
  request: ProvisionRequest,
  deps: ProvisionDeps,
  usagePlanId: string | undefined,
  made: { apiKeyId?: string; securedId?: string; version?: number },
): Promise<KeyResult | typeof CONFLICT> {
  const { config } = deps;
  const tags = ownedTags(config.namePrefix, config.defaultTags, request.tags, request);
  const keyName = apiKeyName(config.namePrefix, request.customerId, request.productCode);
  const name = secretName(config.namePrefix, request.customerId, request.productCode);
  const key = recordKey(request.customerId, request.productCode);
  const result = (outcome: KeyResult['outcome'], record?: KeyRecord) => keyResult(outcome, keyName, name, record);
  const write = (record: KeyRecord, expected: number | undefined) => deps.records.put(key, record, expected);

  /**
   * A stale grant that disabled the record's key (and took it out of its plan) confirms it with a write on the
   * version that justified it, even when the record is unchanged: a newer grant that re-enabled the key in between
   * makes this write lose, and the next attempt puts the key back (below), so that a late disable never outlives a
   * re-subscription.
   */
  const confirmSecured = async (secured: KeyRecord, version: number): Promise<boolean> => {
    if (secured.apiKeyId) made.securedId = secured.apiKeyId;
    if ((secured.apiKeyId || secured !== current?.record) && !(await write(secured, version))) return false;
    made.securedId = undefined;
    return true;
  };

  let current = await loadRecord(deps, key, name, false, made);
  if (current && made.securedId) {
    const { record: now, version: seen } = current;
    const id = made.securedId;
    if (now.status === 'active' && now.apiKeyId === id) {
      // Its rotation schedule too, which the stale attempt turned off (secureRevokedKey) after the grant put it on.
      if (config.rotationSchedule) await ensureRotationSchedule(deps, name, now);
      await deps.apiKeys.setEnabled(id, true);
      const plan = now.usagePlanId;
      if (plan) await deps.apiKeys.addToUsagePlan(plan, id);
      if (!(await write(now, seen))) return CONFLICT;
    }
    made.securedId = undefined;
    return CONFLICT;
  }
  let value: string | undefined;
  if (!current) {
    // The value first, then the record: no key is ever made without its value stored. A secret that exists already
    // holds the value an earlier delivery stored, or a record of the time before the table, which is moved.
    const draft = pendingRecord(request, keyName, deps.now(), undefined);
    const secret = await ensureSecretOrLegacy(deps, key, name, draft, tags, keyDescription(request.customerId, request.productCode));
    if (secret === CONFLICT) return CONFLICT;
    if ('version' in secret) current = secret;
    else {
      const pending = { ...draft, secretArn: secret.secretArn };
      if (!(await write(pending, undefined))) return CONFLICT;
      current = { record: pending, version: 1 };
      value = secret.value;
    }
  }
  const { version } = current;
  const start = current.record;
  // A license event is ordered by its own license (lib/customer-key/licenses.ts); other grants by the record's last change.
  const licenses = request.licenseArn ? applyLicenseEvent(start.licenses, request.licenseArn, 'active', stampOf(request)) : undefined;
  if (licenses === 'stale') {
    // A revoke won the record while this delivery made or enabled the key, or put it in its plan: take that back.
    if ((start.status === 'revoked' || start.status === 'failed') && made.apiKeyId) {
      const secured = await secureRevokedKey(deps, request, start, usagePlanId, tags, keyName, made.apiKeyId);
      if (!(await confirmSecured(secured, version))) return CONFLICT;
      return result('stale', secured);
    }
    return result('stale', start);
  }
  let record: KeyRecord = typeof licenses === 'object' ? { ...start, licenses, ...buyerOf(request, start) } : start;
  let expected = version;

  if (record.status === 'active' || (record.status === undefined && record.apiKeyId)) {
    // One more license for a key that exists: recorded, nothing created.
    if (typeof licenses === 'object' && !(await write(record, expected))) return CONFLICT;
    return result('already-provisioned', record);
  }
  let reenabled = false;
  if (record.status === 'revoked' || record.status === 'failed') {
    const newer =
      typeof licenses === 'object' ? anyActive(licenses) : !licenses && grantIsProvenNewer(stampOf(request), lastChange(record));
    if (!newer) {
      const secured = await secureRevokedKey(deps, request, record, usagePlanId, tags, keyName, made.apiKeyId);
      if (!(await confirmSecured(secured, expected))) return CONFLICT;
      return result('stale', secured);
    }
    if (record.apiKeyId) {
      // A re-subscription: the same key comes back. Its value, deleted from the secret by REVOKED_SECRET_POLICY
      // delete-value, is read back from API Gateway and stored again first.
      const { apiKeyId } = record;
      const stored = await valueOfSecret(deps, name, record, () => deps.apiKeys.valueOf(keyName, apiKeyId));
      if (stored.value === undefined)
        throw new TransientError(`key ${apiKeyId} is not listed under ${keyName} yet`, { retryAfterMs: NOT_YET_RETRY_MS });
      if (deps.config.rotationSchedule) await ensureRotationSchedule(deps, name, record);
      await deps.apiKeys.setEnabled(apiKeyId, true);
      reenabled = true;
    } else {
      // Revoked before any key existed (a tombstone), or its key retired (deleted) by the sweep: start a key now,
      // value first. A retired key's value may still be in the secret: a new one replaces it, never reused.
      const description = keyDescription(request.customerId, request.productCode);
      const secret = isRetired(record)
        ? await replaceSecretValue(deps, name, record, tags, description)
        : await ensureSecret(deps, name, record, tags, description);
      const pending: KeyRecord = {
        ...pendingRecord(request, keyName, deps.now(), secret.secretArn, record.licenses),
        // A retirement still under way (the sweep claimed the key, has not recorded it deleted) is finished by the
        // sweep's next run: the claimed key stays named, so the record stays in its index.
        ...(record.retiredKeyId && { retiredKeyId: record.retiredKeyId, retiredAt: record.retiredAt }),
      };
      if (!(await write(pending, expected))) return CONFLICT;
      record = pending;
      expected += 1;
      value = secret.value;
    }
  }

  // The schedule before the key: a redelivery after a failed RotateSecret finds the record pending and comes back here.
  if (!record.apiKeyId && deps.config.rotationSchedule) await ensureRotationSchedule(deps, name, record);
  const apiKeyId = record.apiKeyId ?? (await makeKey(deps, request, record, keyName, name, tags, value));
  made.apiKeyId = apiKeyId;
  if (usagePlanId) await deps.apiKeys.addToUsagePlan(usagePlanId, apiKeyId);

  const active: KeyRecord = {
    ...record,
    apiKeyId,
    usagePlanId,
    status: 'active',
    revokedAt: undefined,
    ...(reenabled ? lastEventFields(request) : { lastEventAt: record.lastEventAt, lastEventClock: record.lastEventClock }),
  };
  // Lost: someone changed the record since it was read — a revoke, most likely. Decide again on what they wrote:
  // a revoke that wins finds this key enabled or in its plan, and the stale path takes it out again.
  if (!(await write(active, expected))) return CONFLICT;
  return result(reenabled ? 'enabled' : 'provisioned', active);
}

/**
 * For a customer with no record: CreateSecret with a new value, or, when the secret exists, what it holds — the
 * value an earlier delivery stored (`{value, secretArn}`), or a legacy record, moved into the table (`Versioned`).
 */
async function ensureSecretOrLegacy(
  deps: ProvisionDeps,
  key: string,
  name: string,
  draft: KeyRecord,
  tags: Record<string, string>,
  description: string,
): Promise<{ value: string; secretArn: string } | Versioned | typeof CONFLICT> {
  const created = await createValueSecret(deps, name, draft, tags, description);
  if (created) return created;
  const content = readSecretContent(await readExistingSecret(deps, name));
  if (isLegacyRecord(content)) return (await migrateLegacy(deps, key, name, content)) ?? CONFLICT;
  if (content.value === undefined) return ensureSecret(deps, name, draft, tags, description);
  return { value: content.value, secretArn: content.secretArn ?? '' };
}

/** The key of a pending record: CreateApiKey with the secret's value; a 409 means it exists, looked up by value. */
async function makeKey(
  deps: ProvisionDeps,
  request: ProvisionRequest,
  record: KeyRecord,
  keyName: string,
  name: string,
  tags: Record<string, string>,
  known: string | undefined,
): Promise<string> {
  const value = known ?? (await valueOfSecret(deps, name, record)).value;
  if (!value) throw new RejectedError('secret-unreadable', `secret ${name} holds no key value`);
  const made = await createApiKeyOrCapacity(deps, {
    name: keyName,
    value,
    description: keyDescription(request.customerId, request.productCode),
    customerId: request.customerId,
    tags,
  });
  const apiKeyId = made ?? (await deps.apiKeys.findApiKey(keyName, value));
  // A 409 whose key cannot be listed yet: the control plane is eventually consistent, so SQS tries again shortly.
  if (!apiKeyId)
    throw new TransientError(`a key with the recorded value exists but ${keyName} is not listed yet`, { retryAfterMs: NOT_YET_RETRY_MS });
  return apiKeyId;
}
