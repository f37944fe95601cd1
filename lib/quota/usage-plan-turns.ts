import { DeadlineError } from '../errors.js';

/**
 * Turns for usage-plan writes, shared by every instance of the deployment.
 *
 * API Gateway runs usage-plan writes one at a time per account and Region and answers an overlapping one 409
 * (tests/realistic-aws/README.md); instances cannot see each other's writes, so once writes fill much of the time
 * they overlap often, and each overlap costs a call of the "Total operations" quota and a retry (docs/throughput.md). The turns
 * put the writes of all instances on one timeline, kept in one store item: `busyUntil`, the time (epoch ms) the last
 * reserved write is expected to end. An instance reserves the next turn with one conditional update
 * (`busyUntil` := max(now, `busyUntil`) + its expected write time, if `busyUntil` is still what it last saw), waits
 * until its turn begins, then writes. No lock is held: an instance that dies leaves one unused turn behind, never a
 * stuck lock, and nobody has to be told that a write ended.
 *
 * A turn is as long as this instance's writes take: a quantile of its last 16 successful write times, with a margin
 * (before the first, `initialWriteMs`). Long turns waste the one-at-a-time capacity, short ones let an unusually
 * slow write overlap the next turn (a 409, retried): measured, the 75th percentile × 1.05 did best
 * (docs/throughput.md).
 *
 * When the store fails (throttled, denied, missing, unreachable) the instance writes without turns for `fallbackMs`,
 * one write at a time of its own; the 409 handling of lib/aws/api-gateway.ts stays the safety net either way. A
 * `busyUntil` further ahead than `maxAheadMs` (a clock far off, a corrupted item) is taken over, not waited for.
 */
export interface TurnStore {
  /**
   * Sets the timeline's end to `end` if it is `expected` now (`'idle'`: the item is absent or its end is at most
   * `now`). Else tells the end it found. Throws when the store cannot answer.
   */
  claim(expected: number | 'idle', now: number, end: number): Promise<{ ok: true } | { ok: false; current: number }>;
}

export interface Turn {
  /** The write ended: `true` if it succeeded (its time is learnt), `false` if it failed. */
  end(succeeded: boolean): void;
}

export interface WriteTurns {
  /** Whether `operation` is a usage-plan write, which takes a turn. */
  covers(operation: string): boolean;
  /**
   * Waits for a turn for one write and returns it; the caller writes at once, then ends it. A turn that would begin
   * later than `maxWaitMs` from now is not taken: {@link DeadlineError} with that wait (SQS redelivers the record).
   */
  take(maxWaitMs: number): Promise<Turn>;
}

export interface WriteTurnsOptions {
  store: TurnStore;
  /** Expected time of a write before this instance has timed one. Default 100 ms. */
  initialWriteMs?: number;
  /** The turn is this quantile of the instance's recent write times… Default 0.75. */
  quantile?: number;
  /** … times this. Default 1.05. */
  margin?: number;
  /** How long the instance writes without the store after the store failed. Default 30 s. */
  fallbackMs?: number;
  /** A timeline end further ahead than this is taken over. Default 60 s. */
  maxAheadMs?: number;
  /** Conditional updates tried for one turn before writing without one. Default 5. */
  maxClaims?: number;
  /** Told once per fallback period when the store fails. */
  onStoreError?: (error: unknown) => void;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

/** Usage-plan writes: "can run only one at a time in a Region" (AWS Support, serverless/serverless#12065). */
export const USAGE_PLAN_WRITES: ReadonlySet<string> = new Set([
  'CreateUsagePlan',
  'UpdateUsagePlan',
  'DeleteUsagePlan',
  'CreateUsagePlanKey',
  'DeleteUsagePlanKey',
]);

/** How many of its latest write times an instance keeps. */
const RECENT_WRITES = 16;

const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export function createWriteTurns(options: WriteTurnsOptions): WriteTurns {
  const { store, onStoreError } = options;
  const fallbackMs = options.fallbackMs ?? 30_000;
  const maxAheadMs = options.maxAheadMs ?? 60_000;
  const maxClaims = options.maxClaims ?? 5;
  const now = options.now ?? Date.now;
  const sleep = options.sleep ?? defaultSleep;

  const initialWriteMs = options.initialWriteMs ?? 100;
  const quantile = options.quantile ?? 0.75;
  const margin = options.margin ?? 1.05;
  /** This instance's last successful write times, oldest first. */
  const recent: number[] = [];
  /** The timeline end this instance last saw (its own claim or the store's answer). */
  let seen: number | undefined;
  let storeDownUntil = Number.NEGATIVE_INFINITY;
  /** Without the store: this instance's writes one at a time, each waiting for the one before. */
  let localTail: Promise<void> = Promise.resolve();
  /** This instance's claims one at a time: each then starts from the end the one before it claimed. */
  let claimTail: Promise<unknown> = Promise.resolve();

  const expectedMs = () => {
    if (recent.length === 0) return initialWriteMs;
    const sorted = [...recent].sort((a, b) => a - b);
    return margin * (sorted[Math.min(sorted.length - 1, Math.floor(quantile * sorted.length))] ?? initialWriteMs);
  };

  function learn(ms: number): void {
    recent.push(ms);
    if (recent.length > RECENT_WRITES) recent.shift();
  }

  /** A turn that times its write. */
  function timedTurn(release?: () => void): Turn {
    const startedAt = now();
    let ended = false;
    return {
      end(succeeded) {
        if (ended) return;
        ended = true;
        release?.();
        if (succeeded) learn(now() - startedAt);
      },
    };
  }

  /** Without the store: wait for this instance's previous write (at most `maxWaitMs`), then go. */
  async function localTurn(maxWaitMs: number): Promise<Turn> {
    const previous = localTail;
    let release!: () => void;
    localTail = new Promise<void>((resolve) => {
      release = resolve;
    });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const waited = await Promise.race([
      previous.then(() => true),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), Math.max(0, maxWaitMs));
      }),
    ]);
    clearTimeout(timer);
    if (!waited) {
      // Our place is given up, so those after us are not held up by a write that never happens.
      previous.then(release);
      throw new DeadlineError('usage-plan write: the previous write of this instance did not end in time', { retryAfterMs: maxWaitMs });
    }
    return timedTurn(release);
  }

  /** Claims the next turn on the shared timeline; resolves when it begins (the claims of this instance go one by one, the waits do not). */
  async function sharedTurnClaim(maxWaitMs: number): Promise<{ begins: Promise<Turn> } | undefined> {
    for (let claim = 0; claim < maxClaims; claim++) {
      const t = now();
      // A timeline end too far ahead is not a queue of writes: a clock far off, or a broken item. Take it over.
      const behind = seen !== undefined && seen - t <= maxAheadMs ? seen : undefined;
      const start = Math.max(t, behind ?? t);
      if (start - t > maxWaitMs) {
        throw new DeadlineError(`usage-plan write: the next turn begins in ${Math.ceil(start - t)} ms, after the deadline`, {
          retryAfterMs: start - t,
        });
      }
      // Whole milliseconds: the store compares the value it holds with the one seen here.
      const end = Math.ceil(start + expectedMs());
      const expected = seen === undefined || seen <= t ? 'idle' : seen;
      const answer = await store.claim(expected, t, end);
      if (answer.ok) {
        seen = end;
        const wait = start - now();
        // Wrapped: an async function would adopt the promise, and the next claim would wait for this turn too.
        return { begins: (wait > 0 ? sleep(wait) : Promise.resolve()).then(() => timedTurn()) };
      }
      seen = answer.current;
    }
    return undefined;
  }

  /** A shared turn, or undefined to write without one; a failing store is left alone for `fallbackMs` (told once). */
  async function claimOrFallBack(maxWaitMs: number): Promise<{ begins: Promise<Turn> } | undefined> {
    if (now() < storeDownUntil) return undefined;
    try {
      return await sharedTurnClaim(maxWaitMs);
    } catch (error) {
      if (error instanceof DeadlineError) throw error;
      // Set here, inside the chain of claims: the claims queued behind this one see it and do not ask the store.
      storeDownUntil = now() + fallbackMs;
      seen = undefined;
      onStoreError?.(error);
      return undefined;
    }
  }

  return {
    covers: (operation) => USAGE_PLAN_WRITES.has(operation),
    async take(maxWaitMs) {
      const claimed = claimTail.then(() => claimOrFallBack(maxWaitMs));
      claimTail = claimed.catch(() => undefined);
      const claim = await claimed;
      if (claim) return await claim.begins;
      return localTurn(maxWaitMs);
    },
  };
}
