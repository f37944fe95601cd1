import { RejectedError } from '../errors.js';
import { CUSTOMER_ID, own, PRODUCT_CODE, readAliased } from './fields.js';
import type { Json, ParsedMessage, When } from './types.js';

/**
 * AWS Marketplace's SaaS notifications (SNS topics `aws-mp-subscription-notification` and
 * `aws-mp-entitlement-notification`), as AWS's seller guide documents them from 2020 to now:
 *
 *     {"action": "<action-name>", "customer-identifier": " X01EXAMPLEX", "product-code": "n0123EXAMPLEXXXXXXXXXXXX",
 *      "offer-identifier": "offer-abcexample123", "isFreeTrialTermPresent": "true"}
 *
 * A tolerant reader of it: identifiers are trimmed of surrounding whitespace (the documented example has a leading
 * space); the 2020 key names `CustomerIdentifier` / `ProductCode` are read when the current ones are absent;
 * `offer-identifier`, `isFreeTrialTermPresent` and any unknown field are informational and never reject. What
 * decides — the action, the customer, the product — is read strictly: an action outside the five documented ones
 * (exact spelling) is rejected, so is an identifier that is not one even once trimmed.
 */
export const MARKETPLACE_ACTIONS = [
  'subscribe-success',
  'subscribe-fail',
  'unsubscribe-pending',
  'unsubscribe-success',
  'entitlement-updated',
] as const;
type MarketplaceAction = (typeof MARKETPLACE_ACTIONS)[number];

const WHAT = 'Marketplace notification';

/** Whether a body looks like a Marketplace notification (any of its documented keys, current or 2020). */
export const isMarketplaceNotification = (body: Json): boolean =>
  ['action', 'customer-identifier', 'CustomerIdentifier'].some((key) => Object.hasOwn(body, key));

/**
 * `isFreeTrialTermPresent`: documented as the string "true" ("not a boolean datatype"); AWS's own sample integration
 * compares it case-insensitively. "true"/"false" in any case and JSON booleans have one reading; anything else has
 * none and is left unread (undefined), never rejected: no decision depends on it.
 */
export function freeTrialOf(value: unknown): boolean | undefined {
  if (typeof value === 'boolean') return value;
  if (typeof value !== 'string') return undefined;
  const word = value.trim().toLowerCase();
  return word === 'true' ? true : word === 'false' ? false : undefined;
}

const isAction = (value: unknown): value is MarketplaceAction => MARKETPLACE_ACTIONS.includes(value as MarketplaceAction);

/** A Marketplace SNS notification (already out of its envelope, if any). Pure. Throws {@link RejectedError}. */
export function parseMarketplaceNotification(body: Json, when: When): ParsedMessage {
  const action = own(body, 'action');
  if (!isAction(action)) {
    const got = action === undefined ? 'is required' : `must be one of ${MARKETPLACE_ACTIONS.join(', ')}`;
    throw new RejectedError('invalid-marketplace-notification', `${WHAT}: action ${got}`);
  }
  const customerId = readAliased(body, WHAT, 'customer-identifier', 'CustomerIdentifier', CUSTOMER_ID);
  const productCode = readAliased(body, WHAT, 'product-code', 'ProductCode', PRODUCT_CODE);
  const subject = { source: 'marketplace' as const, customerId, productCode, ...when };
  switch (action) {
    case 'subscribe-success': {
      const freeTrial = freeTrialOf(own(body, 'isFreeTrialTermPresent'));
      return { kind: 'provision', ...subject, ...(freeTrial !== undefined && { freeTrial }) };
    }
    case 'unsubscribe-success':
    case 'subscribe-fail':
      return { kind: 'revoke', action, ...subject };
    default:
      return { kind: 'notice', action, ...subject };
  }
}
