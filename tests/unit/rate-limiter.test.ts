import { DeadlineError, RejectedError, ThrottledError, TransientError } from '../../lib/errors.js';
import { type AdaptiveRateLimiterOptions, createRateLimiter, type RateLimiter } from '../../lib/rate-limiter.js';
import { type RetryOptions, type RetryPolicy, withRetry } from '../../lib/retry.js';

/** A fake clock the limiter reads: tests move it by hand. */
function fakeClock(start = 1_000_000) {
  let t = start;
  return {
    now: () => t,
    advance: (ms: number) => {
      t += ms;
    },
  };
}

/**
 * A limiter on a fake clock. `burst: 1` unless given: every slot is one interval after the last, so the
 * even spacing is exact (the default burst lets a second call go at once after an idle spell; tested below).
 */
function limiterAt(options: Omit<AdaptiveRateLimiterOptions, 'now'>) {
  const clock = fakeClock();
  return { clock, limiter: createRateLimiter({ burst: 1, ...options, now: clock.now }) };
}

describe('createRateLimiter: pacing', () => {
  test('slots are spaced 1000/rate ms apart: reserve() returns 0, then 1000/rate, 2×, 3×', () => {
    const { limiter } = limiterAt({ ratePerSecond: 4 });
    expect([limiter.reserve(), limiter.reserve(), limiter.reserve(), limiter.reserve()]).toEqual([0, 250, 500, 750]);
  });

  test('the spacing follows the rate', () => {
    const { limiter } = limiterAt({ ratePerSecond: 0.5 });
    expect([limiter.reserve(), limiter.reserve(), limiter.reserve()]).toEqual([0, 2_000, 4_000]);
  });

  test('the wait returned is measured from the current time', () => {
    const { clock, limiter } = limiterAt({ ratePerSecond: 4 });
    limiter.reserve(); // slot at t
    limiter.reserve(); // slot at t+250
    clock.advance(100);
    expect(limiter.reserve()).toBe(400); // slot at t+500
    clock.advance(400);
    expect(limiter.reserve()).toBe(250); // slot at t+750
  });

  test('delayMs() peeks at the next wait without reserving it', () => {
    const { clock, limiter } = limiterAt({ ratePerSecond: 4 });
    limiter.reserve();
    expect(limiter.delayMs()).toBe(250);
    expect(limiter.delayMs()).toBe(250);
    expect(limiter.reserve()).toBe(250);
    expect(limiter.delayMs()).toBe(500);
    clock.advance(200);
    expect(limiter.delayMs()).toBe(300);
    expect(limiter.reserve()).toBe(300);
  });

  test('an idle limiter has no delay', () => {
    const { limiter } = limiterAt({ ratePerSecond: 4 });
    expect(limiter.delayMs()).toBe(0);
    expect(limiter.reserve()).toBe(0);
  });

  test('once its reserved slots have passed, the limiter is idle again, and idle time is not saved up as a burst', () => {
    const { clock, limiter } = limiterAt({ ratePerSecond: 4 });
    limiter.reserve();
    limiter.reserve();
    clock.advance(10_000);
    expect(limiter.delayMs()).toBe(0);
    expect(limiter.reserve()).toBe(0);
    expect(limiter.reserve()).toBe(250);
  });

  test('by default (burst 2) an idle limiter lets two calls go at once, then spaces the rest 1000/rate apart', () => {
    const clock = fakeClock();
    const limiter = createRateLimiter({ ratePerSecond: 4, now: clock.now });
    expect([limiter.reserve(), limiter.reserve(), limiter.reserve(), limiter.reserve()]).toEqual([0, 0, 250, 500]);
    // A long idle spell saves up no more than the burst.
    clock.advance(60_000);
    expect(limiter.delayMs()).toBe(0);
    expect([limiter.reserve(), limiter.reserve(), limiter.reserve()]).toEqual([0, 0, 250]);
  });

  test('the rate starts at ratePerSecond', () => {
    expect(limiterAt({ ratePerSecond: 7 }).limiter.rate).toBe(7);
  });
});

describe('createRateLimiter: onThrottle', () => {
  test('halves the rate by default, down to the floor of ratePerSecond/16, never below', () => {
    const { limiter } = limiterAt({ ratePerSecond: 16 });
    const rates: number[] = [];
    for (let i = 0; i < 6; i++) {
      limiter.onThrottle();
      rates.push(limiter.rate);
    }
    expect(rates).toEqual([8, 4, 2, 1, 1, 1]);
  });

  test('the floor is ratePerSecond/16 even when halving would jump past it', () => {
    const { limiter } = limiterAt({ ratePerSecond: 10 });
    for (let i = 0; i < 10; i++) limiter.onThrottle();
    expect(limiter.rate).toBeCloseTo(10 / 16, 10);
  });

  test('honours decreaseFactor and minRatePerSecond', () => {
    const { limiter } = limiterAt({ ratePerSecond: 100, decreaseFactor: 0.1, minRatePerSecond: 5 });
    limiter.onThrottle();
    expect(limiter.rate).toBeCloseTo(10, 10);
    limiter.onThrottle();
    expect(limiter.rate).toBe(5);
  });

  test('later slots are spaced at the lowered rate', () => {
    const { limiter } = limiterAt({ ratePerSecond: 4 });
    limiter.onThrottle(); // 2/s
    expect([limiter.reserve(), limiter.reserve(), limiter.reserve()]).toEqual([0, 500, 1_000]);
  });

  test('without retryAfterMs it does not pause an idle limiter', () => {
    const { limiter } = limiterAt({ ratePerSecond: 4 });
    limiter.onThrottle();
    expect(limiter.delayMs()).toBe(0);
    expect(limiter.reserve()).toBe(0);
  });

  test('with retryAfterMs every slot waits until now + retryAfterMs', () => {
    const { clock, limiter } = limiterAt({ ratePerSecond: 4 });
    clock.advance(1_000);
    limiter.onThrottle(5_000); // paused until t+5000; rate 2/s
    expect(limiter.delayMs()).toBe(5_000);
    expect(limiter.reserve()).toBe(5_000);
    expect(limiter.reserve()).toBe(5_500);
    clock.advance(2_000);
    expect(limiter.delayMs()).toBe(4_000);
    expect(limiter.reserve()).toBe(4_000);
  });

  test('the pause also pushes back slots that were already reserved later than now', () => {
    const { clock, limiter } = limiterAt({ ratePerSecond: 4 });
    limiter.reserve(); // t
    limiter.reserve(); // t+250
    limiter.onThrottle(1_000); // paused until t+1000
    expect(limiter.delayMs()).toBe(1_000);
    clock.advance(600);
    expect(limiter.reserve()).toBe(400);
  });

  test('a shorter Retry-After does not shorten a pause already in force', () => {
    const { clock, limiter } = limiterAt({ ratePerSecond: 4 });
    limiter.onThrottle(5_000);
    clock.advance(1_000);
    limiter.onThrottle(100);
    expect(limiter.delayMs()).toBe(4_000);
  });

  test('once the pause has passed, the limiter is idle again', () => {
    const { clock, limiter } = limiterAt({ ratePerSecond: 4 });
    limiter.onThrottle(3_000);
    clock.advance(3_000);
    expect(limiter.delayMs()).toBe(0);
    expect(limiter.reserve()).toBe(0);
  });
});

describe('createRateLimiter: onSuccess', () => {
  test('adds ratePerSecond/20 per success, up to ratePerSecond and never above', () => {
    const { limiter } = limiterAt({ ratePerSecond: 20 });
    limiter.onThrottle(); // 10
    const rates: number[] = [];
    for (let i = 0; i < 12; i++) {
      limiter.onSuccess();
      rates.push(limiter.rate);
    }
    expect(rates).toEqual([11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 20, 20]);
  });

  test('a limiter at its maximum stays there', () => {
    const { limiter } = limiterAt({ ratePerSecond: 3 });
    for (let i = 0; i < 5; i++) limiter.onSuccess();
    expect(limiter.rate).toBe(3);
  });

  test('recovers from the floor to the maximum, never past it, with a non-integer step', () => {
    const { limiter } = limiterAt({ ratePerSecond: 7 });
    for (let i = 0; i < 10; i++) limiter.onThrottle();
    expect(limiter.rate).toBeCloseTo(7 / 16, 10);
    let steps = 0;
    let previous = limiter.rate;
    while (limiter.rate < 7 && steps < 100) {
      limiter.onSuccess();
      steps++;
      expect(limiter.rate - previous).toBeCloseTo(Math.min(7 / 20, 7 - previous), 10);
      previous = limiter.rate;
    }
    // (7 - 7/16) / (7/20) = 18.75: the 19th success reaches the cap.
    expect(steps).toBe(19);
    limiter.onSuccess();
    expect(limiter.rate).toBe(7);
  });

  test('honours increasePerSuccess', () => {
    const { limiter } = limiterAt({ ratePerSecond: 10, increasePerSuccess: 2 });
    limiter.onThrottle(); // 5
    limiter.onSuccess();
    expect(limiter.rate).toBe(7);
    limiter.onSuccess();
    limiter.onSuccess();
    expect(limiter.rate).toBe(10);
  });

  test('later slots are spaced at the raised rate', () => {
    const { limiter } = limiterAt({ ratePerSecond: 20 });
    limiter.onThrottle(); // 10/s
    for (let i = 0; i < 10; i++) limiter.onSuccess(); // back to 20/s
    expect([limiter.reserve(), limiter.reserve(), limiter.reserve()]).toEqual([0, 50, 100]);
  });
});

describe('withRetry with a rate limiter', () => {
  const policy: RetryPolicy = { maxAttempts: 4, baseDelayMs: 100, maxDelayMs: 10_000, safetyMarginMs: 1_000 };

  /** A limiter on a fake clock, and retry options whose sleep records its waits and moves that clock. */
  function harness(ratePerSecond: number, overrides: Partial<RetryOptions> = {}) {
    const clock = fakeClock();
    const limiter = createRateLimiter({ ratePerSecond, burst: 1, now: clock.now });
    const log: string[] = [];
    const sleeps: number[] = [];
    const options: RetryOptions = {
      policy,
      remainingTimeMs: () => 60_000,
      limiter,
      random: () => 0,
      sleep: async (ms) => {
        sleeps.push(ms);
        log.push(`sleep ${ms}`);
        clock.advance(ms);
      },
      ...overrides,
    };
    return { clock, limiter, log, sleeps, options };
  }

  /** A call that logs itself, throws each of `errors` in turn, then resolves `value`. */
  function call<T>(log: string[], errors: unknown[], value: T) {
    let calls = 0;
    return jest.fn(async () => {
      log.push('call');
      const error = errors[calls++];
      if (error !== undefined) throw error;
      return value;
    });
  }

  test('an idle limiter lets the first attempt start without sleeping', async () => {
    const { options, sleeps, log } = harness(4);
    await expect(withRetry('Op', call(log, [], 'ok'), options)).resolves.toBe('ok');
    expect(sleeps).toEqual([]);
  });

  test('sleeps the reserved wait before the attempt', async () => {
    const { options, limiter, log } = harness(4);
    limiter.reserve();
    limiter.reserve(); // the next slot is 500 ms away
    await expect(withRetry('Op', call(log, [], 'ok'), options)).resolves.toBe('ok');
    expect(log).toEqual(['sleep 500', 'call']);
    // The slot was reserved: the one after it is 250 ms later.
    expect(limiter.delayMs()).toBe(250);
  });

  test('consecutive calls through one limiter are paced at its rate', async () => {
    const { options, log, sleeps, clock } = harness(4);
    const starts: number[] = [];
    for (let i = 0; i < 4; i++) {
      await withRetry(
        'Op',
        async () => {
          log.push('call');
          starts.push(clock.now());
        },
        options,
      );
    }
    expect(sleeps).toEqual([250, 250, 250]);
    expect(starts.map((t) => t - (starts[0] ?? 0))).toEqual([0, 250, 500, 750]);
  });

  test('reports a success to the limiter', async () => {
    const { options, limiter, log } = harness(20);
    limiter.onThrottle(); // 10/s
    const onSuccess = jest.spyOn(limiter, 'onSuccess');
    await withRetry('Op', call(log, [], 'ok'), options);
    expect(onSuccess).toHaveBeenCalledTimes(1);
    expect(limiter.rate).toBe(11);
  });

  test('reports a throttle, with its Retry-After, to the limiter', async () => {
    const { options, limiter, log } = harness(4);
    const onThrottle = jest.spyOn(limiter, 'onThrottle');
    const onSuccess = jest.spyOn(limiter, 'onSuccess');
    const fn = call(log, [new ThrottledError('slow down', 500)], 'ok');

    await expect(withRetry('Op', fn, options)).resolves.toBe('ok');

    expect(fn).toHaveBeenCalledTimes(2);
    expect(onThrottle).toHaveBeenCalledTimes(1);
    expect(onThrottle).toHaveBeenCalledWith(500);
    expect(onSuccess).toHaveBeenCalledTimes(1);
    expect(onThrottle.mock.invocationCallOrder[0]).toBeLessThan(onSuccess.mock.invocationCallOrder[0] ?? 0);
    // Halved to 2/s, then one success adds 4/20.
    expect(limiter.rate).toBeCloseTo(2.2, 10);
  });

  test('after a throttle, the retry still waits for its own limiter slot', async () => {
    const { options, limiter, log } = harness(4);
    // Another record took the next slots, so the limiter, not the backoff, decides the retry's wait.
    const fn = call(log, [new ThrottledError('slow down', undefined)], 'ok');
    limiter.reserve();
    await withRetry('Op', fn, options);
    // Attempt 1 waited for its slot (250 ms); the throttle backoff is 0 (random = 0); attempt 2's slot is
    // 250 ms after attempt 1's (it was reserved at 4/s).
    expect(log).toEqual(['sleep 250', 'call', 'sleep 0', 'sleep 250', 'call']);
  });

  test('other errors are not reported as throttles', async () => {
    const { options, limiter, log } = harness(4);
    const onThrottle = jest.spyOn(limiter, 'onThrottle');
    await expect(withRetry('Op', call(log, [new TransientError('503')], 'ok'), options)).resolves.toBe('ok');
    await expect(withRetry('Op', call(log, [new RejectedError('bad-request', 'no')], 'ok'), options)).rejects.toBeInstanceOf(RejectedError);
    expect(onThrottle).not.toHaveBeenCalled();
    expect(limiter.rate).toBe(4);
  });

  test('throws DeadlineError carrying the queue wait, without calling or reserving, when the wait would end inside the safety margin', async () => {
    // 1/s: the next slot is 1000 ms away. 1999 ms left − 1000 ms wait = 999 ms ≤ the 1000 ms margin.
    const { options, limiter, log, sleeps } = harness(1, { remainingTimeMs: () => 1_999 });
    limiter.reserve();
    const fn = call(log, [], 'ok');

    const error = await withRetry('CreateApiKey', fn, options).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(DeadlineError);
    expect((error as DeadlineError).retryAfterMs).toBe(1_000);
    expect((error as DeadlineError).message).toContain('CreateApiKey');
    expect(fn).not.toHaveBeenCalled();
    expect(sleeps).toEqual([]);
    expect(limiter.delayMs()).toBe(1_000);
  });

  test('the queue wait in the DeadlineError is the wait left now', async () => {
    const { options, limiter, clock, log } = harness(0.5, { remainingTimeMs: () => 2_500 });
    limiter.reserve(); // next slot 2000 ms away
    clock.advance(300);
    const error = await withRetry('Op', call(log, [], 'ok'), options).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DeadlineError);
    expect((error as DeadlineError).retryAfterMs).toBe(1_700);
  });

  test('a wait that ends exactly at the safety margin is refused; one that ends just before it is taken', async () => {
    const at = (remaining: number) => {
      const h = harness(1, { remainingTimeMs: () => remaining });
      h.limiter.reserve();
      return h;
    };
    const refused = at(2_000);
    await expect(withRetry('Op', call(refused.log, [], 'ok'), refused.options)).rejects.toBeInstanceOf(DeadlineError);

    const taken = at(2_001);
    await expect(withRetry('Op', call(taken.log, [], 'ok'), taken.options)).resolves.toBe('ok');
    expect(taken.log).toEqual(['sleep 1000', 'call']);
  });

  test('a Retry-After pause counts as queue wait for the deadline', async () => {
    const { options, limiter, log } = harness(4, { remainingTimeMs: () => 5_000 });
    limiter.onThrottle(30_000);
    const fn = call(log, [], 'ok');
    const error = await withRetry('Op', fn, options).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DeadlineError);
    expect((error as DeadlineError).retryAfterMs).toBe(30_000);
    expect(fn).not.toHaveBeenCalled();
  });

  test('with an idle limiter and no time left, the DeadlineError has no retryAfterMs', async () => {
    const { options, log } = harness(4, { remainingTimeMs: () => 1_000 });
    const fn = call(log, [], 'ok');
    const error = await withRetry('Op', fn, options).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DeadlineError);
    expect((error as DeadlineError).retryAfterMs).toBeUndefined();
    expect(fn).not.toHaveBeenCalled();
  });
});

// Keeps the RateLimiter type honest: a hand-written limiter is accepted by withRetry.
test('withRetry accepts any RateLimiter and asks it for the delay before reserving', async () => {
  const calls: string[] = [];
  const limiter: RateLimiter = {
    delayMs: () => {
      calls.push('delayMs');
      return 0;
    },
    reserve: () => {
      calls.push('reserve');
      return 0;
    },
    onThrottle: () => calls.push('onThrottle'),
    onSuccess: () => calls.push('onSuccess'),
    rate: 1,
  };
  await withRetry('Op', async () => calls.push('call'), {
    policy: { maxAttempts: 1, baseDelayMs: 1, maxDelayMs: 1, safetyMarginMs: 0 },
    remainingTimeMs: () => 10_000,
    limiter,
  });
  expect(calls).toEqual(['delayMs', 'reserve', 'call', 'onSuccess']);
});
