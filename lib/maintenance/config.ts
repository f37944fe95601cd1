import * as z from 'zod/mini';
import { integer, optionalTableName, parseEnvironment, parseUsagePlans, tableName } from '../config.js';
import { ConfigError } from '../errors.js';
import '../zod-setup.js';
import type { RetryPolicy } from '../quota/retry.js';

/** The maintenance sweep's configuration (functions/sweep.ts, `npm run sweep`), read once from the environment. */
export interface SweepConfig {
  /** The customers' records (KEY_RECORDS_TABLE), with the sparse index `due`. */
  keyRecordsTable: string;
  /** USAGE_PLANS, as the provisioning function has it: the plan a retired key is taken out of. */
  usagePlans: Record<string, string>;
  /** RETIRE_AFTER_DAYS: a key revoked this many days ago is deleted (default 30; 0: never). */
  retireAfterDays: number;
  /** API_KEY_QUOTA: API keys per account and Region (10,000, not adjustable), for the capacity guard. */
  apiKeyQuota: number;
  /**
   * SWEEP_RATE_PER_SECOND: the sweep's pace of API Gateway calls (DeleteApiKey has a quota of its own, 5/s; every
   * call also counts against the 10/s "Total operations" the provisioning function shares). Default 1.
   */
  apiGatewayRatePerSecond: number;
  /**
   * COORDINATION_TABLE, the provisioning function's (lib/config.ts): the sweep's usage-plan writes take turns with the
   * instances' (lib/quota/usage-plan-turns.ts). Absent: it writes one at a time on its own.
   */
  coordinationTable?: string;
  requestTimeoutMs: number;
  retry: RetryPolicy;
}

const schema = z.object({
  KEY_RECORDS_TABLE: tableName(),
  USAGE_PLANS: z.optional(z.string()),
  RETIRE_AFTER_DAYS: integer(0, 3650, 30),
  API_KEY_QUOTA: integer(1, 1_000_000, 10_000),
  SWEEP_RATE_PER_SECOND: z._default(
    z.pipe(z.string().check(z.regex(/^\d+(\.\d+)?$/, 'must be a number of calls per second')), z.transform(Number)),
    1,
  ),
  COORDINATION_TABLE: optionalTableName(),
  AWS_REQUEST_TIMEOUT_MS: integer(100, 60_000, 5_000),
  RETRY_MAX_ATTEMPTS: integer(1, 20, 6),
  RETRY_BASE_DELAY_MS: integer(1, 10_000, 100),
  RETRY_MAX_DELAY_MS: integer(1, 60_000, 10_000),
  DEADLINE_SAFETY_MARGIN_MS: integer(0, 60_000, 3_000),
});

/** Reads and validates the sweep's configuration. Throws {@link ConfigError} naming every missing or invalid variable. */
export function loadSweepConfig(env: NodeJS.ProcessEnv): SweepConfig {
  const e = parseEnvironment(schema, env);
  if (!(e.SWEEP_RATE_PER_SECOND > 0)) throw new ConfigError('Invalid configuration: SWEEP_RATE_PER_SECOND must be above 0');
  if (e.RETRY_MAX_DELAY_MS < e.RETRY_BASE_DELAY_MS)
    throw new ConfigError('Invalid configuration: RETRY_MAX_DELAY_MS must not be below RETRY_BASE_DELAY_MS');
  return {
    keyRecordsTable: e.KEY_RECORDS_TABLE,
    usagePlans: parseUsagePlans(e.USAGE_PLANS),
    retireAfterDays: e.RETIRE_AFTER_DAYS,
    apiKeyQuota: e.API_KEY_QUOTA,
    apiGatewayRatePerSecond: e.SWEEP_RATE_PER_SECOND,
    coordinationTable: e.COORDINATION_TABLE || undefined,
    requestTimeoutMs: e.AWS_REQUEST_TIMEOUT_MS,
    retry: {
      maxAttempts: e.RETRY_MAX_ATTEMPTS,
      baseDelayMs: e.RETRY_BASE_DELAY_MS,
      maxDelayMs: e.RETRY_MAX_DELAY_MS,
      safetyMarginMs: e.DEADLINE_SAFETY_MARGIN_MS,
    },
  };
}
