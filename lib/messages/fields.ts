import type * as z from 'zod/mini';
import { CUSTOMER_ID_PATTERN, PRODUCT_CODE_PATTERN, printable } from '../customer-key/naming.js';
import { RejectedError, type RejectionReason } from '../errors.js';
import type { Json } from './types.js';

/**
 * The field rules every parser of lib/messages shares, and the one normalisation they allow: surrounding ASCII
 * whitespace of a Marketplace identifier. An identifier is an opaque token without spaces, so `" X01EXAMPLEX"` (as
 * AWS's own SaaS notification example prints it) has one reading, `X01EXAMPLEX`: the one Marketplace meters. Inner
 * whitespace, control, invisible or look-alike characters are never removed: they stay invalid, because rewriting
 * could map two customers onto one name.
 */

/** Producer event ids (signup `eventId`, EventBridge `id`): they become correlation ids and parts of event ids. */
export const EVENT_ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;
export const EVENT_ID_RULE = 'must be 1 to 128 characters of A-Z a-z 0-9 . _ : -';
export const CUSTOMER_ID_RULE = 'must be 1 to 256 characters of A-Z a-z 0-9 _ + = . @ -';
export const PRODUCT_CODE_RULE = 'must be 1 to 64 characters of A-Z a-z 0-9 . _ -, starting alphanumeric';

/** An AWS account id: exactly 12 ASCII digits (leading zeros are part of it). */
export const ACCOUNT_ID_PATTERN = /^[0-9]{12}$/;
export const ACCOUNT_ID_RULE = 'must be an AWS account id: a string of 12 digits';

/**
 * A license ARN: the Metering API's `LicenseArn` pattern (ResolveCustomer, BatchMeterUsage), narrowed to what every
 * place it is stored can hold: at most 256 characters and, in the resource, no `,` or `@` (an API key tag value
 * allows neither; License Manager ARNs, `arn:aws:license-manager::<account>:license:l-<hex>`, are about 90
 * characters of letters, digits, `:` `/` `-`).
 */
export const LICENSE_ARN_PATTERN =
  /^(?=.{1,256}$)arn:aws[a-zA-Z-]*:[A-Za-z0-9][A-Za-z0-9_/.-]{0,62}:[A-Za-z0-9_/.-]{0,63}:[A-Za-z0-9_/.-]{0,63}:[A-Za-z0-9][A-Za-z0-9:_/+=.-]{0,1023}$/;
export const LICENSE_ARN_RULE =
  'must be an ARN (arn:<partition>:<service>:<region>:<account>:<resource>) of at most 256 characters of A-Z a-z 0-9 : / _ + = . -';
/** A License Manager ARN printed without its `arn:` (as AWS's EventBridge examples do): `aws…:license-manager:…`. */
const LICENSE_ARN_WITHOUT_PREFIX = /^aws(?:-[a-z]+)*:license-manager:/;

/** Agreement statuses (`ACTIVE`, `CANCELLED`, …): an upper-case word that may go into a notice's action. */
export const AGREEMENT_STATUS_PATTERN = /^[A-Z][A-Z_]{0,31}$/;

export const isObject = (value: unknown): value is Json => typeof value === 'object' && value !== null && !Array.isArray(value);

/** An own property of a parsed JSON object (never one inherited from Object.prototype). */
export const own = (object: Json, key: string): unknown => (Object.hasOwn(object, key) ? object[key] : undefined);

/** `object.a.b…`, through own properties of objects only. */
export function ownPath(object: Json, ...keys: string[]): unknown {
  let current: unknown = object;
  for (const key of keys) {
    if (!isObject(current)) return undefined;
    current = own(current, key);
  }
  return current;
}

/** Surrounding ASCII space, tab, CR and LF: what a template or a hand-edited value picks up. Nothing else is trimmed. */
const SURROUNDING_WHITESPACE = /^[ \t\r\n]+|[ \t\r\n]+$/g;
export const trimIdentifier = (value: string): string => value.replace(SURROUNDING_WHITESPACE, '');

/** An identifier field's rule, and the reason a break of it is rejected with. */
export interface IdentifierRule {
  pattern: RegExp;
  rule: string;
  reason: RejectionReason;
}

export const CUSTOMER_ID: IdentifierRule = { pattern: CUSTOMER_ID_PATTERN, rule: CUSTOMER_ID_RULE, reason: 'invalid-customer-id' };
export const PRODUCT_CODE: IdentifierRule = { pattern: PRODUCT_CODE_PATTERN, rule: PRODUCT_CODE_RULE, reason: 'invalid-product-code' };
export const ACCOUNT_ID: IdentifierRule = { pattern: ACCOUNT_ID_PATTERN, rule: ACCOUNT_ID_RULE, reason: 'invalid-customer-id' };

/**
 * A Marketplace identifier: a string, trimmed of surrounding whitespace, that then matches its rule. Never echoes
 * the value. Throws {@link RejectedError} with the rule's reason, naming `what` and `field`.
 */
export function readIdentifier(value: unknown, what: string, field: string, rule: IdentifierRule): string {
  if (typeof value !== 'string') {
    const got = value === undefined ? 'is required' : `must be a string, not ${jsonType(value)}`;
    throw new RejectedError(rule.reason, `${what}: ${field} ${got}`);
  }
  const trimmed = trimIdentifier(value);
  if (!rule.pattern.test(trimmed)) {
    throw new RejectedError(rule.reason, `${what}: ${field} ${rule.rule} (surrounding spaces are ignored)`);
  }
  return trimmed;
}

/**
 * An identifier under its current key or its 2020 name (AWS's seller guide printed `CustomerIdentifier` and
 * `ProductCode` until 2021): the alias is read only when the current key is absent; both present and different is
 * ambiguous, and rejected naming both. Throws {@link RejectedError}.
 */
export function readAliased(body: Json, what: string, current: string, alias: string, rule: IdentifierRule): string {
  const primary = own(body, current);
  const legacy = own(body, alias);
  if (legacy === undefined) return readIdentifier(primary, what, current, rule);
  if (primary === undefined) return readIdentifier(legacy, what, `${alias} (the 2020 name of ${current})`, rule);
  const a = readIdentifier(primary, what, current, rule);
  const b = readIdentifier(legacy, what, alias, rule);
  if (a !== b) {
    throw new RejectedError(
      'ambiguous-field',
      `${what}: ${current} and ${alias} (its 2020 name) are both present and differ: which one is meant is ambiguous`,
    );
  }
  return a;
}

/**
 * A license ARN, trimmed. AWS's EventBridge examples print it without `arn:` (`aws:license-manager:us-east-1:…`):
 * a string that begins with a partition and `license-manager` can only be that ARN with its literal `arn:` left
 * out, so the prefix is added — nothing else (a missing `license:` resource type is not guessed). One license then
 * has one spelling, whichever form an event uses. Throws {@link RejectedError} `invalid-marketplace-notification`.
 */
export function readLicenseArn(value: unknown, what: string, field: string): string {
  if (typeof value !== 'string') {
    throw new RejectedError('invalid-marketplace-notification', `${what}: ${field} must be a string, not ${jsonType(value)}`);
  }
  const trimmed = trimIdentifier(value);
  const arn = LICENSE_ARN_WITHOUT_PREFIX.test(trimmed) ? `arn:${trimmed}` : trimmed;
  if (!LICENSE_ARN_PATTERN.test(arn)) {
    throw new RejectedError('invalid-marketplace-notification', `${what}: ${field} ${LICENSE_ARN_RULE}`);
  }
  return arn;
}

const jsonType = (value: unknown): string =>
  value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value === 'object' ? 'an object' : `a ${typeof value}`;

/** A rejection naming the first offending field of a zod error and the rule it breaks; never the field's value. */
export function reject(
  defaultReason: RejectionReason,
  what: string,
  error: z.core.$ZodError,
  fieldReasons: Record<string, RejectionReason> = {},
): RejectedError {
  const issue = error.issues[0];
  // Path segments can be producer-chosen keys (tag names): shorten them, they are not ours to echo whole.
  const field = issue?.path.map((segment) => printable(String(segment))).join('.') || '(body)';
  const reason = fieldReasons[String(issue?.path[0])] ?? defaultReason;
  return new RejectedError(reason, `${what}: ${field} ${issue?.message ?? 'is invalid'}`);
}
