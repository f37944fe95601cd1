import * as z from 'zod/mini';
import '../zod-setup.js';
import { CUSTOMER_ID_PATTERN, PRODUCT_CODE_PATTERN } from '../customer-key/naming.js';
import { RejectedError } from '../errors.js';
import { eventTimeOf } from './event-time.js';
import {
  ACCOUNT_ID_PATTERN,
  ACCOUNT_ID_RULE,
  CUSTOMER_ID_RULE,
  EVENT_ID_PATTERN,
  EVENT_ID_RULE,
  isObject,
  LICENSE_ARN_PATTERN,
  LICENSE_ARN_RULE,
  PRODUCT_CODE_RULE,
  reject,
} from './fields.js';
import type { Json, ProvisionRequest, Source, When } from './types.js';

/**
 * The product's own signup event. Unknown fields are ignored, so producers can add fields first. Unlike Marketplace
 * input it is not normalised: the product defines this contract, and a producer that breaks it gets a rejection that
 * names the field, which it can fix.
 */
export const signupEventSchema = z.object({
  customerId: z.string().check(z.regex(CUSTOMER_ID_PATTERN, CUSTOMER_ID_RULE)),
  eventId: z.optional(z.string().check(z.regex(EVENT_ID_PATTERN, EVENT_ID_RULE))),
  productCode: z.optional(z.string().check(z.regex(PRODUCT_CODE_PATTERN, PRODUCT_CODE_RULE))),
  plan: z.optional(z.string().check(z.regex(/^[A-Za-z0-9._-]{1,64}$/, 'must be 1 to 64 characters of A-Z a-z 0-9 . _ -'))),
  tags: z.optional(z.record(z.string(), z.string())),
  occurredAt: z.optional(z.iso.datetime({ offset: true })),
  /** The buyer's AWS account id, for a signup made from a resolved Marketplace registration (ResolveCustomer). */
  customerAccountId: z.optional(z.string().check(z.regex(ACCOUNT_ID_PATTERN, ACCOUNT_ID_RULE))),
  /** The purchase's license, for a signup made from a resolved Marketplace registration (ResolveCustomer's LicenseArn). */
  licenseArn: z.optional(z.string().check(z.regex(LICENSE_ARN_PATTERN, LICENSE_ARN_RULE))),
});
export type SignupEvent = z.infer<typeof signupEventSchema>;

/**
 * A signup event, raw or from an envelope (`envelopeId`: the EventBridge event id, the event id when the signup has
 * none). Its time is `occurredAt` unless that is more than a minute ahead of the queue's time `queued`
 * (lib/messages/event-time.ts), else `fallback` (the envelope's time, or the queue's). Throws {@link RejectedError}
 * naming the field and its rule.
 */
export function parseSignup(body: Json, source: Source, fallback: When, queued: When, envelopeId?: string): ProvisionRequest {
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
  const { customerId, productCode, plan, tags, eventId, occurredAt, customerAccountId, licenseArn } = parsed.data;
  return {
    kind: 'provision',
    source,
    customerId,
    productCode,
    plan,
    tags,
    eventId: eventId ?? envelopeId,
    ...(customerAccountId && { customerAccountId }),
    ...(licenseArn && { licenseArn }),
    ...eventTimeOf(occurredAt, queued, fallback),
  };
}
