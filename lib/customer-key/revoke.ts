import type { StoredSecret } from '../aws/secrets-manager.js';
import { TransientError } from '../errors.js';
import { deterministicId } from '../ids.js';
import type { RevokeRequest } from '../messages/index.js';
import {
  type KeyResult,
  type KeyStatus,
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
import { lastChange, revokeIsProvenOlder } from './lifecycle-order.js';
import { apiKeyName, keyDescription, ownedTags, secretName } from './naming.js';

/**
 * Takes the customer's key away after `unsubscribe-success` (status `revoked`) or `subscribe-fail` (`failed`):
 * disables the key and removes it from its usage plan, then marks the secret. Idempotent and crash-safe: the status
 * is written last, then read back. A notification proven older than the record's last change is `stale`
 * (lib/customer-key/lifecycle-order.ts); one that arrives before any key exists leaves a tombstone record, so the subscription it
 * follows cannot create a key later. Racing a provisioning of the same customer, it never leaves an enabled key:
 * for a pending record it finds the key by its value (`keyOfValue`: one that exists but is not listed yet hands the
 * revoke back to look again; one never made is made disabled), so the revoke always records the key it disabled,
 * and the provisioning disables a key it made after that (its last look before the final write, or its redelivery:
 * lib/customer-key/provision.ts); a provisioning that wrote `active` over the revoke is caught by the read-back (retried).
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
  const read = () => readExistingSecret(deps, name);

  let secret = await secrets('GetSecretValue', () => deps.secrets.getSecret(name));
  if (!secret) {
    const tombstone: SecretRecord = {
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
    const created = await secrets('CreateSecret', () =>
      deps.secrets.createSecret({
        name,
        description: `API key record of customer ${request.customerId} for product ${request.productCode} (${status} before any key existed)`,
        secretString: JSON.stringify(tombstone),
        tags: ownedTags(config.namePrefix, config.defaultTags, undefined),
        kmsKeyId: config.secretKmsKeyId,
      }),
    );
    if (created) return result(created, status);
    secret = await read();
  }
  const stored = readRecord(secret);
  // A license event is ordered by its own license (lib/customer-key/licenses.ts): the key goes only with the last active license.
  const licenses = request.licenseArn
    ? applyLicenseEvent(stored.licenses, request.licenseArn, 'deprovisioned', stampOf(request))
    : undefined;
  if (licenses === 'stale') return result(secret, 'stale', stored);
  const record: SecretRecord = typeof licenses === 'object' ? { ...stored, licenses } : stored;
  if (licenses !== undefined && anyActive(record.licenses)) {
    // The buyer still holds another license for the product: the key stays; the record notes this one is gone.
    if (typeof licenses === 'object') {
      const token = deterministicId('secret-version', name, 'license-gone', request.licenseArn ?? '', request.eventTime);
      await secrets('PutSecretValue', () => deps.secrets.putSecretValue(name, JSON.stringify(record), token));
    }
    return result(secret, 'unchanged', record);
  }
  if (!licenses && revokeIsProvenOlder(stampOf(request), lastChange(record))) return result(secret, 'stale', record);
  if (record.status === status && (licenses === 'unchanged' || record.lastEventAt === request.eventTime)) {
    return result(secret, 'already-revoked', record);
  }

  const { value } = record;
  // A pending record's key may exist without being listed yet: keyOfValue tells (and makes it, disabled, if not).
  const found = record.apiKeyId
    ? { apiKeyId: record.apiKeyId, made: false }
    : value
      ? await keyOfValue(deps, {
          name: keyName,
          value,
          description: keyDescription(request.customerId, request.productCode, status),
          customerId: request.customerId,
          tags: ownedTags(config.namePrefix, config.defaultTags, undefined, request),
        })
      : undefined;
  const apiKeyId = found?.apiKeyId;
  if (found && apiKeyId) {
    if (!found.made) await apiGateway('UpdateApiKey', () => deps.apiKeys.setEnabled(apiKeyId, false));
    const plan = record.usagePlanId ?? configuredPlan;
    if (plan) await apiGateway('DeleteUsagePlanKey', () => deps.apiKeys.removeFromUsagePlan(plan, apiKeyId));
  }
  const { value: _, ...withoutValue } = record;
  const kept = config.revokedSecretPolicy === 'delete-value' && apiKeyId ? withoutValue : record;
  const revoked: SecretRecord = { ...kept, apiKeyId, usagePlanId: undefined, status, ...lastEventFields(request) };
  const token = deterministicId('secret-version', name, status, request.eventTime, apiKeyId ?? '');
  await secrets('PutSecretValue', () => deps.secrets.putSecretValue(name, JSON.stringify(revoked), token));

  // A provisioning that read the pending record before this revoke may have written `active` over it. (An active
  // record read back as active is only the read lagging: provisioning never rewrites an active record.)
  const after = readRecord(await read());
  if (after.status === 'active' && record.status !== 'active')
    throw new TransientError(`secret ${name} was marked active again while being revoked: revoking again`);
  return result(secret, status, revoked);
}
