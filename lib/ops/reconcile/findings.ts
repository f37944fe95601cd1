/** Comparing: the gathered state against itself — keys against secrets, records against keys and plans. Pure. */
import type { Finding, OwnedKey, ReconcileSettings, ReconcileState } from './model.js';
import { recordStatus } from './records.js';
import { graceOf, minutes, recordFindings, restoredRecord } from './rules.js';

/** The order of every list of findings: by secret name, kind, usage plan. */
export const findingOrder = (a: Finding, b: Finding) =>
  a.secretName.localeCompare(b.secretName) || a.kind.localeCompare(b.kind) || (a.usagePlanId ?? '').localeCompare(b.usagePlanId ?? '');

/** How long ago the key was created, at the gathering; unknown (no createdDate) counts as old. */
const keyAgeMs = (state: ReconcileState, key: OwnedKey) =>
  key.createdDate ? state.gatheredAt.getTime() - key.createdDate.getTime() : Number.POSITIVE_INFINITY;

/**
 * Compares the gathered state and returns what disagrees, sorted by secret name and kind. Pure: no AWS call.
 * Keys side: several keys with one name (`duplicate-keys`; a roll's old and new keys, which the record lists, are not), a key whose name has no secret, or whose secret records
 * another key (`key-without-secret`); a key younger than the grace without a listed secret is only `in-progress`.
 * Secrets side: `unreadable-secret`, then each record against its key (by the recorded id, else by value) and the
 * plans. A key about to get its secret restored is checked as if it had it. The findings that a lagging listing
 * can fake are confirmed by `confirmFindings` (confirm.ts) before anyone acts on them.
 */
export function compareState(state: ReconcileState, settings: ReconcileSettings): Finding[] {
  const findings: Finding[] = [];
  const secretsByName = new Map(state.secrets.map((s) => [s.secretName, s]));
  const groups = new Map<string, OwnedKey[]>();
  for (const key of state.keys) groups.set(key.apiKeyName, [...(groups.get(key.apiKeyName) ?? []), key]);

  for (const [, named] of groups) {
    const secret = secretsByName.get((named[0] as OwnedKey).secretName);
    // The old keys of a roll (still in their overlap, or waiting for the sweep) and the key of a roll under way share
    // the name: the record lists them, and they are the sweep's and the roll's to finish, not duplicates.
    const rollKeys = new Set([...(secret?.record?.endingKeys ?? []).map((k) => k.apiKeyId), secret?.record?.rolling?.newKeyId]);
    const group = named.filter((key) => !rollKeys.has(key.id) || key.id === secret?.record?.apiKeyId);
    if (group.length === 0) continue;
    const [first] = group as [OwnedKey, ...OwnedKey[]];
    const base = {
      customerId: first.customerId,
      productCode: first.productCode,
      apiKeyName: first.apiKeyName,
      secretName: first.secretName,
    };
    const recordedValue = secret ? state.secretValues.get(secret.secretName) : undefined;
    const isRecorded = (key: OwnedKey) =>
      secret?.record !== undefined &&
      (secret.record.apiKeyId
        ? secret.record.apiKeyId === key.id
        : recordedValue !== undefined && recordedValue === state.keyValues.get(key.id));

    if (group.length > 1) {
      const recorded = group.find(isRecorded);
      const ids = group.map((k) => k.id).sort();
      findings.push({
        ...base,
        kind: 'duplicate-keys',
        severity: 'error',
        repair: 'manual',
        apiKeyId: recorded?.id,
        apiKeyIds: ids,
        problem: `${group.length} keys are named ${first.apiKeyName}: ${ids.join(', ')}${recorded ? `; the secret records ${recorded.id}` : '; the secret records none of them'}`,
        action: recorded
          ? `check that the others are unused, then delete them (aws apigateway delete-api-key --api-key ID); keep ${recorded.id}`
          : 'find out which one the customer uses, delete the others, then run reconcile --fix to restore the secret from the one left',
      });
      continue;
    }

    if (!secret) {
      const ageMs = keyAgeMs(state, first);
      if (ageMs < graceOf(settings)) {
        // A provisioning writes the secret before the key, and ListSecrets lags by up to five minutes: a young key
        // without a listed secret is most likely a listing that has not caught up. Information, never a repair.
        findings.push({
          ...base,
          kind: 'in-progress',
          severity: 'info',
          repair: 'none',
          apiKeyId: first.id,
          problem: `the key is ${minutes(Math.max(0, ageMs))} old and its secret is not readable yet: a provisioning in progress, or a listing that lags`,
          action: `none; reported as key-without-secret if its secret is still missing once the key is ${minutes(graceOf(settings))} old`,
        });
        continue;
      }
      const restored = restoredRecord(state, first, settings);
      findings.push({
        ...base,
        kind: 'key-without-secret',
        severity: 'error',
        repair: 'fix',
        apiKeyId: first.id,
        status: recordStatus(restored),
        problem: `the key (${first.enabled ? 'enabled' : 'disabled'}) has no secret: its value is recorded nowhere, and a new signup would create a second key`,
        action: `--fix creates the secret from the key (status ${restored.status}${restored.usagePlanId ? `, plan ${restored.usagePlanId}` : ''})`,
      });
      findings.push(...recordFindings(state, settings, first, restored, true));
      continue;
    }
    if (secret.deletedDate) {
      findings.push({
        ...base,
        kind: 'key-without-secret',
        severity: 'error',
        repair: 'manual',
        apiKeyId: first.id,
        problem: `the key's secret is scheduled for deletion (${secret.deletedDate.toISOString()})`,
        action:
          `if the key stays: aws secretsmanager restore-secret --secret-id ${secret.secretName}; ` +
          `if the customer is gone: aws apigateway delete-api-key --api-key ${first.id}`,
      });
      continue;
    }
    if (!secret.record || isRecorded(first)) continue; // unreadable secrets are reported on the secrets side
    const other = secret.record.apiKeyId
      ? `key ${secret.record.apiKeyId}`
      : recordedValue !== undefined
        ? 'another key value'
        : 'no key (a tombstone)';
    findings.push({
      ...base,
      kind: 'key-without-secret',
      severity: 'error',
      repair: 'manual',
      apiKeyId: first.id,
      status: recordStatus(secret.record),
      problem: `the key (${first.enabled ? 'enabled' : 'disabled'}) is not the one its secret records (${other})`,
      action:
        `never overwrite the secret while the key it records may exist. If this key is unused: aws apigateway delete-api-key --api-key ${first.id}; ` +
        'if the customer uses it, the secret must be corrected by hand',
    });
  }

  for (const secret of state.secrets) {
    if (secret.deletedDate) continue;
    if (secret.unreadable !== undefined) {
      findings.push({
        kind: 'unreadable-secret',
        severity: 'error',
        repair: 'manual',
        customerId: secret.customerId,
        productCode: secret.productCode,
        apiKeyName: secret.apiKeyName,
        secretName: secret.secretName,
        problem: secret.unreadable,
        action:
          "the pipeline refuses this customer's messages (secret-unreadable) until the secret holds the JSON record of lib/customer-key/provision.ts again: " +
          'restore an earlier version (aws secretsmanager list-secret-version-ids, then update-secret-version-stage) or write the record by hand',
      });
      continue;
    }
    if (secret.recordIn === 'secret')
      findings.push({
        kind: 'record-in-secret',
        severity: 'info',
        repair: 'fix',
        customerId: secret.customerId,
        productCode: secret.productCode,
        apiKeyName: secret.apiKeyName,
        secretName: secret.secretName,
        apiKeyId: secret.record?.apiKeyId,
        status: secret.record && recordStatus(secret.record),
        problem: 'the record is in the secret, as before the record table: not moved yet',
        action: "moved into the record table by the customer's next message, or now by --fix",
      });
    if (secret.record) findings.push(...recordFindings(state, settings, secret, secret.record, false));
  }
  return findings.sort(findingOrder);
}
