import { randomUUID } from 'node:crypto';
import type { StoredSecret } from '../aws/secrets-manager.js';
import { RejectedError, TransientError } from '../errors.js';
import { deterministicId } from '../ids.js';
import type { ProvisionRequest } from '../messages/index.js';
import {
  generateKeyValue,
  type KeyResult,
  keyOfValue,
  keyResult,
  lastEventFields,
  type ProvisionDeps,
  readExistingSecret,
  readRecord,
  type SecretRecord,
  stampOf,
  usagePlanFor,
} from './key-record.js';
import { anyActive, applyLicenseEvent, licenseState } from './licenses.js';
import { grantIsProvenNewer, lastChange } from './lifecycle-order.js';
import { apiKeyName, keyDescription, ownedTags, secretName } from './naming.js';
import { planStages } from './usage-plans.js';

/** A pending record: the value is written before any key exists, so no key ever exists without its value. */
function pendingRecord(request: ProvisionRequest, keyName: string, now: Date): SecretRecord {
  return {
    value: generateKeyValue(),
    customerId: request.customerId,
    productCode: request.productCode ?? null,
    plan: request.plan ?? null,
    apiKeyName: keyName,
    createdAt: now.toISOString(),
    ...lastEventFields(request),
    ...buyerOf(request, undefined),
    ...(request.licenseArn && { licenses: { [request.licenseArn]: licenseState('active', stampOf(request)) } }),
  };
}

/** The buyer's account id as the record keeps it: the message's, else the one recorded. */
const buyerOf = (request: ProvisionRequest, record: SecretRecord | undefined) => {
  const customerAccountId = request.customerAccountId ?? record?.customerAccountId;
  return customerAccountId ? { customerAccountId } : {};
};

/**
 * Makes sure the customer (and product) has exactly one enabled API key, in its usage plan, and one secret holding
 * its value. Idempotent and crash-safe; concurrent calls for the same customer converge:
 * 0. The usage plan, if any, is checked to exist (once per instance) before anything is created.
 * 1. GetSecretValue. An active record means an earlier delivery finished: nothing is created (`already-provisioned`).
 *    A revoked one is re-enabled by a notification proven newer (lib/customer-key/lifecycle-order.ts), else left alone (`stale`).
 * 2. No secret: generate the key value and CreateSecret with it (pending). Lost a race? Read the winner's value.
 * 3. CreateApiKey with the recorded value. 409 means a key with that value exists — created by a delivery that
 *    stopped before step 5, or by a concurrent one: look its id up by name and value.
 * 4. CreateUsagePlanKey, when a usage plan is configured (a 409 counts only once the association is seen).
 * 5. GetSecretValue again: a revoke that came in meanwhile wins (the key is disabled again, `stale`); else
 *    PutSecretValue with the id and `active`, under a ClientRequestToken derived from the content.
 * Throws RejectedError for permanent failures, RetryableError when SQS should deliver again.
 */
export async function provisionKey(request: ProvisionRequest, deps: ProvisionDeps): Promise<KeyResult> {
  const { config } = deps;
  const { apiGateway, secrets } = deps.retry;
  const usagePlanId = usagePlanFor(config.usagePlans, request.productCode, request.plan);
  const tags = ownedTags(config.namePrefix, config.defaultTags, request.tags, request);
  const keyName = apiKeyName(config.namePrefix, request.customerId, request.productCode);
  const name = secretName(config.namePrefix, request.customerId, request.productCode);
  const result = (secret: StoredSecret, outcome: KeyResult['outcome'], record?: SecretRecord) =>
    keyResult(outcome, keyName, name, secret, record);
  const write = (record: SecretRecord, token: string) =>
    secrets('PutSecretValue', () => deps.secrets.putSecretValue(name, JSON.stringify(record), token));
  const read = () => readExistingSecret(deps, name);
  if (usagePlanId) await planStages(deps, usagePlanId);

  let secret = await secrets('GetSecretValue', () => deps.secrets.getSecret(name));
  if (!secret) {
    const created = await secrets('CreateSecret', () =>
      deps.secrets.createSecret({
        name,
        description: keyDescription(request.customerId, request.productCode),
        secretString: JSON.stringify(pendingRecord(request, keyName, deps.now())),
        tags,
        kmsKeyId: config.secretKmsKeyId,
      }),
    );
    secret = created ?? (await read());
  }
  const start = readRecord(secret);
  // A license event is ordered by its own license (lib/customer-key/licenses.ts); other grants by the record's last change.
  const licenses = request.licenseArn ? applyLicenseEvent(start.licenses, request.licenseArn, 'active', stampOf(request)) : undefined;
  if (licenses === 'stale') return result(secret, 'stale', start);
  let record: SecretRecord = typeof licenses === 'object' ? { ...start, licenses, ...buyerOf(request, start) } : start;

  if (record.status === 'active' || (record.status === undefined && record.apiKeyId)) {
    // One more license for a key that exists: recorded, nothing created.
    if (typeof licenses === 'object')
      await write(record, deterministicId('secret-version', name, 'license', request.licenseArn ?? '', request.eventTime));
    return result(secret, 'already-provisioned', record);
  }
  /**
   * A revoke that found no key for a pending record (its key not made yet, or not listed yet) leaves the value: an
   * earlier delivery of this grant may have made that key and stopped before its final look. Find it, disable it,
   * and take it out of the plan that delivery may have put it in (after the revoke's own DeleteUsagePlanKey).
   */
  const disableLeftoverKey = async (revoked: SecretRecord): Promise<SecretRecord> => {
    let found = revoked;
    if (!revoked.apiKeyId) {
      const { value: leftover } = revoked;
      if (!leftover) return revoked;
      const { apiKeyId, made } = await keyOfValue(deps, {
        name: keyName,
        value: leftover,
        description: keyDescription(request.customerId, request.productCode, 'revoked'),
        customerId: request.customerId,
        tags,
      });
      if (!made) await apiGateway('UpdateApiKey', () => deps.apiKeys.setEnabled(apiKeyId, false));
      found = { ...revoked, apiKeyId };
      await write(found, deterministicId('secret-version', name, apiKeyId, revoked.status ?? '', revoked.lastEventAt ?? ''));
    }
    // An earlier delivery of this grant may have put the key in its plan after the revoke took it out.
    const { apiKeyId } = found;
    if (usagePlanId && apiKeyId) await apiGateway('DeleteUsagePlanKey', () => deps.apiKeys.removeFromUsagePlan(usagePlanId, apiKeyId));
    return found;
  };
  let reenabled = false;
  if (record.status === 'revoked' || record.status === 'failed') {
    const newer =
      typeof licenses === 'object' ? anyActive(licenses) : !licenses && grantIsProvenNewer(stampOf(request), lastChange(record));
    if (!newer) return result(secret, 'stale', await disableLeftoverKey(record));
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
      const pending: SecretRecord = {
        ...pendingRecord(request, keyName, deps.now()),
        value: record.value ?? generateKeyValue(),
        ...(record.licenses && { licenses: record.licenses }),
      };
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
        description: keyDescription(request.customerId, request.productCode),
        customerId: request.customerId,
        tags,
      }),
    )) ??
    (await apiGateway('GetApiKeys', () => deps.apiKeys.findApiKey(keyName, value)));
  // A 409 whose key cannot be listed yet: the control plane is eventually consistent, so SQS tries again later.
  if (!apiKeyId) throw new TransientError(`a key with the recorded value exists but ${keyName} is not listed yet`);
  if (usagePlanId) await apiGateway('CreateUsagePlanKey', () => deps.apiKeys.addToUsagePlan(usagePlanId, apiKeyId));

  // A revoke of the same customer may have run while this key was being made: its record wins. (A secret not
  // readable yet holds no revoke that this write could hide: revokes write over a readable secret.)
  const latest = await secrets('GetSecretValue', () => deps.secrets.getSecret(name));
  const now = latest ? readRecord(latest) : start;
  if ((now.status === 'revoked' || now.status === 'failed') && (now.status !== start.status || now.lastEventAt !== start.lastEventAt)) {
    await apiGateway('UpdateApiKey', () => deps.apiKeys.setEnabled(apiKeyId, false));
    if (usagePlanId) await apiGateway('DeleteUsagePlanKey', () => deps.apiKeys.removeFromUsagePlan(usagePlanId, apiKeyId));
    const revoked: SecretRecord = { ...now, apiKeyId, usagePlanId: undefined };
    await write(revoked, deterministicId('secret-version', name, apiKeyId, now.status, now.lastEventAt ?? ''));
    return result(secret, 'stale', revoked);
  }

  const active: SecretRecord = {
    ...record,
    apiKeyId,
    usagePlanId,
    status: 'active',
    ...(reenabled ? lastEventFields(request) : { lastEventAt: record.lastEventAt, lastEventClock: record.lastEventClock }),
  };
  await write(active, deterministicId('secret-version', name, apiKeyId, 'active', active.lastEventAt ?? ''));
  return result(secret, reenabled ? 'enabled' : 'provisioned', active);
}
