/**
 * How many instances of the function are busy, from heartbeats in one store item: each busy instance writes its last
 * beat there at most once per `heartbeatMs` and reads everyone's back in the same call, so the rate limiter can start
 * each instance at the account's quota ÷ the instances busy now instead of ÷ `maximumConcurrency` (docs/throughput.md).
 * An instance whose invocation ends removes its beat (`leave`), so that the others take its share at once, not after
 * `liveMs`; one that stops without leaving (killed, frozen) drops out after `liveMs`, and its entry is removed by a
 * later beat of another. The store failing only means "not known": the limiter then probes as it would without.
 */
export interface FleetStore {
  /** Writes `id`'s beat at `now`, removes the `forget` entries, and returns every entry's last beat (epoch ms) by id. */
  beat(id: string, now: number, forget: readonly string[]): Promise<Map<string, number>>;
  /** Removes `id`'s beat. */
  leave(id: string): Promise<void>;
}

export interface FleetOptions {
  store: FleetStore;
  id: string;
  /** Told the number of busy instances after each beat (this one included), or undefined when the store failed. */
  onSize: (size: number | undefined) => void;
  /** Told when the store fails (at most once per `retryAfterErrorMs`). */
  onStoreError?: (error: unknown) => void;
  /** Default 250 ms: a new fleet size is confirmed by two beats, within half a second. */
  heartbeatMs?: number;
  /** An instance counts as busy this long after its last beat (it may be waiting, for a turn or a Retry-After). Default 3 s. */
  liveMs?: number;
  /** After a failed beat, the next one waits this long. Default 30 s. */
  retryAfterErrorMs?: number;
  now?: () => number;
}

export interface Fleet {
  /** This instance is busy: beats if its last beat is older than the heartbeat (never waits for the store). */
  touch(): void;
  /**
   * This instance is idle (its invocation ended): after the beat in flight, if any, its beat is removed, and its next
   * `touch` beats at once. Does nothing unless it beat since it last left; never throws (a failure is told as the
   * beats' are, and the beat then simply ages out). Resolves after `maxWaitMs` at the latest (the store may still
   * answer later); with no time at all, asks nothing.
   */
  leave(maxWaitMs?: number): Promise<void>;
}

/** Entries removed per beat: a long-dead fleet is cleaned over a few beats, each update stays small. */
const FORGET_PER_BEAT = 10;

export function createFleet(options: FleetOptions): Fleet {
  const { store, id, onSize, onStoreError } = options;
  const heartbeatMs = options.heartbeatMs ?? 250;
  const liveMs = options.liveMs ?? 3_000;
  const retryAfterErrorMs = options.retryAfterErrorMs ?? 30_000;
  const now = options.now ?? Date.now;
  let nextBeatAt = Number.NEGATIVE_INFINITY;
  /** The beat in flight, if any. */
  let beating: Promise<void> | undefined;
  /** Whether the store may hold a beat of ours (one was sent since we last left). */
  let joined = false;
  let forget: string[] = [];

  function failed(t: number, error: unknown): void {
    nextBeatAt = t + retryAfterErrorMs;
    // Whatever the store holds of ours ages out; no leave is asked of a failing store.
    joined = false;
    forget = [];
    onSize(undefined);
    onStoreError?.(error);
  }

  async function beat(t: number): Promise<void> {
    try {
      const beats = await store.beat(id, t, forget);
      let busy = 0;
      const stale: string[] = [];
      for (const [member, at] of beats) {
        if (member === id || at > t - liveMs) busy++;
        // Long gone (ten lifetimes): nobody will beat under that id again.
        else if (at < t - 10 * liveMs && stale.length < FORGET_PER_BEAT) stale.push(member);
      }
      forget = stale;
      onSize(Math.max(1, busy));
    } catch (error) {
      failed(t, error);
    } finally {
      beating = undefined;
    }
  }

  return {
    touch() {
      const t = now();
      if (beating || t < nextBeatAt) return;
      nextBeatAt = t + heartbeatMs;
      joined = true;
      beating = beat(t);
    },
    async leave(maxWaitMs = Number.POSITIVE_INFINITY) {
      if (!(maxWaitMs > 0)) return;
      const leaving = (async () => {
        await beating;
        if (!joined) return;
        joined = false;
        try {
          await store.leave(id);
          // Back at the next call: the others must count this instance again at once.
          nextBeatAt = Number.NEGATIVE_INFINITY;
        } catch (error) {
          failed(now(), error);
        }
      })();
      if (!Number.isFinite(maxWaitMs)) return leaving;
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([leaving, new Promise<void>((resolve) => (timer = setTimeout(resolve, maxWaitMs)))]);
      clearTimeout(timer);
    },
  };
}
