/**
 * The usage-plan write turns (lib/quota/usage-plan-turns.ts) on an in-memory store and virtual time: every instance reads
 * the same fake clock, and `sleep` sets a timer on it that `run()` fires, earliest first, moving the clock. Nothing
 * here waits for real time except the local fallback's deadline timer, which the tests keep at 0 ms or clear.
 */
import fc from 'fast-check';
import { DeadlineError } from '../../lib/errors.js';
import {
  createWriteTurns,
  type Timeline,
  type TimelineStore,
  type Turn,
  type WriteTurnsOptions,
} from '../../lib/quota/usage-plan-turns.js';

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

/** A claim as the store saw it: the seq it expected, and the claim's time and end (the claimer's clock). */
interface Claim {
  expected: number | undefined;
  now: number;
  end: number;
  ok: boolean;
}

/**
 * The documented `claim`: sets the timeline to the claim if its seq is `expectedSeq` (undefined: no timeline), else
 * answers the timeline it holds; it compares no times. `busyUntil` starts it with a claim of another instance made at
 * `claimedAt` (default T0, on the same clock as the test's instances). With `latencyMs`, a claim is decided that long
 * after it was sent (on the virtual clock).
 */
function memoryStore(options: { busyUntil?: number; claimedAt?: number; time?: VirtualTime; latencyMs?: number } = {}) {
  const state: { timeline: Timeline | undefined } = {
    timeline:
      options.busyUntil === undefined ? undefined : { seq: 1, by: 'another', claimedAt: options.claimedAt ?? T0, end: options.busyUntil },
  };
  const claims: Claim[] = [];
  const store: TimelineStore = {
    async claim(expectedSeq, next) {
      if (options.latencyMs && options.time) await options.time.sleep(options.latencyMs);
      const held = state.timeline;
      const ok = held?.seq === expectedSeq;
      claims.push({ expected: expectedSeq, now: next.claimedAt, end: next.end, ok });
      if (!ok) return { ok: false, current: held };
      state.timeline = { ...next };
      return { ok: true };
    },
  };
  return { store, state, claims, busyUntil: () => state.timeline?.end };
}

/** Records the claims one instance makes through `store`. */
function recording(store: TimelineStore) {
  const claims: Claim[] = [];
  const recorded: TimelineStore = {
    async claim(expectedSeq, next) {
      const answer = await store.claim(expectedSeq, next);
      claims.push({ expected: expectedSeq, now: next.claimedAt, end: next.end, ok: answer.ok });
      return answer;
    },
  };
  return { store: recorded, claims };
}

/** Turns on virtual time; initialWriteMs 200 unless given (not the default: the numbers below follow from it). */
function turnsOn(time: VirtualTime, store: TimelineStore, options: Partial<WriteTurnsOptions> = {}) {
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
    expect(memory.claims).toEqual([{ expected: undefined, now: T0, end: T0 + 200, ok: true }]);
    expect(memory.busyUntil()).toBe(T0 + 200);
  });

  test('a timeline whose last turn (its own) ended in the past: the next turn begins at once', async () => {
    const time = virtualTime();
    const memory = memoryStore();
    const turns = turnsOn(time, memory.store, { initialWriteMs: 80 });
    await takeAt(time, turns);
    time.advance(5_000);
    const { begin } = await takeAt(time, turns);
    expect(begin).toBe(T0 + 5_000);
    expect(memory.claims).toEqual([
      { expected: undefined, now: T0, end: T0 + 80, ok: true },
      { expected: 1, now: T0 + 5_000, end: T0 + 5_080, ok: true },
    ]);
  });

  test('a claim of another instance whose clock it does not know yet is waited for at most its reserved time after it is read', async () => {
    const time = virtualTime();
    // Claimed 5.2 s ago for 200 ms (on the same clock, which this instance cannot know): it waits 200 ms too many.
    const memory = memoryStore({ busyUntil: T0 - 5_000, claimedAt: T0 - 5_200 });
    const { begin } = await takeAt(time, turnsOn(time, memory.store, { initialWriteMs: 80 }));
    expect(begin).toBe(T0 + 200);
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
      { expected: undefined, now: T0, end: T0 + 200, ok: true },
      { expected: 1, now: T0, end: T0 + 400, ok: true },
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
    // B has seen nothing yet: it asks for an empty timeline, learns A's claim and queues behind it. Not knowing A's
    // clock, it puts A's end the claim's age (10 ms) later than it is: never earlier.
    const takenB = turnsB.take(60_000).then(() => time.now());
    await flush();
    expect(b.claims).toEqual([
      { expected: undefined, now: T0 + 10, end: T0 + 210, ok: false },
      { expected: 1, now: T0 + 10, end: T0 + 410, ok: true },
    ]);
    // A still believes its own claim is the timeline's last: one lost claim, then it queues behind B.
    const claimsBefore = a.claims.length;
    expect((await takeAt(time, turnsA)).begin).toBe(T0 + 410);
    expect(await takenB).toBe(T0 + 210);
    expect(a.claims.slice(claimsBefore)).toEqual([
      { expected: 1, now: T0 + 10, end: T0 + 400, ok: false },
      { expected: 2, now: T0 + 10, end: T0 + 610, ok: true },
    ]);
    expect(memory.busyUntil()).toBe(T0 + 610);
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

describe('createWriteTurns: instances whose clocks differ (issue 23, hazard 8)', () => {
  /** Instance A on the true clock, instance B on a clock `skewMs` ahead of it (behind when negative); one store. */
  function twoClocks(skewMs: number, options: Partial<WriteTurnsOptions> = {}) {
    const time = virtualTime();
    const memory = memoryStore();
    const a = turnsOn(time, memory.store, { id: 'a', ...options });
    const b = turnsOn(time, memory.store, { id: 'b', now: () => time.now() + skewMs, ...options });
    /** Takes a turn of `turns`; resolves with when it began on the true clock. */
    const take = (turns: ReturnType<typeof createWriteTurns>) => turns.take(600_000).then(() => time.now());
    return { time, memory, a, b, take };
  }

  test.each([
    ['10 s fast', 10_000],
    ['10 s slow', -10_000],
    ['2 minutes slow (more than maxAheadMs)', -120_000],
    ['2 minutes fast', 120_000],
  ])('B, %s, takes its turn when A’s ends: neither inside it nor the skew later', async (_what, skewMs) => {
    const { time, a, b, take } = twoClocks(skewMs);
    const beganA = take(a);
    await time.run();
    expect(await beganA).toBe(T0);
    time.advance(10);
    const beganB = take(b);
    await time.run();
    // A reserved 200 ms; B read A's claim 10 ms after it was made and cannot tell that age from a clock offset.
    expect(await beganB).toBeGreaterThanOrEqual(T0 + 200);
    expect(await beganB).toBeLessThanOrEqual(T0 + 210);
  });

  test('A, after B (10 s fast) claimed, queues behind B’s turn, not 10 s later', async () => {
    const { time, a, b, take } = twoClocks(10_000);
    const beganB = take(b);
    await time.run();
    time.advance(10);
    const beganA = take(a);
    await time.run();
    expect(await beganB).toBe(T0);
    expect(await beganA).toBeGreaterThanOrEqual(T0 + 200);
    expect(await beganA).toBeLessThanOrEqual(T0 + 210);
  });

  test('what B learnt from a fresh claim of A corrects a stale one later: B hands over when A’s turn ends', async () => {
    const { time, a, b, take } = twoClocks(-30_000);
    // B reads A's claim the moment it is made (no age): its bound on A's clock is exact.
    const first = Promise.all([take(a), take(b)]);
    await time.run();
    expect(await first).toEqual([T0, T0 + 200]);
    time.advance(1_000); // T0 + 1200
    // A has not read B's clock before: it takes B's claim (made at T0, 400 ms reserved) as made just now.
    const secondA = take(a);
    await flush();
    time.advance(300);
    // B reads A's new claim 300 ms after it was made: what it learnt before puts A's end where it is, not 300 ms later
    // (but for the drift the clocks may have had since: 1 ms a second, 1.5 ms here).
    const secondB = take(b);
    await time.run();
    expect(await secondA).toBe(T0 + 1_600);
    expect(await secondB).toBeGreaterThanOrEqual(T0 + 1_800);
    expect(await secondB).toBeLessThanOrEqual(T0 + 1_802);
  });

  test('a learnt offset ages by the drift clocks may have (1 ms a second): A’s clock slowing down never puts B inside A’s turn', async () => {
    const time = virtualTime();
    const memory = memoryStore();
    // A's clock runs 0.5 ms a second slow against the true one (the fastest NTP slew); B's is true.
    const aNow = () => T0 + (time.now() - T0) * 0.9995;
    const a = turnsOn(time, memory.store, { id: 'a', now: aNow });
    const b = turnsOn(time, memory.store, { id: 'b' });
    const take = (turns: ReturnType<typeof createWriteTurns>) => turns.take(600_000).then(() => time.now());
    // B learns A's clock exactly (it reads A's claim the moment it is made), then an hour passes.
    const first = Promise.all([take(a), take(b)]);
    await time.run();
    expect(await first).toEqual([T0, T0 + 200]);
    time.advance(3_600_000);
    // A claims (it reads B's old claim first, and waits its 400 ms), B reads A's claim 100 ms later.
    const laterA = take(a);
    await flush();
    time.advance(100);
    const laterB = take(b);
    await time.run();
    const beganA = await laterA;
    // A's turn ends 200 ms of A's clock after it began: a little more on the true clock. B does not begin before.
    expect(await laterB).toBeGreaterThanOrEqual(beganA + 200 / 0.9995);
  });

  test('two instances whose clocks differ by up to 5 minutes never get overlapping turns (property)', async () => {
    const write = fc.record({
      instance: fc.constantFrom(0, 1),
      arrivesAfterMs: fc.integer({ min: 0, max: 400 }),
      writeMs: fc.integer({ min: 20, max: 300 }),
    });
    await fc.assert(
      fc.asyncProperty(
        fc.array(write, { minLength: 2, maxLength: 20 }),
        fc.integer({ min: -300_000, max: 300_000 }),
        fc.integer({ min: 0, max: 5 }),
        async (writes, skewMs, latencyMs) => {
          const time = virtualTime();
          const memory = memoryStore({ time, latencyMs });
          const instances = [0, skewMs].map((skew, i) => {
            const store = recording(memory.store);
            const now = () => time.now() + skew;
            return {
              skew,
              store,
              turns: turnsOn(time, store.store, { id: `i${i}`, now, maxClaims: 1_000 }),
              taken: 0,
              begins: [] as number[],
            };
          });
          const flows = writes.map(async ({ instance, arrivesAfterMs, writeMs }) => {
            const me = instances[instance];
            if (!me) throw new Error('no such instance');
            await time.sleep(arrivesAfterMs);
            const k = me.taken++;
            const turn = await me.turns.take(600_000);
            me.begins[k] = time.now();
            await time.sleep(writeMs);
            turn.end(true);
          });
          const done = Promise.all(flows);
          done.catch(() => undefined);
          await time.run();
          await done;
          // Each turn from its begin (the true clock) to the end its instance reserved (its clock, put on the true one).
          const turns = instances.flatMap(({ skew, store, begins }) => {
            const ends = store.claims.filter((c) => c.ok).map((c) => c.end - skew);
            expect(ends).toHaveLength(begins.length);
            return begins.map((begin, k) => ({ begin, end: ends[k] ?? Number.NaN }));
          });
          expect(turns).toHaveLength(writes.length);
          turns.sort((x, y) => x.begin - y.begin);
          for (const [i, turn] of turns.entries()) {
            const previous = turns[i - 1];
            if (previous) expect(turn.begin).toBeGreaterThanOrEqual(previous.end);
          }
        },
      ),
      { numRuns: 100, seed: 20_261_206 },
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
    expect(memory.busyUntil()).toBe(T0 + 5_000);
    expect(memory.claims).toEqual([{ expected: undefined, now: T0, end: T0 + 200, ok: false }]);
    expect(onStoreError).not.toHaveBeenCalled();
    // A wait of exactly maxWaitMs is taken; the failed take left the instance's claims in order.
    expect((await takeAt(time, turns, 5_000)).begin).toBe(T0 + 5_000);
    expect(memory.busyUntil()).toBe(T0 + 5_200);
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

  test('a claim that reserves more than maxAheadMs (60 s: a broken item) is taken over: the turn begins at once', async () => {
    const time = virtualTime();
    const far = T0 + 86_400_000;
    const memory = memoryStore({ busyUntil: far });
    const { begin } = await takeAt(time, turnsOn(time, memory.store), 1_000);
    expect(begin).toBe(T0);
    expect(memory.claims).toEqual([
      { expected: undefined, now: T0, end: T0 + 200, ok: false },
      { expected: 1, now: T0, end: T0 + 200, ok: true },
    ]);
    expect(memory.busyUntil()).toBe(T0 + 200);
  });

  test('a claim whose times do not read as numbers is over: the turn begins at once, claimed over its seq', async () => {
    const time = virtualTime();
    const memory = memoryStore({ busyUntil: Number.NaN, claimedAt: Number.NaN });
    const { begin } = await takeAt(time, turnsOn(time, memory.store), 1_000);
    expect(begin).toBe(T0);
    expect(memory.claims.map(({ expected, ok }) => ({ expected, ok }))).toEqual([
      { expected: undefined, ok: false },
      { expected: 1, ok: true },
    ]);
  });

  test('a timeline end exactly maxAheadMs ahead is waited for', async () => {
    const time = virtualTime();
    const memory = memoryStore({ busyUntil: T0 + 60_000 });
    const { begin } = await takeAt(time, turnsOn(time, memory.store), 60_000);
    expect(begin).toBe(T0 + 60_000);
    expect(memory.busyUntil()).toBe(T0 + 60_200);
  });

  test('maxAheadMs is an option', async () => {
    const time = virtualTime();
    const memory = memoryStore({ busyUntil: T0 + 2_001 });
    const { begin } = await takeAt(time, turnsOn(time, memory.store, { maxAheadMs: 2_000 }), 1_000);
    expect(begin).toBe(T0);
    expect(memory.busyUntil()).toBe(T0 + 200);
  });
});

describe('createWriteTurns: when the store fails', () => {
  function failingStore(time: VirtualTime) {
    const memory = memoryStore();
    const error = new Error('AccessDeniedException: not authorized to perform dynamodb:UpdateItem');
    const control = { failing: true };
    const claim = jest.fn<ReturnType<TimelineStore['claim']>, Parameters<TimelineStore['claim']>>(async (expectedSeq, next) => {
      if (control.failing) throw error;
      return memory.store.claim(expectedSeq, next);
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
    expect(memory.claims).toEqual([{ expected: undefined, now: T0 + 30_000, end: expect.any(Number), ok: true }]);
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
    const claim = jest.fn<ReturnType<TimelineStore['claim']>, Parameters<TimelineStore['claim']>>(async (_expectedSeq, next) => ({
      ok: false,
      current: { seq: 7, by: 'another', claimedAt: next.claimedAt, end: next.claimedAt },
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
    const claim = jest.fn<ReturnType<TimelineStore['claim']>, Parameters<TimelineStore['claim']>>(async (_expectedSeq, next) => ({
      ok: false,
      current: { seq: 7, by: 'another', claimedAt: next.claimedAt, end: next.claimedAt + 100 },
    }));
    await takeAt(time, turnsOn(time, { claim }, { maxClaims: 2 }));
    expect(claim).toHaveBeenCalledTimes(2);
    expect(claim.mock.calls.map(([expectedSeq]) => expectedSeq)).toEqual([undefined, 7]);
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
