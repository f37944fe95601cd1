import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import type { PageResponse } from '../../lib/key-page/pages.js';
import { SESSION_COOKIE } from '../../lib/key-page/session.js';

/** A function URL event (payload 2.0) for the key page: GET / by default; a form body is base64-encoded as a function URL gives it. */
export function pageEvent(
  options: {
    method?: string;
    path?: string;
    query?: string;
    cookies?: string[];
    form?: Record<string, string>;
    body?: string;
    headers?: Record<string, string>;
  } = {},
): APIGatewayProxyEventV2 {
  const { method = 'GET', path = '/', query = '', cookies, form, headers = {} } = options;
  const body = options.body ?? (form ? new URLSearchParams(form).toString() : undefined);
  return {
    version: '2.0',
    routeKey: '$default',
    rawPath: path,
    rawQueryString: query,
    ...(cookies && { cookies }),
    headers: {
      host: 'keypage0123456789abcdefghijklmno.lambda-url.us-east-1.on.aws',
      ...(form && { 'content-type': 'application/x-www-form-urlencoded' }),
      ...headers,
    },
    requestContext: {
      accountId: 'anonymous',
      apiId: 'keypage0123456789abcdefghijklmno',
      domainName: 'keypage0123456789abcdefghijklmno.lambda-url.us-east-1.on.aws',
      domainPrefix: 'keypage0123456789abcdefghijklmno',
      http: { method, path, protocol: 'HTTP/1.1', sourceIp: '203.0.113.7', userAgent: 'Mozilla/5.0' },
      requestId: crypto.randomUUID(),
      routeKey: '$default',
      stage: '$default',
      time: new Date().toUTCString(),
      timeEpoch: Date.now(),
    },
    ...(body !== undefined && { body: Buffer.from(body).toString('base64'), isBase64Encoded: true }),
  } as APIGatewayProxyEventV2;
}

/** The session cookie a response sets (`name=value`, as a browser sends it back), or undefined. */
export const sessionCookieOf = (response: PageResponse): string | undefined =>
  response.cookies?.find((c) => c.startsWith(`${SESSION_COOKIE}=`))?.split(';')[0];

/** The CSRF token of the page's form, or undefined. */
export const csrfOf = (response: PageResponse): string | undefined => /name="csrf" value="([^"]+)"/.exec(response.body)?.[1];

/** The key value on a *shown* page, or undefined. */
export const shownValueOf = (response: PageResponse): string | undefined => /id="api-key"[^>]*value="([^"]+)"/.exec(response.body)?.[1];
