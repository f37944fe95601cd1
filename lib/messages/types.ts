/** Where a request came from, as completion events report it. */
export type Source = 'signup' | 'marketplace' | 'eventbridge' | 'rotation';

/**
 * The lifecycle is ordered by event times; a queue's time (SentTimestamp) only orders against other queue times,
 * never against a producer's (lib/customer-key/lifecycle-order.ts).
 */
export type Clock = 'producer' | 'queue';

/** An event's time and whose clock it is. */
export interface When {
  eventTime: string;
  clock: Clock;
}

interface Subject {
  source: Source;
  /**
   * Whom the key is for: the signup's `customerId`, Marketplace's `customer-identifier` (what API Gateway meters),
   * or, for EventBridge Marketplace events, the buyer's AWS account id. For an agreement event that names no buyer
   * (Billing Adjustment) it is the agreement id, `agmt-…` (lib/messages/marketplace-eventbridge.ts).
   */
  customerId: string;
  productCode?: string;
  /** When the producer says it happened: SNS `Timestamp`, EventBridge `time`, signup `occurredAt`, else SQS's SentTimestamp. */
  eventTime: string;
  /** Whose clock `eventTime` is: the producer's, or the queue's (a body that carries no time of its own). */
  clock: Clock;
  /** The producer's event id (signup `eventId`, else the EventBridge event `id` when it is well-formed). */
  eventId?: string;
  /**
   * The buyer's AWS account id (12 digits), when the message names it: EventBridge Marketplace events
   * (`detail.acceptor.accountId`, or `detail.agreement.acceptorId` in cancellation events), a signup that carries it.
   * Marketplace's SNS notifications never do (no documented version has such a field).
   */
  customerAccountId?: string;
  /**
   * The license of one purchase (concurrent agreements give a buyer one per agreement), normalised to an
   * `arn:` ARN: EventBridge `detail.license.arn`, a signup that carries it. Never on SNS notifications.
   */
  licenseArn?: string;
}

/** Provision (or re-enable) the customer's key: a signup, `subscribe-success`, Marketplace's License Updated. */
export interface ProvisionRequest extends Subject {
  kind: 'provision';
  plan?: string;
  tags?: Record<string, string>;
  /**
   * Marketplace's `isFreeTrialTermPresent` of a `subscribe-success`, when it has one reading ("true"/"false" in any
   * case, or a JSON boolean). Informational: nothing in the pipeline decides on it, and no value rejects.
   */
  freeTrial?: boolean;
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

/**
 * A new key for the customer's product, the old one kept working for `graceSeconds` (lib/customer-key/roll.ts): the
 * signup queue's `{"action": "roll", …}`, sent by `npm run roll`, the buyer's key page, or Secrets Manager rotation.
 */
export interface RollRequest extends Subject {
  kind: 'roll';
  /** The roll's identity: a repeat or a replay of it makes no second key. The request's `eventId`. */
  rollId: string;
  /** How long the old key keeps working; absent: the deployment's ROLL_GRACE_SECONDS. 0: disabled at once. */
  graceSeconds?: number;
}

export type ParsedMessage = ProvisionRequest | RevokeRequest | Notice | RollRequest;

export type Json = Record<string, unknown>;
