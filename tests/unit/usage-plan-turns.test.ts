/**
 * The usage-plan write turns (lib/quota/usage-plan-turns.ts) on an in-memory store and virtual time: every instance reads
 * the same fake clock, and `sleep` sets a timer on it that `run()` fires, earliest first, moving the clock. Nothing
 * here waits for real time except the local fallback's deadline timer, which the tests keep at 0 ms or clear.
 */
import fc from 'fast-check';
import { DeadlineError } from '../../lib/errors.js';
import { createWriteTurns, type Turn, type TurnStore, type WriteTurnsOptions } from '../../lib/quota/usage-plan-turns.js';

const T0 = 1_000_000;

/** Lets every promise chain that can move on do so (a macrotask runs after all pending microtasks). */
const flush = () => new Promise<void>((resolve) => setImmediate(resolve));

/** A fake clock whose `sleep` sets a timer that `run()` fires. */
function virtualTime(start = T0) {
  let t = start;
  let order = 0;
  const timers: { at: number; order: number; fire: () => void }[] = [];
  return {
    now: () => t,
    sleep: (ms: number) =>
      new Promise<void>((resolve) => {
        timers.push({ at: t + Math.max(0, ms), order: order++, fire: resolve });
      }),
    /** Moves the clock without firing timers (time spent outside the turns: a write, an idle spell). */
    advance: (ms: number) => {
      t += ms;
    },
    /** Fires every timer, earliest first (ties in the order set), until none is left. */
    async run() {
      for (;;) {
        await flush();
        timers.sort((a, b) => a.at - b.at || a.order - b.order);
        const next = timers.shift();
        if (!next) return;
        t = Math.max(t, next.at);
        next.fire();
      }
    },
  };
}
type VirtualTime = ReturnType<typeof virtualTime>;

interface Claim {
  expected: number | 'idle';
  now: number;
  end: number;
  ok: boolean;
}

/**
 * The documented `claim`: sets `busyUntil` to `end` if it is `expected` ('idle': absent or at most `now`), else
 * answers what it holds (absent: `now`, as the DynamoDB adapter does). With `latencyMs`, a claim is decided that long
 * after it was sent (on the virtual clock).
 */
function memoryStore(options: { busyUntil?: number; time?: VirtualTime; latencyMs?: number } = {}) {
  const state = { busyUntil: options.busyUntil };
  const claims: Claim[] = [];
  const store: TurnStore = {
    async claim(expected, now, end) {
      if (options.latencyMs && options.time) await options.time.sleep(options.latencyMs);
      const held = state.busyUntil;
      const ok = expected === 'idle' ? held === undefined || held <= now : held === expected;
      claims.push({ expected, now, end, ok });
      if (!ok) return { ok: false, current: held ?? now };
      state.busyUntil = end;
      return { ok: true };
    },
  };
  return { store, state, claims };
}

/** Records the claims one instance makes through `store`. */
function recording(store: TurnStore) {
  const claims: Claim[] = [];
  const recorded: TurnStore = {
    async claim(expected, now, end) {
      const answer = await store.claim(expected, now, end);
      claims.push({ expected, now, end, ok: answer.ok });
      return answer;
    },
  };
  return { store: recorded, claims };
}

/** Turns on virtual time; initialWriteMs 200 unless given (not the default: the numbers below follow from it). */
function turnsOn(time: VirtualTime, store: TurnStore, options: Partial<WriteTurnsOptions> = {}) {
  return createWriteTurns({ store, now: time.now, sleep: time.sleep, initialWriteMs: 200, ...options });
}

/** Takes a turn, running virtual time until it begins; returns it and the (virtual) time it began. */
async function takeAt(time: VirtualTime, turns: ReturnType<typeof createWriteTurns>, maxWaitMs = 60_000) {
  const taken = turns.take(maxWaitMs).then((turn) => ({ turn, begin: time.now() }));
  taken.catch(() => undefined);
  await time.run();
  return taken;
}

/** Tells whether `promise` has settled yet (after a `flush()`). */
function watch(promise: Promise<unknown>) {
  let state: 'pending' | 'resolved' | 'rejected' = 'pending';
  promise.then(
    () => {
      state = 'resolved';
    },
    () => {
      state = 'rejected';
    },
  );
  return () => state;
}

describe('createWriteTurns: the shared timeline', () => {
  test('the first turn on an idle timeline begins at once and reserves initialWriteMs', async () => {
    const time = virtualTime();
    const memory = memoryStore();
    const { begin } = await takeAt(time, turnsOn(time, memory.store));
    expect(begin).toBe(T0);
    expect(memory.claims).toEqual([{ expected: 'idle', now: T0, end: T0 + 200, ok: true }]);
    expect(memory.state.busyUntil).toBe(T0 + 200);
  });

  test('a timeline that ended in the past is idle: the turn begins at once', async () => {
    const time = virtualTime();
    const memory = memoryStore({ busyUntil: T0 - 5_000 });
    const { begin } = await takeAt(time, turnsOn(time, memory.store, { initialWriteMs: 80 }));
    expect(begin).toBe(T0);
    expect(memory.claims).toEqual([{ expected: 'idle', now: T0, end: T0 + 80, ok: true }]);
  });

  test('the claims of one instance go one by one: two takes at once cost two claims, the second turn follows the first', async () => {
    const time = virtualTime();
    const memory = memoryStore();
    const turns = turnsOn(time, memory.store);
    const begins: number[] = [];
    const both = Promise.all([turns.take(60_000), turns.take(60_000)].map((p) => p.then(() => begins.push(time.now()))));
    await time.run();
    await both;
    expect(begins).toEqual([T0, T0 + 200]);
    expect(memory.claims).toEqual([
      { expected: 'idle', now: T0, end: T0 + 200, ok: true },
      { expected: T0 + 200, now: T0, end: T0 + 400, ok: true },
    ]);
  });

  test('a lost race (another instance changed the store) costs one more claim, then the turn queues behind the winner', async () => {
    const time = virtualTime();
    const memory = memoryStore();
    const a = recording(memory.store);
    const b = recording(memory.store);
    const turnsA = turnsOn(time, a.store);
    const turnsB = turnsOn(time, b.store);

    expect((await takeAt(time, turnsA)).begin).toBe(T0);
    time.advance(10);
    // B has seen nothing yet: it asks for an idle timeline, learns A's end and queues behind it.
    const takenB = turnsB.take(60_000).then(() => time.now());
    await flush();
    expect(b.claims).toEqual([
      { expected: 'idle', now: T0 + 10, end: T0 + 210, ok: false },
      { expected: T0 + 200, now: T0 + 10, end: T0 + 400, ok: true },
    ]);
    // A still believes its own end is the timeline's: one lost claim, then it queues behind B.
    const claimsBefore = a.claims.length;
    expect((await takeAt(time, turnsA)).begin).toBe(T0 + 400);
    expect(await takenB).toBe(T0 + 200);
    expect(a.claims.slice(claimsBefore)).toEqual([
      { expected: T0 + 200, now: T0 + 10, end: T0 + 400, ok: false },
      { expected: T0 + 400, now: T0 + 10, end: T0 + 600, ok: true },
    ]);
    expect(memory.state.busyUntil).toBe(T0 + 600);
  });

  test('two instances on one store never get overlapping turns (property)', async () => {
    const write = fc.record({
      instance: fc.constantFrom(0, 1),
      arrivesAfterMs: fc.integer({ min: 0, max: 400 }),
      writeMs: fc.integer({ min: 20, max: 300 }),
      succeeds: fc.boolean(),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(write, { minLength: 1, maxLength: 25 }), fc.integer({ min: 0, max: 5 }), async (writes, latencyMs) => {
        const time = virtualTime();
        const memory = memoryStore({ time, latencyMs });
        // Enough claims that every write gets a shared turn (after maxClaims lost races a write goes alone, by design).
        const instances = [0, 1].map(() => {
          const store = recording(memory.store);
          return { store, turns: turnsOn(time, store.store, { maxClaims: 1_000 }), taken: 0, begins: [] as number[] };
        });
        const flows = writes.map(async ({ instance, arrivesAfterMs, writeMs, succeeds }) => {
          const me = instances[instance];
          if (!me) throw new Error('no such instance');
          await time.sleep(arrivesAfterMs);
          // The claims of an instance go in the order of its takes: the k-th take gets its k-th successful claim.
          const k = me.taken++;
          const turn: Turn = await me.turns.take(600_000);
          me.begins[k] = time.now();
          await time.sleep(writeMs);
          turn.end(succeeds);
        });
        const done = Promise.all(flows);
        done.catch(() => undefined);
        await time.run();
        await done;

        const turns = instances.flatMap(({ store, begins }) => {
          const ends = store.claims.filter((c) => c.ok).map((c) => c.end);
          expect(ends).toHaveLength(begins.length);
          return begins.map((begin, k) => ({ begin, end: ends[k] ?? Number.NaN }));
        });
        expect(turns).toHaveLength(writes.length);
        turns.sort((x, y) => x.begin - y.begin);
        for (const [i, turn] of turns.entries()) {
          expect(turn.end).toBeGreaterThan(turn.begin);
          const previous = turns[i - 1];
          if (previous) expect(turn.begin).toBeGreaterThanOrEqual(previous.end);
        }
      }),
      { numRuns: 150, seed: 20_240_611 },
    );
  });
});

describe('createWriteTurns: the turn length follows the instance’s write times', () => {
  /** One write of `ms` (ending `succeeded`), after an idle spell, so that its claim starts now. */
  async function writeOnce(time: VirtualTime, turns: ReturnType<typeof createWriteTurns>, ms: number, succeeded = true) {
    time.advance(10_000);
    const { turn } = await takeAt(time, turns);
    time.advance(ms);
    turn.end(succeeded);
  }

  /** The length of the next claimed turn on an idle timeline. */
  async function nextTurnLength(time: VirtualTime, turns: ReturnType<typeof createWriteTurns>, memory: ReturnType<typeof memoryStore>) {
    time.advance(10_000);
    await takeAt(time, turns);
    const last = memory.claims.at(-1);
    if (!last?.ok) throw new Error('no successful claim');
    return last.end - last.now;
  }

  test('after writes of about 50 ms, a turn is their 75th percentile × 1.05 (whole ms, rounded up)', async () => {
    const time = virtualTime();
    const memory = memoryStore();
    const turns = turnsOn(time, memory.store);
    expect(await nextTurnLength(time, turns, memory)).toBe(200);
    const times = [42, 57, 44, 55, 46, 53, 48, 51, 50, 49, 52, 47, 54, 45, 56, 43]; // 42..57
    for (const ms of times) await writeOnce(time, turns, ms);
    // Sorted, index floor(0.75 × 16) = 12 is 54 ms: 54 × 1.05 = 56.7.
    expect(await nextTurnLength(time, turns, memory)).toBe(57);
  });

  test('a single timed write already sets the turn: 80 ms → 84 ms', async () => {
    const time = virtualTime();
    const memory = memoryStore();
    const turns = turnsOn(time, memory.store);
    await writeOnce(time, turns, 80);
    expect(await nextTurnLength(time, turns, memory)).toBe(84);
  });

  test('failed writes are not learnt', async () => {
    const time = virtualTime();
    const memory = memoryStore();
    const turns = turnsOn(time, memory.store);
    for (let i = 0; i < 16; i++) await writeOnce(time, turns, 50);
    expect(await nextTurnLength(time, turns, memory)).toBe(53); // 52.5
    for (let i = 0; i < 16; i++) await writeOnce(time, turns, 5_000, false);
    expect(await nextTurnLength(time, turns, memory)).toBe(53);
  });

  test('only the last 16 writes count', async () => {
    const time = virtualTime();
    const memory = memoryStore();
    const turns = turnsOn(time, memory.store);
    for (let i = 0; i < 16; i++) await writeOnce(time, turns, 50);
    for (let i = 0; i < 16; i++) await writeOnce(time, turns, 100);
    expect(await nextTurnLength(time, turns, memory)).toBe(105);
  });

  test('quantile and margin are options', async () => {
    const time = virtualTime();
    const memory = memoryStore();
    const turns = turnsOn(time, memory.store, { quantile: 0.5, margin: 1.2 });
    for (const ms of [10, 20, 30, 40]) await writeOnce(time, turns, ms);
    expect(await nextTurnLength(time, turns, memory)).toBe(36); // index 2: 30 × 1.2
  });
});

describe('createWriteTurns: the deadline and a timeline far ahead', () => {
  test('a turn that begins later than maxWaitMs is a DeadlineError with that wait, and claims nothing', async () => {
    const time = virtualTime();
    const memory = memoryStore({ busyUntil: T0 + 5_000 });
    const onStoreError = jest.fn();
    const turns = turnsOn(time, memory.store, { onStoreError });
    const taken = takeAt(time, turns, 4_999);
    await expect(taken).rejects.toThrow(DeadlineError);
    await expect(taken).rejects.toMatchObject({ retryAfterMs: 5_000 });
    expect(memory.state.busyUntil).toBe(T0 + 5_000);
    expect(memory.claims).toEqual([{ expected: 'idle', now: T0, end: T0 + 200, ok: false }]);
    expect(onStoreError).not.toHaveBeenCalled();
    // A wait of exactly maxWaitMs is taken; the failed take left the instance's claims in order.
    expect((await takeAt(time, turns, 5_000)).begin).toBe(T0 + 5_000);
    expect(memory.state.busyUntil).toBe(T0 + 5_200);
  });

  test('an instance that knows its own queue is too long throws without asking the store', async () => {
    const time = virtualTime();
    const memory = memoryStore();
    const turns = turnsOn(time, memory.store);
    const first = turns.take(60_000);
    const second = turns.take(199);
    second.catch(() => undefined);
    await time.run();
    await expect(second).rejects.toMatchObject({ name: 'DeadlineError', retryAfterMs: 200 });
    await first;
    expect(memory.claims).toHaveLength(1);
  });

  test('a timeline end further ahead than maxAheadMs (60 s) is taken over: the turn begins at once', async () => {
    const time = virtualTime();
    const far = T0 + 86_400_000;
    const memory = memoryStore({ busyUntil: far });
    const { begin } = await takeAt(time, turnsOn(time, memory.store), 1_000);
    expect(begin).toBe(T0);
    expect(memory.claims).toEqual([
      { expected: 'idle', now: T0, end: T0 + 200, ok: false },
      { expected: far, now: T0, end: T0 + 200, ok: true },
    ]);
    expect(memory.state.busyUntil).toBe(T0 + 200);
  });

  test('a timeline end exactly maxAheadMs ahead is waited for', async () => {
    const time = virtualTime();
    const memory = memoryStore({ busyUntil: T0 + 60_000 });
    const { begin } = await takeAt(time, turnsOn(time, memory.store), 60_000);
    expect(begin).toBe(T0 + 60_000);
    expect(memory.state.busyUntil).toBe(T0 + 60_200);
  });

  test('maxAheadMs is an option', async () => {
    const time = virtualTime();
    const memory = memoryStore({ busyUntil: T0 + 2_001 });
    const { begin } = await takeAt(time, turnsOn(time, memory.store, { maxAheadMs: 2_000 }), 1_000);
    expect(begin).toBe(T0);
    expect(memory.state.busyUntil).toBe(T0 + 200);
  });
});

describe('createWriteTurns: when the store fails', () => {
  function failingStore(time: VirtualTime) {
    const memory = memoryStore();
    const error = new Error('AccessDeniedException: not authorized to perform dynamodb:UpdateItem');
    const control = { failing: true };
    const claim = jest.fn<ReturnType<TurnStore['claim']>, Parameters<TurnStore['claim']>>(async (expected, now, end) => {
      if (control.failing) throw error;
      return memory.store.claim(expected, now, end);
    });
    const onStoreError = jest.fn();
    const turns = turnsOn(time, { claim }, { onStoreError, fallbackMs: 30_000 });
    return { memory, error, control, claim, onStoreError, turns };
  }

  test('take() still gives a turn at once, and onStoreError is told once', async () => {
    const time = virtualTime();
    const { claim, onStoreError, error, turns } = failingStore(time);
    expect((await takeAt(time, turns)).begin).toBe(T0);
    expect(claim).toHaveBeenCalledTimes(1);
    expect(onStoreError).toHaveBeenCalledTimes(1);
    expect(onStoreError).toHaveBeenCalledWith(error);
  });

  test('during fallbackMs the store is not asked and the instance writes one at a time; after it the store is used again', async () => {
    const time = virtualTime();
    const { memory, control, claim, onStoreError, turns } = failingStore(time);
    const { turn: first } = await takeAt(time, turns);
    control.failing = false; // the store is back, but not asked before fallbackMs has passed

    const second = turns.take(10_000);
    const secondState = watch(second);
    await flush();
    expect(secondState()).toBe('pending');
    first.end(true);
    (await second).end(true);
    time.advance(29_999);
    (await takeAt(time, turns)).turn.end(true);
    expect(claim).toHaveBeenCalledTimes(1);

    time.advance(1);
    expect((await takeAt(time, turns)).begin).toBe(T0 + 30_000);
    expect(claim).toHaveBeenCalledTimes(2);
    expect(memory.claims).toEqual([{ expected: 'idle', now: T0 + 30_000, end: expect.any(Number), ok: true }]);
    expect(onStoreError).toHaveBeenCalledTimes(1);
  });

  test('a store still failing after fallbackMs is told again, once per fallback period', async () => {
    const time = virtualTime();
    const { claim, onStoreError, turns } = failingStore(time);
    (await takeAt(time, turns)).turn.end(true);
    time.advance(10_000);
    (await takeAt(time, turns)).turn.end(true);
    expect(onStoreError).toHaveBeenCalledTimes(1);
    time.advance(20_000);
    (await takeAt(time, turns)).turn.end(true);
    expect(claim).toHaveBeenCalledTimes(2);
    expect(onStoreError).toHaveBeenCalledTimes(2);
  });

  test('in fallback, a write whose previous one does not end within maxWaitMs is a DeadlineError, and does not hold up the next', async () => {
    const time = virtualTime();
    const { turns } = failingStore(time);
    const { turn: first } = await takeAt(time, turns);
    const second = turns.take(0);
    await expect(second).rejects.toThrow(DeadlineError);
    const third = turns.take(10_000);
    const thirdState = watch(third);
    await flush();
    expect(thirdState()).toBe('pending');
    first.end(false);
    (await third).end(true);
  });

  // The committed lib/quota/usage-plan-turns.ts (3ef5081) checked storeDownUntil only before queueing a claim, so a claim
  // queued behind the failing one asked the store again and told onStoreError again.
  test('takes queued behind the claim that found the store down do not ask the store again', async () => {
    const time = virtualTime();
    const { claim, onStoreError, turns } = failingStore(time);
    const taken = [turns.take(10_000), turns.take(10_000)];
    (await taken[0])?.end(true);
    (await taken[1])?.end(true);
    expect(claim).toHaveBeenCalledTimes(1);
    expect(onStoreError).toHaveBeenCalledTimes(1);
  });
});

describe('createWriteTurns: a store that keeps losing races', () => {
  test('after maxClaims (5) lost claims the write goes without a shared turn, one at a time of the instance', async () => {
    const time = virtualTime();
    const claim = jest.fn<ReturnType<TurnStore['claim']>, Parameters<TurnStore['claim']>>(async (_expected, now) => ({
      ok: false,
      current: now,
    }));
    const onStoreError = jest.fn();
    const turns = turnsOn(time, { claim }, { onStoreError });
    const { turn: first, begin } = await takeAt(time, turns);
    expect(begin).toBe(T0);
    expect(claim).toHaveBeenCalledTimes(5);
    expect(onStoreError).not.toHaveBeenCalled();

    const second = turns.take(10_000);
    const secondState = watch(second);
    await flush();
    expect(secondState()).toBe('pending');
    expect(claim).toHaveBeenCalledTimes(10);
    first.end(true);
    (await second).end(true);
  });

  test('maxClaims is an option', async () => {
    const time = virtualTime();
    const claim = jest.fn<ReturnType<TurnStore['claim']>, Parameters<TurnStore['claim']>>(async (_expected, now) => ({
      ok: false,
      current: now + 100,
    }));
    await takeAt(time, turnsOn(time, { claim }, { maxClaims: 2 }));
    expect(claim).toHaveBeenCalledTimes(2);
    expect(claim.mock.calls.map(([expected]) => expected)).toEqual(['idle', T0 + 100]);
  });
});

describe('createWriteTurns: covers', () => {
  test.each(['CreateUsagePlanKey', 'DeleteUsagePlanKey', 'CreateUsagePlan', 'UpdateUsagePlan', 'DeleteUsagePlan'])(
    '%s is a usage-plan write',
    (operation) => {
      expect(createWriteTurns({ store: memoryStore().store }).covers(operation)).toBe(true);
    },
  );

  test.each(['CreateApiKey', 'DeleteApiKey', 'GetUsagePlanKey', 'UpdateApiKey', ''])('%s is not', (operation) => {
    expect(createWriteTurns({ store: memoryStore().store }).covers(operation)).toBe(false);
  });
});
