import { createHash } from 'node:crypto';

/**
 * How a registration token appears in logs: its length and a SHA-256 prefix, enough to tell two tokens apart and to
 * match a buyer's report, never enough to redeem one.
 */
export function redactToken(token: string): string {
  return `sha256:${createHash('sha256').update(token).digest('hex').slice(0, 12)}/${token.length}`;
}

/** `text` with every occurrence of `token` replaced by its redacted form: for messages that might echo a request. */
export function scrubToken(text: string, token: string): string {
  return token === '' ? text : text.split(token).join(`<token ${redactToken(token)}>`);
}
