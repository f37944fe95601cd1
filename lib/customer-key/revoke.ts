import { deterministicId } from '../ids.js';
import type { RevokeRequest } from '../messages/index.js';
import {
  isRetired,
  type KeyRecord,
  type KeyResult,
  type KeyStatus,
  keyOfValue,
  keyResult,
  lastEventFields,
  type ProvisionDeps,
  readSecretContent,
  secretContent,
  stampOf,
  usagePlanFor,
  valueOfSecret,
} from './key-record.js';
import { anyActive, applyLicenseEvent, licenseState } from './licenses.js';
import { lastChange, revokeIsProvenOlder } from './lifecycle-order.js';
import { apiKeyName, keyDescription, ownedTags, secretName } from './naming.js';
import { CONFLICT, loadRecord, recordKey, untilWritten } from './record-store.js';
import { takeDown } from './roll.js';
import { ensureRotationSchedule, turnOffRotation } from './rotation-schedule.js';

/**
 * Takes the customer's key away after `unsubscribe-success` (status `revoked`) or `subscribe-fail` (`failed`):
 * disables the key and removes it from its usage plan, then marks the record — a conditional write on the version
 * read, so a provisioning that changed the record meanwhile makes the revoke read it again and decide again (no
 * lost update: lib/customer-key/record-store.ts). Idempotent and crash-safe. A notification proven older than the
 * record's last change is `stale` (lib/customer-key/lifecycle-order.ts); one that arrives before any record exists
 * leaves a tombstone record, so the subscription it follows cannot create a key later. For a pending record it finds
 * the key by the secret's value (`keyOfValue`: one that exists but is not listed yet hands the revoke back to look
 * again shortly; one never made is made disabled), so the revoke always records the key it disabled. With
 * ROTATION_SCHEDULE the secret's automatic rotation is turned off too (lib/customer-key/rotation-schedule.ts
 * turnOffRotation), before the record's write like the key's changes: a delivery that stops before the write is
 * redelivered, finds the record as it was and does it again (rotation off already: not asked again); one that stops
 * after it finds the record revoked (`already-revoked`) with the rotation off.
 */
export async function revokeKey(request: RevokeRequest, deps: ProvisionDeps): Promise<KeyResult> {
  // The key an attempt disabled before losing its write: given back if the record, read again, keeps it.
  const disabled: Touched = {};
  const key = recordKey(request.customerId, request.productCode);
  return untilWritten(key, 'being revoked', () => revokeOnce(request, deps, disabled));
}

async function revokeOnce(request: RevokeRequest, deps: ProvisionDeps, disabled: Touched): Promise<KeyResult | typeof CONFLICT> {
  const { config } = deps;
  const configuredPlan = usagePlanFor(config.usagePlans, request.productCode, undefined);
  const status: KeyStatus = request.action === 'subscribe-fail' ? 'failed' : 'revoked';
  const keyName = apiKeyName(config.namePrefix, request.customerId, request.productCode);
  const name = secretName(config.namePrefix, request.customerId, request.productCode);
  const key = recordKey(request.customerId, request.productCode);
  const result = (outcome: KeyResult['outcome'], record?: KeyRecord) => keyResult(outcome, keyName, name, record);
  const write = (record: KeyRecord, expected: number | undefined) => deps.records.put(key, record, expected);

  /**
   * A revoke that does not revoke — another license keeps the key, or a newer grant came first — makes sure the
   * record's active key is as the record says: enabled and in its plan. An earlier attempt (of this delivery, which
   * then lost its write to that change, or of an earlier delivery that stopped) may have disabled it and taken it out.
   * What it did is confirmed by a conditional write on the version that justified it (the record unchanged, or with
   * this license's change): a revoke that wrote in between makes this one lose, read again, and take the key down
   * again (below), so that its late enable never outlives the other's revoke (found by the chaos run: a leaver's
   * disabled key left in its plan). Two or three calls, for a revoke that changes nothing: rare. With
   * ROTATION_SCHEDULE, the secret's schedule too: an earlier attempt may have turned it off after the grant put it on.
   */
  const keepActive = async (kept: KeyRecord, version: number, changed: boolean): Promise<boolean> => {
    const id = kept.apiKeyId;
    if (id && (kept.status ?? 'active') === 'active') {
      disabled.keptId = id;
      disabled.keptPlan = kept.usagePlanId;
      if (config.rotationSchedule) await ensureRotationSchedule(deps, name, kept);
      await deps.apiKeys.setEnabled(id, true);
      const keptPlan = kept.usagePlanId;
      if (keptPlan) await deps.apiKeys.addToUsagePlan(keptPlan, id);
      disabled.apiKeyId = undefined;
    } else if (!changed) return true;
    if (!(await write(kept, version))) return false;
    disabled.keptId = undefined;
    return true;
  };

  /** The plan the record's keys may be in: a revoked one's are out of it already; a pending record's may be in the configured one. */
  const plan = (record: KeyRecord) =>
    record.usagePlanId ?? (record.status === 'revoked' || record.status === 'failed' ? undefined : configuredPlan);

  const current = await loadRecord(deps, key, name, true, disabled);
  if (current && disabled.keptId) {
    // This delivery enabled a key, then lost its write: if the record is no longer active with that key, the key
    // goes down again, confirmed by a write on the version read; then the revoke decides afresh.
    const { record: now, version: seen } = current;
    if ((now.status ?? 'active') !== 'active' || now.apiKeyId !== disabled.keptId) {
      const id = disabled.keptId;
      await deps.apiKeys.setEnabled(id, false);
      const keptPlan = disabled.keptPlan;
      if (keptPlan) await deps.apiKeys.removeFromUsagePlan(keptPlan, id);
      if (!(await write(now, seen))) return CONFLICT;
    }
    disabled.keptId = undefined;
    return CONFLICT;
  }
  if (!current) {
    const tombstone: KeyRecord = {
      customerId: request.customerId,
      productCode: request.productCode,
      plan: null,
      apiKeyName: keyName,
      createdAt: deps.now().toISOString(),
      status,
      ...lastEventFields(request),
      ...(request.customerAccountId && { customerAccountId: request.customerAccountId }),
      ...(request.licenseArn && { licenses: { [request.licenseArn]: licenseState('deprovisioned', stampOf(request)) } }),
    };
    if (!(await write(tombstone, undefined))) return CONFLICT;
    return result(status, tombstone);
  }
  const { record: stored, version } = current;
  // A license event is ordered by its own license (lib/customer-key/licenses.ts): the key goes only with the last active license.
  const licenses = request.licenseArn
    ? applyLicenseEvent(stored.licenses, request.licenseArn, 'deprovisioned', stampOf(request))
    : undefined;
  if (licenses === 'stale') {
    if (!(await keepActive(stored, version, false))) return CONFLICT;
    return result('stale', stored);
  }
  const record: KeyRecord = typeof licenses === 'object' ? { ...stored, licenses } : stored;
  if (licenses !== undefined && anyActive(record.licenses)) {
    // The buyer still holds another license for the product: the key stays; the record notes this one is gone.
    if (!(await keepActive(record, version, typeof licenses === 'object'))) return CONFLICT;
    return result('unchanged', record);
  }
  if (!licenses && revokeIsProvenOlder(stampOf(request), lastChange(record))) {
    if (!(await keepActive(record, version, false))) return CONFLICT;
    return result('stale', record);
  }
  if (record.status === status && (licenses === 'unchanged' || record.lastEventAt === request.eventTime)) {
    // Revoked already, but this license's change is still written (conditionally): unwritten, it would be lost to a
    // grant of another license that read the record before it (found by the chaos run: two licenses deprovisioned
    // at the same time, the second announced already-revoked, its license left active and the key with it).
    if (typeof licenses === 'object' && !(await write(record, version))) return CONFLICT;
    return result('already-revoked', record);
  }

  // A pending record's key may exist without being listed yet: keyOfValue tells (and makes it, disabled, if not).
  let found: { apiKeyId: string; made: boolean } | undefined = record.apiKeyId ? { apiKeyId: record.apiKeyId, made: false } : undefined;
  // A retired record's secret may hold its deleted key's value: no key is looked up (nor made) by it.
  if (!found && record.secretArn && !isRetired(record)) {
    const { value } = await valueOfSecret(deps, name, record);
    if (value)
      found = await keyOfValue(deps, {
        name: keyName,
        value,
        description: keyDescription(request.customerId, request.productCode, status),
        customerId: request.customerId,
        tags: ownedTags(config.namePrefix, config.defaultTags, undefined, request),
      });
  }
  const apiKeyId = found?.apiKeyId;
  if (found && apiKeyId) {
    if (!found.made) await deps.apiKeys.setEnabled(apiKeyId, false);
    disabled.apiKeyId = apiKeyId;
    // A key a revoke already took out of its plan is out of it (a grant that put it back afterwards makes sure it
    // leaves again: lib/customer-key/provision.ts, secureRevokedKey); a pending record's key may be in the configured plan.
    const inPlan = plan(record);
    if (inPlan) await deps.apiKeys.removeFromUsagePlan(inPlan, apiKeyId);
  }
  const rollKeys = await takeDownRollKeys(deps, record, request, plan(record));
  // The leaver's secret rotates no more (its rotations would fail `customer-left`, retried for ever), before the write
  // that confirms it. A grant that wrote meanwhile makes the write lose and the revoke decide again (keepActive puts
  // the schedule back if the key stays); one that put the schedule back and then loses to this write either is newer
  // (it re-enables the key, schedule on) or is stale and turns the rotation off again (secure-revoked.ts).
  await turnOffRotation(deps, name);
  const revoked: KeyRecord = {
    ...record,
    ...rollKeys,
    apiKeyId,
    usagePlanId: undefined,
    status,
    ...lastEventFields(request),
    ...(apiKeyId && { revokedAt: record.revokedAt ?? deps.now().toISOString() }),
  };
  if (!(await write(revoked, version))) return CONFLICT;
  if (config.revokedSecretPolicy === 'delete-value' && apiKeyId && record.secretArn) {
    // The record stays (it orders the lifecycle); the value goes. A re-subscription reads it back from API Gateway.
    const token = deterministicId('secret-version', name, status, request.eventTime, apiKeyId);
    await deps.secrets.putSecretValue(name, secretContent(undefined, record), token);
  }
  return result(status, revoked);
}

/** What a revoke's attempts did to keys, for the attempts after a lost write. */
interface Touched {
  /** The key an attempt disabled before losing its write: given back if the record, read again, keeps it. */
  apiKeyId?: string;
  /** The key an attempt enabled (and put in `keptPlan`) before losing its write: taken down if the record no longer keeps it. */
  keptId?: string;
  keptPlan?: string;
  /** The version last read (lib/customer-key/record-store.ts loadRecord). */
  version?: number;
}

/**
 * The keys of rolls go with the record's key: the old keys still in their overlap, and the key of a roll under way
 * that has not switched yet (its id when noted; else the key of its pending value, found — or made disabled — by
 * keyOfValue, so that no delivery of the roll can leave an enabled one behind). All disabled and out of the plan, and
 * ending now: the sweep deletes them. A roll that switched already named its new key the record's own: the revoke
 * disables that one, and the roll's deliveries finish moving the secret's labels.
 */
async function takeDownRollKeys(
  deps: ProvisionDeps,
  record: KeyRecord,
  request: RevokeRequest,
  plan: string | undefined,
): Promise<Pick<KeyRecord, 'endingKeys' | 'rolling'>> {
  const now = deps.now().toISOString();
  const keys = [...(record.endingKeys ?? [])];
  const { rolling } = record;
  if (rolling && !rolling.switching) {
    let id = rolling.newKeyId;
    const name = secretName(deps.config.namePrefix, request.customerId, request.productCode);
    const pending = id ? undefined : await deps.secrets.getSecret(name, rolling.token);
    const value = pending && readSecretContent(pending).value;
    if (value)
      id = (
        await keyOfValue(deps, {
          name: apiKeyName(deps.config.namePrefix, request.customerId, request.productCode),
          value,
          description: keyDescription(request.customerId, request.productCode, 'revoked'),
          customerId: request.customerId,
          tags: ownedTags(deps.config.namePrefix, deps.config.defaultTags, undefined, request),
        })
      ).apiKeyId;
    if (id) keys.push({ apiKeyId: id, endsAt: now });
  }
  if (keys.length === 0) return rolling?.switching ? {} : { rolling: undefined };
  await takeDown(deps, keys, plan);
  return {
    endingKeys: keys.map((key) => (key.endsAt < now ? key : { ...key, endsAt: now })),
    ...(!rolling?.switching && { rolling: undefined }),
  };
}
