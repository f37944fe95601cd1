import type { Clock } from '../messages/index.js';

/**
 * How notifications are ordered when they arrive out of order or are replayed.
 *
 * A producer's time (SNS `Timestamp`, EventBridge `time`, a signup's `occurredAt`) is when the thing happened, and
 * stays in the body through every replay. A queue's time (SQS SentTimestamp, for a body that carries no time: a
 * raw-delivered Marketplace notification) is only an upper bound: the event happened at or before it, and every
 * replay — SQS's own DLQ redrive (redriven messages "are considered new messages"), a re-send — moves it later.
 * So a queue time can never prove that something happened after something else. Hence two asymmetric rules:
 * - a grant (subscribe, signup, License Updated) re-enables a revoked key only when it is *proven newer*;
 * - a revoke applies unless it is *proven older* than the key's last change.
 * Where nothing can be proven, access is not given back, and a leaver loses it.
 */
export interface Stamped {
  /** ISO 8601. */
  time: string;
  clock: Clock;
}

/** A grant is proven newer than the record's last change when its own time is a producer's and is later. */
export function grantIsProvenNewer(grant: Stamped, last: Stamped | undefined): boolean {
  if (last === undefined) return true;
  // A queue time is an upper bound of when the grant happened: it proves nothing.
  return grant.clock === 'producer' && Date.parse(grant.time) > Date.parse(last.time);
}

/** A revoke is proven older than the record's last change when that change has a producer's time and is later. */
export function revokeIsProvenOlder(revoke: Stamped, last: Stamped | undefined): boolean {
  // The revoke happened at or before its time, whatever the clock; the last change exactly at its time only when
  // the clock is a producer's.
  return last !== undefined && last.clock === 'producer' && Date.parse(revoke.time) < Date.parse(last.time);
}

/** The record's last change as stored: `lastEventAt` and its clock (records written before clocks existed: producer). */
export function lastChange(record: { lastEventAt?: string; lastEventClock?: Clock }): Stamped | undefined {
  return record.lastEventAt === undefined ? undefined : { time: record.lastEventAt, clock: record.lastEventClock ?? 'producer' };
}
