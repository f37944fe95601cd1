/**
 * A dead-letter message as redrive sees it: who it is about and why it failed (read with the function's own body
 * parser), how old it is, whether a filter selects it, and the message attributes it is sent on with. Pure.
 */
import type { Message, MessageAttributeValue } from '@aws-sdk/client-sqs';
import { RejectedError, type RejectionReason } from '../../errors.js';
import { parseMessageBody } from '../../messages/index.js';

export { FIRST_SENT_AT_ATTRIBUTE } from '../../customer-key/naming.js';

import { FIRST_SENT_AT_ATTRIBUTE } from '../../customer-key/naming.js';

/** SQS takes at most 10 message attributes per message. */
const MAX_MESSAGE_ATTRIBUTES = 10;

/** Why a message is in the DLQ: the rejection reason of a body the function cannot read, else `retries-exhausted`. */
export type DlqReason = RejectionReason | 'retries-exhausted';

/**
 * Every {@link DlqReason}, for `--reason`: a value outside this list would select nothing and every message would
 * silently count as skipped. The type check below fails when lib/errors.ts gains a reason this list lacks.
 */
export const DLQ_REASONS = [
  'retries-exhausted',
  'invalid-json',
  'unrecognized-event',
  'invalid-signup-event',
  'invalid-eventbridge-event',
  'invalid-sns-envelope',
  'invalid-marketplace-notification',
  'invalid-customer-id',
  'invalid-product-code',
  'invalid-tags',
  'ambiguous-field',
  'bad-request',
  'secret-unreadable',
  'unknown-product',
  'invalid-roll-request',
  'no-key',
  'customer-left',
] as const satisfies readonly DlqReason[];
type MissingReason = Exclude<DlqReason, (typeof DLQ_REASONS)[number]>;
const everyReasonListed: [MissingReason] extends [never] ? true : MissingReason = true;
void everyReasonListed;

/** True when `text` is one of {@link DLQ_REASONS}. */
export const isDlqReason = (text: string): text is DlqReason => (DLQ_REASONS as readonly string[]).includes(text);

/** The customer shown for a body the function cannot read. */
export const UNREADABLE = 'unreadable';

/** A message received from the DLQ, with what the listing and the filters need. */
export interface DlqMessage {
  messageId: string;
  receiptHandle: string;
  body: string;
  messageAttributes: Record<string, MessageAttributeValue>;
  /** When this copy was sent (SentTimestamp, kept when SQS moves a message to the DLQ), epoch ms. */
  sentAt: number;
  /** When the message was first sent: {@link FIRST_SENT_AT_ATTRIBUTE} when an earlier redrive set it, else `sentAt`. */
  firstSentAt: number;
  ageMs: number;
  /** ApproximateReceiveCount as SQS reports it, this receive included. */
  receiveCount: number;
  /** The body's customerId (signup, EventBridge, Marketplace), else {@link UNREADABLE}. */
  customer: string;
  reason: DlqReason;
  /** FIFO queues: the message group. */
  groupId?: string;
}

/** The time {@link FIRST_SENT_AT_ATTRIBUTE} holds, or undefined when it is absent or not an epoch-ms integer. */
export function firstSentAtOf(attributes: Record<string, MessageAttributeValue>): number | undefined {
  const text = attributes[FIRST_SENT_AT_ATTRIBUTE]?.StringValue;
  if (text === undefined || !/^\d{1,15}$/.test(text)) return undefined;
  const at = Number(text);
  return at > 0 ? at : undefined;
}

/**
 * Reads what the listing shows about a message: age, receive count, first send time, and — by parsing the body as
 * the function does — its customer and why it failed (`retries-exhausted` when the body itself is fine).
 */
export function describeMessage(message: Message, now: number): DlqMessage {
  const attributes = message.Attributes ?? {};
  const messageAttributes = message.MessageAttributes ?? {};
  const body = message.Body ?? '';
  const sentAt = Number(attributes.SentTimestamp ?? now);
  let customer = UNREADABLE;
  let reason: DlqReason = 'retries-exhausted';
  try {
    customer = parseMessageBody(body).customerId;
  } catch (error) {
    if (!(error instanceof RejectedError)) throw error;
    reason = error.reason;
  }
  return {
    messageId: message.MessageId ?? '',
    receiptHandle: message.ReceiptHandle ?? '',
    body,
    messageAttributes,
    sentAt,
    firstSentAt: firstSentAtOf(messageAttributes) ?? sentAt,
    ageMs: Math.max(0, now - sentAt),
    receiveCount: Number(attributes.ApproximateReceiveCount ?? 0),
    customer,
    reason,
    groupId: attributes.MessageGroupId,
  };
}

/**
 * The message attributes a redriven message is sent with: its own (values only, without the reserved list members)
 * and {@link FIRST_SENT_AT_ATTRIBUTE} — an existing valid one kept, else `firstSentAt`. `note` says why the
 * attribute could not be added (the message has SQS's maximum of 10 attributes already); the others go on unchanged.
 */
export function attributesToSend(message: Pick<DlqMessage, 'messageAttributes' | 'firstSentAt'>): {
  attributes: Record<string, MessageAttributeValue>;
  note?: string;
} {
  const attributes: Record<string, MessageAttributeValue> = {};
  for (const [name, a] of Object.entries(message.messageAttributes)) {
    attributes[name] = {
      DataType: a.DataType,
      ...(a.StringValue !== undefined && { StringValue: a.StringValue }),
      ...(a.BinaryValue !== undefined && { BinaryValue: a.BinaryValue }),
    };
  }
  if (firstSentAtOf(attributes) !== undefined) return { attributes };
  const others = Object.keys(attributes).filter((name) => name !== FIRST_SENT_AT_ATTRIBUTE).length;
  if (others >= MAX_MESSAGE_ATTRIBUTES)
    return { attributes, note: `${FIRST_SENT_AT_ATTRIBUTE} not added: the message has ${others} message attributes, the SQS maximum` };
  attributes[FIRST_SENT_AT_ATTRIBUTE] = { DataType: 'String', StringValue: String(message.firstSentAt) };
  return { attributes };
}

/** Which messages to move. Every given criterion must hold. */
export interface RedriveFilter {
  /** The body's customerId (or `unreadable`). */
  customer?: string;
  reason?: string;
  /** Only messages sent at least this long ago. */
  olderThanMs?: number;
  /** Only messages sent less than this long ago. */
  newerThanMs?: number;
}

/** True when the filter selects a subset (a move task cannot do that: it moves everything). */
export const hasFilter = (filter: RedriveFilter): boolean => Object.values(filter).some((value) => value !== undefined);

/** The first criterion a message fails (`customer`, `reason`, `older-than`, `newer-than`), or undefined when it matches. */
export function filterMismatch(message: Pick<DlqMessage, 'customer' | 'reason' | 'ageMs'>, filter: RedriveFilter): string | undefined {
  if (filter.customer !== undefined && message.customer !== filter.customer) return 'customer';
  if (filter.reason !== undefined && message.reason !== filter.reason) return 'reason';
  if (filter.olderThanMs !== undefined && message.ageMs < filter.olderThanMs) return 'older-than';
  if (filter.newerThanMs !== undefined && message.ageMs >= filter.newerThanMs) return 'newer-than';
  return undefined;
}

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** Parses a duration such as `500ms`, `45s`, `30m`, `2h`, `7d`, `1w` (or combined: `1h30m`) into milliseconds. Throws on anything else. */
export function parseDuration(text: string): number {
  const parts = [...text.trim().matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d|w)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== text.trim()) {
    throw new Error(`not a duration: ${JSON.stringify(text)} (use e.g. 90s, 30m, 2h, 7d, 1h30m)`);
  }
  return parts.reduce((sum, [, amount, unit]) => sum + Number(amount) * (UNIT_MS[unit ?? ''] ?? 0), 0);
}

/** A short human duration: `12s`, `3m 20s`, `2h 5m`, `7d 3h`. */
export function formatDuration(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86_400)}d ${Math.floor((s % 86_400) / 3600)}h`;
}
