import { DeadlineError, EnvironmentError, RetryableError, ThrottledError } from './errors.js';
import type { RateLimiter } from './rate-limiter.js';

export interface RetryPolicy {
  /** Attempts per call within one invocation, the first included. */
  maxAttempts: number;
  /** Base of the exponential backoff; throttles back off from 5 × this. */
  baseDelayMs: number;
  /** Cap of any single wait. A Retry-After above it ends the retries: the record goes back to SQS. */
  maxDelayMs: number;
  /** Time kept free before the Lambda deadline: no attempt starts, no wait ends, inside it. */
  safetyMarginMs: number;
}

export interface RetryOptions {
  policy: RetryPolicy;
  /** Milliseconds left before the Lambda deadline (`context.getRemainingTimeInMillis`). */
  remainingTimeMs: () => number;
  onRetry?: (info: { operation: string; attempt: number; delayMs: number; error: RetryableError }) => void;
  /** Paces every attempt and learns from throttles (lib/rate-limiter.ts). */
  limiter?: RateLimiter;
  random?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

const THROTTLE_BASE_FACTOR = 5;

const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Full-jitter backoff (`random × min(cap, base × 2^(attempt-1))`), or the service's Retry-After (capped) when it sent one. */
export function backoffDelay(error: RetryableError, attempt: number, policy: RetryPolicy, random: () => number): number {
  if (error instanceof ThrottledError && error.retryAfterMs !== undefined) {
    return Math.min(policy.maxDelayMs, error.retryAfterMs + random() * policy.baseDelayMs);
  }
  const base = error instanceof ThrottledError ? policy.baseDelayMs * THROTTLE_BASE_FACTOR : policy.baseDelayMs;
  return random() * Math.min(policy.maxDelayMs, base * 2 ** (attempt - 1));
}

/**
 * Runs `call`, retrying {@link RetryableError}s (throttles, 5xx, timeouts) with backoff.
 * Any other error, and an {@link EnvironmentError}, is rethrown at once. Gives up, throwing the last retryable error, after `maxAttempts`
 * or when a Retry-After exceeds `maxDelayMs`;
 * throws {@link DeadlineError} instead of starting an attempt or a wait that would end inside the safety margin.
 * With a `limiter`, each attempt first waits for its slot; a slot beyond the deadline is a {@link DeadlineError}
 * whose `retryAfterMs` is the wait. The SDK clients are built with `maxAttempts: 1`, so this is the only layer that retries.
 */
export async function withRetry<T>(operation: string, call: () => Promise<T>, options: RetryOptions): Promise<T> {
  const { policy, remainingTimeMs, onRetry, limiter, random = Math.random, sleep = defaultSleep } = options;
  for (let attempt = 1; ; attempt++) {
    const queued = limiter?.delayMs() ?? 0;
    if (remainingTimeMs() - queued <= policy.safetyMarginMs) {
      throw new DeadlineError(`${operation}: not enough time left before the Lambda deadline`, { retryAfterMs: queued || undefined });
    }
    if (limiter) {
      const wait = limiter.reserve();
      if (wait > 0) await sleep(wait);
    }
    try {
      const result = await call();
      limiter?.onSuccess();
      return result;
    } catch (error) {
      if (error instanceof ThrottledError) limiter?.onThrottle(error.retryAfterMs);
      // An EnvironmentError waits for someone to fix IAM, KMS or a plan: SQS redelivers it, later, not us now.
      if (!(error instanceof RetryableError) || error instanceof EnvironmentError || attempt >= policy.maxAttempts) throw error;
      // A service that asks for a longer pause than we may wait gets it: SQS redelivers the record later.
      if (error instanceof ThrottledError && (error.retryAfterMs ?? 0) > policy.maxDelayMs) throw error;
      const delayMs = backoffDelay(error, attempt, policy, random);
      if (remainingTimeMs() - delayMs <= policy.safetyMarginMs) {
        throw new DeadlineError(`${operation}: the next retry would pass the Lambda deadline`, { cause: error, retryAfterMs: delayMs });
      }
      onRetry?.({ operation, attempt, delayMs, error });
      await sleep(delayMs);
    }
  }
}
