import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * The signed, short-lived reference to a buyer that the hook puts on the registration page's URL (`?ref=`). Format:
 * `v1.<payload>.<signature>`, both base64url; payload `{"c": customerId, "p": productCode, "exp": epoch seconds, "n": nonce}`
 * (`n`, 12 random bytes: two references to the same buyer in the same second differ, so the key page's one-time
 * exchange of a reference — lib/key-page/session.ts — never mistakes the second for a replay of the first);
 * signature HMAC-SHA256 with the signing key over `v1.<payload>`. It names the buyer, it grants nothing: the key value
 * never travels in it. The registration page verifies it with {@link verifyReference} (or the same three steps in its
 * own language) before it trusts the customer id.
 */
export interface BuyerReference {
  /** The customerId the buyer's API key carries (docs/registration.md, "Which customer id"). */
  customerId: string;
  productCode: string;
  /** Whole seconds. */
  expiresAt: Date;
}

export type VerifiedReference = { ok: true; reference: BuyerReference } | { ok: false; reason: 'malformed' | 'bad-signature' | 'expired' };

const VERSION = 'v1';

const mac = (key: string | Buffer, signed: string): Buffer => createHmac('sha256', key).update(signed).digest();

/** Signs a reference that expires at `expiresAt` (rounded down to the second), with a fresh random nonce. */
export function signReference(buyer: { customerId: string; productCode: string }, key: string | Buffer, expiresAt: Date): string {
  const payload = Buffer.from(
    JSON.stringify({
      c: buyer.customerId,
      p: buyer.productCode,
      exp: Math.floor(expiresAt.getTime() / 1000),
      n: randomBytes(12).toString('base64url'),
    }),
  ).toString('base64url');
  const signed = `${VERSION}.${payload}`;
  return `${signed}.${mac(key, signed).toString('base64url')}`;
}

/**
 * Checks a reference: its signature (constant-time), then its expiry. Pure; never throws. A reference is accepted
 * until the second it expires.
 */
export function verifyReference(text: string, key: string | Buffer, now: Date = new Date()): VerifiedReference {
  const parts = text.split('.');
  if (parts.length !== 3 || parts[0] !== VERSION) return { ok: false, reason: 'malformed' };
  const [, payload = '', signature = ''] = parts;
  const expected = mac(key, `${VERSION}.${payload}`);
  const given = Buffer.from(signature, 'base64url');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { ok: false, reason: 'bad-signature' };
  let claims: unknown;
  try {
    claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
  } catch {
    return { ok: false, reason: 'malformed' };
  }
  const { c, p, exp } = (claims ?? {}) as Record<string, unknown>;
  if (typeof c !== 'string' || typeof p !== 'string' || typeof exp !== 'number' || !Number.isInteger(exp))
    return { ok: false, reason: 'malformed' };
  if (now.getTime() >= exp * 1000) return { ok: false, reason: 'expired' };
  return { ok: true, reference: { customerId: c, productCode: p, expiresAt: new Date(exp * 1000) } };
}
