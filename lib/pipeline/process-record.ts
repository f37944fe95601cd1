import type { Logger } from '@aws-lambda-powertools/logger';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import type { Context, SQSRecord } from 'aws-lambda';
import { API_GATEWAY_CALLS } from '../aws/api-gateway.js';
import { RECORD_CALLS } from '../aws/dynamodb.js';
import { SECRET_CALLS } from '../aws/secrets-manager.js';
import type { KeyResult, ProvisionDeps } from '../customer-key/key-record.js';
import { moveToConfiguredPlan } from '../customer-key/move-plan.js';
import { FIRST_SENT_AT_ATTRIBUTE } from '../customer-key/naming.js';
import { provisionKey } from '../customer-key/provision.js';
import { revokeKey } from '../customer-key/revoke.js';
import { rollKey } from '../customer-key/roll.js';
import { CapacityExhaustedError, EnvironmentError, RejectedError, RetryableError, ThrottledError } from '../errors.js';
import { deterministicId } from '../ids.js';
import { type ParsedMessage, parseMessageBody, peekEventId } from '../messages/index.js';
import { type CallRunner, throughRunner } from '../quota/call-path.js';
import type { RateLimiter } from '../quota/rate-limiter.js';
import { withRetry } from '../quota/retry.js';
import type { WriteTurns } from '../quota/usage-plan-turns.js';
import { type CompletionEvent, completionEvent, subjectOf } from './completion.js';
import type { BatchDeps } from './deps.js';
import { METRIC, recordOutcome } from './observability.js';

/** What one record came to, when it is not handed back to SQS. */
export interface RecordResult {
  record: SQSRecord;
  event: CompletionEvent;
}

type Parsed = { ok: true; message: ParsedMessage } | { ok: false; error: unknown };

/**
 * When the queue first got the message, the time of last resort for a body that carries none: the first send time
 * `npm run redrive` carries, else SentTimestamp.
 */
function queueTime(record: SQSRecord): string {
  const carried = Number(record.messageAttributes?.[FIRST_SENT_AT_ATTRIBUTE]?.stringValue);
  const sent = Number(record.attributes.SentTimestamp);
  return new Date((Number.isSafeInteger(carried) && carried > 0 ? carried : sent) || Date.now()).toISOString();
}

function parseRecord(record: SQSRecord): Parsed {
  try {
    return { ok: true, message: parseMessageBody(record.body, queueTime(record)) };
  } catch (error) {
    return { ok: false, error };
  }
}

/**
 * The correlation id of a record: the producer's event id when the body has a well-formed one — read from a
 * rejected body too — else the SQS message id.
 */
function correlationIdOf(parsed: Parsed, record: SQSRecord): string {
  return (parsed.ok ? parsed.message.eventId : peekEventId(record.body)) || record.messageId;
}

/** Runs the use case the message asks for; undefined for a notice that only gets announced. */
function dispatch(request: ParsedMessage, provisionDeps: ProvisionDeps, config: BatchDeps['config']): Promise<KeyResult> | undefined {
  if (request.kind === 'provision') return provisionKey(request, provisionDeps);
  if (request.kind === 'revoke') return revokeKey(request, provisionDeps);
  if (request.kind === 'roll') return rollKey(request, provisionDeps);
  if (request.action === 'entitlement-updated' && config.onEntitlementUpdated === 'move-to-configured-plan') {
    return moveToConfiguredPlan(request, provisionDeps);
  }
  return undefined;
}

/**
 * What the use cases work with, for one record (or one rotation step): the adapters with every method under the
 * retry policy — counting and logging each retry — and API Gateway's also under the instance's rate limiter and the
 * turns of usage-plan writes (lib/quota/call-path.ts: each method's operation comes from its adapter's table). The
 * configured plans seen to exist are remembered per function instance.
 */
export function createUseCaseDeps(deps: BatchDeps, now: () => Date): (log: Logger, context: Context) => ProvisionDeps {
  const knownPlans = new Map<string, Promise<string[]>>();
  const retrying =
    (log: Logger, context: Context, limiter: RateLimiter | undefined, turns?: WriteTurns): CallRunner =>
    (operation, call) =>
      withRetry(operation, call, {
        policy: deps.config.retry,
        // Records stop one safety margin early: the completion events still have to go out after them.
        remainingTimeMs: () => context.getRemainingTimeInMillis() - deps.config.retry.safetyMarginMs,
        limiter,
        turns,
        onRetry: ({ attempt, delayMs, error }) => {
          deps.metrics?.addMetric(error instanceof ThrottledError ? METRIC.throttles : METRIC.retries, MetricUnit.Count, 1);
          log.warn('Retrying AWS call', { operation, attempt, delayMs: Math.round(delayMs), error });
        },
      });
  return (log, context) => ({
    config: deps.config,
    // The function's own ARN without a qualifier: it rotates the secrets it schedules (lib/pipeline/rotation.ts).
    rotationFunctionArn: context.invokedFunctionArn?.split(':').slice(0, 7).join(':'),
    apiKeys: throughRunner(deps.apiKeys, API_GATEWAY_CALLS, retrying(log, context, deps.apiGatewayLimiter, deps.usagePlanTurns)),
    secrets: throughRunner(deps.secrets, SECRET_CALLS, retrying(log, context, undefined)),
    records: throughRunner(deps.records, RECORD_CALLS, retrying(log, context, undefined)),
    knownPlans,
    now,
  });
}

/**
 * Processes one record: parse, run its use case with every AWS call under the retry policy (API Gateway's also
 * under the instance's rate limiter), and return its completion event. A rejection (bad input) is a failure event;
 * any other error is thrown, so the batch hands the record back to SQS.
 */
export function createRecordProcessor(deps: BatchDeps, now: () => Date) {
  const useCaseDeps = createUseCaseDeps(deps, now);

  function rejection(
    error: RejectedError,
    record: SQSRecord,
    parsed: Parsed,
    base: Omit<CompletionEvent, 'type' | 'eventId'>,
  ): CompletionEvent {
    const subject = parsed.ok ? subjectOf(parsed.message) : {};
    return {
      type: 'api-key.provisioning-failed',
      eventId: deterministicId('failed', record.messageId, error.reason),
      ...base,
      reason: error.reason,
      message: error.message,
      ...subject,
    };
  }

  return async function processRecord(record: SQSRecord, context: Context): Promise<RecordResult> {
    const parsed = parseRecord(record);
    const correlationId = correlationIdOf(parsed, record);
    const log = deps.logger.createChild({ persistentKeys: { correlationId, messageId: record.messageId } });
    const receiveCount = Number(record.attributes.ApproximateReceiveCount);
    log.debug('Record received', { receiveCount, bodyLength: record.body.length, sentTimestamp: record.attributes.SentTimestamp });
    const base = { occurredAt: now().toISOString(), correlationId, messageId: record.messageId };
    const eventTime = parsed.ok ? parsed.message.eventTime : undefined;

    try {
      if (!parsed.ok) throw parsed.error;
      const request = parsed.message;
      log.info('Message received', {
        kind: request.kind,
        action: 'action' in request ? request.action : undefined,
        source: request.source,
        customerId: request.customerId,
        productCode: request.productCode,
        eventTime: request.eventTime,
        receiveCount,
      });
      const provisionDeps = useCaseDeps(log, context);
      const result = await dispatch(request, provisionDeps, deps.config);
      const event = completionEvent(request, result, base);
      if (deps.metrics) recordOutcome(deps.metrics, event, eventTime, now());
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
        log.warn('Message rejected', { reason: error.reason, error, receiveCount });
        const event = rejection(error, record, parsed, base);
        if (deps.metrics) recordOutcome(deps.metrics, event, eventTime, now());
        return { record, event };
      }
      // The Error itself: the logger writes its name, message, stack and causes (never a value: lib/errors.ts).
      const logged = error instanceof Error ? error : 'non-error thrown';
      if (error instanceof CapacityExhaustedError) {
        deps.metrics?.addMetric(METRIC.capacityExhausted, MetricUnit.Count, 1);
        log.error('The Region is full of API keys: record handed back, then dead-lettered, for a replay once keys are deleted', {
          outcome: error.outcome,
          error: logged,
          receiveCount,
        });
      } else if (error instanceof EnvironmentError) {
        log.error('AWS refused for a reason on our side (IAM, KMS, a plan, a secret being deleted): record handed back', {
          error: logged,
          receiveCount,
        });
      } else if (error instanceof RetryableError) log.warn('Record handed back to SQS for a later retry', { error: logged, receiveCount });
      else log.error('Unexpected error: record handed back to SQS', { error: logged, receiveCount });
      throw error;
    }
  };
}
