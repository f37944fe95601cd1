import * as z from 'zod/mini';
import './zod-setup.js';
import { RejectedError, type RejectionReason } from './errors.js';
import { CUSTOMER_ID_PATTERN, PRODUCT_CODE_PATTERN } from './naming.js';

/** Where a request came from, as completion events report it. */
export type Source = 'signup' | 'marketplace' | 'eventbridge';

/** A request to provision a key, whatever envelope it came in. */
export interface ProvisionRequest {
  kind: 'provision';
  source: Source;
  customerId: string;
  productCode?: string;
  plan?: string;
  tags?: Record<string, string>;
  /** The producer's event id (signup `eventId`, else the EventBridge event `id`). */
  eventId?: string;
}

/** A Marketplace notification this version acknowledges without acting on. */
export interface SkippedNotification {
  kind: 'skip';
  source: Source;
  action: string;
  customerId: string;
  productCode: string;
}

export type ParsedMessage = ProvisionRequest | SkippedNotification;

const customerId = z.string().check(z.regex(CUSTOMER_ID_PATTERN, 'must be 1 to 256 characters of A-Z a-z 0-9 _ + = . @ -'));
const productCode = z.string().check(z.regex(PRODUCT_CODE_PATTERN, 'must be 1 to 64 characters of A-Z a-z 0-9 . _ -, starting alphanumeric'));

/** The product's own signup event. Unknown fields are ignored, so producers can add fields first. */
export const signupEventSchema = z.object({
  customerId,
  eventId: z.optional(z.string().check(z.regex(/^[A-Za-z0-9._:-]{1,128}$/, 'must be 1 to 128 characters of A-Z a-z 0-9 . _ : -'))),
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
});

const eventBridgeEnvelopeSchema = z.object({
  id: z.string().check(z.minLength(1)),
  'detail-type': z.string().check(z.minLength(1)),
  source: z.string().check(z.minLength(1)),
  detail: z.record(z.string(), z.unknown()),
});

type Json = Record<string, unknown>;

/** A rejection naming the first offending field and the rule it breaks; never the field's value. */
function reject(defaultReason: RejectionReason, what: string, error: z.core.$ZodError, fieldReasons: Record<string, RejectionReason> = {}): RejectedError {
  const issue = error.issues[0];
  // Path segments can be producer-chosen keys (tag names): shorten them, they are not ours to echo whole.
  const field = issue?.path.map((segment) => String(segment).slice(0, 64)).join('.') || '(body)';
  const reason = fieldReasons[String(issue?.path[0])] ?? defaultReason;
  return new RejectedError(reason, `${what}: ${field} ${issue?.message ?? 'is invalid'}`);
}

function parseSignup(body: Json, source: Source, envelopeId?: string): ProvisionRequest {
  const parsed = signupEventSchema.safeParse(body);
  if (!parsed.success) {
    throw reject('invalid-signup-event', 'signup event', parsed.error, {
      customerId: 'invalid-customer-id',
      productCode: 'invalid-product-code',
      tags: 'invalid-tags',
    });
  }
  const { customerId: id, productCode: product, plan, tags, eventId } = parsed.data;
  return { kind: 'provision', source, customerId: id, productCode: product, plan, tags, eventId: eventId ?? envelopeId };
}

function parseMarketplace(body: Json): ParsedMessage {
  const parsed = marketplaceNotificationSchema.safeParse(body);
  if (!parsed.success) {
    throw reject('invalid-marketplace-notification', 'Marketplace notification', parsed.error, {
      'customer-identifier': 'invalid-customer-id',
      'product-code': 'invalid-product-code',
    });
  }
  const n = parsed.data;
  if (n.action !== 'subscribe-success') {
    return { kind: 'skip', source: 'marketplace', action: n.action, customerId: n['customer-identifier'], productCode: n['product-code'] };
  }
  return { kind: 'provision', source: 'marketplace', customerId: n['customer-identifier'], productCode: n['product-code'] };
}

const isObject = (value: unknown): value is Json => typeof value === 'object' && value !== null && !Array.isArray(value);

/** Recognises an unwrapped body: a signup event (it has `customerId`, other fields are free) or a Marketplace notification. */
function parseInner(body: Json, source: Source, envelopeId?: string): ParsedMessage {
  if ('customerId' in body) return parseSignup(body, source, envelopeId);
  if ('action' in body || 'customer-identifier' in body) return parseMarketplace(body);
  throw new RejectedError('unrecognized-event', 'body is neither a signup event, an EventBridge event, an SNS notification nor a Marketplace notification');
}

/**
 * Recognises an SQS message body: a signup event; a signup inside an EventBridge envelope; a Marketplace
 * notification raw or inside an SNS envelope. Pure. Throws {@link RejectedError} with a reason naming what is wrong.
 */
export function parseMessageBody(body: string): ParsedMessage {
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
    return parseInner(message, 'signup');
  }

  if ('detail-type' in json || 'detail' in json) {
    const envelope = eventBridgeEnvelopeSchema.safeParse(json);
    if (!envelope.success) throw reject('invalid-eventbridge-event', 'EventBridge event', envelope.error);
    return parseSignup(envelope.data.detail, 'eventbridge', envelope.data.id);
  }

  return parseInner(json, 'signup');
}
