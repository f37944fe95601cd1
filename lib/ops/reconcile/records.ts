/**
 * Reading what the pipeline wrote: the names of a deployment's keys and secrets (by lib/customer-key/naming.ts's rules) and the
 * record a secret holds (lib/customer-key/key-record.ts's SecretRecord). Pure.
 */

import type { KeyStatus, SecretRecord } from '../../customer-key/key-record.js';
import { apiKeyName, CUSTOMER_ID_PATTERN, NO_PRODUCT, PRODUCT_CODE_PATTERN, secretName } from '../../customer-key/naming.js';
import type { OwnedName, RecordWithoutValue } from './model.js';

/**
 * Reads a name of this deployment: {@link apiKeyName} for a key, {@link secretName} for a secret. Undefined for
 * anything else under the prefix (e.g. another deployment whose prefix starts like this one). A name is accepted
 * only when lib/customer-key/naming.ts builds exactly it back from the customer and product read out of it.
 */
export function parseOwnedName(prefix: string, name: string, kind: 'apiKey' | 'secret'): OwnedName | undefined {
  if (!name.startsWith(prefix)) return undefined;
  // A customer id never holds a '/' (CUSTOMER_ID_PATTERN): the product and the customer are the first two parts.
  const [product, customerId] = name.slice(prefix.length).split('/');
  if (product === undefined || customerId === undefined) return undefined;
  if (!CUSTOMER_ID_PATTERN.test(customerId) || (product !== NO_PRODUCT && !PRODUCT_CODE_PATTERN.test(product))) return undefined;
  const productCode = product === NO_PRODUCT ? undefined : product;
  const owned: OwnedName = {
    customerId,
    productCode: productCode ?? null,
    apiKeyName: apiKeyName(prefix, customerId, productCode),
    secretName: secretName(prefix, customerId, productCode),
  };
  return (kind === 'apiKey' ? owned.apiKeyName : owned.secretName) === name ? owned : undefined;
}

const STATUSES = new Set<string>(['active', 'revoked', 'failed'] satisfies KeyStatus[]);

/**
 * Reads a secret's JSON as a {@link SecretRecord}, or says why it cannot be (without quoting the content: V8's
 * JSON.parse messages quote the input, so they are not used). A pending record must hold a value.
 */
export function parseRecord(secretString: string): { record: SecretRecord } | { unreadable: string } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(secretString);
  } catch {
    return { unreadable: 'the secret is not JSON' };
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return { unreadable: 'the secret is not a JSON object' };
  const r = parsed as Record<string, unknown>;
  if (typeof r.customerId !== 'string') return { unreadable: 'the record has no customerId' };
  if (r.value !== undefined && typeof r.value !== 'string') return { unreadable: "the record's value is not a string" };
  if (r.apiKeyId !== undefined && typeof r.apiKeyId !== 'string') return { unreadable: "the record's apiKeyId is not a string" };
  if (r.status !== undefined && !(typeof r.status === 'string' && STATUSES.has(r.status)))
    return { unreadable: "the record's status is not active, revoked or failed" };
  if (r.status === undefined && r.apiKeyId === undefined && r.value === undefined)
    return { unreadable: 'the pending record holds no key value' };
  return { record: parsed as SecretRecord };
}

/** The record's state: `pending` until it has a key id (an id without a status is active, as the function reads it). */
export function recordStatus(record: RecordWithoutValue): KeyStatus | 'pending' {
  return record.status ?? (record.apiKeyId ? 'active' : 'pending');
}
