import { EnvironmentError } from '../errors.js';
import type { ProvisionDeps } from './key-record.js';

/**
 * How long an instance trusts the stages it looked up for a plan: 5 minutes. The stages decide the order of a plan
 * move (lib/customer-key/move-plan.ts) and a seller may change them at any time; a move made in the wrong order is
 * refused without effect and retried with the stages looked up again (move-plan.ts), so the lifetime only bounds
 * how often a stale order costs one refused call, against one GetUsagePlan per plan, instance and lifetime on the
 * "Total operations" quota (a few per hour; a lifetime of a minute or less would approach one per record again).
 */
export const PLAN_STAGES_TTL_MS = 5 * 60_000;

/** When each cached lookup was started, by its promise: ProvisionDeps' map holds the promises alone. */
const lookedUpAt = new WeakMap<Promise<string[]>, number>();

/**
 * The API stages of a configured usage plan (GetUsagePlan), looked up at most once per {@link PLAN_STAGES_TTL_MS}
 * per function instance. moto takes any plan id; API Gateway answers CreateUsagePlanKey on an unknown one with 404
 * — after the key was created. So the plan is checked before any key exists: an unknown id is an
 * {@link EnvironmentError} (USAGE_PLANS names a plan this account and Region do not have), retried and
 * dead-lettered, never blamed on the message.
 */
export function planStages(deps: ProvisionDeps, usagePlanId: string): Promise<string[]> {
  const now = deps.now().getTime();
  const known = deps.knownPlans?.get(usagePlanId);
  if (known && now - (lookedUpAt.get(known) ?? Number.NEGATIVE_INFINITY) < PLAN_STAGES_TTL_MS) return known;
  // The lookup itself is shared, so the records of one batch ask once; a failed one is asked again next time.
  const lookup = deps.apiKeys.usagePlanStages(usagePlanId).then((stages) => {
    if (stages === undefined)
      throw new EnvironmentError(`usage plan ${usagePlanId} (USAGE_PLANS) does not exist in this account and Region`);
    return stages;
  });
  lookedUpAt.set(lookup, now);
  deps.knownPlans?.set(usagePlanId, lookup);
  lookup.catch(() => forgetPlanStages(deps, usagePlanId, lookup));
  return lookup;
}

/**
 * Forgets the cached stages of a plan (API Gateway said they are not what this instance thought): the next
 * {@link planStages} looks them up again. With `lookup`, only if that lookup is still the cached one.
 */
export function forgetPlanStages(deps: ProvisionDeps, usagePlanId: string, lookup?: Promise<string[]>): void {
  if (lookup === undefined || deps.knownPlans?.get(usagePlanId) === lookup) deps.knownPlans?.delete(usagePlanId);
}
