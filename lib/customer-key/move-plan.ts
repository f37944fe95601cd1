import { deterministicId } from '../ids.js';
import { type KeyResult, keyResult, type ProvisionDeps, readRecord, type SecretRecord, usagePlanFor } from './key-record.js';
import { apiKeyName, secretName } from './naming.js';
import { planStages } from './usage-plans.js';

/**
 * The `entitlement-updated` hook with ON_ENTITLEMENT_UPDATED=move-to-configured-plan: moves an active key to the
 * plan USAGE_PLANS names for its product (and tier) now — the seller changes the map, then the notification (or a
 * replay of it) moves the key. A key can be in one usage plan per API stage (API Gateway docs): where the two plans
 * share a stage it leaves the old plan first and joins the new one at once, else it joins first and then leaves, so
 * the buyer is without a plan for at most the one call between. `unchanged` when there is no active key or it is in
 * that plan already. The secret version's token includes the notification's time: A→B→A→B writes four versions.
 */
export async function moveToConfiguredPlan(
  request: { customerId: string; productCode?: string; eventTime: string },
  deps: ProvisionDeps,
): Promise<KeyResult> {
  const { config } = deps;
  const { apiGateway, secrets } = deps.retry;
  const keyName = apiKeyName(config.namePrefix, request.customerId, request.productCode);
  const name = secretName(config.namePrefix, request.customerId, request.productCode);
  const secret = await secrets('GetSecretValue', () => deps.secrets.getSecret(name));
  if (!secret) return { outcome: 'unchanged', apiKeyName: keyName, secretArn: '', secretName: name };
  const record = readRecord(secret);
  const target = usagePlanFor(config.usagePlans, request.productCode, record.plan ?? undefined);
  const { apiKeyId, usagePlanId: previous } = record;
  if (record.status !== 'active' || !apiKeyId || !target || target === previous)
    return keyResult('unchanged', keyName, name, secret, record);

  const targetStages = await planStages(deps, target);
  // The old plan may be gone already (a seller retiring it): then there is nothing to leave.
  const previousStages = previous ? ((await apiGateway('GetUsagePlan', () => deps.apiKeys.usagePlanStages(previous))) ?? []) : [];
  const join = () => apiGateway('CreateUsagePlanKey', () => deps.apiKeys.addToUsagePlan(target, apiKeyId));
  const leave = async () => {
    if (previous) await apiGateway('DeleteUsagePlanKey', () => deps.apiKeys.removeFromUsagePlan(previous, apiKeyId));
  };
  if (previousStages.some((stage) => targetStages.includes(stage))) {
    await leave();
    await join();
  } else {
    await join();
    await leave();
  }
  const moved: SecretRecord = { ...record, usagePlanId: target };
  const token = deterministicId('secret-version', name, apiKeyId, 'plan', previous ?? '', target, request.eventTime);
  await secrets('PutSecretValue', () => deps.secrets.putSecretValue(name, JSON.stringify(moved), token));
  return { ...keyResult('plan-changed', keyName, name, secret, moved), previousUsagePlanId: previous };
}
