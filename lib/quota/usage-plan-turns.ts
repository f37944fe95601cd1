import { randomUUID } from 'node:crypto';
import { DeadlineError } from '../errors.js';

/**
 * Turns for usage-plan writes, shared by every instance of the deployment.
 *
 * API Gateway runs usage-plan writes one at a time per account and Region and answers an overlapping one 409
 * (tests/realistic-aws/README.md); instances cannot see each other's writes, so once writes fill much of the time
 * they overlap often, and each overlap costs a call of the "Total operations" quota and a retry (docs/throughput.md). The turns
 * put the writes of all instances on one timeline, kept in one store item ({@link Timeline}): how many turns were
 * claimed (`seq`), and the last claim — who made it, when, and when the writes reserved so far end. An instance
 * reserves the next turn with one conditional update (the next claim, if `seq` is still what it last saw), waits
 * until its turn begins, then writes. No lock is held: an instance that dies leaves one unused turn behind, never a
 * stuck lock, and nobody has to be told that a write ended.
 *
 * Instances' clocks need not agree. A claim's times are on its claimer's clock, and an instance never compares them
 * with its own: it learns, per claimer, how far that clock is at least ahead of its own (a claim it reads was made
 * before it read it: `claimedAt` − the time it read it is a lower bound of the offset, the tighter the fresher the
 * claim), and puts the claimer's end on its own clock with that bound — never earlier than the true end, so a
 * skewed clock cannot make an instance write into another's turn, nor wait the skew on top of the turns, nor take
 * a timeline over because its end looks far ahead. What it costs: the first claim read from a claimer may be waited
 * for up to its age (at most that claim's reserved time) longer than needed; later ones by the age of the freshest
 * claim read from it (a store round trip), plus the drift the clocks may have had since (1 ms a second). The store
 * holds no time of its own and compares none.
 *
 * A turn is as long as this instance's writes take: a quantile of its last 16 successful write times, with a margin
 * (before the first, `initialWriteMs`). Long turns waste the one-at-a-time capacity, short ones let an unusually
 * slow write overlap the next turn (a 409, retried): measured, the 75th percentile × 1.05 did best
 * (docs/throughput.md).
 *
 * When the store fails (throttled, denied, missing, unreachable) the instance writes without turns for `fallbackMs`,
 * one write at a time of its own; the 409 handling of lib/aws/api-gateway-usage-plans.ts stays the safety net either way. A
 * claim that reserves more than `maxAheadMs` (a corrupted item) is taken over, not waited for.
 */
export interface Timeline {
  /** How many turns were ever claimed on it: each claim is conditioned on the one it follows. */
  seq: number;
  /** The claimer (an instance's id). */
  by: string;
  /** When the claim was made, on the claimer's clock (epoch ms). */
  claimedAt: number;
  /** When the writes reserved so far end, on the claimer's clock (epoch ms). */
  end: number;
}

export interface TimelineStore {
  /**
   * Sets the timeline to `next` if its `seq` is `expectedSeq` now (undefined: there is no timeline yet, or none with
   * an integer `seq`). Else tells the timeline it found (undefined: none with an integer `seq`; times that do not
   * read as numbers are NaN). Compares no times. Throws when the store cannot answer.
   */
  claim(expectedSeq: number | undefined, next: Timeline): Promise<{ ok: true } | { ok: false; current: Timeline | undefined }>;
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
  store: TimelineStore;
  /** This instance's id on the timeline. Default: a random UUID. */
  id?: string;
  /** Expected time of a write before this instance has timed one. Default 100 ms. */
  initialWriteMs?: number;
  /** The turn is this quantile of the instance's recent write times… Default 0.75. */
  quantile?: number;
  /** … times this. Default 1.05. */
  margin?: number;
  /** How long the instance writes without the store after the store failed. Default 30 s. */
  fallbackMs?: number;
  /** A timeline end further ahead than this (on this instance's clock, as learnt) is taken over. Default 60 s. */
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

/** How many other claimers' clock offsets an instance keeps (the most recently seen). */
const KNOWN_CLAIMERS = 64;

/**
 * How fast two clocks may drift apart, in ms per ms: 1 ms a second, twice the fastest slew NTP applies (500 ppm). A
 * learnt offset is lowered by this much as it ages, so that it stays a lower bound while the clocks drift.
 */
const MAX_DRIFT = 0.001;

const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * This instance's turns on the shared timeline in `options.store`. Guarantees, whatever the instances' clocks: a turn
 * never begins before the end of a claim this instance has read (as long as clocks drift apart by at most 1 ms a
 * second), and the instance never waits for a claim that reserves more than `maxAheadMs`. `take` throws only
 * {@link DeadlineError}; a failing store is told to `onStoreError` and the instance writes one at a time on its own.
 */
export function createWriteTurns(options: WriteTurnsOptions): WriteTurns {
  const { store, onStoreError } = options;
  const id = options.id ?? randomUUID();
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
  /** The timeline as this instance last saw it (its own claim or the store's answer), its end on this instance's clock. */
  let seen: { seq: number; end: number } | undefined;
  /**
   * Per other claimer: how far its clock is at least ahead of this instance's (negative: behind at most that much),
   * as learnt at `at` (this instance's clock).
   */
  const aheadBy = new Map<string, { offset: number; at: number }>();
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

  /** Takes in a timeline the store answered with, read at `readAt`: its end on this instance's clock. */
  function saw(current: Timeline | undefined, readAt: number): void {
    if (current === undefined) {
      seen = undefined;
      return;
    }
    // A claim whose times do not read as numbers (a broken item) is over: the next claim goes over it, at once.
    if (!Number.isFinite(current.claimedAt) || !Number.isFinite(current.end)) {
      seen = { seq: current.seq, end: Number.NEGATIVE_INFINITY };
      return;
    }
    let offset = 0;
    if (current.by !== id) {
      // The claim was made before it was read: its claimer's clock is at least this far ahead of ours. What was
      // learnt before (from fresher claims) still holds, less the drift since.
      const known = aheadBy.get(current.by);
      const kept = known === undefined ? Number.NEGATIVE_INFINITY : known.offset - Math.max(0, readAt - known.at) * MAX_DRIFT;
      offset = Math.max(kept, current.claimedAt - readAt);
      aheadBy.delete(current.by);
      aheadBy.set(current.by, { offset, at: readAt });
      const oldest = aheadBy.keys().next();
      if (aheadBy.size > KNOWN_CLAIMERS && !oldest.done) aheadBy.delete(oldest.value);
    }
    seen = { seq: current.seq, end: current.end - offset };
  }

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
      // A timeline end too far ahead is not a queue of writes: a broken item. Take it over.
      const behind = seen !== undefined && seen.end - t <= maxAheadMs ? seen.end : undefined;
      const start = Math.max(t, behind ?? t);
      if (start - t > maxWaitMs) {
        throw new DeadlineError(`usage-plan write: the next turn begins in ${Math.ceil(start - t)} ms, after the deadline`, {
          retryAfterMs: start - t,
        });
      }
      // Whole milliseconds, as the store keeps them.
      const end = Math.ceil(start + expectedMs());
      const next = { seq: (seen?.seq ?? 0) + 1, by: id, claimedAt: Math.floor(t), end };
      const answer = await store.claim(seen?.seq, next);
      if (answer.ok) {
        seen = { seq: next.seq, end };
        const wait = start - now();
        // Wrapped: an async function would adopt the promise, and the next claim would wait for this turn too.
        return { begins: (wait > 0 ? sleep(wait) : Promise.resolve()).then(() => timedTurn()) };
      }
      saw(answer.current, now());
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
