import { API_GATEWAY_CALLS, apiGatewayAdapter, createApiGatewayClient } from '../aws/api-gateway.js';
import { createDynamoDbClient, DUE_INDEX_CALLS, dynamoDbDueIndex, dynamoDbRecordStore, RECORD_CALLS } from '../aws/dynamodb.js';
import { dynamoDbTimelineStore } from '../aws/dynamodb-turns.js';
import { logger } from '../pipeline/observability.js';
import { type CallRunner, throughRunner } from '../quota/call-path.js';
import { createRateLimiter, type RateLimiter } from '../quota/rate-limiter.js';
import { withRetry } from '../quota/retry.js';
import { createWriteTurns, type WriteTurns } from '../quota/usage-plan-turns.js';
import type { SweepConfig } from './config.js';
import type { SweepDeps } from './sweep.js';

/** The sweep's clients and rate limiter, built once per instance (or per command run). */
export interface SweepInstance {
  config: SweepConfig;
  /**
   * A run's dependencies, whose calls stop retrying before `remainingTimeMs` runs out. `around` wraps the runner of a
   * service's calls (a benchmark counts them); default: as is.
   */
  forRun(
    remainingTimeMs: () => number,
    now?: () => Date,
    around?: (service: 'apiGateway' | 'dynamodb', runner: CallRunner) => CallRunner,
  ): SweepDeps;
  /** API Gateway calls of every run of this instance wait for its slots. */
  limiter: RateLimiter;
}

/**
 * The production dependencies of the sweep: one SDK client per service (the SDK's own retries off: lib/quota/retry.ts
 * retries), and one API Gateway rate limiter at SWEEP_RATE_PER_SECOND without probing above it — the sweep is a
 * background job that leaves the shared "Total operations" quota to provisioning; DeleteApiKey's own quota (5/s) is
 * paced on the limiter's own-quota schedule (lib/quota/rate-limiter.ts OWN_QUOTA).
 *
 * With COORDINATION_TABLE, its usage-plan writes (DeleteUsagePlanKey) take the provisioning instances' turns
 * (lib/quota/usage-plan-turns.ts) instead of overlapping their writes (a 409 for one of the two). It does not announce
 * its rate in the instances' heartbeats: measured, instances that leave it its rate made less goodput than instances
 * that probe and give way on a throttle (docs/throughput.md, "The sweep on the same quotas").
 */
export function createSweepInstance(config: SweepConfig): SweepInstance {
  const dynamodb = createDynamoDbClient(config.requestTimeoutMs);
  const apiKeys = apiGatewayAdapter(createApiGatewayClient(config.requestTimeoutMs));
  const records = dynamoDbRecordStore(dynamodb, config.keyRecordsTable);
  const dueIndex = dynamoDbDueIndex(dynamodb, config.keyRecordsTable);
  const limiter = createRateLimiter({
    sharePerSecond: config.apiGatewayRatePerSecond,
    ceilingPerSecond: config.apiGatewayRatePerSecond,
    maxPauseMs: config.retry.maxDelayMs,
  });
  const table = config.coordinationTable;
  const turns = table
    ? createWriteTurns({
        store: dynamoDbTimelineStore(dynamodb, table),
        onStoreError: tableError('Usage-plan write turns unavailable: the sweep writes without them', table),
      })
    : undefined;
  return {
    config,
    limiter,
    forRun(remainingTimeMs, now = () => new Date(), around = (_service, runner) => runner) {
      // Every call under the retry policy (lib/quota/call-path.ts); API Gateway's also under the instance's limiter
      // and, for usage-plan writes, the shared turns.
      const retrying =
        (options: { limiter?: RateLimiter; turns?: WriteTurns } = {}): CallRunner =>
        (operation, call) =>
          withRetry(operation, call, { policy: config.retry, remainingTimeMs, ...options });
      return {
        config,
        apiKeys: throughRunner(apiKeys, API_GATEWAY_CALLS, around('apiGateway', retrying({ limiter, turns }))),
        records: throughRunner(records, RECORD_CALLS, around('dynamodb', retrying())),
        dueIndex: throughRunner(dueIndex, DUE_INDEX_CALLS, around('dynamodb', retrying())),
        now,
      };
    },
  };
}

/** Logs a failure of the coordination table (told at most once per fallback period). */
const tableError =
  (message: string, table: string) =>
  (error: unknown): void =>
    logger.error(message, { table, error });
