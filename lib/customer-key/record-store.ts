import { EnvironmentError, TransientError } from '../errors.js';
import { deterministicId } from '../ids.js';
import {
  isLegacyRecord,
  type KeyRecord,
  NOT_YET_RETRY_MS,
  type ProvisionDeps,
  readSecretContent,
  type SecretRecord,
  secretContent,
  withoutValue,
} from './key-record.js';

/** A record as read, with the version that the next conditional write must name. */
export interface Versioned {
  record: KeyRecord;
  /** 1 for the first write, one more for each write after it. */
  version: number;
}

/**
 * One record per (product, customer), changed only by conditional writes (the record table, lib/aws/dynamodb.ts).
 * Every transition — grant, revoke, a license added or gone, a plan move — reads the record, decides, and writes
 * with the version it read: a writer that lost the race gets `false`, re-reads and decides again, so no change is
 * ever written over one it did not see.
 */
export interface RecordStore {
  /** The record, strongly consistent, or undefined when there is none. Throws EnvironmentError for an unreadable item. */
  get(key: string): Promise<Versioned | undefined>;
  /**
   * Writes `record` as version `expected + 1` if the stored version is still `expected` (`undefined`: only if there is
   * no record yet). Returns false, writing nothing, when someone else wrote first.
   */
  put(key: string, record: KeyRecord, expected: number | undefined): Promise<boolean>;
}

/** The record's key: `<product or _>/<customer>`, the part of the key and secret names after the prefix. */
export const recordKey = (customerId: string, productCode: string | null | undefined): string => `${productCode ?? '_'}/${customerId}`;

/** How many times one delivery re-reads and re-decides after losing a conditional write, before SQS brings it back. */
export const MAX_RECORD_CONFLICTS = 8;

/** An attempt's answer when another writer changed the record first: read it again and decide again. */
export const CONFLICT = Symbol('conflict');

/**
 * Runs `attempt` (read the record, decide, write conditionally) until it does not answer {@link CONFLICT}, at most
 * {@link MAX_RECORD_CONFLICTS} times; then a TransientError (`doing` names the change) brings the message back soon.
 */
export async function untilWritten<T>(key: string, doing: string, attempt: () => Promise<T | typeof CONFLICT>): Promise<T> {
  for (let tries = 1; tries <= MAX_RECORD_CONFLICTS; tries++) {
    const result = await attempt();
    if (result !== CONFLICT) return result;
  }
  throw new TransientError(`record ${key} kept changing while ${doing}`, { retryAfterMs: NOT_YET_RETRY_MS });
}

/**
 * The customer's record. With `legacy`, a customer with no record in the table is looked up in its secret, where
 * records lived before the table: a whole record found there is moved into the table (a conditional write; losing it
 * means someone else moved or wrote it first, and theirs is read), and the secret is reduced to the value.
 */
export async function loadRecord(
  deps: ProvisionDeps,
  key: string,
  secretName: string,
  legacy: boolean,
  /** The version this delivery saw last: a record read again never has an older one (else EnvironmentError). */
  seen: { version?: number } = {},
): Promise<Versioned | undefined> {
  const found = await deps.records.get(key);
  const last = seen.version;
  if (last !== undefined && (found?.version ?? 0) < last)
    throw new EnvironmentError(`record ${key} went back from version ${last} to ${found?.version ?? 'none'}: restored or edited by hand?`);
  if (found) seen.version = found.version;
  if (found || !legacy) return found;
  const secret = await deps.secrets.getSecret(secretName);
  if (!secret) return undefined;
  return migrateLegacy(deps, key, secretName, readSecretContent(secret));
}

/** Moves a legacy record (a whole record in a secret) into the table; `undefined` for a secret that holds only a value. */
export async function migrateLegacy(
  deps: ProvisionDeps,
  key: string,
  secretName: string,
  content: SecretRecord,
): Promise<Versioned | undefined> {
  if (!isLegacyRecord(content)) return undefined;
  const record = withoutValue(content);
  const moved = await deps.records.put(key, record, undefined);
  if (!moved) return deps.records.get(key);
  // The secret keeps what it is for: the value. A deterministic token: a repeat of this write is ignored.
  await deps.secrets.putSecretValue(
    secretName,
    secretContent(content.value, record),
    deterministicId('secret-version', secretName, 'moved-to-table'),
  );
  return { record, version: 1 };
}
