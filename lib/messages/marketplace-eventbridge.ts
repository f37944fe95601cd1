import { CUSTOMER_ID_PATTERN } from '../customer-key/naming.js';
import { RejectedError } from '../errors.js';
import type { EventBridgeEvent } from './envelope-eventbridge.js';
import { ACCOUNT_ID, AGREEMENT_STATUS_PATTERN, isObject, own, ownPath, PRODUCT_CODE, readIdentifier, readLicenseArn } from './fields.js';
import type { Json, ParsedMessage, When } from './types.js';

/**
 * AWS Marketplace's EventBridge events (source `aws.agreement-marketplace`; seller guide "Amazon EventBridge events").
 *
 * - License Updated / License Deprovisioned (`- Manufacturer`, and `- Proposer` as AWS's sample integration also
 *   subscribes to) grant and revoke: the key's customer is the buyer's AWS account id (`detail.acceptor.accountId`,
 *   also exposed as `customerAccountId`), the product is `detail.product.code`, and `detail.license.arn`, when
 *   present, becomes `licenseArn` (an ARN printed without `arn:` gets it: lib/messages/fields.ts readLicenseArn).
 * - Every other event of the source — Purchase Agreement Created / Amended / Ended / Ending / Advisory Issued /
 *   Advisory Resolved / Renewal Upcoming / Renewal Terms Finalized / Billing Adjustment …, Agreement Cancellation
 *   Request …, and detail-types AWS adds later — is a notice: announced, never acted on, never rejected for what it
 *   lacks. Agreement events carry no product code (their `product.id` is not one). The buyer is
 *   `detail.acceptor.accountId`, else `detail.agreement.acceptorId` (cancellation events); an event that names no
 *   buyer (Billing Adjustment) gets the agreement id, `agmt-…`, as its customerId — what the event has that
 *   identifies the purchase, and what DescribeAgreement resolves to the buyer — else `_`, the "none" marker of
 *   lib/customer-key/naming.ts. A notice never touches a key, so neither can reach one.
 *
 * Present but broken is not the same as absent: a buyer id that is not 12 digits, a product code or license ARN
 * that breaks its rule is rejected, naming the field.
 */
export const MARKETPLACE_EVENT_SOURCE = 'aws.agreement-marketplace';

/** AWS's detail-types are words, a dash and a role: anything else is not echoed into an action. */
export const DETAIL_TYPE_PATTERN = /^[A-Za-z0-9 ()._-]{1,128}$/;
const ROLE_SUFFIX = / - (Proposer|Manufacturer|Acceptor)$/;
/** What a notice without any buyer id or agreement id carries as customerId (lib/customer-key/naming.ts NO_PRODUCT's spelling). */
export const NO_BUYER = '_';

/** The buyer's account id of an agreement or license event, if it names one; `required` rejects when it does not. */
function buyerOf(detail: Json, what: string, required: boolean): string | undefined {
  const acceptor = own(detail, 'acceptor');
  if (acceptor !== undefined || required) {
    return readIdentifier(isObject(acceptor) ? own(acceptor, 'accountId') : undefined, what, 'detail.acceptor.accountId', ACCOUNT_ID);
  }
  const acceptorId = ownPath(detail, 'agreement', 'acceptorId');
  return acceptorId === undefined ? undefined : readIdentifier(acceptorId, what, 'detail.agreement.acceptorId', ACCOUNT_ID);
}

/** `detail.license.arn`, normalised, when the event has a license (null counts as none). */
function licenseOf(detail: Json, what: string): string | undefined {
  const license = own(detail, 'license');
  if (license === undefined || license === null) return undefined;
  if (!isObject(license)) {
    throw new RejectedError('invalid-marketplace-notification', `${what}: detail.license must be an object with an arn`);
  }
  return readLicenseArn(own(license, 'arn'), what, 'detail.license.arn');
}

/** A Marketplace EventBridge event (its envelope read already). Pure. Throws {@link RejectedError}. */
export function parseMarketplaceEvent(event: EventBridgeEvent, when: When): ParsedMessage {
  const { detailType, detail, eventId } = event;
  if (!DETAIL_TYPE_PATTERN.test(detailType)) {
    throw new RejectedError(
      'invalid-eventbridge-event',
      'Marketplace EventBridge event: detail-type must be 1 to 128 characters of letters, digits, spaces and ( ) . _ -',
    );
  }
  const kind = detailType.replace(ROLE_SUFFIX, '');
  const what = `Marketplace event ${kind}`;
  const base = { source: 'eventbridge' as const, ...when, eventId };

  if (kind === 'License Updated' || kind === 'License Deprovisioned') {
    const accountId = buyerOf(detail, what, true) ?? '';
    const productCode = readIdentifier(ownPath(detail, 'product', 'code'), what, 'detail.product.code', PRODUCT_CODE);
    const licenseArn = licenseOf(detail, what);
    const subject = { ...base, customerId: accountId, customerAccountId: accountId, productCode, ...(licenseArn && { licenseArn }) };
    return kind === 'License Updated' ? { kind: 'provision', ...subject } : { kind: 'revoke', action: 'unsubscribe-success', ...subject };
  }

  const accountId = buyerOf(detail, what, false);
  const licenseArn = licenseOf(detail, what);
  const agreementId = ownPath(detail, 'agreement', 'id');
  const status = ownPath(detail, 'agreement', 'status');
  const customerId = accountId ?? (typeof agreementId === 'string' && CUSTOMER_ID_PATTERN.test(agreementId) ? agreementId : NO_BUYER);
  return {
    kind: 'notice',
    // The status is informational: one that is not an upper-case word is left out, not rejected.
    action: typeof status === 'string' && AGREEMENT_STATUS_PATTERN.test(status) ? `${kind} (${status})` : kind,
    ...base,
    customerId,
    ...(accountId && { customerAccountId: accountId }),
    ...(licenseArn && { licenseArn }),
  };
}
