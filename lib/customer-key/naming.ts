import { RejectedError } from '../errors.js';

/**
 * Customer ids become part of secret names, whose charset is `[A-Za-z0-9/_+=.@-]`.
 * `/` is left out so that an id can never reach into another customer's path.
 * An id outside this set is rejected rather than rewritten: rewriting could map two customers onto one name.
 */
export const CUSTOMER_ID_PATTERN = /^[A-Za-z0-9_+=.@-]{1,256}$/;
/** Marketplace product codes are alphanumeric; `_` can never be one, so it marks "no product". */
export const PRODUCT_CODE_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
export const NO_PRODUCT = '_';
/** NAME_PREFIX: the start of every key and secret name a deployment owns (secret-name charset, at most 128). */
export const NAME_PREFIX_PATTERN = /^[A-Za-z0-9/_+=.@-]{1,128}$/;

/** Tag rules of CreateApiKey: letters, digits and `+ - = . _ : /`. */
const TAG_CHARSET = /^[A-Za-z0-9+\-=._:/]*$/;
export const MAX_TAGS = 50;

/** The deterministic API key name for a customer: `<prefix><product or _>/<customerId>`. */
export function apiKeyName(prefix: string, customerId: string, productCode?: string): string {
  return `${prefix}${productCode ?? NO_PRODUCT}/${customerId}`;
}

/** The description of a customer's API key and secret, with `note` (why it was made that way) in parentheses. */
export function keyDescription(customerId: string, productCode?: string, note?: string): string {
  const product = productCode ? ` for product ${productCode}` : '';
  return `API key of customer ${customerId}${product}, provisioned by api-key-provisioner${note ? ` (${note})` : ''}`;
}

/**
 * The deterministic secret name: the key name plus `/api-key`. The fixed suffix keeps names from ending
 * in a hyphen and six characters, which Secrets Manager confuses with its own ARN suffix.
 */
export function secretName(prefix: string, customerId: string, productCode?: string): string {
  return `${apiKeyName(prefix, customerId, productCode)}/api-key`;
}

/**
 * Producer-chosen text made safe to quote in a message: at most `max` characters, everything outside printable
 * ASCII escaped as \uXXXX. Keeps bidirectional overrides out of logs and keeps failure events within the
 * characters SQS accepts (it refuses U+FFFE, U+FFFF and most control characters).
 */
export function printable(text: string, max = 64): string {
  return text.slice(0, max).replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Returns the first broken tag rule, or undefined when the tags are valid. Never echoes tag values. */
export function tagProblem(tags: Record<string, string>): string | undefined {
  const entries = Object.entries(tags);
  if (entries.length > MAX_TAGS) return `${entries.length} tags given, at most ${MAX_TAGS} are allowed`;
  for (const [key, value] of entries) {
    const shownKey = `"${printable(key)}"`;
    if (key.length === 0 || key.length > 128) return `tag key ${shownKey} must be 1 to 128 characters`;
    if (key.toLowerCase().startsWith('aws:')) return `tag key ${shownKey} must not start with "aws:"`;
    if (!TAG_CHARSET.test(key)) return `tag key ${shownKey} has characters outside [a-zA-Z0-9+-=._:/]`;
    if (typeof value !== 'string') return `tag ${shownKey} must have a string value`;
    if (value.length > 256) return `tag ${shownKey} has a value longer than 256 characters`;
    if (!TAG_CHARSET.test(value)) return `tag ${shownKey} has a value with characters outside [a-zA-Z0-9+-=._:/]`;
  }
  return undefined;
}

/** Merges the product's default tags with the event's (the event wins) and validates the result. Throws {@link RejectedError} `invalid-tags`. */
export function mergeTags(defaults: Record<string, string>, own: Record<string, string> | undefined): Record<string, string> {
  const tags = { ...defaults, ...own };
  const problem = tagProblem(tags);
  if (problem) throw new RejectedError('invalid-tags', problem);
  return tags;
}

/**
 * The ownership tag on every key and secret this deployment makes, valued with its NAME_PREFIX: IAM lets the
 * function change only keys that carry it (serverless.yml, `aws:ResourceTag`), and an event's tags cannot set it.
 */
export const OWNER_TAG = 'keyprov:owner';

/** Tags this product sets with the buyer's 2026 Marketplace identifiers, so a seller can meter by (account, license). */
export const ACCOUNT_TAG = 'keyprov:account';
export const LICENSE_TAG = 'keyprov:license';
const RESERVED_TAGS = [OWNER_TAG, ACCOUNT_TAG, LICENSE_TAG];

/**
 * The tags of a new key or secret: defaults, the event's own (they win), the buyer's account and first license
 * when known, then the ownership tag. An event cannot set a reserved key. Throws {@link RejectedError} `invalid-tags`.
 */
export function ownedTags(
  prefix: string,
  defaults: Record<string, string>,
  own: Record<string, string> | undefined,
  buyer: { customerAccountId?: string; licenseArn?: string } = {},
): Record<string, string> {
  const reserved = Object.keys(own ?? {}).find((key) => RESERVED_TAGS.includes(key.toLowerCase()));
  if (reserved) throw new RejectedError('invalid-tags', `tag key "${printable(reserved)}" is reserved: this product sets it`);
  const tags = {
    ...mergeTags(defaults, own),
    ...(buyer.customerAccountId && { [ACCOUNT_TAG]: buyer.customerAccountId }),
    ...(buyer.licenseArn && { [LICENSE_TAG]: buyer.licenseArn }),
    [OWNER_TAG]: prefix,
  };
  const problem = tagProblem(tags);
  if (problem) throw new RejectedError('invalid-tags', problem);
  return tags;
}

/**
 * The message attribute that carries a message's first send time (String, epoch milliseconds) through
 * `npm run redrive`: SQS gives a redriven message a new SentTimestamp. Set on the first redrive from the DLQ copy's
 * SentTimestamp (SQS keeps it when it moves a message to a DLQ), kept on every later one; the function takes it as
 * the queue time of a body that carries no time of its own.
 */
export const FIRST_SENT_AT_ATTRIBUTE = 'keyprov-first-sent-at';
