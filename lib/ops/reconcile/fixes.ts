/**
 * Repairing: the findings that are safe to repair, each after re-reading what it is about, and each read back after
 * the repair, so a result says `fixed` only when the change can be seen.
 */
import { isLegacyRecord, readSecretContent, type SecretRecord, secretContent, withoutValue } from '../../customer-key/key-record.js';
import { keyDescription } from '../../customer-key/naming.js';
import { recordKey } from '../../customer-key/record-store.js';
import { deterministicId } from '../../ids.js';
import type { Finding, FindingKind, FixOutcome, FixResult, ReconcileSettings, ReconcileState } from './model.js';
import { parseRecord, recordStatus } from './records.js';
import { restoredRecord } from './rules.js';
import type { ReconcileStores } from './stores.js';

/** Order of repair: secrets first (later repairs re-read them). */
const FIX_ORDER: FindingKind[] = [
  'record-in-secret',
  'key-without-secret',
  'enabled-key-for-revoked',
  'in-plan-while-revoked',
  'missing-from-plan',
];

// The adapters' and services' messages name resources, never key values.
const messageOf = (error: unknown) => (error instanceof Error ? error.message : String(error));

/** The record as it is now — the table's, else (before the table, or not moved yet) the secret's — or why there is none. */
async function currentRecord(
  stores: ReconcileStores,
  finding: Pick<Finding, 'customerId' | 'productCode' | 'secretName'>,
): Promise<SecretRecord | string> {
  const inTable = stores.records && (await stores.records.get(recordKey(finding.customerId, finding.productCode)));
  if (inTable) return inTable.record;
  const stored = await stores.secrets.getSecret(finding.secretName);
  if (!stored) return 'the secret does not exist';
  const parsed = parseRecord(stored.secretString);
  return 'record' in parsed ? parsed.record : `the secret is unreadable now (${parsed.unreadable})`;
}

/**
 * Moves a record of the time before the table into it (as the function does on first touch: a conditional write, then
 * the secret reduced to the value under the move's token); re-reads the secret first and the table after.
 */
async function moveRecord(finding: Finding, stores: ReconcileStores): Promise<[FixOutcome, string]> {
  const { records } = stores;
  if (!records) return ['skipped', 'no record table given'];
  const { secretName, customerId, productCode } = finding;
  const key = recordKey(customerId, productCode);
  const stored = await stores.secrets.getSecret(secretName);
  if (!stored) return ['skipped', 'the secret does not exist'];
  const content = readSecretContent(stored);
  if (!isLegacyRecord(content)) return ['skipped', 'the secret holds only a value now'];
  if (!(await records.put(key, withoutValue(content), undefined))) return ['skipped', 'the table has a record of this customer now'];
  await stores.secrets.putSecretValue(
    secretName,
    secretContent(content.value, content),
    deterministicId('secret-version', secretName, 'moved-to-table'),
  );
  return readBack(
    `moved the record of ${secretName} into the record table (${key}) and reduced the secret to the value`,
    async () => (await records.get(key)) !== undefined,
    `PutItem succeeded, but the record ${key} is not in the table`,
  );
}

/**
 * One repair, read back: `fixed` with `done` when `visible()` shows the change, else `not-confirmed` (the call
 * succeeded, the change cannot be seen: not counted as fixed).
 */
async function readBack(done: string, visible: () => Promise<boolean>, unseen: string): Promise<[FixOutcome, string]> {
  try {
    return (await visible()) ? ['fixed', done] : ['not-confirmed', `${unseen} on re-reading: not counted as fixed`];
  } catch (error) {
    return ['not-confirmed', `the repair was made, but re-reading failed (${messageOf(error)}): not counted as fixed`];
  }
}

/** Restores the secret of a key without one; re-reads the key first and the secret after. */
async function restoreSecret(
  finding: Finding,
  state: ReconcileState,
  stores: ReconcileStores,
  settings: ReconcileSettings,
): Promise<[FixOutcome, string]> {
  const { customerId, productCode, secretName, apiKeyId } = finding;
  const key = state.keys.find((k) => k.id === apiKeyId);
  const value = apiKeyId ? state.keyValues.get(apiKeyId) : undefined;
  if (!key || value === undefined) return ['failed', "the key's value was not listed (GetApiKeys includeValues)"];
  if (!(await stores.apiKeys.getApiKey(key.id))) return ['skipped', 'the key has been deleted since'];
  const record: SecretRecord = { value, ...restoredRecord(state, key, settings) };
  const { records } = stores;
  const recordKeyOf = recordKey(customerId, productCode);
  // With the record table: the secret gets the value, the table the record (unless it has one: then it stays).
  const created = await stores.secrets.createSecret({
    name: secretName,
    description: keyDescription(customerId, productCode ?? undefined, 'secret restored by reconcile'),
    secretString: records ? secretContent(value, record) : JSON.stringify(record),
    tags: key.tags,
    kmsKeyId: settings.kmsKeyId,
  });
  if (!created) return ['skipped', `secret ${secretName} exists now: left as it is`];
  const recorded = records ? await records.put(recordKeyOf, { ...withoutValue(record), secretArn: created.arn }, undefined) : true;
  return readBack(
    `created secret ${secretName} from key ${key.id} (${recorded ? `status ${record.status}${record.usagePlanId ? `, plan ${record.usagePlanId}` : ''}` : 'its record in the table left as it was'})`,
    async () => {
      const now = await currentRecord(stores, finding);
      const stored = await stores.secrets.getSecret(secretName);
      return typeof now !== 'string' && now.apiKeyId === key.id && stored !== undefined && readSecretContent(stored).value === value;
    },
    `CreateSecret succeeded, but secret ${secretName} does not hold the key's value, or the record not the key`,
  );
}

/** Disables a revoked subscription's key, or moves a key into or out of its plan; re-reads the record first. */
async function repairKey(finding: Finding, stores: ReconcileStores): Promise<[FixOutcome, string]> {
  const { kind, apiKeyName, apiKeyId, usagePlanId } = finding;
  const current = await currentRecord(stores, finding);
  if (typeof current === 'string') return ['skipped', current];
  if (!apiKeyId) return ['skipped', 'no key id'];
  const status = recordStatus(current);
  const sameKey = current.apiKeyId === undefined || current.apiKeyId === apiKeyId;
  const inPlan = async (planId: string) => (await stores.apiKeys.usagePlanKeyIds(planId, apiKeyName))?.has(apiKeyId) === true;

  if (kind === 'enabled-key-for-revoked' || kind === 'in-plan-while-revoked') {
    if ((status !== 'revoked' && status !== 'failed') || !sameKey) return ['skipped', `the record is ${status} now`];
    if (kind === 'enabled-key-for-revoked') {
      await stores.apiKeys.setEnabled(apiKeyId, false);
      return readBack(
        `disabled key ${apiKeyId}`,
        async () => (await stores.apiKeys.getApiKey(apiKeyId))?.enabled === false,
        `UpdateApiKey succeeded, but key ${apiKeyId} still reads enabled`,
      );
    }
    if (!usagePlanId) return ['skipped', 'no usage plan'];
    await stores.apiKeys.removeFromUsagePlan(usagePlanId, apiKeyId);
    return readBack(
      `removed key ${apiKeyId} from usage plan ${usagePlanId}`,
      async () => !(await inPlan(usagePlanId)),
      `DeleteUsagePlanKey succeeded, but key ${apiKeyId} is still listed in usage plan ${usagePlanId}`,
    );
  }
  if (kind === 'missing-from-plan' && usagePlanId) {
    if (status !== 'active' || current.apiKeyId !== apiKeyId)
      return ['skipped', `the record is ${status}${sameKey ? '' : ` with key ${current.apiKeyId}`} now`];
    await stores.apiKeys.addToUsagePlan(usagePlanId, apiKeyId);
    return readBack(
      `added key ${apiKeyId} to usage plan ${usagePlanId}`,
      () => inPlan(usagePlanId),
      `CreateUsagePlanKey succeeded, but key ${apiKeyId} is not listed in usage plan ${usagePlanId}`,
    );
  }
  return ['skipped', `${kind} is not repaired automatically`];
}

/**
 * Repairs the findings marked `fix`, in {@link FIX_ORDER}, one at a time, and returns one result per repair.
 * Each repair first re-reads what it is about and is `skipped` when the finding no longer holds (the pipeline may
 * have changed it since the gathering); after it, it reads the change back, and is `fixed` only when the change
 * shows (else `not-confirmed`). A failure is reported and the next repair goes on.
 * - key-without-secret: CreateSecret from the key ({@link restoredRecord}), the key's tags, the configured KMS key;
 *   a secret that appeared meanwhile is left as it is. Read back with GetSecretValue.
 * - enabled-key-for-revoked: UpdateApiKey enabled=false, if the record still says revoked / failed. Read back with GetApiKey.
 * - in-plan-while-revoked: DeleteUsagePlanKey, if the record still says revoked / failed. Read back with GetUsagePlanKeys.
 * - missing-from-plan: CreateUsagePlanKey, if the record is still active with this key. Read back with GetUsagePlanKeys.
 * Races left: a re-subscription processed between the re-read and the repair of a revoked key can be undone by it
 * (the next reconcile reports it as disabled-key-for-active or missing-from-plan), and the other way round.
 */
export async function applyFixes(
  findings: Finding[],
  state: ReconcileState,
  stores: ReconcileStores,
  settings: ReconcileSettings,
): Promise<FixResult[]> {
  const results: FixResult[] = [];
  const fixable = findings.filter((f) => f.repair === 'fix').sort((a, b) => FIX_ORDER.indexOf(a.kind) - FIX_ORDER.indexOf(b.kind));
  for (const finding of fixable) {
    const { kind, customerId, productCode, secretName, apiKeyId, usagePlanId } = finding;
    let outcome: FixOutcome;
    let detail: string;
    try {
      [outcome, detail] =
        kind === 'record-in-secret'
          ? await moveRecord(finding, stores)
          : kind === 'key-without-secret'
            ? await restoreSecret(finding, state, stores, settings)
            : await repairKey(finding, stores);
    } catch (error) {
      [outcome, detail] = ['failed', messageOf(error)];
    }
    results.push({ kind, customerId, productCode, secretName, apiKeyId, usagePlanId, outcome, detail });
  }
  return results;
}
