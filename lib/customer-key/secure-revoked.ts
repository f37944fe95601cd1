import type { ProvisionRequest } from '../messages/index.js';
import { isRetired, type KeyRecord, keyOfValue, type ProvisionDeps, valueOfSecret } from './key-record.js';
import { keyDescription, secretName } from './naming.js';
import { turnOffRotation } from './rotation-schedule.js';

/**
 * A stale grant for a revoked record makes sure the record's key is what the record says: disabled and out of the
 * plan. An earlier delivery of this grant may have enabled it or put it in its plan and stopped before its write,
 * or made it after a revoke that found none (then the key is found by the secret's value, and recorded). With
 * ROTATION_SCHEDULE, the secret's rotation off as well: this grant (or an earlier delivery of it) may have put the
 * schedule on after the revoke turned it off and before the revoke's write won (turnOffRotation; nothing when it is
 * off). The caller confirms it all with its write on the version read (provision.ts confirmSecured).
 */
export async function secureRevokedKey(
  deps: ProvisionDeps,
  request: ProvisionRequest,
  revoked: KeyRecord,
  usagePlanId: string | undefined,
  tags: Record<string, string>,
  keyName: string,
  madeHere: string | undefined,
): Promise<KeyRecord> {
  const name = secretName(deps.config.namePrefix, request.customerId, request.productCode);
  let found = revoked;
  let apiKeyId = revoked.apiKeyId;
  let leftoverMade = false;
  if (!apiKeyId && madeHere) {
    apiKeyId = madeHere;
    found = { ...revoked, apiKeyId };
  } else if (!apiKeyId) {
    // A retired record's secret may still hold its deleted key's value: looking a key up by it (or making one, as
    // keyOfValue does when none is found) would bring a key back for a buyer who left. There is no key: nothing to do.
    if (!revoked.secretArn || isRetired(revoked)) return revoked;
    const { value } = await valueOfSecret(deps, name, revoked);
    if (!value) return revoked;
    const leftover = await keyOfValue(deps, {
      name: keyName,
      value,
      description: keyDescription(request.customerId, request.productCode, 'revoked'),
      customerId: request.customerId,
      tags,
    });
    apiKeyId = leftover.apiKeyId;
    found = { ...revoked, apiKeyId };
    leftoverMade = leftover.made;
  }
  await turnOffRotation(deps, name);
  if (leftoverMade) return found;
  const id = apiKeyId;
  await deps.apiKeys.setEnabled(id, false);
  if (usagePlanId) await deps.apiKeys.removeFromUsagePlan(usagePlanId, id);
  return found;
}
