/**
 * Errors of the provisioning pipeline. Each one says how a record ends:
 * - {@link RejectedError}: permanent; the record is acknowledged and a failure event names `reason`.
 * - {@link RetryableError}: transient; the record goes into `batchItemFailures` so SQS redelivers it.
 *   {@link EnvironmentError}: a retryable one that waits for a fix on our side (IAM, KMS, a missing plan).
 * Messages never hold a key value or a whole message body.
 */
export class ProvisionerError extends Error {
  override name = 'ProvisionerError';
}

/** Machine-readable reasons carried by failure events. */
export type RejectionReason =
  | 'invalid-json'
  | 'unrecognized-event'
  | 'invalid-signup-event'
  | 'invalid-eventbridge-event'
  | 'invalid-sns-envelope'
  | 'invalid-marketplace-notification'
  | 'invalid-customer-id'
  | 'invalid-product-code'
  | 'invalid-tags'
  /** Two fields that name the same thing (a Marketplace key and its 2020 name) are both present and differ. */
  | 'ambiguous-field'
  | 'bad-request'
  | 'secret-unreadable'
  | 'unknown-product'
  /** A roll request that is malformed (no eventId, a grace that is not a whole number of seconds in range). */
  | 'invalid-roll-request'
  /** A roll for a customer (and product) that has no key: none was ever made. */
  | 'no-key'
  /** A roll for a buyer who left (revoked or failed): no key is made or re-enabled for them. */
  | 'customer-left';

export class RejectedError extends ProvisionerError {
  override name = 'RejectedError';
  constructor(
    readonly reason: RejectionReason,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

export class RetryableError extends ProvisionerError {
  override name = 'RetryableError';
  /** How long to wait before the next try, when known (a Retry-After, a rate limiter's queue): SQS redelivers after it. */
  readonly retryAfterMs: number | undefined;
  constructor(message: string, options?: ErrorOptions & { retryAfterMs?: number }) {
    super(message, options);
    this.retryAfterMs = options?.retryAfterMs;
  }
}

/** An AWS call was throttled (HTTP 429); `retryAfterMs` is the service's Retry-After, when it sent one. */
export class ThrottledError extends RetryableError {
  override name = 'ThrottledError';
  constructor(message: string, retryAfterMs: number | undefined, options?: ErrorOptions) {
    super(message, { ...options, retryAfterMs });
  }
}

/**
 * API Gateway's 429 LimitExceededException: a rate limit, or — most plausibly, AWS does not document it — the Region's
 * quota of 10,000 API keys. The error alone cannot tell which: retried as a throttle; for CreateApiKey, a count of the
 * keys decides (lib/customer-key/provision.ts, {@link CapacityExhaustedError}).
 */
export class LimitExceededError extends ThrottledError {
  override name = 'LimitExceededError';
}

/**
 * AWS refused for a reason on our side, not the message's: IAM or a KMS key policy denies the call, a usage plan or
 * key is missing, a secret is scheduled for deletion, an account quota is used up. Retrying at once does not help,
 * so the record goes back to SQS without retries in this invocation and, while nothing changes, on to the
 * dead-letter queue — to be replayed once someone has fixed the cause. Never a rejection of the message.
 */
export class EnvironmentError extends RetryableError {
  override name = 'EnvironmentError';
}

/**
 * The Region holds as many API keys as its quota allows (10,000, not adjustable): CreateApiKey cannot succeed until
 * keys are deleted (the sweep's retirements, or by hand). The named outcome `capacity-exhausted`: decided from a
 * count of the keys, not from CreateApiKey's error alone (its 429 LimitExceededException looks like a throttle). An
 * environment error: the record is handed back with a long wait, then dead-lettered, to be replayed once there is room.
 */
export class CapacityExhaustedError extends EnvironmentError {
  override name = 'CapacityExhaustedError';
  readonly outcome = 'capacity-exhausted';
}

/** A 5xx, a timeout, a network error, or a usage-plan write that overlapped another one (409). */
export class TransientError extends RetryableError {
  override name = 'TransientError';
}

/** Not enough Lambda time is left to try again: SQS redelivers the record. */
export class DeadlineError extends RetryableError {
  override name = 'DeadlineError';
}

/**
 * PutSecretValue refused a version token already used for another value (Secrets Manager's ResourceExistsException:
 * "You can't use ClientRequestToken … because that value is already in use for a version"): another writer wrote
 * that version first. Nothing was written; the version's value is the one to use.
 */
export class SecretVersionTakenError extends ProvisionerError {
  override name = 'SecretVersionTakenError';
}

export class ConfigError extends ProvisionerError {
  override name = 'ConfigError';
}

/**
 * API Gateway refused to put a key in a usage plan (HTTP 400) because the key is in another plan that has one of its
 * API stages: "a given API key can only be associated with one usage plan for each stage of your API". Nothing was
 * written. The plans' configuration is at fault, or this instance's view of their stages is stale (a plan move in the
 * wrong order: lib/customer-key/move-plan.ts looks the stages up again and retries), never the message.
 */
export class UsagePlanStageConflictError extends EnvironmentError {
  override name = 'UsagePlanStageConflictError';
}
