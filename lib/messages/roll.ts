import * as z from 'zod/mini';
import '../zod-setup.js';
import { CUSTOMER_ID_PATTERN, PRODUCT_CODE_PATTERN } from '../customer-key/naming.js';
import { eventTimeOf } from './event-time.js';
import { CUSTOMER_ID_RULE, EVENT_ID_PATTERN, EVENT_ID_RULE, PRODUCT_CODE_RULE, reject } from './fields.js';
import type { Json, RollRequest, When } from './types.js';

/**
 * The longest overlap a roll may ask for: 7 days. A leaked key should not keep working for long, and each old key
 * holds a slot of the Region's 10,000 until it is deleted; a week is enough for a buyer to deploy a new key.
 */
export const MAX_GRACE_SECONDS = 7 * 86_400;

/** The body's `action` that makes it a roll request rather than a signup. */
export const ROLL_ACTION = 'roll';

/**
 * A roll request: `{"action": "roll", "customerId", "productCode"?, "graceSeconds"?, "eventId", "occurredAt"?}`
 * (docs/events.md). `eventId` is required: it is what makes a repeat or a replay of the request one roll.
 */
export const rollRequestSchema = z.object({
  action: z.literal(ROLL_ACTION),
  customerId: z.string().check(z.regex(CUSTOMER_ID_PATTERN, CUSTOMER_ID_RULE)),
  productCode: z.optional(z.string().check(z.regex(PRODUCT_CODE_PATTERN, PRODUCT_CODE_RULE))),
  graceSeconds: z.optional(
    z
      .number()
      .check(
        z.int('must be a whole number of seconds'),
        z.gte(0, 'must not be negative'),
        z.lte(MAX_GRACE_SECONDS, `must be at most ${MAX_GRACE_SECONDS} (7 days)`),
      ),
  ),
  eventId: z.string().check(z.regex(EVENT_ID_PATTERN, EVENT_ID_RULE)),
  occurredAt: z.optional(z.iso.datetime({ offset: true })),
});

/** Whether a body asks for a roll (then {@link parseRoll} reads it; anything else with `customerId` is a signup). */
export const isRollRequest = (body: Json): boolean => body.action === ROLL_ACTION;

/** A roll request. Throws RejectedError naming the field and its rule (`invalid-roll-request`, or the field's own reason). */
export function parseRoll(body: Json, source: RollRequest['source'], fallback: When, queued: When): RollRequest {
  const parsed = rollRequestSchema.safeParse(body);
  if (!parsed.success)
    throw reject('invalid-roll-request', 'roll request', parsed.error, {
      customerId: 'invalid-customer-id',
      productCode: 'invalid-product-code',
    });
  const { customerId, productCode, graceSeconds, eventId, occurredAt } = parsed.data;
  return {
    kind: 'roll',
    source,
    customerId,
    productCode,
    rollId: eventId,
    eventId,
    ...(graceSeconds !== undefined && { graceSeconds }),
    ...eventTimeOf(occurredAt, queued, fallback),
  };
}
