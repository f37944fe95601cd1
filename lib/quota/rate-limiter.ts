import { Schedule } from './schedule.js';
import { USAGE_PLAN_WRITES } from './usage-plan-turns.js';

/**
 * The API Gateway rate limiter of one function instance, shared by all its records.
 *
 * API Gateway's control-plane quotas belong to the account and Region (CreateApiKey 5 calls/s; every call, CreateApiKey
 * included, 10/s "Total operations"), so every instance and every other tool of the account draws on them, and no
 * instance can see how much the others use. Told how many instances are busy (`fleetAware`, `setFleetSize`: the
 * heartbeats of lib/quota/fleet.ts), it runs at its fair share of the quota and uses its part of the burst; otherwise, or
 * below that share, it learns from throttles:
 * - it starts at the instance's static share (quota ÷ `maximumConcurrency`), right when every instance is busy;
 * - it probes upward while its own pace is what holds its records back: quickly until the first throttle, then
 *   slowly, never above `ceilingPerSecond` (the account's whole quota: one instance alone may use all of it);
 * - a throttle cuts the rate by `decreaseFactor` (once per reaction time, not once per call already on its way),
 *   never below `floorPerSecond`, so that instances share the quota and leave a neighbour its part;
 * - a throttled call is retried only after its Retry-After (lib/quota/retry.ts); the throttle that ends the fast
 *   probe (the one overshoot that drains the account's burst) also pauses the whole instance for it, so the burst
 *   refills (pausing on every throttle, or on none, measured worse: tests/bench/designs.ts);
 * - usage-plan writes, which API Gateway runs one at a time per Region (an overlapping one gets 409), go one at a
 *   time per instance (unless the instances take turns, lib/quota/usage-plan-turns.ts), and after one that failed the
 *   instance's next waits a jittered, growing gap.
 * Never floods (at most the ceiling, however many successes) and never stops (at least the floor; a pause is capped).
 * Synchronous bookkeeping only: callers wait with their own clock, so a Lambda deadline can be checked first.
 */
export interface RateLimiter {
  /** Milliseconds until a call of `operation` could start, without taking its slot. */
  delayMs(operation?: string): number;
  /**
   * Takes a slot for a call of `operation` if one is free now and returns 0; else returns the milliseconds until one
   * may be, taking nothing: the caller sleeps that long and asks again, so a rate cut applies to calls already waiting.
   */
  take(operation?: string): number;
  onThrottle(retryAfterMs?: number, operation?: string): void;
  onSuccess(operation?: string): void;
  /** The call failed with an error that is not a throttle (for a usage-plan write: most likely a 409, an overlap). */
  onFailure(operation?: string): void;
  /**
   * For a call whose retries ran out: how long its next try should wait, when this limiter knows (a usage-plan write
   * after failed ones: the gap before the instance's next write, at least 1 ms), so SQS redelivers after that.
   */
  redeliveryDelayMs?(operation?: string): number | undefined;
  /**
   * How many instances are busy now (lib/quota/fleet.ts), or undefined when that is not known. Only for a `fleetAware`
   * limiter: see {@link SharingRateLimiterOptions.fleetAware}.
   */
  setFleetSize?(size: number | undefined): void;
  /**
   * The invocation ended: this instance makes no call until the next one. Told to the instances' heartbeats
   * (lib/pipeline/deps.ts `instanceLimiter`), so that the others take its share at once. Waits `maxWaitMs` at most; never throws.
   */
  idle?(maxWaitMs: number): Promise<void>;
  /** The current rate: CreateApiKey calls per second (other calls: {@link TOTAL_TO_CREATE_RATIO} × this). */
  readonly rate: number;
}

/** Operations with a quota of their own (5/s each), which also count against "Total operations". */
const OWN_QUOTA = new Set(['CreateApiKey', 'DeleteApiKey']);

/** "Total operations" (10/s) ÷ the CreateApiKey quota (5/s): API Gateway quotas page (docs/throughput.md). */
export const TOTAL_TO_CREATE_RATIO = 2;

/** "Total operations" burst ÷ rate: 40 ÷ 10 (API Gateway quotas page); CreateApiKey's is 5 ÷ 5, one second. */
export const TOTAL_BURST_SECONDS = 4;

export interface SharingRateLimiterOptions {
  /** This instance's static share of the CreateApiKey quota (quota ÷ maximumConcurrency): the starting rate. */
  sharePerSecond: number;
  /** The most this instance ever uses: the account's whole CreateApiKey quota. Default: the share (no probing). */
  ceilingPerSecond?: number;
  /** The rate never falls below this. Default: the share ÷ 4 when probing, the share ÷ 16 without. */
  floorPerSecond?: number;
  /** Multiplier on a throttle. Default 0.6. */
  decreaseFactor?: number;
  /** Multiplier on the first throttle after the fast probe, which overshoots most. Default 0.5. */
  firstDecreaseFactor?: number;
  /** Calls/s added per success during the fast probe (until the first throttle). Default: the share × 0.25. */
  fastIncreasePerSuccess?: number;
  /**
   * Calls/s added per success after the first throttle. Default: the share × 0.006 (told how many instances are
   * busy, their fair share × 0.006), which keeps throttles near 0.006 × share ÷ ((1 − decreaseFactor) × rate),
   * 1.5 % of calls when every instance runs at its share (docs/throughput.md); without probing, the share ÷ 20 (a
   * halved rate recovers in ~10 calls).
   */
  increasePerSuccess?: number;
  /** Longest instance pause a Retry-After can cause (a bogus one must not stop provisioning). Default 10 s. */
  maxPauseMs?: number;
  /**
   * After this long without a call, what was learnt is stale: the rate goes back to the share (from above or below:
   * a cut is forgotten too), the fleet's size must be told again, and it probes again. Default 30 s.
   */
  idleResetMs?: number;
  /** One usage-plan write in flight per instance (default true). */
  serialiseUsagePlanWrites?: boolean;
  /**
   * After a failed usage-plan write, the instance's next one waits random × this × 2^(failures in a row − 1), at most
   * × 32. Default 100 ms.
   */
  usagePlanWriteBackoffMs?: number;
  /**
   * The instance is told how many instances are busy (`setFleetSize`): no fast probe then, which overshoots when
   * several start together; instead, once two reports in a row agree on a smaller fleet than before (or on the first
   * one), the rate rises at once to its fair share, the ceiling ÷ that number, and a larger fleet cuts it there at
   * once. It never probes above the fair share (that would take another instance's part); below it, after a
   * throttle (a neighbour), it probes slowly. Told `undefined` (the store failed), it probes as without. Default false.
   */
  fleetAware?: boolean;
  /**
   * CreateApiKey calls that may go at once after an idle spell (slots left unused are kept, up to this). Default: one
   * second of the static share, at least 1: its part of the account's burst (one second of the quota, 5 for 5/s) when
   * every instance is busy, so that instances starting together do not overdraw it (4 × 2 at a share of 1.25/s
   * would: docs/throughput.md). Told its fair share, one second of that.
   */
  burst?: number;
  /**
   * Told its fair share: the seconds of its "Total operations" rate that may go at once (its part of that quota's
   * burst). Default {@link TOTAL_BURST_SECONDS}.
   */
  totalBurstSeconds?: number;
  now?: () => number;
  random?: () => number;
}

const positive = (value: number | undefined) => value !== undefined && Number.isFinite(value) && value > 0;

export function createRateLimiter(options: SharingRateLimiterOptions): RateLimiter {
  const share = options.sharePerSecond;
  if (!positive(share)) throw new RangeError(`sharePerSecond must be a positive number, got ${share}`);
  const ceiling = Math.max(share, options.ceilingPerSecond ?? share);
  const probing = ceiling > share;
  const floor = Math.min(share, options.floorPerSecond ?? (probing ? share / 4 : share / 16));
  // A fact of the quotas, not a choice: no design varies it.
  const totalRatio = TOTAL_TO_CREATE_RATIO;
  const decrease = options.decreaseFactor ?? 0.6;
  const firstDecrease = options.firstDecreaseFactor ?? 0.5;
  const fastStep = options.fastIncreasePerSuccess ?? share * 0.25;
  const slowStep = () => {
    if (options.increasePerSuccess !== undefined) return options.increasePerSuccess;
    if (!probing) return share / 20;
    // Relative to the share it runs at: alone at 5/s, a step of the static share's 1.25/s would take four times
    // as many successes to come back after a throttle as four instances at 1.25/s each.
    return 0.006 * (fleetSize === undefined ? share : fairShare(fleetSize));
  };
  const maxPauseMs = options.maxPauseMs ?? 10_000;
  const idleResetMs = options.idleResetMs ?? 30_000;
  const burst = options.burst ?? Math.max(1, Math.floor(share));
  const totalBurstSeconds = options.totalBurstSeconds ?? TOTAL_BURST_SECONDS;
  const serialiseWrites = options.serialiseUsagePlanWrites ?? true;
  const writeBackoffMs = options.usagePlanWriteBackoffMs ?? 100;
  const now = options.now ?? Date.now;
  const random = options.random ?? Math.random;

  const fleetAware = options.fleetAware ?? false;
  let rate = share;
  /** Until the first throttle, the probe grows fast; after it, slowly (both per success while held back). */
  let fastProbe = probing && !fleetAware;
  let throttledOnce = false;
  /** The fleet size the rate was last set for, and the last one reported (a smaller size must be reported twice). */
  let fleetSize: number | undefined;
  let reportedSize: number | undefined;
  /** Throttles of calls sent before a cut arrive after it: they say nothing new until this time. */
  let calmUntil = 0;
  let pausedUntil = 0;
  /** The last time a call had to wait for our own pace: only then may the rate grow (it is what holds us back). */
  let heldBackAt = Number.NEGATIVE_INFINITY;
  let lastCallAt = Number.NEGATIVE_INFINITY;
  /** A usage-plan write of this instance is in flight until its outcome is told, or this lease ends. */
  let writeLeaseUntil = Number.NEGATIVE_INFINITY;
  let writeFailures = 0;
  let nextWriteAt = Number.NEGATIVE_INFINITY;
  // Told its fair share, an instance may also use its part of the account's bursts, which add up to them: one second
  // of its CreateApiKey rate (that quota's burst is one second of it), and `totalBurstSeconds` of its Total rate.
  const burstNow = () => (fleetSize === undefined ? burst : Math.max(burst, Math.floor(rate)));
  const create = new Schedule(() => rate, burstNow);
  const total = new Schedule(
    () => rate * totalRatio,
    () =>
      fleetSize === undefined
        ? Math.max(burst, Math.round(burst * totalRatio))
        : Math.max(burst, Math.floor(rate * totalRatio * totalBurstSeconds)),
  );
  const schedules = (operation: string | undefined) => (operation === undefined || OWN_QUOTA.has(operation) ? [create, total] : [total]);

  const fairShare = (size: number) => Math.min(ceiling, Math.max(floor, ceiling / size));
  const isWrite = (operation: string | undefined) => operation !== undefined && USAGE_PLAN_WRITES.has(operation);
  const earliest = (operation: string | undefined, t: number) =>
    Math.max(pausedUntil, isWrite(operation) ? nextWriteAt : t, ...schedules(operation).map((s) => s.earliest(t)));
  /** A write's outcome is known: the next one may go. */
  const settled = (operation: string | undefined) => {
    if (isWrite(operation)) writeLeaseUntil = Number.NEGATIVE_INFINITY;
  };

  return {
    delayMs(operation) {
      const t = now();
      return earliest(operation, t) - t;
    },
    take(operation) {
      const t = now();
      // Whatever was learnt — a rate probed up, or cut down by throttles (a neighbour's, long gone perhaps) — is
      // stale after an idle spell: a warm instance starts again at its share, as a new one would, and probes fast.
      // A cut is forgotten too: kept, it would hold a warm instance at the floor (issue 23), and `throttledOnce`
      // would keep it below its fair share once it is told the fleet's size.
      if (t - lastCallAt > idleResetMs) {
        rate = share;
        fastProbe = probing && !fleetAware;
        throttledOnce = false;
        fleetSize = undefined;
        reportedSize = undefined;
      }
      // Another write of ours in flight: ask again shortly (how long API Gateway takes over a write is not known).
      if (serialiseWrites && isWrite(operation) && t < writeLeaseUntil) return 10;
      const at = earliest(operation, t);
      if (at > t) {
        if (at > pausedUntil) heldBackAt = t;
        return Math.ceil(at - t);
      }
      for (const schedule of schedules(operation)) schedule.take(t);
      lastCallAt = t;
      // The lease ends even if no outcome is ever told: a lost one must not stop the instance's writes.
      if (isWrite(operation)) writeLeaseUntil = t + maxPauseMs;
      return 0;
    },
    onThrottle(retryAfterMs, operation) {
      const t = now();
      settled(operation);
      // The idle spell that makes a cut stale counts from when the throttle was learnt, not from its call's start.
      lastCallAt = Math.max(lastCallAt, t);
      // The overshoot that ends the fast probe drains the account's burst: the whole instance waits for it to refill.
      if (fastProbe && retryAfterMs !== undefined && Number.isFinite(retryAfterMs) && retryAfterMs > 0) {
        pausedUntil = Math.max(pausedUntil, t + Math.min(retryAfterMs, maxPauseMs));
      }
      if (t < calmUntil) return;
      rate = Math.max(floor, rate * (fastProbe ? firstDecrease : decrease));
      fastProbe = false;
      throttledOnce = true;
      // Two slots at the new rate: enough for the answers to calls sent before the cut to come back.
      calmUntil = t + 2 * (1000 / rate);
    },
    onSuccess(operation) {
      const t = now();
      settled(operation);
      if (isWrite(operation)) writeFailures = 0;
      // Grow only while our own pace holds calls back: successes at a pace nobody needed prove nothing.
      if (t - heldBackAt > 1000 / rate + 1000) return;
      // Told how many instances are busy, it probes up to its fair part only: above it, it would take another's.
      const top = fleetSize === undefined ? ceiling : fairShare(fleetSize);
      rate = Math.max(rate, Math.min(top, rate + (fastProbe ? fastStep : slowStep())));
    },
    onFailure(operation) {
      if (!isWrite(operation)) return;
      const t = now();
      settled(operation);
      writeFailures++;
      nextWriteAt = t + random() * writeBackoffMs * 2 ** Math.min(writeFailures - 1, 5);
    },
    redeliveryDelayMs(operation) {
      if (!isWrite(operation) || writeFailures === 0) return undefined;
      return Math.max(1, nextWriteAt - now());
    },
    setFleetSize(size) {
      if (!fleetAware || !probing) return;
      if (size === undefined || !Number.isFinite(size) || size < 1) {
        // Not known: probe as a limiter that was never told, unless a throttle already ended the fast probe.
        fastProbe = !throttledOnce;
        fleetSize = reportedSize = undefined;
        return;
      }
      const confirmed = size === reportedSize;
      reportedSize = size;
      const fair = fairShare(size);
      if (fleetSize !== undefined && size > fleetSize) {
        fleetSize = size;
        rate = Math.min(rate, fair);
      } else if (confirmed && fleetSize === undefined) {
        // The first size known (again): its fair share, or less after a throttle (a neighbour); the fast probe, on
        // while the size was not known, ends.
        fleetSize = size;
        fastProbe = false;
        rate = throttledOnce ? Math.min(rate, fair) : fair;
      } else if (confirmed && fleetSize !== undefined && size < fleetSize) {
        fleetSize = size;
        rate = Math.max(rate, fair);
      }
    },
    get rate() {
      return rate;
    },
  };
}
