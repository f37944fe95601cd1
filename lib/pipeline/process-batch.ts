import { createHash } from 'node:crypto';
import { BatchProcessor, EventType } from '@aws-lambda-powertools/batch';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import pLimit from 'p-limit';
import { SQS_BATCH_LIMIT, type VisibilityChange } from '../aws/sqs.js';
import { NO_PRODUCT } from '../customer-key/naming.js';
import { RetryableError } from '../errors.js';
import { withRetry } from '../quota/retry.js';
import type { CompletionEvent } from './completion.js';
import type { BatchDeps } from './deps.js';
import { METRIC } from './observability.js';
import { createRecordProcessor, type RecordResult } from './process-record.js';

export type { BatchDeps } from './deps.js';

/** SQS's longest visibility timeout: 12 hours. */
const MAX_VISIBILITY_SECONDS = 43_200;

/** The longest an invocation waits at its end to leave the instances' heartbeats (one DynamoDB call). */
const IDLE_WAIT_MS = 1_000;

/** The visibility timeout for a handed-back record: the wait it was told (Retry-After, the limiter's queue), if any. */
export function redeliveryDelaySeconds(error: unknown): number | undefined {
  let current: unknown = error;
  while (current instanceof Error) {
    if (current instanceof RetryableError && current.retryAfterMs !== undefined) {
      return Math.min(MAX_VISIBILITY_SECONDS, Math.max(1, Math.ceil(current.retryAfterMs / 1000)));
    }
    current = current.cause;
  }
  return undefined;
}

/** SQS's limit on a FIFO MessageGroupId. */
const MAX_GROUP_ID = 128;

/**
 * The completion event's FIFO group: one per customer (and product), which keeps each customer's events in order.
 * Customer ids run to 256 characters and SQS takes at most 128 (SendMessage API reference): a longer group is hashed.
 */
export function messageGroupId(event: CompletionEvent): string {
  const group = 'customerId' in event && event.customerId ? `${event.productCode ?? NO_PRODUCT}/${event.customerId}` : event.messageId;
  return group.length <= MAX_GROUP_ID ? group : `sha256:${createHash('sha256').update(group).digest('hex')}`;
}

/**
 * Builds the SQS batch handler. Each record is processed on its own (`recordConcurrency` at a time; a failing
 * record never fails the others): it ends provisioned, already provisioned, enabled, revoked, acknowledged,
 * ignored (stale) or rejected — each announced by a completion event, all sent with SendMessageBatch once per
 * invocation — or it is returned in `batchItemFailures` for SQS to redeliver (retryable errors, deadline,
 * unexpected errors, an event SQS did not take); one that knows its wait is delayed by that much.
 */
export function createBatchHandler(deps: BatchDeps) {
  const now = deps.now ?? (() => new Date());

  const processRecord = createRecordProcessor(deps, now);

  /** Sends one event per result; returns the message ids of records whose event SQS did not take. */
  async function sendEvents(results: RecordResult[], context: Context): Promise<string[]> {
    const unsent: string[] = [];
    for (let i = 0; i < results.length; i += SQS_BATCH_LIMIT) {
      const chunk = results.slice(i, i + SQS_BATCH_LIMIT);
      const messages = chunk.map(({ event }, index) => ({
        id: String(index),
        body: JSON.stringify(event),
        deduplicationId: event.eventId,
        groupId: messageGroupId(event),
      }));
      try {
        const { failedIds } = await withRetry('SendMessageBatch', () => deps.completions.sendBatch(messages), {
          // Half the margin: records stopped a whole margin early to leave this time.
          policy: { ...deps.config.retry, safetyMarginMs: deps.config.retry.safetyMarginMs / 2 },
          remainingTimeMs: () => context.getRemainingTimeInMillis(),
        });
        for (const id of failedIds) {
          const result = chunk[Number(id)];
          if (result) unsent.push(result.record.messageId);
        }
      } catch (error) {
        deps.logger.error('Completion events not sent: their records go back to SQS', { error });
        unsent.push(...chunk.map((r) => r.record.messageId));
      }
    }
    return unsent;
  }

  /** Delays the redelivery of handed-back records that know how long to wait, instead of the queue's visibility timeout. */
  async function delayRedeliveries(failed: Array<[unknown, SQSRecord]>): Promise<void> {
    if (!deps.signupQueue) return;
    const byQueue = new Map<string, VisibilityChange[]>();
    for (const [error, record] of failed) {
      const seconds = redeliveryDelaySeconds(error);
      if (seconds === undefined) continue;
      const changes = byQueue.get(record.eventSourceARN) ?? [];
      changes.push({ receiptHandle: record.receiptHandle, visibilityTimeoutSeconds: seconds });
      byQueue.set(record.eventSourceARN, changes);
    }
    for (const [queueArn, changes] of byQueue) {
      for (let i = 0; i < changes.length; i += SQS_BATCH_LIMIT) {
        try {
          await deps.signupQueue.changeVisibility(queueArn, changes.slice(i, i + SQS_BATCH_LIMIT));
        } catch (error) {
          // Not fatal: the queue's own visibility timeout applies instead.
          deps.logger.warn('Could not delay handed-back records', { error });
        }
      }
    }
  }

  return async function processBatch(event: SQSEvent, context: Context): Promise<SQSBatchResponse> {
    deps.metrics?.addMetric(METRIC.received, MetricUnit.Count, event.Records.length);
    const limit = pLimit(deps.config.recordConcurrency);
    const processor = new BatchProcessor(EventType.SQS);
    processor.register(event.Records, (record: SQSRecord) => limit(() => processRecord(record, context)), {
      context,
      throwOnFullBatchFailure: false,
    });
    const processed = await processor.process();
    const results = processed.flatMap(([status, result]) => (status === 'success' ? [result as RecordResult] : []));
    const unsent = await sendEvents(results, context);
    const { batchItemFailures } = processor.response();
    const failures = [...batchItemFailures, ...unsent.map((itemIdentifier) => ({ itemIdentifier }))];
    if (failures.length > 0) deps.metrics?.addMetric(METRIC.handedBack, MetricUnit.Count, failures.length);
    // The processor's result entries hold only error messages; its `errors` pair with `failureMessages`.
    await delayRedeliveries(processor.errors.map((error, i) => [error, processor.failureMessages[i] as SQSRecord]));
    // No API Gateway call until the next invocation: the other instances may take this one's share now. A slow
    // store must not hold the invocation past its deadline (a timed-out invocation has all its records redelivered).
    await deps.apiGatewayLimiter?.idle?.(Math.min(IDLE_WAIT_MS, context.getRemainingTimeInMillis() - deps.config.retry.safetyMarginMs / 2));
    deps.logger.info('Batch processed', {
      records: event.Records.length,
      completed: results.length - unsent.length,
      handedBack: failures.length,
    });
    return { batchItemFailures: failures };
  };
}
