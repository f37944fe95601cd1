import { randomUUID } from 'node:crypto';
import type { Logger } from '@aws-lambda-powertools/logger';
import type { Metrics } from '@aws-lambda-powertools/metrics';
import type { ApiKeyStore } from '../aws/api-gateway.js';
import { apiGatewayAdapter, createApiGatewayClient } from '../aws/api-gateway.js';
import { createDynamoDbClient, dynamoDbFleetStore, dynamoDbRecordStore } from '../aws/dynamodb.js';
import { dynamoDbTimelineStore } from '../aws/dynamodb-turns.js';
import type { SecretStore } from '../aws/secrets-manager.js';
import { createSecretsManagerClient, secretsManagerAdapter } from '../aws/secrets-manager.js';
import type { MessageSink, MessageSource } from '../aws/sqs.js';
import { createSqsClient, sqsAdapter, sqsSourceAdapter } from '../aws/sqs.js';
import type { Config } from '../config.js';
import type { RecordStore } from '../customer-key/record-store.js';
import { createFleet } from '../quota/fleet.js';
import type { RateLimiter, SharingRateLimiterOptions } from '../quota/rate-limiter.js';
import { createRateLimiter } from '../quota/rate-limiter.js';
import { createWriteTurns, type WriteTurns } from '../quota/usage-plan-turns.js';
import { logger, metrics } from './observability.js';

/** What the batch handler works with: configuration, adapters, limiter, logger and metrics. */
export interface BatchDeps {
  config: Config;
  apiKeys: ApiKeyStore;
  secrets: SecretStore;
  /** The customers' records, changed only by conditional writes (KEY_RECORDS_TABLE). */
  records: RecordStore;
  completions: MessageSink;
  /** The queues the records come from, to delay a handed-back record by its known wait. Optional. */
  signupQueue?: MessageSource;
  /** Paces API Gateway calls across all records of this instance. Optional. */
  apiGatewayLimiter?: RateLimiter;
  /** Turns of usage-plan writes shared by all instances (COORDINATION_TABLE). Optional. */
  usagePlanTurns?: WriteTurns;
  logger: Logger;
  /** Outcome counts, throttles, retries and latency (lib/pipeline/observability.ts). Optional. */
  metrics?: Metrics;
  now?: () => Date;
}

type DynamoDBClient = ReturnType<typeof createDynamoDbClient>;

/** The production dependencies of the batch handler: one SDK client per service, built once per function instance. */
export function createDeps(config: Config): BatchDeps {
  const { requestTimeoutMs } = config;
  const sqs = createSqsClient(requestTimeoutMs);
  const dynamodb = createDynamoDbClient(requestTimeoutMs);
  return {
    config,
    apiKeys: apiGatewayAdapter(createApiGatewayClient(requestTimeoutMs)),
    secrets: secretsManagerAdapter(createSecretsManagerClient(requestTimeoutMs)),
    records: dynamoDbRecordStore(dynamodb, config.keyRecordsTable),
    completions: sqsAdapter(sqs, config.completionQueueUrl),
    signupQueue: sqsSourceAdapter(sqs),
    // One limiter per instance, shared by every record of every invocation: API Gateway's quota is per account.
    apiGatewayLimiter: config.apiGatewayRatePerSecond > 0 ? instanceLimiter(config, apiGatewayLimiterOptions(config), dynamodb) : undefined,
    usagePlanTurns: config.coordinationTable ? usagePlanTurns(dynamodb, config.coordinationTable) : undefined,
    logger,
    metrics,
  };
}

/**
 * The instance's API Gateway limiter settings: it starts at its static share and may probe up to the account's whole
 * quota; an instance pause a Retry-After causes is capped by the retry policy's longest wait, and the gap after a
 * failed usage-plan write grows from three times its base delay.
 */
export function apiGatewayLimiterOptions(config: Config): SharingRateLimiterOptions {
  return {
    sharePerSecond: config.apiGatewayRatePerSecond,
    ceilingPerSecond: config.apiGatewayAccountRatePerSecond,
    maxPauseMs: config.retry.maxDelayMs,
    // 3 × the base delay measured better than 1 × (docs/throughput.md, "Rate sharing: designs measured").
    usagePlanWriteBackoffMs: 3 * config.retry.baseDelayMs,
    // With shared turns the writes of all instances are on one timeline: none of this instance's has to wait for another.
    serialiseUsagePlanWrites: config.coordinationTable === undefined,
    // The same table counts the busy instances (lib/quota/fleet.ts).
    fleetAware: config.coordinationTable !== undefined,
  };
}

/**
 * The instance's limiter from `options`; with the coordination table, it is told how many instances are busy, from
 * heartbeats this instance writes while it makes API Gateway calls.
 */
export function instanceLimiter(
  config: Config,
  options: SharingRateLimiterOptions,
  dynamodb: DynamoDBClient | undefined = config.coordinationTable ? createDynamoDbClient(config.requestTimeoutMs) : undefined,
): RateLimiter {
  const limiter = createRateLimiter(options);
  const table = config.coordinationTable;
  if (!table || !dynamodb || !options.fleetAware) return limiter;
  const fleet = createFleet({
    store: dynamoDbFleetStore(dynamodb, table),
    id: randomUUID(),
    onSize: (size) => limiter.setFleetSize?.(size),
    onStoreError: logTableError('Instance heartbeats unavailable: the rate limiter probes without knowing how many instances run', table),
  });
  return {
    delayMs: (operation) => limiter.delayMs(operation),
    take(operation) {
      fleet.touch();
      return limiter.take(operation);
    },
    onThrottle: (retryAfterMs, operation) => limiter.onThrottle(retryAfterMs, operation),
    onSuccess: (operation) => limiter.onSuccess(operation),
    onFailure: (operation) => limiter.onFailure(operation),
    redeliveryDelayMs: (operation) => limiter.redeliveryDelayMs?.(operation),
    setFleetSize: (size) => limiter.setFleetSize?.(size),
    idle: (maxWaitMs) => fleet.leave(maxWaitMs),
    get rate() {
      return limiter.rate;
    },
  };
}

/** The shared turns of usage-plan writes; while their table fails, the instance writes one at a time on its own. */
function usagePlanTurns(dynamodb: DynamoDBClient, tableName: string): WriteTurns {
  return createWriteTurns({
    store: dynamoDbTimelineStore(dynamodb, tableName),
    fallbackMs: 30_000,
    onStoreError: logTableError('Usage-plan write turns unavailable: writing one at a time without them', tableName),
  });
}

/** Logs a failure of the coordination table (its users tell one at most once per fallback period). */
function logTableError(message: string, table: string): (error: unknown) => void {
  return (error) => logger.error(message, { table, error });
}
