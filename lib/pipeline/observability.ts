import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { CompletionEvent } from './completion.js';

/** The one logger of the function. Level from POWERTOOLS_LOG_LEVEL; service name from POWERTOOLS_SERVICE_NAME. */
export const logger = new Logger({ serviceName: 'api-key-provisioner' });

/**
 * The function's metrics, written as CloudWatch embedded metric format (EMF) log lines and flushed at the end of
 * each invocation by the Middy middleware. Namespace from POWERTOOLS_METRICS_NAMESPACE, else `ApiKeyProvisioner`.
 */
export const metrics = new Metrics({
  namespace: process.env.POWERTOOLS_METRICS_NAMESPACE ?? 'ApiKeyProvisioner',
  serviceName: 'api-key-provisioner',
  // Its own warnings (an empty flush, which the local runner's concurrent pollers cause: they share one instance)
  // go through the function's logger, structured and at its level, not as bare console lines.
  logger,
});

/** Metric names, in one place for dashboards and alarms (README: Operations). */
export const METRIC = {
  /** Records per invocation: how many messages the function saw, whatever became of them. */
  received: 'RecordsReceived',
  provisioned: 'KeysProvisioned',
  alreadyProvisioned: 'KeysAlreadyProvisioned',
  enabled: 'KeysEnabled',
  revoked: 'KeysRevoked',
  planChanged: 'KeysMovedBetweenPlans',
  failed: 'ProvisioningFailures',
  acknowledged: 'NotificationsAcknowledged',
  ignored: 'NotificationsIgnored',
  handedBack: 'RecordsHandedBack',
  throttles: 'Throttles',
  retries: 'Retries',
  latency: 'EndToEndLatency',
  /** Records handed back because the Region holds API_KEY_QUOTA keys (outcome `capacity-exhausted`). */
  capacityExhausted: 'CapacityExhausted',
} as const;

/** Counts one completion event; failures also by `reason` (a metric of its own, with that dimension). */
export function recordOutcome(target: Metrics, event: CompletionEvent, eventTime: string | undefined, now: Date): void {
  switch (event.type) {
    case 'api-key.provisioned':
      target.addMetric(event.outcome === 'provisioned' ? METRIC.provisioned : METRIC.alreadyProvisioned, MetricUnit.Count, 1);
      if (event.outcome === 'provisioned' && eventTime) {
        // From when the producer says the signup happened to now: the wait a customer sees.
        target.addMetric(METRIC.latency, MetricUnit.Milliseconds, Math.max(0, now.getTime() - Date.parse(eventTime)));
      }
      return;
    case 'api-key.enabled':
      target.addMetric(METRIC.enabled, MetricUnit.Count, 1);
      return;
    case 'api-key.revoked':
      target.addMetric(METRIC.revoked, MetricUnit.Count, 1);
      return;
    case 'api-key.plan-changed':
      target.addMetric(METRIC.planChanged, MetricUnit.Count, 1);
      return;
    case 'api-key.notification-acknowledged':
      target.addMetric(METRIC.acknowledged, MetricUnit.Count, 1);
      return;
    case 'api-key.notification-ignored':
      target.addMetric(METRIC.ignored, MetricUnit.Count, 1);
      return;
    case 'api-key.provisioning-failed': {
      target.addMetric(METRIC.failed, MetricUnit.Count, 1);
      const byReason = target.singleMetric();
      byReason.addDimension('reason', event.reason);
      byReason.addMetric(METRIC.failed, MetricUnit.Count, 1);
      return;
    }
  }
}
