import { createHash } from 'node:crypto';
import type { RejectionReason } from './errors.js';
import type { Source } from './messages.js';

interface EventBase {
  /** Deterministic: the same provisioning, or the same rejected message, always yields the same id. */
  eventId: string;
  occurredAt: string;
  correlationId: string;
  /** The SQS message that carried the request. */
  messageId: string;
}

export interface ProvisionedEvent extends EventBase {
  type: 'api-key.provisioned';
  /** `already-provisioned`: an earlier delivery had done the work; this one created nothing. Same `eventId` either way. */
  outcome: 'provisioned' | 'already-provisioned';
  source: Source;
  customerId: string;
  productCode?: string;
  plan?: string;
  apiKeyId: string;
  apiKeyName: string;
  secretArn: string;
  secretName: string;
}

export interface FailedEvent extends EventBase {
  type: 'api-key.provisioning-failed';
  reason: RejectionReason;
  message: string;
  source?: Source;
  customerId?: string;
  productCode?: string;
}

export interface SkippedEvent extends EventBase {
  type: 'api-key.notification-skipped';
  reason: 'not-handled-yet';
  source: Source;
  action: string;
  customerId: string;
  productCode: string;
}

export type CompletionEvent = ProvisionedEvent | FailedEvent | SkippedEvent;

/** A UUID-shaped id derived from its parts (SHA-256), so that repeats of the same outcome share it. */
export function deterministicId(...parts: string[]): string {
  const hex = createHash('sha256').update(parts.join('\u0000')).digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}
