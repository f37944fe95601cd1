import type { KeyResult } from '../customer-key/key-record.js';
import type { RejectionReason } from '../errors.js';
import { deterministicId } from '../ids.js';
import type { ParsedMessage, Source } from '../messages/index.js';

interface EventBase {
  /** Deterministic: the same provisioning, or the same rejected message, always yields the same id. */
  eventId: string;
  occurredAt: string;
  correlationId: string;
  /** The SQS message that carried the request. */
  messageId: string;
}

interface SubjectFields {
  source: Source;
  customerId: string;
  productCode?: string;
  /** The buyer's AWS account id, when the message named it. */
  customerAccountId?: string;
  /** The license the message is about (concurrent agreements). */
  licenseArn?: string;
}

interface KeyFields {
  apiKeyId?: string;
  apiKeyName: string;
  /** Absent when no secret exists: a revoke before any key leaves only a record. */
  secretArn?: string;
  secretName: string;
  usagePlanId?: string;
  /** The buyer's licenses active after this change: meter with BatchMeterUsage by (customerAccountId, license). */
  activeLicenses?: string[];
}

export type { SubjectFields };

export interface ProvisionedEvent extends EventBase, SubjectFields, KeyFields {
  type: 'api-key.provisioned';
  /** `already-provisioned`: an earlier delivery had done the work; this one created nothing. Same `eventId` either way. */
  outcome: 'provisioned' | 'already-provisioned';
  apiKeyId: string;
  plan?: string;
}

/** A lifecycle change: re-enabled after a newer subscription; disabled, out of its plan and revoked after an unsubscribe. */
export interface KeyChangedEvent extends EventBase, SubjectFields, KeyFields {
  type: 'api-key.enabled' | 'api-key.revoked';
  /** `already-revoked`: a repeat of the same notification. */
  outcome?: 'already-revoked';
  /** The notification's own time, which orders the lifecycle. */
  eventTime: string;
}

export interface FailedEvent extends EventBase, Partial<SubjectFields> {
  type: 'api-key.provisioning-failed';
  /** A rejection, or `subscribe-fail`: Marketplace says the subscription failed (any key is disabled). */
  reason: RejectionReason | 'subscribe-fail';
  message: string;
  apiKeyId?: string;
  eventTime?: string;
}

/** A notification that changed nothing: announced (`acknowledged`), or older than the key's last change (`ignored`, reason `stale`). */
export interface NotificationEvent extends EventBase, SubjectFields {
  type: 'api-key.notification-acknowledged' | 'api-key.notification-ignored';
  action: string;
  reason?: 'stale';
  eventTime: string;
}

/** The key moved to the plan USAGE_PLANS names now (the `entitlement-updated` hook). */
export interface PlanChangedEvent extends EventBase, SubjectFields, KeyFields {
  type: 'api-key.plan-changed';
  previousUsagePlanId?: string;
  eventTime: string;
}

/**
 * A new key for the customer (a roll): `apiKeyId` is the new key, `previousApiKeyId` the old one, which keeps working
 * until `overlapEndsAt`. `already-rolled`: a repeat or a replay of a roll done; nothing was made.
 */
export interface RolledEvent extends EventBase, SubjectFields, KeyFields {
  type: 'api-key.rolled';
  outcome: 'rolled' | 'already-rolled';
  rollId: string;
  apiKeyId: string;
  previousApiKeyId?: string;
  overlapEndsAt?: string;
}

export type CompletionEvent = ProvisionedEvent | KeyChangedEvent | FailedEvent | NotificationEvent | PlanChangedEvent | RolledEvent;

/** Who and what a message is about, as every event names it (the 2026 identifiers only when the message has them). */
export function subjectOf(parsed: ParsedMessage): SubjectFields {
  return {
    source: parsed.source,
    customerId: parsed.customerId,
    productCode: parsed.productCode,
    ...(parsed.customerAccountId && { customerAccountId: parsed.customerAccountId }),
    ...(parsed.licenseArn && { licenseArn: parsed.licenseArn }),
  };
}

/** The event announcing what a message came to. Its `eventId` depends only on what happened, never on the delivery. */
export function completionEvent(parsed: ParsedMessage, result: KeyResult | undefined, base: Omit<EventBase, 'eventId'>): CompletionEvent {
  const subject = subjectOf(parsed);
  const id = (...parts: string[]) => deterministicId(...parts, parsed.productCode ?? '', parsed.customerId);
  const action = parsed.kind === 'provision' || parsed.kind === 'roll' ? parsed.kind : parsed.action;
  if (!result || result.outcome === 'unchanged') {
    return {
      type: 'api-key.notification-acknowledged',
      ...base,
      eventId: id('acknowledged', action, parsed.eventTime),
      ...subject,
      action,
      eventTime: parsed.eventTime,
    };
  }
  const { outcome, ...key } = result;
  switch (outcome) {
    case 'rolled':
    case 'already-rolled':
      if (parsed.kind !== 'roll') break;
      return {
        type: 'api-key.rolled',
        outcome,
        ...base,
        eventId: id('rolled', parsed.rollId),
        ...subject,
        rollId: parsed.rollId,
        ...key,
        apiKeyId: key.apiKeyId ?? '',
      };
    case 'provisioned':
    case 'already-provisioned':
      return {
        type: 'api-key.provisioned',
        outcome,
        ...base,
        eventId: id('provisioned'),
        ...subject,
        plan: parsed.kind === 'provision' ? parsed.plan : undefined,
        ...key,
        apiKeyId: key.apiKeyId ?? '',
      };
    case 'enabled':
      return {
        type: 'api-key.enabled',
        ...base,
        eventId: id('enabled', parsed.eventTime),
        ...subject,
        ...key,
        eventTime: parsed.eventTime,
      };
    case 'revoked':
    case 'already-revoked':
      if (parsed.kind === 'revoke' && parsed.action === 'subscribe-fail') break;
      return {
        type: 'api-key.revoked',
        ...(outcome === 'already-revoked' && { outcome }),
        ...base,
        eventId: id('revoked', parsed.eventTime),
        ...subject,
        ...key,
        eventTime: parsed.eventTime,
      };
    case 'plan-changed':
      return {
        type: 'api-key.plan-changed',
        ...base,
        eventId: id('plan-changed', key.usagePlanId ?? '', parsed.eventTime),
        ...subject,
        ...key,
        eventTime: parsed.eventTime,
      };
    case 'stale':
      return {
        type: 'api-key.notification-ignored',
        reason: 'stale',
        ...base,
        eventId: id('ignored', action, parsed.eventTime),
        ...subject,
        action,
        eventTime: parsed.eventTime,
      };
  }
  return {
    type: 'api-key.provisioning-failed',
    reason: 'subscribe-fail',
    message: key.apiKeyId
      ? 'Marketplace reports the subscription failed: the key is disabled'
      : 'Marketplace reports the subscription failed: no key is created',
    ...base,
    eventId: id('subscribe-fail', parsed.eventTime),
    ...subject,
    apiKeyId: key.apiKeyId,
    eventTime: parsed.eventTime,
  };
}
