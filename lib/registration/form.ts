import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { printable } from '../customer-key/naming.js';
import { FormError } from './errors.js';

/** The form field names AWS Marketplace posts to the fulfillment URL (seller guide, "Onboarding customers"). */
export const TOKEN_FIELD = 'x-amzn-marketplace-token';
export const OFFER_TYPE_FIELD = 'x-amzn-marketplace-offer-type';

/** Far above a form of two fields; a larger body is not Marketplace's. */
export const MAX_FORM_BYTES = 16 * 1024;
const MAX_TOKEN_LENGTH = 4096;

export interface RegistrationForm {
  /** The registration token: a credential until redeemed, never logged (see {@link redactToken}). */
  token: string;
  /** `x-amzn-marketplace-offer-type=free-trial`. */
  freeTrial: boolean;
  /** The offer type as sent, shortened and escaped, for the log; undefined when absent. */
  offerType?: string;
}

function mediaType(event: APIGatewayProxyEventV2): string | undefined {
  // Function URL and HTTP API events lower-case header names; a test or a proxy might not.
  const header = Object.entries(event.headers ?? {}).find(([name]) => name.toLowerCase() === 'content-type')?.[1];
  return header?.split(';')[0]?.trim().toLowerCase() || undefined;
}

/**
 * Reads Marketplace's registration form from a Lambda function URL (or HTTP API, payload 2.0) event: a POST of
 * `application/x-www-form-urlencoded`, its body base64-encoded when the event says so. Tolerant where there is one
 * reading: surrounding whitespace is dropped, a space inside the token is read as `+` (a token never holds
 * whitespace; an unencoded `+` is what form decoding turns into a space), a repeated identical token counts once.
 * Pure. Throws {@link FormError} naming what is wrong, never quoting the token.
 */
export function parseRegistrationForm(event: APIGatewayProxyEventV2): RegistrationForm {
  const method = event.requestContext?.http?.method?.toUpperCase() ?? 'POST';
  if (method !== 'POST') throw new FormError('method-not-allowed', `${printable(method, 16)} request; AWS Marketplace sends a form POST`);
  const type = mediaType(event);
  if (type !== undefined && type !== 'application/x-www-form-urlencoded')
    throw new FormError('malformed-form', `content type ${printable(type)} is not application/x-www-form-urlencoded`);
  const raw = event.body ?? '';
  const body = event.isBase64Encoded ? Buffer.from(raw, 'base64').toString('utf8') : raw;
  if (Buffer.byteLength(body) > MAX_FORM_BYTES) throw new FormError('malformed-form', `the form is larger than ${MAX_FORM_BYTES} bytes`);

  const fields = new URLSearchParams(body);
  const tokens = [...new Set(fields.getAll(TOKEN_FIELD).map((t) => t.trim().replace(/ /g, '+')))].filter((t) => t !== '');
  if (tokens.length === 0) throw new FormError('missing-token', `the form has no ${TOKEN_FIELD}`);
  if (tokens.length > 1) throw new FormError('malformed-form', `the form has ${tokens.length} different ${TOKEN_FIELD} values`);
  const token = tokens[0] as string;
  if (token.length > MAX_TOKEN_LENGTH)
    throw new FormError('malformed-form', `${TOKEN_FIELD} is longer than ${MAX_TOKEN_LENGTH} characters`);
  if (!/^[\x21-\x7e]+$/.test(token)) throw new FormError('malformed-form', `${TOKEN_FIELD} has characters outside printable ASCII`);

  const offer = fields.get(OFFER_TYPE_FIELD)?.trim();
  return { token, freeTrial: offer === 'free-trial', ...(offer ? { offerType: printable(offer, 32) } : {}) };
}
