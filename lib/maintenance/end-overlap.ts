import type { KeyRecord } from '../customer-key/key-record.js';
import { CONFLICT, untilWritten } from '../customer-key/record-store.js';
import { configuredPlan, type RetireDeps } from './retire.js';

/**
 * `ended`: the old keys whose overlap ended are deleted and the record says so. `not-due`: none has ended (or no
 * record). A lost write is read again and done again (every step is safe to repeat).
 */
export type OverlapOutcome = 'ended' | 'not-due';

/**
 * Ends the overlaps of the record `key` that are over at `asOf`: each old key (`endingKeys`, lib/customer-key/roll.ts)
 * whose `endsAt` has passed is taken out of its plan and deleted — DeleteApiKey through the rate limiter (5/s) — then
 * the record is written without it (conditional on the version read; a lost write reads the record again and does
 * the rest again). A key gone already is skipped: IAM's tag condition denies a DELETE of a key that no longer exists
 * (AccessDenied, not 404), so GetApiKey looks first. Deleting takes the key out of service at once; it is not
 * disabled first (that would be one more call of the shared quota for nothing). Until the sweep runs (every 5 minutes)
 * an old key keeps working past its `endsAt`: a roll with grace 0 disables it at once instead.
 */
export async function endOverlaps(key: string, asOf: Date, deps: RetireDeps): Promise<OverlapOutcome> {
  const until = asOf.toISOString();
  return untilWritten(key, 'ending overlaps', async () => {
    const found = await deps.retry.records('GetItem', () => deps.records.get(key));
    const due = found?.record.endingKeys?.filter((ending) => ending.endsAt <= until) ?? [];
    if (!found || due.length === 0) return 'not-due';
    const { record, version } = found;
    const { apiGateway } = deps.retry;
    for (const { apiKeyId } of due) {
      // Never the record's own key (a hand edit could list it): only old keys are deleted.
      if (apiKeyId === record.apiKeyId) continue;
      const plan = record.usagePlanId ?? configuredPlan(deps.config.usagePlans, record);
      if (plan) await apiGateway('DeleteUsagePlanKey', () => deps.apiKeys.removeFromUsagePlan(plan, apiKeyId));
      if (await apiGateway('GetApiKey', () => deps.apiKeys.getApiKey(apiKeyId)))
        await apiGateway('DeleteApiKey', () => deps.apiKeys.deleteApiKey(apiKeyId));
    }
    const rest = (record.endingKeys ?? []).filter((ending) => ending.endsAt > until);
    const written: KeyRecord = { ...record, endingKeys: rest.length > 0 ? rest : undefined };
    return (await deps.retry.records('PutItem', () => deps.records.put(key, written, version))) ? 'ended' : CONFLICT;
  });
}
