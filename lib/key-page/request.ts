import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { printable } from '../customer-key/naming.js';
import type { FormAction } from './session.js';
import { MAX_REFERENCE_LENGTH, SESSION_COOKIE } from './session.js';

/** The page's own forms are one hidden field; a larger body is not theirs. */
export const MAX_FORM_BYTES = 4 * 1024;
/** Far above the cookies this page sets; a Cookie header is bounded by the function URL anyway. */
const MAX_COOKIE_VALUES = 4;

/** What the browser asked for. */
export type PageRequest =
  /** GET `/`: the buyer's key page; with `ref`, first the one-time exchange of the reference. */
  | { route: 'page'; ref?: string; sessions: string[] }
  /** POST `/show` or `/roll`: a form of the page, with its CSRF token. */
  | { route: FormAction; csrf: string; sessions: string[] };

export type RequestProblemReason = 'method-not-allowed' | 'not-found' | 'malformed' | 'cross-site';

/** The request is not one the page serves: a plain 4xx page, no AWS call. The message never quotes a cookie or a reference. */
export class RequestProblem extends Error {
  override name = 'RequestProblem';
  constructor(
    readonly reason: RequestProblemReason,
    message: string,
    /** For a 405: the methods the path takes. */
    readonly allow?: string,
  ) {
    super(message);
  }
}

const header = (event: APIGatewayProxyEventV2, name: string): string | undefined =>
  Object.entries(event.headers ?? {}).find(([key]) => key.toLowerCase() === name)?.[1];

/** The session cookie's values: function URLs give cookies in `event.cookies`; a proxy or a test may send a Cookie header. */
function sessionValues(event: APIGatewayProxyEventV2): string[] {
  const pairs = [...(event.cookies ?? []), ...(header(event, 'cookie')?.split(';') ?? [])];
  const values = pairs
    .map((pair) => pair.trim())
    .filter((pair) => pair.startsWith(`${SESSION_COOKIE}=`))
    .map((pair) => pair.slice(SESSION_COOKIE.length + 1));
  return [...new Set(values)].slice(0, MAX_COOKIE_VALUES);
}

function referenceOf(event: APIGatewayProxyEventV2): string | undefined {
  const query = event.rawQueryString ?? '';
  if (query.length > 4 * MAX_REFERENCE_LENGTH) throw new RequestProblem('malformed', 'the query string is too long');
  const refs = [...new Set(new URLSearchParams(query).getAll('ref'))];
  if (refs.length > 1) throw new RequestProblem('malformed', `${refs.length} different references`);
  return refs[0];
}

function formOf(event: APIGatewayProxyEventV2): URLSearchParams {
  const type = header(event, 'content-type')?.split(';')[0]?.trim().toLowerCase();
  if (type !== 'application/x-www-form-urlencoded')
    throw new RequestProblem('malformed', `content type ${printable(type ?? 'none', 40)} is not a form`);
  const raw = event.body ?? '';
  if (raw.length > MAX_FORM_BYTES * 2) throw new RequestProblem('malformed', `the form is larger than ${MAX_FORM_BYTES} bytes`);
  const body = event.isBase64Encoded ? Buffer.from(raw, 'base64').toString('utf8') : raw;
  if (Buffer.byteLength(body) > MAX_FORM_BYTES) throw new RequestProblem('malformed', `the form is larger than ${MAX_FORM_BYTES} bytes`);
  return new URLSearchParams(body);
}

/**
 * Reads a request to the key page from a function URL event (payload 2.0): `GET /` (with `?ref=` on arrival), `POST
 * /show`, `POST /roll`; HEAD is a GET that never exchanges a reference. A POST sent by another site (`Sec-Fetch-Site: cross-site`) is refused before
 * its token is even looked at. Pure. Throws {@link RequestProblem} naming what is wrong, never quoting a cookie,
 * a reference or a token.
 */
export function parsePageRequest(event: APIGatewayProxyEventV2): PageRequest {
  const method = (event.requestContext?.http?.method ?? 'GET').toUpperCase();
  const path = event.rawPath || '/';
  const sessions = sessionValues(event);
  if (path === '/') {
    if (method !== 'GET' && method !== 'HEAD') throw new RequestProblem('method-not-allowed', `${printable(method, 16)} /`, 'GET');
    const ref = referenceOf(event);
    // A HEAD (a link checker, a prefetch) never exchanges the one-time reference: only a GET does.
    return { route: 'page', sessions, ...(ref !== undefined && method === 'GET' && { ref }) };
  }
  if (path === '/show' || path === '/roll') {
    if (method !== 'POST') throw new RequestProblem('method-not-allowed', `${printable(method, 16)} ${path}`, 'POST');
    if (header(event, 'sec-fetch-site')?.toLowerCase() === 'cross-site')
      throw new RequestProblem('cross-site', `a POST to ${path} from another site`);
    const tokens = [...new Set(formOf(event).getAll('csrf'))];
    if (tokens.length !== 1 || !tokens[0]) throw new RequestProblem('malformed', 'the form has no single csrf field');
    return { route: path === '/show' ? 'show' : 'roll', csrf: tokens[0], sessions };
  }
  throw new RequestProblem('not-found', `no page at ${printable(path, 64)}`);
}
