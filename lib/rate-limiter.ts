/**
 * A client-side rate limiter for one function instance, shared by all its records: it spaces calls evenly at
 * the current rate, halves the rate on a throttle (and pauses for the Retry-After), and adds back a little after
 * each success, up to the configured rate (additive increase, multiplicative decrease).
 * Synchronous bookkeeping only: callers wait with their own clock, so a Lambda deadline can be checked first.
 */
export interface RateLimiter {
  /** Milliseconds until a call could start, without reserving it. */
  delayMs(): number;
  /** Reserves the next slot and returns the milliseconds to wait before using it. */
  reserve(): number;
  onThrottle(retryAfterMs?: number): void;
  onSuccess(): void;
  /** The current rate, calls per second. */
  readonly rate: number;
}

export interface AdaptiveRateLimiterOptions {
  /** The most calls per second this instance may make: the account's quota divided by the instances. */
  ratePerSecond: number;
  /** The rate never falls below this. Default: ratePerSecond / 16. */
  minRatePerSecond?: number;
  /** Multiplier on a throttle. Default 0.5. */
  decreaseFactor?: number;
  /** Calls per second added back per success. Default: ratePerSecond / 20 (a halved rate recovers in ~10 calls). */
  increasePerSuccess?: number;
  /** Calls that may go at once after an idle spell (slots left unused between batches are kept, up to this). Default 2. */
  burst?: number;
  now?: () => number;
}

export function createRateLimiter(options: AdaptiveRateLimiterOptions): RateLimiter {
  const max = options.ratePerSecond;
  const min = options.minRatePerSecond ?? max / 16;
  const decrease = options.decreaseFactor ?? 0.5;
  const increase = options.increasePerSuccess ?? max / 20;
  const burst = options.burst ?? 2;
  const now = options.now ?? Date.now;
  let rate = max;
  // Generic cell rate algorithm: `due` is when the next call would be due at an even pace; a call may run up to
  // (burst - 1) intervals ahead of it.
  let due = 0;
  let pausedUntil = 0;
  const earliest = (t: number) => Math.max(t, due - (burst - 1) * (1000 / rate), pausedUntil);
  return {
    delayMs: () => {
      const t = now();
      return earliest(t) - t;
    },
    reserve() {
      const t = now();
      const slot = earliest(t);
      due = Math.max(due, slot) + 1000 / rate;
      return slot - t;
    },
    onThrottle(retryAfterMs) {
      rate = Math.max(min, rate * decrease);
      if (retryAfterMs !== undefined) pausedUntil = Math.max(pausedUntil, now() + retryAfterMs);
    },
    onSuccess() {
      rate = Math.min(max, rate + increase);
    },
    get rate() {
      return rate;
    },
  };
}
