import { isServerError, isThrottlingError, isTransientError } from '@smithy/core/retry';
import { printable } from '../customer-key/naming.js';
import { EnvironmentError, RejectedError, type RejectionReason, ThrottledError, TransientError } from '../errors.js';

interface SdkErrorLike extends Error {
  $metadata?: { httpStatusCode?: number };
  $response?: { headers?: Record<string, string | undefined> };
  retryAfterSeconds?: string;
  code?: string;
}

const NETWORK_ERROR_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'EAI_AGAIN', 'ENOTFOUND']);

/** Retry-After as milliseconds: delta-seconds or an HTTP date; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return seconds >= 0 ? seconds * 1000 : undefined;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/**
 * Turns an SDK error into a domain error when it is retryable (throttle → {@link ThrottledError}
 * with Retry-After; 5xx, timeout, network → {@link TransientError}); returns undefined otherwise,
 * so the adapter can map its service's permanent errors.
 */
export function retryableFromSdk(operation: string, error: unknown): ThrottledError | TransientError | undefined {
  if (!(error instanceof Error)) return undefined;
  const e = error as SdkErrorLike;
  const status = e.$metadata?.httpStatusCode;
  // The cause stays readable: a network error's name is just `Error`, its code and message say what happened.
  const code = e.code && e.code !== e.name ? ` ${e.code}` : '';
  const label = `${operation} failed with ${e.name}${code}${status ? ` (HTTP ${status})` : ''}: ${printable(e.message, 200)}`;
  if (isThrottlingError(e as never) || status === 429) {
    const retryAfter = e.retryAfterSeconds ?? e.$response?.headers?.['retry-after'];
    return new ThrottledError(label, parseRetryAfter(retryAfter), { cause: error });
  }
  if (
    isTransientError(e as never) ||
    isServerError(e as never) ||
    e.name === 'TimeoutError' ||
    (e.code !== undefined && NETWORK_ERROR_CODES.has(e.code))
  ) {
    return new TransientError(label, { cause: error });
  }
  return undefined;
}

/**
 * Settings of every SDK client of the function: one attempt per call, so lib/quota/retry.ts is the only layer that
 * retries and attempts never multiply (the SDK's own retry modes are the benchmark's baselines: tests/bench/designs.ts),
 * and a request timeout that fails the call. Without `throwOnRequestTimeout`, @smithy/node-http-handler only logs a
 * warning when `requestTimeout` passes and keeps waiting (a held request in tests/integration/realistic-aws.test.ts
 * shows it), so a hung call would eat the Lambda deadline.
 */
export function sdkClientSettings(requestTimeoutMs: number) {
  return { maxAttempts: 1, requestHandler: { requestTimeout: requestTimeoutMs, throwOnRequestTimeout: true } };
}

type ErrorClass = new (...args: never[]) => Error;

/** How an adapter classifies its service's modeled errors. */
export interface ServiceErrors {
  /** The message is at fault: a {@link RejectedError} with this reason. */
  permanent: Array<[ErrorClass, RejectionReason]>;
  /** Something on our side (a missing plan, a secret scheduled for deletion): an {@link EnvironmentError}. */
  environment: ErrorClass[];
}

/**
 * Errors without a modeled class that mean the same for every service: IAM (and, through Secrets Manager, KMS)
 * denied the call. Secrets Manager answers HTTP 400 `AccessDeniedException` (aws/aws-cdk#7677), API Gateway HTTP 403
 * (aws/aws-sdk-js-v3#2567); the SDK builds a plain ServiceException named after the error type.
 */
const ENVIRONMENT_ERROR_NAMES = new Set(['AccessDeniedException', 'AccessDenied', 'KMSAccessDeniedException']);

/**
 * The product's error for an SDK error: a retryable one ({@link retryableFromSdk}); an {@link EnvironmentError} for
 * IAM/KMS denials, the service's environment errors and a quota-type `LimitExceededException` (HTTP 400: Secrets
 * Manager's quotas, not a rate); a {@link RejectedError} for the service's permanent errors; else the error
 * unchanged, which SQS retries. Service messages never hold key values.
 */
export function domainErrorFromSdk(operation: string, error: unknown, classes: ServiceErrors): unknown {
  if (!(error instanceof Error)) return error;
  const status = (error as SdkErrorLike).$metadata?.httpStatusCode;
  const text = `${operation} was refused: ${error.name}: ${printable(error.message, 200)}`;
  if (error.name === 'LimitExceededException' && status === 400) return new EnvironmentError(text, { cause: error });
  const retryable = retryableFromSdk(operation, error);
  if (retryable) return retryable;
  if (ENVIRONMENT_ERROR_NAMES.has(error.name) || classes.environment.some((type) => error instanceof type)) {
    return new EnvironmentError(text, { cause: error });
  }
  const reason = classes.permanent.find(([type]) => error instanceof type)?.[1];
  return reason ? new RejectedError(reason, text, { cause: error }) : error;
}
