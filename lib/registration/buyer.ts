import type { ResolvedCustomer } from '../aws/metering.js';
import type { OutgoingMessage } from '../aws/sqs.js';
import { CUSTOMER_ID_PATTERN, PRODUCT_CODE_PATTERN } from '../customer-key/naming.js';
import { deterministicId } from '../ids.js';
import { ACCOUNT_ID_PATTERN, LICENSE_ARN_PATTERN } from '../messages/fields.js';
import { UnusableCustomerError } from './errors.js';

/** The buyer a registration token resolved to, ready to provision. */
export interface Buyer {
  /** The customerId of the buyer's API key: see {@link buyerOf}. */
  customerId: string;
  /** Which ResolveCustomer member `customerId` is. */
  customerIdSource: 'customer-identifier' | 'account-id';
  productCode: string;
  /** `CustomerAWSAccountId`, when ResolveCustomer sent one. */
  customerAccountId?: string;
  /** `LicenseArn`, when ResolveCustomer sent one (listings with Concurrent Agreements). */
  licenseArn?: string;
}

/**
 * The buyer of a ResolveCustomer answer. The customer id rule: `CustomerIdentifier` when it is populated, else
 * `CustomerAWSAccountId`. It is the id the other paths give the same buyer: a listing that has a customer identifier
 * (created before Concurrent Agreements) gets SNS notifications, whose `customer-identifier` is that identifier; a
 * new listing has none ("not populated": absent or empty) and gets EventBridge license events, whose
 * `detail.acceptor.accountId` is the account id. The values are used exactly as sent, never trimmed or rewritten,
 * and checked with the signup parser's own rules (lib/messages), so a signup the hook sends is one the pipeline
 * accepts. Pure. Throws {@link UnusableCustomerError} when the answer has no usable id or product code, or a
 * malformed account id or license ARN.
 */
export function buyerOf(resolved: ResolvedCustomer): Buyer {
  const identifier = resolved.customerIdentifier || undefined;
  const account = resolved.customerAWSAccountId || undefined;
  const license = resolved.licenseArn || undefined;
  if (account !== undefined && !ACCOUNT_ID_PATTERN.test(account))
    throw new UnusableCustomerError('ResolveCustomer answered a CustomerAWSAccountId that is not 12 digits');
  const customerId = identifier ?? account;
  if (customerId === undefined)
    throw new UnusableCustomerError('ResolveCustomer answered neither CustomerIdentifier nor CustomerAWSAccountId');
  if (!CUSTOMER_ID_PATTERN.test(customerId))
    throw new UnusableCustomerError('ResolveCustomer answered a CustomerIdentifier outside A-Z a-z 0-9 _ + = . @ - (1 to 256)');
  const productCode = resolved.productCode;
  if (!productCode || !PRODUCT_CODE_PATTERN.test(productCode))
    throw new UnusableCustomerError('ResolveCustomer answered no ProductCode, or one this pipeline does not accept');
  if (license !== undefined && !LICENSE_ARN_PATTERN.test(license))
    throw new UnusableCustomerError('ResolveCustomer answered a LicenseArn the signup parser does not accept');
  return {
    customerId,
    customerIdSource: identifier === undefined ? 'account-id' : 'customer-identifier',
    productCode,
    ...(account !== undefined && { customerAccountId: account }),
    ...(license !== undefined && { licenseArn: license }),
  };
}

/**
 * The producer event id of a registration: the same buyer, product and license give the same id, however often the
 * buyer submits the form, so repeats correlate (and a FIFO queue drops them within its window).
 */
export const registrationEventId = (buyer: Buyer): string =>
  `registration-${deterministicId('marketplace-registration', buyer.customerId, buyer.productCode, buyer.licenseArn ?? '')}`;

/**
 * The signup message for the buyer, in the signup event schema (lib/messages): `customerId`, `eventId`,
 * `productCode`, `occurredAt` (the hook's clock: when the token was redeemed). `customerAccountId` and `licenseArn`
 * ride along for the license logic (unknown signup fields are ignored by today's parser), and `offerType` for a free
 * trial.
 */
export function signupMessage(buyer: Buyer, options: { now: Date; freeTrial: boolean }): OutgoingMessage {
  const eventId = registrationEventId(buyer);
  const body = {
    customerId: buyer.customerId,
    eventId,
    productCode: buyer.productCode,
    occurredAt: options.now.toISOString(),
    ...(buyer.customerAccountId !== undefined && { customerAccountId: buyer.customerAccountId }),
    ...(buyer.licenseArn !== undefined && { licenseArn: buyer.licenseArn }),
    ...(options.freeTrial && { offerType: 'free-trial' }),
  };
  return {
    id: '0',
    body: JSON.stringify(body),
    deduplicationId: eventId,
    // FIFO only: one group per buyer and product (hashed: MessageGroupId takes at most 128 characters).
    groupId: deterministicId('signup-group', buyer.customerId, buyer.productCode),
  };
}
