import { DeadlineError, RejectedError, RetryableError, ThrottledError, TransientError } from '../../lib/errors.js';
import type { RateLimiter } from '../../lib/quota/rate-limiter.js';
import { backoffDelay, type RetryOptions, type RetryPolicy, withRetry } from '../../lib/quota/retry.js';
import type { Turn, WriteTurns } from '../../lib/quota/usage-plan-turns.js';

const policy: RetryPolicy = { maxAttempts: 4, baseDelayMs: 100, maxDelayMs: 10_000, safetyMarginMs: 1_000 };

/** Options with a recording `sleep` that resolves at once, a fixed `random` and plenty of time left. */
function harness(overrides: Partial<RetryOptions> = {}) {
  const delays: number[] = [];
  const retries: { operation: string; attempt: number; delayMs: number; error: RetryableError }[] = [];
  const options: RetryOptions = {
    policy,
    remainingTimeMs: () => 60_000,
    random: () => 1,
    sleep: async (ms) => {
      delays.push(ms);
    },
    onRetry: (info) => retries.push(info),
    ...overrides,
  };
  return { options, delays, retries };
}

/** A call that throws each of `errors` in turn, then resolves `value`. */
function failingThen<T>(errors: unknown[], value: T) {
  let calls = 0;
  const call = jest.fn(async () => {
    const error = errors[calls++];
    if (error !== undefined) throw error;
    return value;
  });
  return call;
}

describe('backoffDelay', () => {
  const transient = new TransientError('boom');

  test.each([
    [1, 100],
    [2, 200],
    [3, 400],
    [4, 800],
  ])('with random=1, attempt %i waits base*2^(n-1) = %i ms', (attempt, expected) => {
    expect(backoffDelay(transient, attempt, policy, () => 1)).toBe(expected);
  });

  test('is capped at maxDelayMs', () => {
    expect(backoffDelay(transient, 10, policy, () => 1)).toBe(10_000);
    expect(backoffDelay(transient, 3, { ...policy, maxDelayMs: 250 }, () => 1)).toBe(250);
  });

  test('is full jitter: random=0 waits nothing, random=0.5 waits half', () => {
    expect(backoffDelay(transient, 3, policy, () => 0)).toBe(0);
    expect(backoffDelay(transient, 3, policy, () => 0.5)).toBe(200);
  });

  test.each([0, 0.25, 0.5, 0.999])('stays within [0, min(max, base*2^(n-1))] for random=%f', (r) => {
    for (let attempt = 1; attempt <= 10; attempt++) {
      const delay = backoffDelay(transient, attempt, policy, () => r);
      expect(delay).toBeGreaterThanOrEqual(0);
      expect(delay).toBeLessThanOrEqual(Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1)));
    }
  });

  test('treats a plain RetryableError like a transient one', () => {
    expect(backoffDelay(new RetryableError('x'), 2, policy, () => 1)).toBe(200);
  });

  test.each([
    [1, 500],
    [2, 1_000],
    [3, 2_000],
    [6, 10_000],
  ])('a throttle without Retry-After backs off from 5x base: attempt %i waits %i ms with random=1', (attempt, expected) => {
    expect(backoffDelay(new ThrottledError('slow down', undefined), attempt, policy, () => 1)).toBe(expected);
  });

  test('a throttle with Retry-After waits at least Retry-After, plus up to one base of jitter', () => {
    const throttled = new ThrottledError('slow down', 2_000);
    expect(backoffDelay(throttled, 1, policy, () => 0)).toBe(2_000);
    expect(backoffDelay(throttled, 1, policy, () => 1)).toBe(2_100);
    expect(backoffDelay(throttled, 5, policy, () => 0.5)).toBe(2_050);
  });

  test('a throttle with Retry-After is capped at maxDelayMs', () => {
    expect(backoffDelay(new ThrottledError('slow down', 60_000), 1, policy, () => 0)).toBe(10_000);
  });

  test('a Retry-After of 0 is honoured with jitter only', () => {
    expect(backoffDelay(new ThrottledError('slow down', 0), 4, policy, () => 1)).toBe(100);
  });
});

describe('withRetry', () => {
  test('returns the result of a call that succeeds at once, without sleeping', async () => {
    const { options, delays, retries } = harness();
    const call = jest.fn(async () => 'ok');
    await expect(withRetry('Op', call, options)).resolves.toBe('ok');
    expect(call).toHaveBeenCalledTimes(1);
    expect(delays).toEqual([]);
    expect(retries).toEqual([]);
  });

  test.each([
    ['RetryableError', () => new RetryableError('retry me')],
    ['ThrottledError', () => new ThrottledError('slow down', undefined)],
    ['TransientError', () => new TransientError('503')],
  ])('retries a %s and returns the eventual result', async (_name, make) => {
    const { options, delays } = harness();
    const call = failingThen([make(), make()], 'ok');
    await expect(withRetry('Op', call, options)).resolves.toBe('ok');
    expect(call).toHaveBeenCalledTimes(3);
    expect(delays).toHaveLength(2);
  });

  test.each([
    ['RetryableError', (i: number) => new RetryableError(`retry ${i}`)],
    ['ThrottledError', (i: number) => new ThrottledError(`throttle ${i}`, undefined)],
    ['TransientError', (i: number) => new TransientError(`transient ${i}`)],
  ])('gives up on a %s after maxAttempts and rethrows the last error', async (_name, make) => {
    const { options, delays } = harness();
    const errors = [1, 2, 3, 4, 5].map(make);
    const call = failingThen(errors, 'never');
    const result = withRetry('Op', call, options);
    await expect(result).rejects.toBe(errors[3]);
    expect(call).toHaveBeenCalledTimes(policy.maxAttempts);
    expect(delays).toHaveLength(policy.maxAttempts - 1);
  });

  test('waits the backoff delays between attempts', async () => {
    const { options, delays } = harness();
    const call = failingThen([new TransientError('a'), new TransientError('b'), new TransientError('c')], 'ok');
    await withRetry('Op', call, options);
    expect(delays).toEqual([100, 200, 400]);
  });

  test('uses the throttle base for throttles and Retry-After when given', async () => {
    const { options, delays } = harness({ random: () => 0 });
    const call = failingThen([new ThrottledError('a', undefined), new ThrottledError('b', 3_000), new TransientError('c')], 'ok');
    await withRetry('Op', call, options);
    expect(delays).toEqual([0, 3_000, 0]);
  });

  test('a ThrottledError with retryAfterMs waits at least retryAfterMs', async () => {
    const { options, delays } = harness({ random: () => 0.3 });
    const call = failingThen([new ThrottledError('a', 1_500)], 'ok');
    await withRetry('Op', call, options);
    expect(delays).toHaveLength(1);
    expect(delays[0]).toBeGreaterThanOrEqual(1_500);
    expect(delays[0]).toBeLessThanOrEqual(1_500 + policy.baseDelayMs);
  });

  test('a ThrottledError whose retryAfterMs plus jitter passes maxDelayMs waits maxDelayMs', async () => {
    const { options, delays } = harness();
    const call = failingThen([new ThrottledError('a', policy.maxDelayMs - 50)], 'ok');
    await expect(withRetry('Op', call, options)).resolves.toBe('ok');
    expect(delays).toEqual([policy.maxDelayMs]);
  });

  test('a ThrottledError whose retryAfterMs equals maxDelayMs is still retried', async () => {
    const { options, delays } = harness({ random: () => 0 });
    const call = failingThen([new ThrottledError('a', policy.maxDelayMs)], 'ok');
    await expect(withRetry('Op', call, options)).resolves.toBe('ok');
    expect(delays).toEqual([policy.maxDelayMs]);
  });

  test('a ThrottledError whose retryAfterMs exceeds maxDelayMs is rethrown at once, without waiting', async () => {
    const { options, delays, retries } = harness();
    const throttled = new ThrottledError('a', policy.maxDelayMs + 1);
    const call = failingThen([throttled], 'ok');
    await expect(withRetry('Op', call, options)).rejects.toBe(throttled);
    expect(call).toHaveBeenCalledTimes(1);
    expect(delays).toEqual([]);
    expect(retries).toEqual([]);
  });

  test('maxAttempts 1 means no retry', async () => {
    const { options, delays } = harness({ policy: { ...policy, maxAttempts: 1 } });
    const error = new TransientError('once');
    const call = failingThen([error], 'never');
    await expect(withRetry('Op', call, options)).rejects.toBe(error);
    expect(call).toHaveBeenCalledTimes(1);
    expect(delays).toEqual([]);
  });

  test.each([
    ['a plain Error', () => new Error('bug')],
    ['a RejectedError', () => new RejectedError('bad-request', 'no')],
    ['a TypeError', () => new TypeError('x is undefined')],
    ['a non-Error value', () => 'a string'],
  ])('rethrows %s at once without retrying', async (_what, make) => {
    const { options, delays, retries } = harness();
    const error = make();
    const call = failingThen([error], 'never');
    await expect(withRetry('Op', call, options)).rejects.toBe(error);
    expect(call).toHaveBeenCalledTimes(1);
    expect(delays).toEqual([]);
    expect(retries).toEqual([]);
  });

  test('stops retrying when a non-retryable error follows retryable ones', async () => {
    const { options, delays } = harness();
    const fatal = new RejectedError('bad-request', 'gone');
    const call = failingThen([new TransientError('a'), fatal], 'never');
    await expect(withRetry('Op', call, options)).rejects.toBe(fatal);
    expect(call).toHaveBeenCalledTimes(2);
    expect(delays).toHaveLength(1);
  });

  test('calls onRetry with the operation, attempt numbers, delays and errors', async () => {
    const { options, retries } = harness();
    const errors = [new TransientError('a'), new ThrottledError('b', undefined), new TransientError('c')];
    await withRetry('CreateApiKey', failingThen(errors, 'ok'), options);
    expect(retries).toEqual([
      { operation: 'CreateApiKey', attempt: 1, delayMs: 100, error: errors[0] },
      { operation: 'CreateApiKey', attempt: 2, delayMs: 1_000, error: errors[1] },
      { operation: 'CreateApiKey', attempt: 3, delayMs: 400, error: errors[2] },
    ]);
  });

  test('does not call onRetry after the last attempt', async () => {
    const { options, retries } = harness();
    await expect(
      withRetry(
        'Op',
        failingThen(
          [1, 2, 3, 4].map((i) => new TransientError(`${i}`)),
          'x',
        ),
        options,
      ),
    ).rejects.toThrow(TransientError);
    expect(retries.map((r) => r.attempt)).toEqual([1, 2, 3]);
  });

  test('works without onRetry', async () => {
    const { options } = harness({ onRetry: undefined });
    await expect(withRetry('Op', failingThen([new TransientError('a')], 'ok'), options)).resolves.toBe('ok');
  });
});

describe('withRetry: the Lambda deadline', () => {
  test.each([policy.safetyMarginMs, policy.safetyMarginMs - 1, 0])(
    'throws DeadlineError before the first attempt when %i ms are left',
    async (remaining) => {
      const { options } = harness({ remainingTimeMs: () => remaining });
      const call = jest.fn(async () => 'ok');
      const result = withRetry('CreateApiKey', call, options);
      await expect(result).rejects.toThrow(DeadlineError);
      await expect(result).rejects.toThrow(/CreateApiKey/);
      expect(call).not.toHaveBeenCalled();
    },
  );

  test('makes the first attempt when just over the safety margin is left', async () => {
    const { options } = harness({ remainingTimeMs: () => policy.safetyMarginMs + 1 });
    await expect(withRetry('Op', async () => 'ok', options)).resolves.toBe('ok');
  });

  test('throws DeadlineError with the retryable error as cause when the wait would end inside the margin', async () => {
    // random=1, attempt 1: delay 100 ms; 1_100 - 100 = 1_000 <= margin.
    const { options, delays, retries } = harness({ remainingTimeMs: () => 1_100 });
    const error = new TransientError('503');
    const call = failingThen([error], 'never');
    const result = withRetry('CreateSecret', call, options);
    await expect(result).rejects.toThrow(DeadlineError);
    await expect(result).rejects.toMatchObject({ cause: error, message: expect.stringContaining('CreateSecret') });
    expect(call).toHaveBeenCalledTimes(1);
    expect(delays).toEqual([]);
    expect(retries).toEqual([]);
  });

  test('retries when the wait ends just outside the margin', async () => {
    const { options, delays } = harness({ remainingTimeMs: () => 1_101 });
    await expect(withRetry('Op', failingThen([new TransientError('503')], 'ok'), options)).resolves.toBe('ok');
    expect(delays).toEqual([100]);
  });

  test('a long Retry-After that would pass the deadline throws DeadlineError', async () => {
    const { options } = harness({ remainingTimeMs: () => 5_000 });
    const throttled = new ThrottledError('slow down', 4_500);
    const result = withRetry('Op', failingThen([throttled], 'never'), options);
    await expect(result).rejects.toThrow(DeadlineError);
    await expect(result).rejects.toMatchObject({ cause: throttled });
  });

  test('gives up with DeadlineError once the clock runs down between attempts', async () => {
    let remaining = 3_000;
    const { options, delays } = harness({
      remainingTimeMs: () => remaining,
      sleep: async (ms) => {
        delays.push(ms);
        remaining -= ms + 500;
      },
    });
    const errors = [new TransientError('a'), new TransientError('b'), new TransientError('c')];
    const call = failingThen(errors, 'never');
    const result = withRetry('Op', call, options);
    // 3_000 → wait 100 → 2_400 → wait 200 → 1_700 → wait 400 would leave 1_300 → 800 left after the sleep.
    await expect(result).rejects.toThrow(DeadlineError);
    expect(delays).toEqual([100, 200, 400]);
    expect(call).toHaveBeenCalledTimes(3);
  });

  test('DeadlineError is a RetryableError, so SQS redelivers the record', async () => {
    const { options } = harness({ remainingTimeMs: () => 0 });
    await expect(withRetry('Op', async () => 'ok', options)).rejects.toBeInstanceOf(RetryableError);
  });
});

describe('withRetry: usage-plan write turns', () => {
  /**
   * A limiter that makes the first slot of each attempt wait 50 ms, and turns that record when they are taken and
   * ended, all in one log; the harness's sleep logs too.
   */
  function withTurns(overrides: Partial<RetryOptions> = {}, take?: (maxWaitMs: number) => Promise<Turn>) {
    const log: string[] = [];
    let askedForSlot = 0;
    const limiter: RateLimiter = {
      delayMs: () => 0,
      take: (operation) => {
        log.push(`slot ${operation}`);
        return askedForSlot++ % 2 === 0 ? 50 : 0;
      },
      onThrottle: () => log.push('onThrottle'),
      onSuccess: () => log.push('onSuccess'),
      onFailure: () => log.push('onFailure'),
      rate: 1,
    };
    let taken = 0;
    const turns: WriteTurns & { take: jest.Mock<Promise<Turn>, [number]> } = {
      covers: (operation) => operation === 'CreateUsagePlanKey',
      take: jest.fn(
        take ??
          (async (maxWaitMs: number) => {
            const n = ++taken;
            log.push(`turn ${n} (max wait ${maxWaitMs})`);
            return { end: (succeeded: boolean) => log.push(`turn ${n} ended ${succeeded}`) };
          }),
      ),
    };
    const { options } = harness({
      limiter,
      turns,
      sleep: async (ms) => {
        log.push(`sleep ${ms}`);
      },
      ...overrides,
    });
    /** A call that logs, throws each of `errors` in turn, then resolves 'ok'. */
    const calling = (errors: unknown[] = []) => {
      const call = failingThen(errors, 'ok');
      return jest.fn(async () => {
        log.push('call');
        return call();
      });
    };
    return { log, turns, options, calling };
  }

  test('a covered operation takes a turn after the limiter slot, then ends it true on success', async () => {
    const { log, options, calling } = withTurns({ remainingTimeMs: () => 30_000 });
    await expect(withRetry('CreateUsagePlanKey', calling(), options)).resolves.toBe('ok');
    expect(log).toEqual([
      'slot CreateUsagePlanKey',
      'sleep 50',
      'slot CreateUsagePlanKey',
      // The turn may wait until just before the safety margin: 30_000 - 1_000.
      'turn 1 (max wait 29000)',
      'call',
      'turn 1 ended true',
      'onSuccess',
    ]);
  });

  test('a failed attempt ends its turn false; the retry takes a new turn after its slot', async () => {
    const { log, turns, options, calling } = withTurns();
    await expect(withRetry('CreateUsagePlanKey', calling([new TransientError('409 overlap')]), options)).resolves.toBe('ok');
    expect(turns.take).toHaveBeenCalledTimes(2);
    expect(log).toEqual([
      'slot CreateUsagePlanKey',
      'sleep 50',
      'slot CreateUsagePlanKey',
      'turn 1 (max wait 59000)',
      'call',
      'turn 1 ended false',
      'onFailure',
      'sleep 100',
      'slot CreateUsagePlanKey',
      'sleep 50',
      'slot CreateUsagePlanKey',
      'turn 2 (max wait 59000)',
      'call',
      'turn 2 ended true',
      'onSuccess',
    ]);
  });

  test('a throttled attempt and a non-retryable error also end the turn false', async () => {
    const { log, options, calling } = withTurns({ random: () => 0 });
    const fatal = new RejectedError('bad-request', 'no such plan');
    await expect(withRetry('CreateUsagePlanKey', calling([new ThrottledError('slow down', undefined), fatal]), options)).rejects.toBe(
      fatal,
    );
    expect(log.filter((line) => line.startsWith('turn') || line.startsWith('on'))).toEqual([
      'turn 1 (max wait 59000)',
      'turn 1 ended false',
      'onThrottle',
      'turn 2 (max wait 59000)',
      'turn 2 ended false',
      'onFailure',
    ]);
  });

  test('an operation the turns do not cover takes no turn', async () => {
    const { log, turns, options, calling } = withTurns();
    await expect(withRetry('CreateApiKey', calling([new TransientError('503')]), options)).resolves.toBe('ok');
    expect(turns.take).not.toHaveBeenCalled();
    expect(log.some((line) => line.startsWith('turn'))).toBe(false);
  });

  test('a DeadlineError from take() propagates as it is: the call is not made, nothing is retried', async () => {
    const late = new DeadlineError('usage-plan write: the next turn begins in 70000 ms, after the deadline', { retryAfterMs: 70_000 });
    const { log, turns, options, calling } = withTurns({}, async () => {
      throw late;
    });
    const call = calling();
    const result = withRetry('CreateUsagePlanKey', call, options);
    await expect(result).rejects.toBe(late);
    await expect(result).rejects.toMatchObject({ retryAfterMs: 70_000 });
    expect(call).not.toHaveBeenCalled();
    expect(turns.take).toHaveBeenCalledTimes(1);
    expect(log).toEqual(['slot CreateUsagePlanKey', 'sleep 50', 'slot CreateUsagePlanKey']);
  });
});
