import { EnvironmentError } from '../errors.js';
import type { ProvisionDeps } from './key-record.js';

/**
 * The API stages of a configured usage plan, checked once per function instance (GetUsagePlan). moto takes any plan
 * id; API Gateway answers CreateUsagePlanKey on an unknown one with 404 — after the key was created. So the plan is
 * checked before any key exists: an unknown id is an {@link EnvironmentError} (USAGE_PLANS names a plan this account
 * and Region do not have), retried and dead-lettered, never blamed on the message.
 */
export function planStages(deps: ProvisionDeps, usagePlanId: string): Promise<string[]> {
  const known = deps.knownPlans?.get(usagePlanId);
  if (known) return known;
  // The lookup itself is shared, so the records of one batch ask once; a failed one is asked again next time.
  const lookup = deps.retry
    .apiGateway('GetUsagePlan', () => deps.apiKeys.usagePlanStages(usagePlanId))
    .then((stages) => {
      if (stages === undefined)
        throw new EnvironmentError(`usage plan ${usagePlanId} (USAGE_PLANS) does not exist in this account and Region`);
      return stages;
    });
  deps.knownPlans?.set(usagePlanId, lookup);
  lookup.catch(() => deps.knownPlans?.delete(usagePlanId));
  return lookup;
}
