import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { CUSTOMER_ID_PATTERN, PRODUCT_CODE_PATTERN } from '../customer-key/naming.js';
import { verifyReference } from '../registration/reference.js';

/*
 * How the key page knows which buyer a browser is, without the URL ever being enough (docs/key-page.md, "Threat
 * model"). The hook's 303 (or a seller's own link) brings the browser to the page with `?ref=<signed reference>`
 * (lib/registration/reference.ts). The page exchanges that reference ONCE — a conditional write of its claim id, so a
 * second use (a replay from history, a screenshot, a proxy log) is refused — for a session cookie, and answers with
 * a 303 to itself without the reference. The cookie is `__Host-` (Secure, Path=/, no Domain), HttpOnly and
 * SameSite=Lax (Lax, not Strict: the first GET after the exchange ends a redirect chain that started on AWS
 * Marketplace, a cross-site navigation in which a Strict cookie would not be sent). Every POST also carries a CSRF
 * token bound to the session and to its action.
 */

/** The session cookie: `__Host-` makes the browser refuse it without Secure, with a Domain, or with another Path. */
export const SESSION_COOKIE = '__Host-keyprov-session';
/** Far above a reference the hook signs (~200 characters); a longer `ref` is refused before any work. */
export const MAX_REFERENCE_LENGTH = 1024;
/** A reference valid for longer than this is refused: the hook signs 60–3600 s; a seller's own link must too. */
export const MAX_REFERENCE_LIFETIME_SECONDS = 3_600;
/** Far above a session cookie this page sets (~250 characters). */
export const MAX_SESSION_LENGTH = 1024;

/** Who the buyer is: the customer id of their key, and the product (absent: a signup without one, `_/<customer>`). */
export interface Buyer {
  customerId: string;
  productCode?: string;
}

export interface Session extends Buyer {
  /** Random, per exchange: the CSRF tokens are bound to it. */
  sessionId: string;
  expiresAt: Date;
}

export type ReferenceCheck =
  | { ok: true; buyer: Buyer; claimId: string; expiresAt: Date }
  | { ok: false; reason: 'malformed' | 'bad-signature' | 'expired' };

/** A key of its own per purpose, derived from the signing key: a session is never a reference, nor a CSRF token either. */
const derived = (key: string, purpose: 'session' | 'csrf'): Buffer =>
  createHmac('sha256', key).update(`keyprov key page ${purpose} v1`).digest();

const mac = (key: Buffer, text: string): Buffer => createHmac('sha256', key).update(text).digest();

const sameBytes = (given: Buffer, expected: Buffer): boolean => given.length === expected.length && timingSafeEqual(given, expected);

function buyerOf(c: unknown, p: unknown): Buyer | undefined {
  if (typeof c !== 'string' || !CUSTOMER_ID_PATTERN.test(c)) return undefined;
  if (p === undefined || p === null || p === '') return { customerId: c };
  if (typeof p !== 'string' || !PRODUCT_CODE_PATTERN.test(p)) return undefined;
  return { customerId: c, productCode: p };
}

/**
 * Checks a `ref` from the URL: its length, its signature (constant time), its expiry, a lifetime of at most
 * {@link MAX_REFERENCE_LIFETIME_SECONDS}, and a customer id and product code the pipeline accepts. Pure; never
 * throws. `claimId` is what the one-time exchange writes (a hash of the whole reference: a changed byte is another
 * reference, which then fails its signature).
 */
export function checkReference(text: string, key: string, now: Date): ReferenceCheck {
  if (text.length === 0 || text.length > MAX_REFERENCE_LENGTH || !/^[A-Za-z0-9_.-]+$/.test(text)) return { ok: false, reason: 'malformed' };
  const verified = verifyReference(text, key, now);
  if (!verified.ok) return verified;
  const { customerId, productCode, expiresAt } = verified.reference;
  const buyer = buyerOf(customerId, productCode);
  if (!buyer || expiresAt.getTime() - now.getTime() > MAX_REFERENCE_LIFETIME_SECONDS * 1000) return { ok: false, reason: 'malformed' };
  return { ok: true, buyer, claimId: `ref#${createHash('sha256').update(text).digest('hex').slice(0, 40)}`, expiresAt };
}

/** A new session for the buyer, valid for `ttlSeconds`. */
export const newSession = (buyer: Buyer, now: Date, ttlSeconds: number): Session => ({
  ...buyer,
  sessionId: randomBytes(16).toString('base64url'),
  expiresAt: new Date(Math.floor(now.getTime() / 1000 + ttlSeconds) * 1000),
});

/** The cookie's value: `s1.<payload>.<signature>`, base64url, HMAC-SHA256 with the session key. Pure. */
export function signSession(session: Session, key: string): string {
  const payload = Buffer.from(
    JSON.stringify({
      c: session.customerId,
      ...(session.productCode !== undefined && { p: session.productCode }),
      s: session.sessionId,
      exp: Math.floor(session.expiresAt.getTime() / 1000),
    }),
  ).toString('base64url');
  return `s1.${payload}.${mac(derived(key, 'session'), `s1.${payload}`).toString('base64url')}`;
}

/** The session a cookie value holds, or undefined when it is malformed, forged or expired. Pure; never throws. */
export function verifySession(text: string, key: string, now: Date): Session | undefined {
  if (text.length === 0 || text.length > MAX_SESSION_LENGTH) return undefined;
  const parts = text.split('.');
  if (parts.length !== 3 || parts[0] !== 's1') return undefined;
  const [, payload = '', signature = ''] = parts;
  if (!sameBytes(Buffer.from(signature, 'base64url'), mac(derived(key, 'session'), `s1.${payload}`))) return undefined;
  let claims: unknown;
  try {
    claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
  const { c, p, s, exp } = (claims ?? {}) as Record<string, unknown>;
  const buyer = buyerOf(c, p);
  if (!buyer || typeof s !== 'string' || s.length < 16 || typeof exp !== 'number' || !Number.isInteger(exp)) return undefined;
  if (now.getTime() >= exp * 1000) return undefined;
  return { ...buyer, sessionId: s, expiresAt: new Date(exp * 1000) };
}

export type FormAction = 'show' | 'roll';

/** The CSRF token of a form: bound to the session and to the action it may perform. Pure. */
export const csrfToken = (session: Pick<Session, 'sessionId'>, action: FormAction, key: string): string =>
  mac(derived(key, 'csrf'), `${session.sessionId}|${action}`).toString('base64url');

/** Whether `token` is the CSRF token of this session and action (constant time). */
export const csrfValid = (token: string, session: Pick<Session, 'sessionId'>, action: FormAction, key: string): boolean =>
  token.length < 100 && sameBytes(Buffer.from(token, 'base64url'), mac(derived(key, 'csrf'), `${session.sessionId}|${action}`));

/** The Set-Cookie value of a session. */
export const sessionCookie = (value: string, maxAgeSeconds: number): string =>
  `${SESSION_COOKIE}=${value}; Max-Age=${maxAgeSeconds}; Path=/; Secure; HttpOnly; SameSite=Lax`;

/** The Set-Cookie value that removes the session (an expired or forged cookie). */
export const clearedSessionCookie = (): string => `${SESSION_COOKIE}=; Max-Age=0; Path=/; Secure; HttpOnly; SameSite=Lax`;
