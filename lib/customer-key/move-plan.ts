import { TransientError, UsagePlanStageConflictError } from '../errors.js';
import { type KeyRecord, type KeyResult, keyResult, NOT_YET_RETRY_MS, type ProvisionDeps, usagePlanFor } from './key-record.js';
import { apiKeyName, secretName } from './naming.js';
import { CONFLICT, loadRecord, recordKey, untilWritten } from './record-store.js';
import { forgetPlanStages, planStages } from './usage-plans.js';

/**
 * The `entitlement-updated` hook with ON_ENTITLEMENT_UPDATED=move-to-configured-plan: moves an active key to the
 * plan USAGE_PLANS names for its product (and tier) now — the seller changes the map, then the notification (or a
 * replay of it) moves the key. A key can be in one usage plan per API stage (API Gateway docs): where the two plans
 * share a stage it leaves the old plan first and joins the new one at once, else it joins first and then leaves, so
 * the buyer is without a plan for at most the one call between. `unchanged` when there is no active key or it is in
 * that plan already. The record's new plan is a conditional write: when someone changed the record meanwhile (a
 * revoke), the move reads it again and decides again, and a key no longer active leaves the plan it just joined.
 */
export async function moveToConfiguredPlan(
  request: { customerId: string; productCode?: string; eventTime: string },
  deps: ProvisionDeps,
): Promise<KeyResult> {
  const { config } = deps;
  const keyName = apiKeyName(config.namePrefix, request.customerId, request.productCode);
  const name = secretName(config.namePrefix, request.customerId, request.productCode);
  const key = recordKey(request.customerId, request.productCode);
  let joined: { plan: string; apiKeyId: string } | undefined;
  const seen: { version?: number } = {};
  return untilWritten(key, 'its plan was being moved', async () => {
    const current = await loadRecord(deps, key, name, true, seen);
    if (!current) return { outcome: 'unchanged', apiKeyName: keyName, secretName: name };
    const { record, version } = current;
    if (joined && (record.status !== 'active' || record.apiKeyId !== joined.apiKeyId) && record.usagePlanId !== joined.plan) {
      // A revoke won the race: the key leaves the plan this move had put it in.
      const left = joined;
      await deps.apiKeys.removeFromUsagePlan(left.plan, left.apiKeyId);
      joined = undefined;
    }
    const moved = await moveOnce(request, deps, record, keyName, name);
    if (moved.kind === 'done') return moved.result;
    joined = moved.joined;
    if (!(await deps.records.put(key, moved.record, version))) return CONFLICT;
    return { ...keyResult('plan-changed', keyName, name, moved.record), previousUsagePlanId: moved.previous };
  });
}

type Move =
  | { kind: 'done'; result: KeyResult }
  | { kind: 'moved'; record: KeyRecord; previous: string | undefined; joined: { plan: string; apiKeyId: string } };

/** One decision on the record as read: unchanged, or the key moved (join and leave done, the record still to write). */
async function moveOnce(
  request: { customerId: string; productCode?: string },
  deps: ProvisionDeps,
  record: KeyRecord,
  keyName: string,
  name: string,
): Promise<Move> {
  const { config } = deps;
  const target = usagePlanFor(config.usagePlans, request.productCode, record.plan ?? undefined);
  const { apiKeyId, usagePlanId: previous } = record;
  if (record.status !== 'active' || !apiKeyId || !target || target === previous)
    return { kind: 'done', result: keyResult('unchanged', keyName, name, record) };

  const targetStages = await planStages(deps, target);
  // The old plan may be gone already (a seller retiring it): then there is nothing to leave.
  const previousStages = previous ? ((await deps.apiKeys.usagePlanStages(previous)) ?? []) : [];
  const join = () => deps.apiKeys.addToUsagePlan(target, apiKeyId);
  const leave = async () => {
    if (previous) await deps.apiKeys.removeFromUsagePlan(previous, apiKeyId);
  };
  if (previousStages.some((stage) => targetStages.includes(stage))) {
    await leave();
    await join();
  } else {
    try {
      await join();
    } catch (error) {
      if (!(error instanceof UsagePlanStageConflictError)) throw error;
      // The target shares a stage with the old plan after all: the stages this instance had for it were stale (a
      // seller changed them). Nothing was written; with the stages looked up again, the next try leaves first.
      forgetPlanStages(deps, target);
      throw new TransientError(`moving key ${apiKeyId} to plan ${target}: the plan's stages had changed, the move is tried again`, {
        cause: error,
        retryAfterMs: NOT_YET_RETRY_MS,
      });
    }
    await leave();
  }
  return { kind: 'moved', record: { ...record, usagePlanId: target }, previous, joined: { plan: target, apiKeyId } };
}
