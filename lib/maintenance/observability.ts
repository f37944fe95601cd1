import type { Metrics } from '@aws-lambda-powertools/metrics';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import type { SweepReport } from './sweep.js';

/** The sweep's metrics (namespace of lib/pipeline/observability.ts); serverless.yml's capacity alarm names `apiKeys`. */
export const SWEEP_METRIC = {
  retired: 'KeysRetired',
  /** Records whose old keys (a roll's overlap) the run deleted. */
  overlapsEnded: 'OverlapsEnded',
  retirementFailures: 'RetirementFailures',
  /** The Region's API keys, everyone's: the capacity guard's alarm is at 80 % of API_KEY_QUOTA. */
  apiKeys: 'ApiKeysInRegion',
  /** The same as a share of API_KEY_QUOTA. */
  apiKeyQuotaUsed: 'ApiKeyQuotaUsed',
} as const;

/** Adds one run's figures to `target` (flushed by the handler's logMetrics middleware). */
export function recordSweep(target: Metrics, report: SweepReport): void {
  const retired = Object.values(report.outcomes).filter((o) => o === 'retired' || o === 'finished').length;
  target.addMetric(SWEEP_METRIC.retired, MetricUnit.Count, retired);
  const ended = Object.values(report.overlaps).filter((o) => o === 'ended').length;
  target.addMetric(SWEEP_METRIC.overlapsEnded, MetricUnit.Count, ended);
  target.addMetric(SWEEP_METRIC.retirementFailures, MetricUnit.Count, report.failures.length + (report.capacityError ? 1 : 0));
  if (report.capacity) {
    target.addMetric(SWEEP_METRIC.apiKeys, MetricUnit.Count, report.capacity.apiKeys);
    target.addMetric(SWEEP_METRIC.apiKeyQuotaUsed, MetricUnit.Percent, (100 * report.capacity.apiKeys) / report.capacity.quota);
  }
}

/** The report in a few numbers, for a log line (record keys only in `failures`; never a key value). */
export function sweepSummary(report: SweepReport) {
  const counts: Record<string, number> = {};
  for (const outcome of Object.values(report.outcomes)) counts[outcome] = (counts[outcome] ?? 0) + 1;
  for (const outcome of Object.values(report.overlaps)) counts[`overlap-${outcome}`] = (counts[`overlap-${outcome}`] ?? 0) + 1;
  return {
    asOf: report.asOf,
    dueBefore: report.dueBefore ?? 'never (RETIRE_AFTER_DAYS=0)',
    dryRun: report.dryRun,
    pages: report.pages,
    ...counts,
    failures: report.failures,
    ...(report.capacity && { apiKeys: report.capacity.apiKeys, apiKeyQuota: report.capacity.quota }),
    ...(report.capacityError && { capacityError: report.capacityError }),
  };
}
