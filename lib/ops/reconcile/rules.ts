/**
 * The rules for one record: what a record of each status must have (its key, enabled or not, in its plan or not).
 * Shared by the records read from secrets and by the records a key without a secret would be restored with. Pure.
 */

import { type SecretRecord, usagePlanFor } from '../../customer-key/key-record.js';
import { RejectedError } from '../../errors.js';
import {
  DEFAULT_PENDING_GRACE_MS,
  type Finding,
  type OwnedKey,
  type OwnedName,
  type ReconcileSettings,
  type ReconcileState,
  type RecordWithoutValue,
} from './model.js';
import { recordStatus } from './records.js';

/** The usage plan the record's product (and tier) should be in, or undefined (no map, no product, product outside the map). */
function expectedPlan(usagePlans: Record<string, string>, record: Pick<SecretRecord, 'productCode' | 'plan'>): string | undefined {
  try {
    return usagePlanFor(usagePlans, record.productCode ?? undefined, record.plan ?? undefined);
  } catch (error) {
    if (error instanceof RejectedError) return undefined; // unknown-product: the function refuses it too
    throw error;
  }
}

/** The configured plans the key is in. */
export const plansOf = (state: ReconcileState, keyId: string) =>
  [...state.planMembers].filter(([, ids]) => ids.has(keyId)).map(([planId]) => planId);

/** The grace of pending records and young keys (see {@link DEFAULT_PENDING_GRACE_MS}). */
export const graceOf = (settings: ReconcileSettings) => settings.pendingGraceMs ?? DEFAULT_PENDING_GRACE_MS;

export const minutes = (ms: number) => `${Math.round(ms / 60_000)} min`;

/**
 * The record a secret restored from a key gets: the key's value and id; `active` for an enabled key, with no
 * `lastEventAt` (nothing is known about the order of past notifications, so every later one applies: an unsubscribe
 * revokes, a subscribe finds the key); `revoked` for a disabled one, with `lastEventAt` = the key's last update
 * (when it was disabled), so a stale subscribe replayed later cannot re-enable it but a newer one can. The tier is
 * unknown (`plan: null`); `usagePlanId` is the product's plan, else a configured plan the key is in.
 */
export function restoredRecord(state: ReconcileState, key: OwnedKey, settings: ReconcileSettings): RecordWithoutValue {
  const usagePlanId = expectedPlan(settings.usagePlans, { productCode: key.productCode, plan: null }) ?? plansOf(state, key.id)[0];
  return {
    customerId: key.customerId,
    productCode: key.productCode,
    plan: null,
    apiKeyName: key.apiKeyName,
    createdAt: (key.createdDate ?? state.gatheredAt).toISOString(),
    apiKeyId: key.id,
    ...(key.enabled && usagePlanId ? { usagePlanId } : {}),
    status: key.enabled ? 'active' : 'revoked',
    ...(key.enabled ? {} : { lastEventAt: (key.lastUpdatedDate ?? state.gatheredAt).toISOString() }),
  };
}

/** The checks of one record against its key and the plans (shared by real and to-be-restored records). */
export function recordFindings(
  state: ReconcileState,
  settings: ReconcileSettings,
  name: OwnedName,
  record: RecordWithoutValue,
  restored: boolean,
): Finding[] {
  const findings: Finding[] = [];
  const status = recordStatus(record);
  const base = {
    customerId: name.customerId,
    productCode: name.productCode,
    apiKeyName: name.apiKeyName,
    secretName: name.secretName,
    status,
  };
  const keysById = new Map(state.keys.map((k) => [k.id, k]));
  const recordedValue = state.secretValues.get(name.secretName);
  const byValue = recordedValue === undefined ? undefined : state.keys.find((k) => state.keyValues.get(k.id) === recordedValue);
  const key = record.apiKeyId ? keysById.get(record.apiKeyId) : byValue;
  const after = restored ? ' (once the secret is restored)' : '';

  if (status === 'pending') {
    const ageMs = state.gatheredAt.getTime() - Date.parse(record.createdAt);
    const grace = graceOf(settings);
    if (!(ageMs >= grace)) {
      findings.push({
        ...base,
        kind: 'in-progress',
        severity: 'info',
        repair: 'none',
        apiKeyId: key?.id,
        problem: `pending for ${minutes(Math.max(0, ageMs))}: a provisioning in progress`,
        action: `none; reported as an orphan if still pending after ${minutes(grace)}`,
      });
    } else if (key) {
      findings.push({
        ...base,
        kind: 'stalled-pending',
        severity: 'error',
        repair: 'manual',
        apiKeyId: key.id,
        problem: `pending for ${minutes(ageMs)}: the key with the recorded value exists, but its id was never recorded (the delivery stopped after CreateApiKey and was not retried)`,
        action: "replay the customer's signup or subscribe-success: it finds the key by value, adds it to its plan and records it",
      });
    } else {
      findings.push({
        ...base,
        kind: 'secret-without-key',
        severity: 'error',
        repair: 'manual',
        problem: `pending for ${minutes(ageMs)} and no key has the recorded value: the provisioning gave up before CreateApiKey succeeded`,
        action: "replay the customer's signup or subscribe-success once the cause is fixed: it creates the key with the recorded value",
      });
    }
    return findings;
  }

  if (status === 'active') {
    if (!key) {
      findings.push({
        ...base,
        kind: 'secret-without-key',
        severity: 'error',
        repair: 'manual',
        apiKeyId: record.apiKeyId,
        problem: `the record is active but its key ${record.apiKeyId ?? ''} does not exist (deleted outside the pipeline?)`,
        action:
          'not re-created: the deletion may have been deliberate (a leaked key), and provisioning again makes a new key with a new value. ' +
          `To give the customer a new key: aws secretsmanager delete-secret --secret-id ${name.secretName} --force-delete-without-recovery, ` +
          "then replay the customer's signup or subscribe-success (the customer must fetch the new value)",
      });
      return findings;
    }
    if (!key.enabled) {
      findings.push({
        ...base,
        kind: 'disabled-key-for-active',
        severity: 'error',
        repair: 'manual',
        apiKeyId: key.id,
        problem: 'the subscription is active but its key is disabled',
        action:
          'ambiguous, so not fixed: the key may have been blocked on purpose, or an unsubscribe was lost. ' +
          `To restore access: aws apigateway update-api-key --api-key ${key.id} --patch-operations op=replace,path=/enabled,value=true; ` +
          'if the customer left: replay the unsubscribe-success notification',
      });
      return findings;
    }
    const planId = expectedPlan(settings.usagePlans, record);
    if (planId && !state.planMembers.get(planId)?.has(key.id)) {
      findings.push({
        ...base,
        kind: 'missing-from-plan',
        severity: 'error',
        repair: 'fix',
        apiKeyId: key.id,
        usagePlanId: planId,
        problem: `the key is active but not in usage plan ${planId} of its product: its calls are refused and not metered`,
        action: `--fix associates it (CreateUsagePlanKey)${after}`,
      });
    }
    return findings;
  }

  // revoked or failed
  if (!key) return findings; // a tombstone, or a revoked key deleted since: nothing can be used
  if (key.enabled) {
    findings.push({
      ...base,
      kind: 'enabled-key-for-revoked',
      severity: 'error',
      repair: 'fix',
      apiKeyId: key.id,
      problem: `the subscription is ${status} but its key is enabled`,
      action: `--fix disables it (UpdateApiKey enabled=false)${after}`,
    });
  }
  for (const planId of plansOf(state, key.id)) {
    findings.push({
      ...base,
      kind: 'in-plan-while-revoked',
      severity: 'error',
      repair: 'fix',
      apiKeyId: key.id,
      usagePlanId: planId,
      problem: `the subscription is ${status} but its key is still in usage plan ${planId}`,
      action: `--fix removes it from the plan (DeleteUsagePlanKey)${after}`,
    });
  }
  return findings;
}
