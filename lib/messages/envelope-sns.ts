import * as z from 'zod/mini';
import '../zod-setup.js';
import { RejectedError } from '../errors.js';
import { isObject, own, reject } from './fields.js';
import type { Json } from './types.js';

/**
 * The SNS envelope an SQS subscription delivers when raw message delivery is off (SNS developer guide, "Amazon SNS
 * raw message delivery" and "HTTP/HTTPS notification JSON format"). Only what this pipeline reads is checked:
 * `Type` (it recognises the envelope), `Message` and `Timestamp` (it orders the lifecycle: a malformed one is
 * rejected, not guessed). `MessageId` and `TopicArn` are not required — AWS's own sample integration re-sends
 * notifications in an envelope that has neither, and nothing here reads them — but when present they must be
 * strings, as SNS writes them. `Subject`, `SignatureVersion` "1" or "2", signatures and URLs are left alone.
 */
const snsEnvelopeSchema = z.object({
  Type: z.literal('Notification'),
  MessageId: z.optional(z.string()),
  TopicArn: z.optional(z.string()),
  Timestamp: z.optional(z.iso.datetime({ offset: true })),
});

export const isSnsEnvelope = (body: Json): boolean => own(body, 'Type') === 'Notification';

/**
 * The notification inside an SNS envelope and its publish time. `Message` is the notification as a JSON string (what
 * SNS delivers) or as an object (what AWS's sample integration sends itself). Throws {@link RejectedError}
 * `invalid-sns-envelope`.
 */
export function unwrapSnsEnvelope(body: Json): { message: Json; timestamp?: string } {
  const envelope = snsEnvelopeSchema.safeParse(body);
  if (!envelope.success) throw reject('invalid-sns-envelope', 'SNS envelope', envelope.error);
  const raw = own(body, 'Message');
  let message: unknown = raw;
  if (typeof raw === 'string') {
    try {
      message = JSON.parse(raw);
    } catch {
      throw new RejectedError('invalid-sns-envelope', 'SNS envelope: Message is not valid JSON');
    }
  } else if (raw === undefined) {
    throw new RejectedError('invalid-sns-envelope', 'SNS envelope: Message is required');
  }
  if (!isObject(message)) {
    const what = typeof raw === 'string' ? 'Message is not a JSON object' : 'Message must be a JSON string or an object';
    throw new RejectedError('invalid-sns-envelope', `SNS envelope: ${what}`);
  }
  return { message, timestamp: envelope.data.Timestamp };
}
