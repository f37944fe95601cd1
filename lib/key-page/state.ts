import type { KeyRecord } from '../customer-key/key-record.js';

/**
 * Which page a buyer sees, from their record (the record table, written only by the provision function) and the
 * marker of their current key (this page's table). The rule, shared with the roll path (issue 21): a key can be
 * revealed when the record is `active`, names an `apiKeyId`, and no roll is under way (`rolling` absent); its value
 * is then the secret's current (AWSCURRENT) value.
 */
export type KeyState =
  | { kind: 'creating' }
  | { kind: 'ready'; apiKeyId: string }
  | { kind: 'already-shown'; apiKeyId: string }
  | { kind: 'ended' }
  | { kind: 'failed' };

/** What the page reads of a record: the provision function's KeyRecord (`rolling`: lib/customer-key/roll.ts). */
export type PageRecord = Pick<KeyRecord, 'status' | 'apiKeyId' | 'rolling'>;

/** What the page wrote about one key: when it was shown, when a new key was asked for. */
export interface KeyMarker {
  shownAt?: string;
  rollRequestedAt?: string;
}

/**
 * How long a roll request counts as under way while the record does not show it yet (the message on its way, or
 * refused by a provision function that does not know rolls): after that, the page offers "Get a new key" again, and
 * pressing it sends the same request again (same eventId: one roll whatever happens).
 */
export const ROLL_PATIENCE_MS = 5 * 60_000;

/** The record's side of the state: no key to show yet, an ended or failed subscription, or the key that may be shown. Pure. */
export function recordState(record: PageRecord | undefined): KeyState | { kind: 'revealable'; apiKeyId: string } {
  if (!record) return { kind: 'creating' };
  if (record.status === 'revoked') return { kind: 'ended' };
  if (record.status === 'failed') return { kind: 'failed' };
  if (record.rolling !== undefined && record.rolling !== null) return { kind: 'creating' };
  if (record.status === 'active' && record.apiKeyId) return { kind: 'revealable', apiKeyId: record.apiKeyId };
  return { kind: 'creating' };
}

/** The state of a revealable key from its marker. Pure. */
export function markerState(apiKeyId: string, marker: KeyMarker | undefined, now: Date): KeyState {
  const requested = marker?.rollRequestedAt ? Date.parse(marker.rollRequestedAt) : Number.NaN;
  if (Number.isFinite(requested) && now.getTime() - requested < ROLL_PATIENCE_MS) return { kind: 'creating' };
  return marker?.shownAt ? { kind: 'already-shown', apiKeyId } : { kind: 'ready', apiKeyId };
}

/** The marker's key in the reveals table: one per key ever shown, `<record key>#<apiKeyId>`. */
export const markerKey = (recordKey: string, apiKeyId: string): string => `${recordKey}#${apiKeyId}`;
