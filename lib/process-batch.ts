import { BatchProcessor, EventType } from '@aws-lambda-powertools/batch';
import type { Logger } from '@aws-lambda-powertools/logger';
import { type Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import pLimit from 'p-limit';
import type { ApiKeyStore } from './aws/api-gateway.js';
import type { SecretStore } from './aws/secrets-manager.js';
import { type MessageSink, type MessageSource, SQS_BATCH_LIMIT, type VisibilityChange } from './aws/sqs.js';
import { type CompletionEvent, completionEvent, deterministicId } from './completion.js';
import type { Config } from './config.js';
import { RejectedError, RetryableError, ThrottledError } from './errors.js';
import { type ParsedMessage, parseMessageBody } from './messages.js';
import { METRIC, recordOutcome } from './observability.js';
import { moveToConfiguredPlan, provisionKey, revokeKey } from './provision.js';
import type { RateLimiter } from './rate-limiter.js';
import { withRetry } from './retry.js';

export interface BatchDeps {
  config: Config;
  apiKeys: ApiKeyStore;
  secrets: SecretStore;
  completions: MessageSink;
  /** The queues the records come from, to delay a handed-back record by its known wait. Optional. */
  signupQueue?: MessageSource;
  /** Paces API Gateway calls across all records of this instance. Optional. */
  apiGatewayLimiter?: RateLimiter;
  logger: Logger;
  /** Outcome counts, throttles, retries and latency (lib/observability.ts). Optional. */
  metrics?: Metrics;
  now?: () => Date;
}

/** SQS's longest visibility timeout: 12 hours. */
const MAX_VISIBILITY_SECONDS = 43_200;

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

/** What one record came to, when it is not handed back to SQS. */
interface RecordResult {
  record: SQSRecord;
  event: CompletionEvent;
}

/** The correlation id of a record: the producer's event id when the body is readable and has one, else the SQS message id. */
function correlationIdOf(parsed: ParsedMessage | undefined, record: SQSRecord): string {
  return parsed?.eventId || record.messageId;
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

  async function processRecord(record: SQSRecord, context: Context): Promise<RecordResult> {
    let parsed: ParsedMessage | undefined;
    let parseError: unknown;
    try {
      parsed = parseMessageBody(record.body, new Date(Number(record.attributes.SentTimestamp) || Date.now()).toISOString());
    } catch (error) {
      parseError = error;
    }
    const correlationId = correlationIdOf(parsed, record);
    const log = deps.logger.createChild({ persistentKeys: { correlationId, messageId: record.messageId } });
    const receiveCount = Number(record.attributes.ApproximateReceiveCount);
    log.debug('Record received', { receiveCount, bodyLength: record.body.length, sentTimestamp: record.attributes.SentTimestamp });
    const retrying =
      (limiter: RateLimiter | undefined) =>
      <T>(operation: string, call: () => Promise<T>) =>
        withRetry(operation, call, {
          policy: deps.config.retry,
          // Records stop one safety margin early: the completion events still have to go out after them.
          remainingTimeMs: () => context.getRemainingTimeInMillis() - deps.config.retry.safetyMarginMs,
          limiter,
          onRetry: ({ attempt, delayMs, error }) => {
            deps.metrics?.addMetric(error instanceof ThrottledError ? METRIC.throttles : METRIC.retries, MetricUnit.Count, 1);
            log.warn('Retrying AWS call', { operation, attempt, delayMs: Math.round(delayMs), error: error.message });
          },
        });
    const base = { occurredAt: now().toISOString(), correlationId, messageId: record.messageId };

    try {
      if (parseError) throw parseError;
      if (!parsed) throw new Error('unreachable: no parse result');
      const request = parsed;
      log.info('Message received', {
        kind: request.kind,
        action: 'action' in request ? request.action : undefined,
        source: request.source,
        customerId: request.customerId,
        productCode: request.productCode,
        eventTime: request.eventTime,
        receiveCount,
      });
      const provisionDeps = {
        config: deps.config,
        apiKeys: deps.apiKeys,
        secrets: deps.secrets,
        now,
        retry: { apiGateway: retrying(deps.apiGatewayLimiter), secrets: retrying(undefined) },
      };
      const movesPlans =
        request.kind === 'notice' &&
        request.action === 'entitlement-updated' &&
        deps.config.onEntitlementUpdated === 'move-to-configured-plan';
      const result =
        request.kind === 'provision'
          ? await provisionKey(request, provisionDeps)
          : request.kind === 'revoke'
            ? await revokeKey(request, provisionDeps)
            : movesPlans
              ? await moveToConfiguredPlan(request, provisionDeps)
              : undefined;
      const event = completionEvent(request, result, base);
      if (deps.metrics) recordOutcome(deps.metrics, event, request.eventTime, now());
      log.info('Message done', {
        type: event.type,
        outcome: result?.outcome,
        customerId: request.customerId,
        apiKeyId: result?.apiKeyId,
        secretName: result?.secretName,
      });
      return { record, event };
    } catch (error) {
      if (error instanceof RejectedError) {
        log.warn('Message rejected', { reason: error.reason, error: error.message, receiveCount });
        const subject = parsed && { source: parsed.source, customerId: parsed.customerId, productCode: parsed.productCode };
        const event: CompletionEvent = {
          type: 'api-key.provisioning-failed',
          eventId: deterministicId('failed', record.messageId, error.reason),
          ...base,
          reason: error.reason,
          message: error.message,
          ...subject,
        };
        if (deps.metrics) recordOutcome(deps.metrics, event, parsed?.eventTime, now());
        return { record, event };
      }
      const message = error instanceof Error ? `${error.name}: ${error.message}` : 'non-error thrown';
      if (error instanceof RetryableError) log.warn('Record handed back to SQS for a later retry', { error: message, receiveCount });
      else log.error('Unexpected error: record handed back to SQS', { error: message, receiveCount });
      throw error;
    }
  }

  /** Sends one event per result; returns the message ids of records whose event SQS did not take. */
  async function sendEvents(results: RecordResult[], context: Context): Promise<string[]> {
    const unsent: string[] = [];
    for (let i = 0; i < results.length; i += SQS_BATCH_LIMIT) {
      const chunk = results.slice(i, i + SQS_BATCH_LIMIT);
      const messages = chunk.map(({ event }, index) => ({
        id: String(index),
        body: JSON.stringify(event),
        deduplicationId: event.eventId,
        // One group per customer (and product) keeps each customer's events in order on a FIFO queue.
        groupId: 'customerId' in event && event.customerId ? `${event.productCode ?? '_'}/${event.customerId}` : event.messageId,
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
        deps.logger.error('Completion events not sent: their records go back to SQS', {
          error: error instanceof Error ? error.message : String(error),
        });
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
          deps.logger.warn('Could not delay handed-back records', { error: error instanceof Error ? error.message : String(error) });
        }
      }
    }
  }

  return async function processBatch(event: SQSEvent, context: Context): Promise<SQSBatchResponse> {
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
    deps.logger.info('Batch processed', {
      records: event.Records.length,
      completed: results.length - unsent.length,
      handedBack: failures.length,
    });
    return { batchItemFailures: failures };
  };
}
