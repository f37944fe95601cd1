/**
 * Errors of the provisioning pipeline. Each one says how a record ends:
 * - {@link RejectedError}: permanent; the record is acknowledged and a failure event names `reason`.
 * - {@link RetryableError}: transient; the record goes into `batchItemFailures` so SQS redelivers it.
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
  | 'bad-request'
  | 'unauthorized'
  | 'not-found'
  | 'secret-unreadable'
  | 'unknown-product';

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

/** A 5xx, a timeout or a network error. */
export class TransientError extends RetryableError {
  override name = 'TransientError';
}

/** Not enough Lambda time is left to try again: SQS redelivers the record. */
export class DeadlineError extends RetryableError {
  override name = 'DeadlineError';
}

export class ConfigError extends ProvisionerError {
  override name = 'ConfigError';
}
