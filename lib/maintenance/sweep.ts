import type { ApiKeyStore, CallRunner } from '../aws/api-gateway.js';
import { endOverlaps, type OverlapOutcome } from './end-overlap.js';
import { dueBefore, isDue, type RetireDeps, type RetireOutcome, retireKey } from './retire.js';

/**
 * The record table's sparse index `due` (lib/aws/dynamodb.ts dynamoDbDueIndex): the keys of the records due at or
 * before `until`, oldest first, a page at a time; `next` is opaque, handed back to read the following page.
 */
export interface DueIndex {
  /** `partition`: `revoked` (default: revoked keys by when they were revoked) or `overlap` (old keys of rolls by when they end). */
  page(until: string, start?: unknown, limit?: number, partition?: 'revoked' | 'overlap'): Promise<{ keys: string[]; next?: unknown }>;
}

export interface SweepDeps extends RetireDeps {
  config: RetireDeps['config'] & {
    /** API_KEY_QUOTA: the Region's API key quota (10,000, not adjustable), for the capacity metric's share. */
    apiKeyQuota: number;
  };
  apiKeys: RetireDeps['apiKeys'] & Pick<ApiKeyStore, 'countApiKeys'>;
  dueIndex: DueIndex;
}

export interface SweepOptions {
  /** The time at which what is due is evaluated (`--as-of`); the retirement times written are `deps.now()`. */
  asOf: Date;
  /** List what is due and what would be done, change nothing (`--dry-run`). */
  dryRun?: boolean;
  /** Count the Region's API keys (the capacity guard). Default true. */
  countKeys?: boolean;
  /** Items per page of the index (default 100). */
  pageSize?: number;
}

export type DryRunOutcome = 'would-retire' | 'would-finish' | 'would-end-overlap' | 'not-due';

export interface SweepReport {
  asOf: string;
  /** Keys revoked at or before this are due; absent when RETIRE_AFTER_DAYS is 0 (nothing is ever retired). */
  dueBefore?: string;
  dryRun: boolean;
  /** Pages of the index read. */
  pages: number;
  /** What became of each record the index listed as due for retirement (record key → outcome). */
  outcomes: Record<string, RetireOutcome | DryRunOutcome>;
  /** What became of each record the index listed with old keys of a roll whose overlap is over. */
  overlaps: Record<string, OverlapOutcome | DryRunOutcome>;
  /** Records whose retirement failed this time (they stay in the index: the next run tries again). Never a key value. */
  failures: Array<{ key: string; error: string }>;
  /** The Region's API keys after this run's retirements, and the quota they count against. */
  capacity?: { apiKeys: number; quota: number };
  /** Why the keys could not be counted, when they could not. */
  capacityError?: string;
}

/**
 * One maintenance run: first every record the index `due` lists with old keys of a roll whose overlap is over at
 * `asOf` has them deleted (lib/maintenance/end-overlap.ts); then every record it lists as due at `asOf` is retired (lib/maintenance/retire.ts), one
 * at a time — DeleteApiKey has its own quota of 5/s, paced by the retry runner's rate limiter — then the Region's API
 * keys are counted for the capacity guard. Its cost follows the work due, not the number of keys: one Query page per
 * 100 due records, then per due record one GetItem, two PutItems, one DeleteUsagePlanKey per plan and one
 * DeleteApiKey; only the count pages through all keys (one GetApiKeys per 500). A record whose retirement fails is
 * reported and left in the index for the next run; the others go on. With `dryRun`, the records are read, nothing is
 * written or deleted.
 */
export async function sweep(deps: SweepDeps, options: SweepOptions): Promise<SweepReport> {
  const until = dueBefore(options.asOf, deps.config.retireAfterDays);
  const report: SweepReport = {
    asOf: options.asOf.toISOString(),
    ...(until && { dueBefore: until }),
    dryRun: options.dryRun === true,
    pages: 0,
    outcomes: {},
    overlaps: {},
    failures: [],
  };
  const asOf = options.asOf.toISOString();
  // First the old keys whose overlap is over (a record is in one partition at a time: its retirement waits for them).
  await eachDue(deps, 'overlap', asOf, options.pageSize, report, async (key) => {
    if (key in report.overlaps) return;
    report.overlaps[key] = options.dryRun ? await dryRunOverlap(key, asOf, deps) : await endOverlaps(key, options.asOf, deps);
  });
  // RETIRE_AFTER_DAYS 0: nothing is due, but a retirement a crashed run left under way is finished (the index lists
  // it by its revocation time, so anything up to now).
  await eachDue(deps, 'revoked', until ?? asOf, options.pageSize, report, async (key) => {
    if (key in report.outcomes) return;
    report.outcomes[key] = options.dryRun ? await dryRun(key, until, deps) : await retireKey(key, options.asOf, deps);
  });
  if (options.countKeys !== false) {
    try {
      const runner: CallRunner = deps.retry.apiGateway;
      report.capacity = { apiKeys: await deps.apiKeys.countApiKeys(runner), quota: deps.config.apiKeyQuota };
    } catch (error) {
      report.capacityError = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    }
  }
  return report;
}

/** Every record the index's `partition` lists as due at `until`, a page at a time; a failure is reported and the rest go on. */
async function eachDue(
  deps: SweepDeps,
  partition: 'revoked' | 'overlap',
  until: string,
  pageSize: number | undefined,
  report: SweepReport,
  act: (key: string) => Promise<void>,
): Promise<void> {
  let start: unknown;
  do {
    const page = await deps.retry.records('Query', () => deps.dueIndex.page(until, start, pageSize, partition));
    report.pages += 1;
    for (const key of page.keys) {
      try {
        await act(key);
      } catch (error) {
        report.failures.push({ key, error: error instanceof Error ? `${error.name}: ${error.message}` : String(error) });
      }
    }
    start = page.next;
  } while (start !== undefined);
}

/** What {@link endOverlaps} would do with the record now, read only. */
async function dryRunOverlap(key: string, asOf: string, deps: SweepDeps): Promise<DryRunOutcome> {
  const found = await deps.retry.records('GetItem', () => deps.records.get(key));
  return found?.record.endingKeys?.some((ending) => ending.endsAt <= asOf) ? 'would-end-overlap' : 'not-due';
}

/** What {@link retireKey} would do with the record now, read only. */
async function dryRun(key: string, until: string | undefined, deps: SweepDeps): Promise<DryRunOutcome> {
  const found = await deps.retry.records('GetItem', () => deps.records.get(key));
  if (!found) return 'not-due';
  if (found.record.retiredKeyId && !found.record.retiredAt) return 'would-finish';
  return until && isDue(found.record, until) ? 'would-retire' : 'not-due';
}
