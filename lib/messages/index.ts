import { RejectedError } from '../errors.js';
import { isEventBridgeEvent, readEventBridgeEvent } from './envelope-eventbridge.js';
import { isSnsEnvelope, unwrapSnsEnvelope } from './envelope-sns.js';
import { eventTimeOf } from './event-time.js';
import { EVENT_ID_PATTERN, isObject } from './fields.js';
import { MARKETPLACE_EVENT_SOURCE, parseMarketplaceEvent } from './marketplace-eventbridge.js';
import { isMarketplaceNotification, parseMarketplaceNotification } from './marketplace-sns.js';
import { isRollRequest, parseRoll } from './roll.js';
import { parseSignup } from './signup.js';
import type { Json, ParsedMessage, Source, When } from './types.js';

/**
 * Reading SQS message bodies: one file per concept.
 * - envelope-sns.ts, envelope-eventbridge.ts: the two envelopes a body can come in;
 * - signup.ts: the product's own signup event; roll.ts: its roll request (a new key for the customer);
 * - marketplace-sns.ts: Marketplace's SaaS notifications (SNS topics, raw or enveloped);
 * - marketplace-eventbridge.ts: Marketplace's `aws.agreement-marketplace` events;
 * - fields.ts: the field rules they share (identifiers, account ids, license ARNs) and their one normalisation;
 * - event-time.ts: which time orders the message (a producer's, unless it is from the future, or the queue's).
 */
export { MAX_PRODUCER_CLOCK_AHEAD_MS } from './event-time.js';
export { ACCOUNT_ID_PATTERN, LICENSE_ARN_PATTERN } from './fields.js';
export { DETAIL_TYPE_PATTERN, NO_BUYER } from './marketplace-eventbridge.js';
export { MARKETPLACE_ACTIONS } from './marketplace-sns.js';
export { MAX_GRACE_SECONDS, ROLL_ACTION } from './roll.js';
export { type SignupEvent, signupEventSchema } from './signup.js';
export type { Clock, Notice, ParsedMessage, ProvisionRequest, RevokeRequest, RollRequest, Source } from './types.js';

/**
 * Recognises an unwrapped body: a signup event (it has `customerId`, other fields are free) or a Marketplace
 * notification. Neither an EventBridge event nor an SNS envelope is looked for here: nothing documents one inside an
 * SNS envelope.
 */
function parseInner(body: Json, source: Source, when: When, queued: When): ParsedMessage {
  if (Object.hasOwn(body, 'customerId'))
    return isRollRequest(body) ? parseRoll(body, source, when, queued) : parseSignup(body, source, when, queued);
  if (isMarketplaceNotification(body)) return parseMarketplaceNotification(body, when);
  throw new RejectedError(
    'unrecognized-event',
    'body is neither a signup event, an EventBridge event, an SNS notification nor a Marketplace notification',
  );
}

/**
 * Recognises an SQS message body: a signup event; a signup inside an EventBridge envelope; a Marketplace
 * notification raw or inside an SNS envelope (whose Message is a JSON string or an object); a Marketplace
 * EventBridge event. `receivedAt` (SQS's SentTimestamp, or the first send time a redrive carried) is the event time
 * when the body carries none, or a producer's time more than a minute ahead of it (lib/messages/event-time.ts). Pure.
 * Throws {@link RejectedError} with a reason naming the field and the rule.
 */
export function parseMessageBody(body: string, receivedAt: string = new Date().toISOString()): ParsedMessage {
  const queued: When = { eventTime: receivedAt, clock: 'queue' };
  const stamped = (time: string | undefined): When => eventTimeOf(time, queued);
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    throw new RejectedError('invalid-json', `body is not valid JSON (${body.length} characters)`);
  }
  if (!isObject(json)) throw new RejectedError('unrecognized-event', 'body is JSON but not an object');

  if (isSnsEnvelope(json)) {
    const { message, timestamp } = unwrapSnsEnvelope(json);
    return parseInner(message, 'signup', stamped(timestamp), queued);
  }

  if (isEventBridgeEvent(json)) {
    const event = readEventBridgeEvent(json);
    if (event.source === MARKETPLACE_EVENT_SOURCE) return parseMarketplaceEvent(event, stamped(event.time));
    if (isRollRequest(event.detail)) return parseRoll(event.detail, 'eventbridge', stamped(event.time), queued);
    return parseSignup(event.detail, 'eventbridge', stamped(event.time), queued, event.eventId);
  }

  return parseInner(json, 'signup', queued, queued);
}

/**
 * The producer's event id of a body that was rejected, when it has a well-formed one (signup `eventId`, an
 * EventBridge event's `id`, or the `eventId` of a signup inside one): a rejected message correlates as an accepted one.
 */
export function peekEventId(body: string): string | undefined {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    return undefined;
  }
  if (!isObject(json)) return undefined;
  const id = isObject(json.detail) ? (json.detail.eventId ?? json.id) : json.eventId;
  return typeof id === 'string' && EVENT_ID_PATTERN.test(id) ? id : undefined;
}
