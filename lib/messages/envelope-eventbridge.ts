import * as z from 'zod/mini';
import '../zod-setup.js';
import { EVENT_ID_PATTERN, isObject, own, reject } from './fields.js';
import type { Json } from './types.js';

/**
 * An EventBridge event as a rule with an SQS target delivers it: the event itself, no wrapper. `id`, `detail-type`,
 * `source` and an object `detail` are required; `time` is optional but, when present, must be an ISO date-time (it
 * orders the lifecycle). `account`, `region`, `resources`, `version` are not read (AWS's Marketplace examples put
 * placeholders such as "<ISV's account id>" in `account`).
 */
const eventBridgeEnvelopeSchema = z.object({
  id: z.string().check(z.minLength(1)),
  time: z.optional(z.iso.datetime({ offset: true })),
  'detail-type': z.string().check(z.minLength(1)),
  source: z.string().check(z.minLength(1)),
  detail: z.record(z.string(), z.unknown()),
});

export interface EventBridgeEvent {
  /** The event `id` when it can serve as an event id (EVENT_ID_PATTERN); else undefined, and the SQS message id correlates. */
  eventId?: string;
  time?: string;
  detailType: string;
  source: string;
  /** `detail` as parsed from the body (not a copy: zod's copy of a record would drop a `__proto__` key unseen). */
  detail: Json;
}

export const isEventBridgeEvent = (body: Json): boolean => Object.hasOwn(body, 'detail-type') || Object.hasOwn(body, 'detail');

/** Reads an EventBridge event. Throws {@link RejectedError} `invalid-eventbridge-event` naming the field. */
export function readEventBridgeEvent(body: Json): EventBridgeEvent {
  const envelope = eventBridgeEnvelopeSchema.safeParse(body);
  if (!envelope.success) throw reject('invalid-eventbridge-event', 'EventBridge event', envelope.error);
  const { id, time, source } = envelope.data;
  const detail = own(body, 'detail');
  return {
    eventId: EVENT_ID_PATTERN.test(id) ? id : undefined,
    time,
    detailType: envelope.data['detail-type'],
    source,
    detail: isObject(detail) ? detail : {},
  };
}
