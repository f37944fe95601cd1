import * as z from 'zod/mini';
import { ConfigError } from './errors.js';
import './zod-setup.js';
import { NAME_PREFIX_PATTERN, OWNER_TAG, tagProblem } from './customer-key/naming.js';
import { MAX_GRACE_SECONDS } from './messages/roll.js';
import type { RetryPolicy } from './quota/retry.js';

export interface Config {
  /** Where completion and failure events go. */
  completionQueueUrl: string;
  /** Prefix of every API key name and secret name this deployment owns, e.g. `keyprov/prod/`. */
  namePrefix: string;
  /** Tags put on every key and secret, merged under the event's own tags. */
  defaultTags: Record<string, string>;
  /** KMS key for the secrets; Secrets Manager's default key when absent. */
  secretKmsKeyId?: string;
  /** Usage plan per product code (`"prod"`) or product and tier (`"prod:gold"`); empty: keys get no plan. */
  usagePlans: Record<string, string>;
  /** After a revoke: `keep` the key value in the secret, or `delete-value` (the record stays: it orders the lifecycle). */
  revokedSecretPolicy: 'keep' | 'delete-value';
  /** On `entitlement-updated`: `acknowledge`, or `move-to-configured-plan` (the plan USAGE_PLANS names now). */
  onEntitlementUpdated: 'acknowledge' | 'move-to-configured-plan';
  /** Per-request timeout of every AWS call. */
  requestTimeoutMs: number;
  retry: RetryPolicy;
  /**
   * This instance's static share of API Gateway's CreateApiKey quota (0: no limiter): account quota ÷ maximumConcurrency.
   * The limiter starts there and probes up to {@link Config.apiGatewayAccountRatePerSecond} (lib/quota/rate-limiter.ts).
   */
  apiGatewayRatePerSecond: number;
  /** The account's whole CreateApiKey quota: the most one instance ever uses, when it runs alone. */
  apiGatewayAccountRatePerSecond: number;
  /**
   * DynamoDB table through which the instances coordinate: the turns of usage-plan writes (lib/quota/usage-plan-turns.ts)
   * and the heartbeats that tell each rate limiter how many instances are busy (lib/quota/fleet.ts). Absent: each instance
   * writes one at a time on its own and probes without knowing the others.
   */
  coordinationTable?: string;
  /** DynamoDB table of the customers' records, one item per (product, customer), changed only by conditional writes. */
  keyRecordsTable: string;
  /** Records of one batch in progress at once. */
  recordConcurrency: number;
  /** API_KEY_QUOTA: API keys per account and Region (10,000 on AWS, not adjustable): "Region full" is a count at it. */
  apiKeyQuota: number;
  /** ROLL_GRACE_SECONDS: how long a rolled key's old key keeps working when the request names no grace (0: disabled at once). */
  rollGraceSeconds: number;
  /**
   * ROTATION_SCHEDULE: a Secrets Manager rotation schedule (`rate(90 days)`, `cron(…)`) put on a customer's secret when
   * the function makes or brings back its key; absent: none.
   */
  rotationSchedule?: string;
}

/** The hours between rotations of a `rate(N hours)` or `rate(N days)` expression; NaN for anything else. */
function rateHours(expression: string): number {
  const rate = /^rate\((\d+) (hours|days)\)$/.exec(expression);
  return rate ? Number(rate[1]) * (rate[2] === 'days' ? 24 : 1) : Number.NaN;
}

/** A DynamoDB table's name (3 to 255 of A-Z a-z 0-9 _ . -). */
export const tableName = () => z.string().check(z.regex(/^[A-Za-z0-9_.-]{3,255}$/, 'must be a DynamoDB table name'));

/** An optional table's name: unset or empty means none. */
export const optionalTableName = () => z.optional(z.string().check(z.regex(/^([A-Za-z0-9_.-]{3,255})?$/, 'must be a DynamoDB table name')));

/** A decimal integer setting; unset or empty means the default (`Number('')` would silently be 0). */
export const integer = (min: number, max: number, fallback: number) =>
  z.pipe(
    z.pipe(
      z.optional(z.string().check(z.regex(/^\d*$/, 'must be a decimal integer'))),
      z.transform((value) => (value === undefined || value === '' ? fallback : Number(value))),
    ),
    z.number().check(z.minimum(min), z.maximum(max)),
  );

const schema = z.object({
  COMPLETION_QUEUE_URL: z.url({ protocol: /^https?$/ }),
  NAME_PREFIX: z.string().check(z.regex(NAME_PREFIX_PATTERN, 'must be 1 to 128 characters of A-Z a-z 0-9 / _ + = . @ -')),
  DEFAULT_TAGS: z.optional(z.string()),
  USAGE_PLANS: z.optional(z.string()),
  REVOKED_SECRET_POLICY: z._default(z.enum(['keep', 'delete-value']), 'keep'),
  ON_ENTITLEMENT_UPDATED: z._default(z.enum(['acknowledge', 'move-to-configured-plan']), 'acknowledge'),
  SECRET_KMS_KEY_ID: z.optional(z.string().check(z.minLength(1))),
  AWS_REQUEST_TIMEOUT_MS: integer(100, 60_000, 5_000),
  RETRY_MAX_ATTEMPTS: integer(1, 20, 6),
  RETRY_BASE_DELAY_MS: integer(1, 10_000, 100),
  RETRY_MAX_DELAY_MS: integer(1, 60_000, 10_000),
  DEADLINE_SAFETY_MARGIN_MS: integer(0, 60_000, 3_000),
  API_GATEWAY_RATE_PER_SECOND: z.pipe(
    z.string().check(z.regex(/^\d+(\.\d+)?$/, 'must be a number of calls per second (0 turns the limiter off)')),
    z.transform(Number),
  ),
  // AWS's CreateApiKey quota per account and Region, 5 calls/s, cannot be increased (API Gateway quotas page).
  API_GATEWAY_ACCOUNT_RATE_PER_SECOND: z._default(
    z.pipe(z.string().check(z.regex(/^\d+(\.\d+)?$/, 'must be a number of calls per second')), z.transform(Number)),
    5,
  ),
  COORDINATION_TABLE: optionalTableName(),
  KEY_RECORDS_TABLE: tableName(),
  RECORD_CONCURRENCY: integer(1, 100, 10),
  API_KEY_QUOTA: integer(1, 1_000_000, 10_000),
  // A day by default: time for a buyer to deploy the new key; at most MAX_GRACE_SECONDS (7 days), as per request.
  ROLL_GRACE_SECONDS: integer(0, MAX_GRACE_SECONDS, 86_400),
  // Secrets Manager's rotation schedules: "rate() expressions represent the interval in hours or days … for example
  // rate(12 hours) or rate(10 days). You can rotate a secret as often as every four hours." (RotationRulesType, API
  // reference). Checked here: a value RotateSecret refuses would hand every new customer's message back.
  ROTATION_SCHEDULE: z.optional(
    z
      .string()
      .check(
        z.refine(
          (value) => value === '' || /^cron\(.+\)$/.test(value) || rateHours(value) >= 4,
          'must be a Secrets Manager schedule expression: rate(N days), rate(N hours) with N of at least 4, or cron(…)',
        ),
      ),
  ),
});

function parseDefaultTags(raw: string | undefined): Record<string, string> {
  if (raw === undefined || raw.trim() === '') return {};
  let tags: unknown;
  try {
    tags = JSON.parse(raw);
  } catch {
    throw new ConfigError('DEFAULT_TAGS must be a JSON object of string values');
  }
  const parsed = z.record(z.string(), z.string()).safeParse(tags);
  if (!parsed.success) throw new ConfigError('DEFAULT_TAGS must be a JSON object of string values');
  const problem = tagProblem(parsed.data);
  if (problem) throw new ConfigError(`DEFAULT_TAGS: ${problem}`);
  return parsed.data;
}

/** Parses USAGE_PLANS: `{"<productCode>[:<tier>]": "<usagePlanId>"}`. Throws {@link ConfigError}. */
export function parseUsagePlans(raw: string | undefined): Record<string, string> {
  if (raw === undefined || raw.trim() === '') return {};
  let plans: unknown;
  try {
    plans = JSON.parse(raw);
  } catch {
    throw new ConfigError('USAGE_PLANS must be a JSON object: {"<productCode>[:<tier>]": "<usagePlanId>"}');
  }
  const parsed = z
    .record(
      z.string().check(z.regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}(:[A-Za-z0-9._-]{1,64})?$/)),
      z.string().check(z.regex(/^[a-z0-9]{1,32}$/)),
    )
    .safeParse(plans);
  if (!parsed.success) throw new ConfigError('USAGE_PLANS must map "<productCode>" or "<productCode>:<tier>" to a usage plan id');
  return parsed.data;
}

/**
 * Reads and validates the configuration from environment variables, once, at cold start.
 * Throws {@link ConfigError} naming every missing or invalid variable.
 */
export function loadConfig(env: NodeJS.ProcessEnv): Config {
  const e = parseEnvironment(schema, env);
  if (e.RETRY_MAX_DELAY_MS < e.RETRY_BASE_DELAY_MS) {
    throw new ConfigError('Invalid configuration: RETRY_MAX_DELAY_MS must not be below RETRY_BASE_DELAY_MS');
  }
  // The prefix is also the value of the ownership tag: it must be a valid tag value (no '@'), and fit the 50 tags.
  const defaultTags = parseDefaultTags(e.DEFAULT_TAGS);
  const ownerProblem = tagProblem({ ...defaultTags, [OWNER_TAG]: e.NAME_PREFIX });
  if (ownerProblem)
    throw new ConfigError(`Invalid configuration: NAME_PREFIX and DEFAULT_TAGS with the ownership tag ${OWNER_TAG}: ${ownerProblem}`);
  return {
    completionQueueUrl: e.COMPLETION_QUEUE_URL,
    namePrefix: e.NAME_PREFIX,
    defaultTags,
    usagePlans: parseUsagePlans(e.USAGE_PLANS),
    revokedSecretPolicy: e.REVOKED_SECRET_POLICY,
    onEntitlementUpdated: e.ON_ENTITLEMENT_UPDATED,
    secretKmsKeyId: e.SECRET_KMS_KEY_ID,
    requestTimeoutMs: e.AWS_REQUEST_TIMEOUT_MS,
    apiGatewayRatePerSecond: e.API_GATEWAY_RATE_PER_SECOND,
    apiGatewayAccountRatePerSecond: e.API_GATEWAY_ACCOUNT_RATE_PER_SECOND,
    coordinationTable: e.COORDINATION_TABLE || undefined,
    keyRecordsTable: e.KEY_RECORDS_TABLE,
    recordConcurrency: e.RECORD_CONCURRENCY,
    apiKeyQuota: e.API_KEY_QUOTA,
    rollGraceSeconds: e.ROLL_GRACE_SECONDS,
    rotationSchedule: e.ROTATION_SCHEDULE || undefined,
    retry: {
      maxAttempts: e.RETRY_MAX_ATTEMPTS,
      baseDelayMs: e.RETRY_BASE_DELAY_MS,
      maxDelayMs: e.RETRY_MAX_DELAY_MS,
      safetyMarginMs: e.DEADLINE_SAFETY_MARGIN_MS,
    },
  };
}

/** The environment read with a function's schema. Throws {@link ConfigError} naming every missing or invalid variable. */
export function parseEnvironment<T>(variables: z.ZodMiniType<T>, env: NodeJS.ProcessEnv): T {
  const parsed = variables.safeParse(env);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((issue) =>
    env[String(issue.path[0])] === undefined ? `${String(issue.path[0])} is required` : `${String(issue.path[0])}: ${issue.message}`,
  );
  throw new ConfigError(`Invalid configuration: ${problems.join('; ')}`);
}
