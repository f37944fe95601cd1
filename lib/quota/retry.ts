import { DeadlineError, EnvironmentError, RetryableError, ThrottledError } from '../errors.js';
import type { RateLimiter } from './rate-limiter.js';
import type { WriteTurns } from './usage-plan-turns.js';

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
  /** Paces every attempt and learns from throttles (lib/quota/rate-limiter.ts). */
  limiter?: RateLimiter;
  /** Turns shared with the other instances for usage-plan writes (lib/quota/usage-plan-turns.ts), taken after the limiter's slot. */
  turns?: WriteTurns;
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
 * The retries ran out. When the limiter knows how long this call has to wait (a usage-plan write after overlapping
 * ones), the record is redelivered after that wait rather than after the queue's visibility timeout.
 */
function withKnownWait(operation: string, error: RetryableError, limiter: RateLimiter | undefined): RetryableError {
  const wait = limiter?.redeliveryDelayMs?.(operation);
  if (error.retryAfterMs !== undefined || wait === undefined) return error;
  return new RetryableError(`${operation}: retries ran out (${error.message}); the next try waits ${Math.ceil(wait)} ms`, {
    cause: error,
    retryAfterMs: wait,
  });
}

/**
 * Runs `call`, retrying {@link RetryableError}s (throttles, 5xx, timeouts) with backoff.
 * Any other error, and an {@link EnvironmentError}, is rethrown at once. Gives up, throwing the last retryable error, after `maxAttempts`
 * or when a Retry-After exceeds `maxDelayMs`;
 * throws {@link DeadlineError} instead of starting an attempt or a wait that would end inside the safety margin.
 * With a `limiter`, each attempt first waits for its slot (asking again after each wait); a slot beyond the deadline
 * is a {@link DeadlineError} whose `retryAfterMs` is the wait; so is a usage-plan write's turn beyond it. The SDK clients are built with `maxAttempts: 1`, so this is the only layer that retries.
 */
export async function withRetry<T>(operation: string, call: () => Promise<T>, options: RetryOptions): Promise<T> {
  const { policy, remainingTimeMs, onRetry, limiter, turns, random = Math.random, sleep = defaultSleep } = options;
  for (let attempt = 1; ; attempt++) {
    // The limiter's slot is asked for again after each wait: a rate cut meanwhile applies to calls already waiting.
    for (;;) {
      const queued = limiter?.delayMs(operation) ?? 0;
      if (remainingTimeMs() - queued <= policy.safetyMarginMs) {
        throw new DeadlineError(`${operation}: not enough time left before the Lambda deadline`, { retryAfterMs: queued || undefined });
      }
      const wait = limiter?.take(operation) ?? 0;
      if (wait <= 0) break;
      await sleep(wait);
    }
    const turn = turns?.covers(operation) ? await turns.take(remainingTimeMs() - policy.safetyMarginMs) : undefined;
    try {
      const result = await call();
      turn?.end(true);
      limiter?.onSuccess(operation);
      return result;
    } catch (error) {
      turn?.end(false);
      if (error instanceof ThrottledError) limiter?.onThrottle(error.retryAfterMs, operation);
      else limiter?.onFailure(operation);
      // An EnvironmentError waits for someone to fix IAM, KMS or a plan: SQS redelivers it, later, not us now.
      if (!(error instanceof RetryableError) || error instanceof EnvironmentError) throw error;
      if (attempt >= policy.maxAttempts) throw withKnownWait(operation, error, limiter);
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
