import * as z from 'zod/mini';
import './zod-setup.js';
import { RejectedError, type RejectionReason } from './errors.js';
import { CUSTOMER_ID_PATTERN, PRODUCT_CODE_PATTERN, printable } from './naming.js';

/** Where a request came from, as completion events report it. */
export type Source = 'signup' | 'marketplace' | 'eventbridge';

/**
 * The lifecycle is ordered by event times; a queue's time (SentTimestamp) only orders against other queue times,
 * never against a producer's (lib/lifecycle-order.ts).
 */
export type Clock = 'producer' | 'queue';

/** An event's time and whose clock it is. */
interface When {
  eventTime: string;
  clock: Clock;
}

interface Subject {
  source: Source;
  customerId: string;
  productCode?: string;
  /** When the producer says it happened: SNS `Timestamp`, EventBridge `time`, signup `occurredAt`, else SQS's SentTimestamp. */
  eventTime: string;
  /** Whose clock `eventTime` is: the producer's, or the queue's (a body that carries no time of its own). */
  clock: Clock;
  /** The producer's event id (signup `eventId`, else the EventBridge event `id`). */
  eventId?: string;
}

/** Provision (or re-enable) the customer's key: a signup, `subscribe-success`, Marketplace's License Updated. */
export interface ProvisionRequest extends Subject {
  kind: 'provision';
  plan?: string;
  tags?: Record<string, string>;
}

/** Take the key away: `unsubscribe-success` (revoked) or `subscribe-fail` (failed), or License Deprovisioned. */
export interface RevokeRequest extends Subject {
  kind: 'revoke';
  action: 'unsubscribe-success' | 'subscribe-fail';
  productCode: string;
}

/** A notification that changes nothing but is announced: `unsubscribe-pending`, `entitlement-updated`, agreement events. */
export interface Notice extends Subject {
  kind: 'notice';
  action: string;
}

export type ParsedMessage = ProvisionRequest | RevokeRequest | Notice;

const customerId = z.string().check(z.regex(CUSTOMER_ID_PATTERN, 'must be 1 to 256 characters of A-Z a-z 0-9 _ + = . @ -'));
const productCode = z
  .string()
  .check(z.regex(PRODUCT_CODE_PATTERN, 'must be 1 to 64 characters of A-Z a-z 0-9 . _ -, starting alphanumeric'));

/** Producer event ids (signup `eventId`, EventBridge `id`): they become correlation ids and parts of event ids. */
const EVENT_ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;

/** The product's own signup event. Unknown fields are ignored, so producers can add fields first. */
export const signupEventSchema = z.object({
  customerId,
  eventId: z.optional(z.string().check(z.regex(EVENT_ID_PATTERN, 'must be 1 to 128 characters of A-Z a-z 0-9 . _ : -'))),
  productCode: z.optional(productCode),
  plan: z.optional(z.string().check(z.regex(/^[A-Za-z0-9._-]{1,64}$/, 'must be 1 to 64 characters of A-Z a-z 0-9 . _ -'))),
  tags: z.optional(z.record(z.string(), z.string())),
  occurredAt: z.optional(z.iso.datetime({ offset: true })),
});
export type SignupEvent = z.infer<typeof signupEventSchema>;

export const MARKETPLACE_ACTIONS = [
  'subscribe-success',
  'subscribe-fail',
  'unsubscribe-pending',
  'unsubscribe-success',
  'entitlement-updated',
] as const;

const marketplaceNotificationSchema = z.object({
  action: z.enum(MARKETPLACE_ACTIONS),
  'customer-identifier': customerId,
  'product-code': productCode,
  'offer-identifier': z.optional(z.string()),
  isFreeTrialTermPresent: z.optional(z.enum(['true', 'false'])),
});

const snsEnvelopeSchema = z.object({
  Type: z.literal('Notification'),
  MessageId: z.string(),
  TopicArn: z.string(),
  Message: z.string(),
  Timestamp: z.optional(z.iso.datetime({ offset: true })),
});

const eventBridgeEnvelopeSchema = z.object({
  id: z.string().check(z.minLength(1)),
  time: z.optional(z.iso.datetime({ offset: true })),
  'detail-type': z.string().check(z.minLength(1)),
  source: z.string().check(z.minLength(1)),
  detail: z.record(z.string(), z.unknown()),
});

type Json = Record<string, unknown>;

/** A rejection naming the first offending field and the rule it breaks; never the field's value. */
function reject(
  defaultReason: RejectionReason,
  what: string,
  error: z.core.$ZodError,
  fieldReasons: Record<string, RejectionReason> = {},
): RejectedError {
  const issue = error.issues[0];
  // Path segments can be producer-chosen keys (tag names): shorten them, they are not ours to echo whole.
  const field = issue?.path.map((segment) => printable(String(segment))).join('.') || '(body)';
  const reason = fieldReasons[String(issue?.path[0])] ?? defaultReason;
  return new RejectedError(reason, `${what}: ${field} ${issue?.message ?? 'is invalid'}`);
}

function parseSignup(body: Json, source: Source, fallback: When, envelopeId?: string): ProvisionRequest {
  // zod drops a `__proto__` key of a record without looking at it: refuse it here rather than lose a tag silently.
  if (isObject(body.tags) && Object.hasOwn(body.tags, '__proto__'))
    throw new RejectedError('invalid-tags', 'signup event: tags.__proto__ is not an allowed tag key');
  const parsed = signupEventSchema.safeParse(body);
  if (!parsed.success) {
    throw reject('invalid-signup-event', 'signup event', parsed.error, {
      customerId: 'invalid-customer-id',
      productCode: 'invalid-product-code',
      tags: 'invalid-tags',
    });
  }
  const { customerId: id, productCode: product, plan, tags, eventId, occurredAt } = parsed.data;
  return {
    kind: 'provision',
    source,
    customerId: id,
    productCode: product,
    plan,
    tags,
    eventId: eventId ?? envelopeId,
    ...(occurredAt ? { eventTime: occurredAt, clock: 'producer' as const } : fallback),
  };
}

function parseMarketplace(body: Json, when: When): ParsedMessage {
  const parsed = marketplaceNotificationSchema.safeParse(body);
  if (!parsed.success) {
    throw reject('invalid-marketplace-notification', 'Marketplace notification', parsed.error, {
      'customer-identifier': 'invalid-customer-id',
      'product-code': 'invalid-product-code',
    });
  }
  const n = parsed.data;
  const subject = { source: 'marketplace' as const, customerId: n['customer-identifier'], productCode: n['product-code'], ...when };
  switch (n.action) {
    case 'subscribe-success':
      return { kind: 'provision', ...subject };
    case 'unsubscribe-success':
    case 'subscribe-fail':
      return { kind: 'revoke', action: n.action, ...subject };
    default:
      return { kind: 'notice', action: n.action, ...subject };
  }
}

/**
 * AWS Marketplace's EventBridge events (source `aws.agreement-marketplace`). They identify the buyer by AWS account id
 * (`detail.acceptor.accountId`), never by the SNS notifications' customer identifier: that account id becomes the
 * key's customer. License events carry the product code; agreement events do not, so they are announced, not acted on.
 */
const MARKETPLACE_EVENT_SOURCE = 'aws.agreement-marketplace';
const licenseEventSchema = z.object({
  acceptor: z.object({ accountId: customerId }),
  product: z.object({ code: productCode }),
});
const agreementEventSchema = z.object({
  acceptor: z.object({ accountId: customerId }),
  agreement: z.optional(z.object({ id: z.optional(z.string()), status: z.optional(z.string()) })),
});

function parseMarketplaceEvent(detailType: string, detail: Json, when: When, id: string): ParsedMessage {
  const kind = detailType.replace(/ - (Proposer|Manufacturer)$/, '');
  if (kind === 'License Updated' || kind === 'License Deprovisioned') {
    const parsed = licenseEventSchema.safeParse(detail);
    if (!parsed.success)
      throw reject('invalid-marketplace-notification', `Marketplace event ${kind}: detail`, parsed.error, {
        acceptor: 'invalid-customer-id',
        product: 'invalid-product-code',
      });
    const subject = {
      source: 'eventbridge' as const,
      customerId: parsed.data.acceptor.accountId,
      productCode: parsed.data.product.code,
      ...when,
      eventId: id,
    };
    return kind === 'License Updated' ? { kind: 'provision', ...subject } : { kind: 'revoke', action: 'unsubscribe-success', ...subject };
  }
  if (kind.startsWith('Purchase Agreement ')) {
    const parsed = agreementEventSchema.safeParse(detail);
    if (!parsed.success)
      throw reject('invalid-marketplace-notification', `Marketplace event ${kind}: detail`, parsed.error, {
        acceptor: 'invalid-customer-id',
      });
    const status = parsed.data.agreement?.status;
    return {
      kind: 'notice',
      action: status ? `${kind} (${status})` : kind,
      source: 'eventbridge',
      customerId: parsed.data.acceptor.accountId,
      ...when,
      eventId: id,
    };
  }
  throw new RejectedError('unrecognized-event', 'Marketplace EventBridge event of a detail-type this version does not handle');
}

const isObject = (value: unknown): value is Json => typeof value === 'object' && value !== null && !Array.isArray(value);

/** Recognises an unwrapped body: a signup event (it has `customerId`, other fields are free) or a Marketplace notification. */
function parseInner(body: Json, source: Source, when: When): ParsedMessage {
  if ('customerId' in body) return parseSignup(body, source, when);
  if ('action' in body || 'customer-identifier' in body) return parseMarketplace(body, when);
  throw new RejectedError(
    'unrecognized-event',
    'body is neither a signup event, an EventBridge event, an SNS notification nor a Marketplace notification',
  );
}

/**
 * Recognises an SQS message body: a signup event; a signup inside an EventBridge envelope; a Marketplace
 * notification raw or inside an SNS envelope; a Marketplace EventBridge event. `receivedAt` (SQS's SentTimestamp)
 * is the event time when the body carries none. Pure. Throws {@link RejectedError} with a reason naming what is wrong.
 */
export function parseMessageBody(body: string, receivedAt: string = new Date().toISOString()): ParsedMessage {
  const queued: When = { eventTime: receivedAt, clock: 'queue' };
  const stamped = (time: string | undefined): When => (time ? { eventTime: time, clock: 'producer' } : queued);
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    throw new RejectedError('invalid-json', `body is not valid JSON (${body.length} characters)`);
  }
  if (!isObject(json)) throw new RejectedError('unrecognized-event', 'body is JSON but not an object');

  if (json.Type === 'Notification') {
    const envelope = snsEnvelopeSchema.safeParse(json);
    if (!envelope.success) throw reject('invalid-sns-envelope', 'SNS envelope', envelope.error);
    let message: unknown;
    try {
      message = JSON.parse(envelope.data.Message);
    } catch {
      throw new RejectedError('invalid-sns-envelope', 'SNS envelope: Message is not valid JSON');
    }
    if (!isObject(message)) throw new RejectedError('invalid-sns-envelope', 'SNS envelope: Message is not a JSON object');
    return parseInner(message, 'signup', stamped(envelope.data.Timestamp));
  }

  if ('detail-type' in json || 'detail' in json) {
    const envelope = eventBridgeEnvelopeSchema.safeParse(json);
    if (!envelope.success) throw reject('invalid-eventbridge-event', 'EventBridge event', envelope.error);
    const { id, time, source, detail } = envelope.data;
    if (source === MARKETPLACE_EVENT_SOURCE) return parseMarketplaceEvent(envelope.data['detail-type'], detail, stamped(time), id);
    return parseSignup(detail, 'eventbridge', stamped(time), id);
  }

  return parseInner(json, 'signup', queued);
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
