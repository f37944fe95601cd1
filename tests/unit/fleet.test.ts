import { createFleet, type FleetOptions, type FleetStore } from '../../lib/quota/fleet.js';
import { fakeClock } from '../helpers/fake-clock.js';

/** Lets the beats in flight settle (the store answers on a later microtask). */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * The heartbeats item in memory: records each beat, removes the forgotten entries, sets the caller's and answers
 * every entry. `fail` makes the next beats and leaves reject; `hold` makes them wait until `release()`.
 */
class MemoryFleetStore implements FleetStore {
  readonly entries = new Map<string, number>();
  readonly calls: { id: string; now: number; forget: string[] }[] = [];
  readonly left: string[] = [];
  fail: unknown;
  hold = false;
  #held: (() => void)[] = [];

  async beat(id: string, now: number, forget: readonly string[]): Promise<Map<string, number>> {
    this.calls.push({ id, now, forget: [...forget] });
    if (this.hold) await new Promise<void>((resolve) => this.#held.push(resolve));
    if (this.fail !== undefined) throw this.fail;
    for (const member of forget) this.entries.delete(member);
    this.entries.set(id, now);
    return new Map(this.entries);
  }

  async leave(id: string): Promise<void> {
    this.left.push(id);
    if (this.hold) await new Promise<void>((resolve) => this.#held.push(resolve));
    if (this.fail !== undefined) throw this.fail;
    this.entries.delete(id);
  }

  release() {
    this.hold = false;
    for (const resolve of this.#held.splice(0)) resolve();
  }
}

function fleetAt(options: Partial<FleetOptions> = {}) {
  const clock = fakeClock();
  const store = new MemoryFleetStore();
  const sizes: (number | undefined)[] = [];
  const errors: unknown[] = [];
  const fleet = createFleet({
    store,
    id: 'me',
    onSize: (size) => sizes.push(size),
    onStoreError: (error) => errors.push(error),
    now: clock.now,
    ...options,
  });
  /** Touches, then lets the beat (if any) settle. */
  const touch = async () => {
    fleet.touch();
    await settle();
  };
  return { clock, store, sizes, errors, fleet, touch };
}

describe('createFleet: heartbeats', () => {
  test('touch beats once, not again within heartbeatMs, and again once heartbeatMs has passed', async () => {
    const { clock, store, touch } = fleetAt({ heartbeatMs: 500 });
    await touch();
    expect(store.calls).toEqual([{ id: 'me', now: 1_000_000, forget: [] }]);
    for (let i = 0; i < 5; i++) {
      clock.advance(99);
      await touch();
    }
    expect(store.calls).toHaveLength(1);
    clock.advance(5); // 500 ms after the first beat
    await touch();
    expect(store.calls.map((call) => call.now)).toEqual([1_000_000, 1_000_500]);
    await touch();
    expect(store.calls).toHaveLength(2);
  });

  test('the heartbeat is 250 ms by default', async () => {
    const { clock, store, touch } = fleetAt();
    await touch();
    clock.advance(249);
    await touch();
    expect(store.calls).toHaveLength(1);
    clock.advance(1);
    await touch();
    expect(store.calls).toHaveLength(2);
  });

  test('touch never waits for the store: it returns undefined at once, the beat is sent in the same call', () => {
    const { store, fleet } = fleetAt();
    store.hold = true;
    const returned: unknown = (fleet.touch as () => unknown)();
    expect(returned).toBeUndefined();
    expect(store.calls).toHaveLength(1);
  });

  test('a touch while a beat is in flight does not beat, even past the heartbeat; the next one after its answer does', async () => {
    const { clock, store, sizes, touch } = fleetAt({ heartbeatMs: 500 });
    store.hold = true;
    await touch();
    clock.advance(2_000);
    await touch();
    await touch();
    expect(store.calls).toHaveLength(1);
    expect(sizes).toEqual([]);
    store.release();
    await settle();
    expect(sizes).toEqual([1]);
    await touch();
    expect(store.calls.map((call) => call.now)).toEqual([1_000_000, 1_002_000]);
  });
});

describe('createFleet: the size reported', () => {
  test('alone: 1', async () => {
    const { sizes, touch } = fleetAt();
    await touch();
    expect(sizes).toEqual([1]);
  });

  test('this instance counts even if the store answers without it (at least 1)', async () => {
    const sizes: (number | undefined)[] = [];
    const fleet = createFleet({
      store: { beat: async () => new Map(), leave: async () => {} },
      id: 'me',
      onSize: (size) => sizes.push(size),
    });
    fleet.touch();
    await settle();
    expect(sizes).toEqual([1]);
  });

  test('with two other entries seen within liveMs: 3', async () => {
    const { clock, store, sizes, touch } = fleetAt({ liveMs: 3_000 });
    store.entries.set('a', clock.now() - 100);
    store.entries.set('b', clock.now() - 2_999);
    await touch();
    expect(sizes).toEqual([3]);
  });

  test('entries last seen liveMs ago or longer are not counted (liveMs 3 s by default)', async () => {
    const { clock, store, sizes, touch } = fleetAt();
    store.entries.set('live', clock.now() - 2_999);
    store.entries.set('just-stale', clock.now() - 3_000);
    store.entries.set('stale', clock.now() - 20_000);
    await touch();
    expect(sizes).toEqual([2]);
  });

  test('a size follows the others as they come and go', async () => {
    const { clock, store, sizes, touch } = fleetAt({ heartbeatMs: 500, liveMs: 3_000 });
    store.entries.set('a', clock.now());
    await touch();
    clock.advance(500);
    store.entries.set('b', clock.now());
    await touch();
    // 'a' stops beating: after liveMs it no longer counts.
    clock.advance(2_500);
    store.entries.set('b', clock.now());
    await touch();
    expect(sizes).toEqual([2, 3, 2]);
  });
});

describe('createFleet: forgetting long-gone entries', () => {
  test('entries older than 10 × liveMs are removed by the next beat (passed as forget); younger stale ones are kept', async () => {
    const { clock, store, sizes, touch } = fleetAt({ heartbeatMs: 500, liveMs: 3_000 });
    store.entries.set('live', clock.now() - 100);
    store.entries.set('stale', clock.now() - 3_000);
    store.entries.set('ten-lives', clock.now() - 30_000);
    store.entries.set('gone', clock.now() - 30_001);
    await touch();
    expect(sizes).toEqual([2]);
    expect(store.calls[0]?.forget).toEqual([]);
    clock.advance(500);
    await touch();
    expect(store.calls[1]?.forget).toEqual(['gone']);
    expect([...store.entries.keys()].sort()).toEqual(['live', 'me', 'stale', 'ten-lives']);
    // 'ten-lives' is now 30 500 ms old: the beat after forgets it.
    clock.advance(500);
    await touch();
    expect(store.calls[2]?.forget).toEqual(['ten-lives']);
    expect(sizes).toEqual([2, 2, 2]);
  });

  test('at most 10 per beat: a long-dead fleet is cleaned over a few beats', async () => {
    const { clock, store, sizes, touch } = fleetAt({ heartbeatMs: 500, liveMs: 3_000 });
    const dead = Array.from({ length: 25 }, (_, i) => `dead-${i}`);
    for (const member of dead) store.entries.set(member, clock.now() - 60_000);
    for (let i = 0; i < 5; i++) {
      await touch();
      clock.advance(500);
    }
    expect(store.calls.map((call) => call.forget.length)).toEqual([0, 10, 10, 5, 0]);
    expect(store.calls.flatMap((call) => call.forget)).toEqual(dead);
    expect([...store.entries.keys()]).toEqual(['me']);
    expect(sizes).toEqual([1, 1, 1, 1, 1]);
  });
});

describe('createFleet: a failing store', () => {
  test('reports size undefined and the error once, beats no more for retryAfterErrorMs, then beats again', async () => {
    const { clock, store, sizes, errors, touch } = fleetAt({ heartbeatMs: 500, retryAfterErrorMs: 30_000 });
    const error = new Error('AccessDenied');
    store.fail = error;
    await touch();
    expect(sizes).toEqual([undefined]);
    expect(errors).toEqual([error]);
    for (let i = 0; i < 59; i++) {
      clock.advance(500);
      await touch();
    }
    // 29 500 ms after the failure.
    expect(store.calls).toHaveLength(1);
    clock.advance(499);
    await touch();
    expect(store.calls).toHaveLength(1);
    store.fail = undefined;
    clock.advance(1);
    await touch();
    expect(store.calls).toHaveLength(2);
    expect(sizes).toEqual([undefined, 1]);
    expect(errors).toEqual([error]);
    // Beating again at the heartbeat.
    clock.advance(500);
    await touch();
    expect(store.calls).toHaveLength(3);
  });

  test('the retry wait is 30 s by default; a store that keeps failing is told of at most once per wait', async () => {
    const { clock, store, sizes, errors, touch } = fleetAt();
    store.fail = new Error('ResourceNotFoundException');
    for (let ms = 0; ms <= 60_000; ms += 250) {
      await touch();
      clock.advance(250);
    }
    expect(store.calls.map((call) => call.now - 1_000_000)).toEqual([0, 30_000, 60_000]);
    expect(errors).toHaveLength(3);
    expect(sizes).toEqual([undefined, undefined, undefined]);
  });

  test('the forget list of a beat before the failure is not sent after it', async () => {
    const { clock, store, touch } = fleetAt({ heartbeatMs: 500, retryAfterErrorMs: 1_000 });
    store.entries.set('gone', clock.now() - 60_000);
    await touch();
    store.fail = new Error('throttled');
    clock.advance(500);
    await touch();
    expect(store.calls[1]?.forget).toEqual(['gone']);
    store.fail = undefined;
    clock.advance(1_000);
    await touch();
    // Computed afresh from this beat's answer: forgotten by the next.
    expect(store.calls[2]?.forget).toEqual([]);
    clock.advance(500);
    await touch();
    expect(store.calls[3]?.forget).toEqual(['gone']);
  });

  test('a store that throws synchronously counts as failing; without onStoreError nothing throws', async () => {
    const sizes: (number | undefined)[] = [];
    const fleet = createFleet({
      store: {
        beat: () => {
          throw new Error('not configured');
        },
        leave: async () => {},
      },
      id: 'me',
      onSize: (size) => sizes.push(size),
    });
    expect(() => fleet.touch()).not.toThrow();
    await settle();
    expect(sizes).toEqual([undefined]);
  });
});

describe('createFleet: leaving when the invocation ends', () => {
  test('removes its beat, so the others count it out at once; its next touch beats at once', async () => {
    const { clock, store, sizes, fleet, touch } = fleetAt({ heartbeatMs: 500 });
    store.entries.set('other', clock.now());
    await touch();
    expect(sizes).toEqual([2]);
    await fleet.leave();
    expect(store.left).toEqual(['me']);
    expect(store.entries.has('me')).toBe(false);
    // Within the heartbeat: without the leave, this touch would not beat.
    clock.advance(10);
    await touch();
    expect(store.calls).toHaveLength(2);
    expect(store.entries.get('me')).toBe(clock.now());
  });

  test('asks nothing of the store unless it beat since it last left', async () => {
    const { store, fleet, touch } = fleetAt();
    await fleet.leave();
    expect(store.left).toEqual([]);
    await touch();
    await fleet.leave();
    await fleet.leave();
    expect(store.left).toEqual(['me']);
  });

  test('waits for the beat in flight, so that beat cannot land after the removal', async () => {
    const { store, fleet } = fleetAt();
    store.hold = true;
    fleet.touch();
    const leaving = fleet.leave();
    await settle();
    expect(store.left).toEqual([]);
    store.release();
    await leaving;
    expect(store.left).toEqual(['me']);
    expect(store.entries.has('me')).toBe(false);
  });

  test('a failing leave never throws: it is told as a failure, and the beats wait retryAfterErrorMs', async () => {
    const { clock, store, sizes, errors, fleet, touch } = fleetAt({ retryAfterErrorMs: 30_000 });
    await touch();
    store.fail = new Error('denied');
    await expect(fleet.leave()).resolves.toBeUndefined();
    expect(errors).toEqual([store.fail]);
    expect(sizes).toEqual([1, undefined]);
    store.fail = undefined;
    clock.advance(29_000);
    await touch();
    expect(store.calls).toHaveLength(1);
    clock.advance(1_000);
    await touch();
    expect(store.calls).toHaveLength(2);
  });

  test('a store that does not answer holds the leave maxWaitMs at most; with no time left nothing is asked', async () => {
    const { store, fleet, touch } = fleetAt();
    await touch();
    await fleet.leave(0);
    await fleet.leave(-5);
    expect(store.left).toEqual([]);
    store.hold = true;
    // Real time: resolves on its own timer while the store still holds the removal.
    await fleet.leave(10);
    expect(store.left).toEqual(['me']);
    expect(store.entries.has('me')).toBe(true);
    store.release();
    await settle();
    expect(store.entries.has('me')).toBe(false);
  });

  test('after a failed beat, leaving asks nothing of the store (its old beat ages out)', async () => {
    const { store, fleet, touch } = fleetAt();
    store.fail = new Error('throttled');
    await touch();
    await fleet.leave();
    expect(store.left).toEqual([]);
  });
});
