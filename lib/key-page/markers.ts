import type { KeyMarker } from './state.js';

/**
 * The page's own table (KEY_REVEALS_TABLE, lib/aws/dynamodb-reveals.ts): what the page did, by conditional writes, so
 * that concurrent requests — two tabs, a double click, a replayed link — do a thing at most once.
 */
export interface KeyMarkers {
  /**
   * Claims a reference for its one-time exchange: true for the first claim of `claimId`, false for every later one
   * (a replay). The claim is forgotten (TTL) after the reference expired.
   */
  claimReference(claimId: string, expiresAt: Date): Promise<boolean>;
  /** The marker of a key (strongly consistent), or undefined when the page never wrote one. */
  marker(key: string): Promise<KeyMarker | undefined>;
  /**
   * Claims the one reveal of a key: true when this request is the one that shows it (`shownAt` was not set), false when
   * another one did or does. Only the winner reads the secret.
   */
  claimReveal(key: string, claimId: string, now: Date): Promise<boolean>;
  /** Gives the reveal back when the winner could not read the value (nothing was shown); only the claim `claimId`. */
  releaseReveal(key: string, claimId: string): Promise<void>;
  /**
   * Claims the roll request of a key: true when no request was made, or the last one was made before `staleBefore`
   * (it never showed in the record); false when one is under way.
   */
  claimRoll(key: string, now: Date, staleBefore: Date): Promise<boolean>;
  /** Takes back a roll claim whose message could not be sent; only the claim made at `requestedAt`. */
  releaseRoll(key: string, requestedAt: Date): Promise<void>;
}
