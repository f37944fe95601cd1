import type { FormProblem } from './errors.js';

/** What the hook answers the browser: a function URL (or HTTP API payload 2.0) structured result. */
export interface HttpResponse {
  statusCode: number;
  headers: Record<string, string>;
  body: string;
}

/**
 * Every answer: never cached (it follows a one-time token), never framed, no referrer (the redirect's URL holds a
 * reference to the buyer), no script, no outside resource.
 */
const BASE_HEADERS: Record<string, string> = {
  'cache-control': 'no-store',
  'referrer-policy': 'no-referrer',
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
};

const escapeHtml = (text: string): string =>
  text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c);

const SET_UP_AGAIN =
  'Go back to AWS Marketplace, open your subscription to this product and choose “Set up your account” again: ' +
  'it sends you here with a fresh link.';

function page(
  statusCode: number,
  title: string,
  paragraphs: string[],
  requestId: string,
  headers: Record<string, string> = {},
): HttpResponse {
  const body = [
    '<!doctype html>',
    '<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${escapeHtml(title)}</title>`,
    '<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;line-height:1.5}',
    'small{color:#555}</style></head><body>',
    `<h1>${escapeHtml(title)}</h1>`,
    ...paragraphs.map((p) => `<p>${escapeHtml(p)}</p>`),
    `<p><small>Reference: ${escapeHtml(requestId)}</small></p>`,
    '</body></html>',
  ].join('\n');
  return { statusCode, headers: { ...BASE_HEADERS, 'content-type': 'text/html; charset=utf-8', ...headers }, body };
}

/** 400: Marketplace refused the token (invalid or expired). Retrying cannot help, so the page offers no retry. */
export const tokenRejectedPage = (requestId: string): HttpResponse =>
  page(400, 'This setup link has expired', ['The link that brought you here is no longer valid.', SET_UP_AGAIN], requestId);

/** 400 (405 for a method other than POST): the request is not Marketplace's registration form. */
export function formProblemPage(problem: FormProblem, requestId: string): HttpResponse {
  const lines = [
    'This page is opened by AWS Marketplace when you set up your account, and it did not receive what it needs.',
    SET_UP_AGAIN,
  ];
  return problem === 'method-not-allowed'
    ? page(405, 'Open this page from AWS Marketplace', lines, requestId, { allow: 'POST' })
    : page(400, 'Open this page from AWS Marketplace', lines, requestId);
}

/** 503: AWS kept throttling or failing within the hook's retry budget. The buyer may simply try again. */
export const tryAgainPage = (requestId: string, retryAfterSeconds = 30): HttpResponse =>
  page(
    503,
    'Please try again in a minute',
    [
      'We could not finish setting up your account just now. Nothing is lost: your AWS Marketplace subscription is in place.',
      'Wait a minute, then reload this page (and confirm that the form may be sent again), or go back to AWS Marketplace ' +
        'and choose “Set up your account” again.',
    ],
    requestId,
    { 'retry-after': String(retryAfterSeconds) },
  );

/** 500: a problem on the seller's side (the API disabled in the Region, IAM, the signing key, an unexpected answer). */
export const sellerProblemPage = (requestId: string): HttpResponse =>
  page(
    500,
    'Account setup is unavailable',
    [
      'A problem on our side keeps us from setting up your account right now; we have been alerted. ' +
        'Your AWS Marketplace subscription is not affected.',
      'Please try again later. If this persists, contact us and quote the reference below.',
    ],
    requestId,
  );

/** 303 See Other: the browser follows with a GET, so a reload of the page it lands on never re-posts the token. */
export const redirectTo = (location: string): HttpResponse => ({
  statusCode: 303,
  headers: { ...BASE_HEADERS, location, 'content-type': 'text/plain; charset=utf-8' },
  body: '',
});
