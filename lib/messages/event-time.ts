import type { When } from './types.js';

/**
 * How far a producer's time (SNS `Timestamp`, EventBridge `time`, a signup's `occurredAt`) may be ahead of the time
 * the queue got the message before it is not believed: one minute.
 *
 * A producer's time orders the lifecycle (lib/customer-key/lifecycle-order.ts), so one from the future would beat
 * every later unsubscribe and let a leaver keep the key. An event cannot happen after its message reached the queue,
 * so a time later than that is a producer's clock running fast. SNS and EventBridge stamp with AWS's synchronised
 * clocks (milliseconds apart); the tolerance is for the product's own producers, whose clocks may drift (seconds
 * a day unsynchronised), not for ones that are minutes off. What it lets through is bounded: a grant at most a
 * minute ahead beats only the unsubscribes of that minute. Beyond it, the time is not used at all (below), so a
 * tighter bound errs on the safe side: such a producer only loses the power to re-enable a revoked key.
 */
export const MAX_PRODUCER_CLOCK_AHEAD_MS = 60_000;

/**
 * The time of a message that carries `producerTime`, given the queue's time (`queued`: SQS SentTimestamp, or the
 * first send time a redrive carried; the clock of the message's arrival). A producer's time up to
 * {@link MAX_PRODUCER_CLOCK_AHEAD_MS} ahead of the queue's is kept as the producer's. One further ahead, or none,
 * gives `otherwise`: by default the queue's time with the queue's clock, so the message counts as one that carries
 * no time (an upper bound of when it happened) and can never prove itself newer than anything; for a signup inside
 * an EventBridge envelope, the envelope's time (itself checked the same way). Pure.
 */
export function eventTimeOf(producerTime: string | undefined, queued: When, otherwise: When = queued): When {
  if (producerTime === undefined) return otherwise;
  // A queue time that does not parse (a caller's bug) gives NaN, nothing to compare with: the producer's time stands.
  if (Date.parse(producerTime) - Date.parse(queued.eventTime) > MAX_PRODUCER_CLOCK_AHEAD_MS) return otherwise;
  return { eventTime: producerTime, clock: 'producer' };
}
