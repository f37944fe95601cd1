import { createHash } from 'node:crypto';
import type { Branding } from './config.js';
import { constantHtml, html, type SafeHtml } from './html.js';

/** A function URL (payload 2.0) structured answer; `cookies` become Set-Cookie headers. */
export interface PageResponse {
  statusCode: number;
  headers: Record<string, string>;
  cookies?: string[];
  body: string;
}

/*
 * The pages, after the GOV.UK Design System's patterns: one thing per page, a heading that says where you are, real
 * forms and buttons that work without JavaScript, status pages that say what to do next, visible focus. No outside
 * resource but the seller's logo (https only); the only script is the copy button's, allowed by its hash.
 */

const STYLE = [
  'body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;color:#0b0c0c;background:#fff;margin:0;line-height:1.5}',
  'header,main,footer{max-width:42rem;margin:0 auto;padding:1rem}',
  'header{border-bottom:4px solid #1d70b8;display:flex;align-items:center;gap:.75rem;font-weight:700}',
  'header img{max-height:2.5rem}',
  'footer{border-top:1px solid #b1b4b6;color:#505a5f;font-size:.9rem;margin-top:2rem}',
  'a{color:#1d70b8}a:visited{color:#4c2c92}',
  'label{display:block;font-weight:700;margin-bottom:.25rem}',
  '.key{font:1.1rem ui-monospace,monospace;width:100%;box-sizing:border-box;padding:.5rem;border:2px solid #0b0c0c}',
  '.button{font:inherit;font-weight:700;color:#fff;background:#00703c;border:0;box-shadow:0 2px 0 #002d18;padding:.5rem 1rem;cursor:pointer;margin:.5rem 0}',
  '.button.secondary{color:#0b0c0c;background:#f3f2f1;box-shadow:0 2px 0 #929191}',
  ':focus-visible{outline:3px solid #fd0;outline-offset:0;box-shadow:0 0 0 6px #0b0c0c}',
  '.warning{border-left:6px solid #d4351c;padding:.5rem 1rem;font-weight:700}',
  'pre{background:#f3f2f1;padding:.75rem;overflow-x:auto}',
].join('');

/**
 * The page's one script (allowed by its hash). The copy button: hidden until it runs, so a browser without JavaScript
 * shows no button that cannot work. On *creating*: asks for the page every 3 s in the background and reloads it only
 * when its heading changed, so that a screen reader is not thrown to the top of an unchanged page every 3 s (without
 * JavaScript, a meta refresh in <noscript> does the polling).
 */
const SCRIPT =
  "(function(){var b=document.getElementById('copy'),k=document.getElementById('api-key'),s=document.getElementById('copy-status');" +
  'if(b&&k&&s&&navigator.clipboard){b.hidden=false;b.addEventListener("click",function(){' +
  "navigator.clipboard.writeText(k.value).then(function(){s.textContent='Copied to the clipboard.'}," +
  "function(){k.select();s.textContent='Copying failed: the key is selected, copy it with Ctrl+C or Cmd+C.'})})}" +
  "var m=document.querySelector('main[data-poll]'),h=document.querySelector('h1');" +
  'if(m&&h&&window.fetch&&window.DOMParser){setInterval(function(){' +
  "fetch(location.href,{cache:'no-store',credentials:'same-origin'}).then(function(r){return r.text()}).then(function(t){" +
  "var n=new DOMParser().parseFromString(t,'text/html').querySelector('h1');if(!n||n.textContent!==h.textContent)location.reload()" +
  "}).catch(function(){})},Number(m.getAttribute('data-poll'))*1000)}})();";

const hashOf = (text: string): string => `'sha256-${createHash('sha256').update(text).digest('base64')}'`;

/** Every answer: never cached (a key or a session is near), never framed, no referrer, no script but the hashed one. */
export const BASE_HEADERS: Readonly<Record<string, string>> = {
  'cache-control': 'no-store',
  pragma: 'no-cache',
  'referrer-policy': 'no-referrer',
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'cross-origin-opener-policy': 'same-origin',
  'content-security-policy':
    `default-src 'none'; style-src ${hashOf(STYLE)}; script-src ${hashOf(SCRIPT)}; img-src https:; connect-src 'self'; ` +
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
};

export interface PageContext {
  branding: Branding;
  marketplaceUrl: string;
  /** The Lambda request id: quoted on error pages, for support. */
  requestId: string;
}

interface PageParts {
  status: number;
  title: string;
  content: SafeHtml;
  /** *creating*: the page asks again every so many seconds (script, or a meta refresh without JavaScript). */
  refreshSeconds?: number;
  headers?: Record<string, string>;
  cookies?: string[];
}

const seller = (b: Branding): string => b.sellerName ?? 'API key';

function footer(ctx: PageContext, withReference: boolean): SafeHtml {
  const { documentationUrl, supportContact } = ctx.branding;
  const contact = supportContact?.includes('@') && !supportContact.includes(':') ? `mailto:${supportContact}` : supportContact;
  const contactLink = contact && /^(https?:|mailto:)/.test(contact) ? html`<a href="${contact}">${supportContact}</a>` : supportContact;
  return html`<footer>
${documentationUrl && html`<p><a href="${documentationUrl}">API documentation</a></p>`}
${supportContact && html`<p>Help: ${contactLink}</p>`}
${withReference && html`<p>Reference: <span class="reference">${ctx.requestId}</span></p>`}
</footer>`;
}

function page(ctx: PageContext, parts: PageParts): PageResponse {
  const { branding } = ctx;
  const body = html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
${parts.refreshSeconds !== undefined && html`<noscript><meta http-equiv="refresh" content="${parts.refreshSeconds}"></noscript>`}
<meta name="referrer" content="no-referrer">
<title>${parts.title} – ${seller(branding)}</title>
<style>${constantHtml(STYLE)}</style>
</head>
<body>
<header>${branding.logoUrl && html`<img src="${branding.logoUrl}" alt="">`}<span>${seller(branding)}</span></header>
<main id="main"${parts.refreshSeconds !== undefined && html` data-poll="${parts.refreshSeconds}"`}>
<h1>${parts.title}</h1>
${parts.content}
</main>
${footer(ctx, parts.status >= 400)}
<script>${constantHtml(SCRIPT)}</script>
</body>
</html>
`;
  return {
    statusCode: parts.status,
    headers: { ...BASE_HEADERS, 'content-type': 'text/html; charset=utf-8', ...parts.headers },
    ...(parts.cookies && { cookies: parts.cookies }),
    body: body.toString(),
  };
}

const form = (action: 'show' | 'roll', csrf: string, label: string, secondary = false): SafeHtml =>
  html`<form method="post" action="${action}"><input type="hidden" name="csrf" value="${csrf}"><button type="submit" class="button${secondary ? ' secondary' : ''}">${label}</button></form>`;

/** *creating*: provisioning (or a new key) under way. Refreshes itself every few seconds without JavaScript. */
export const creatingPage = (ctx: PageContext, cookies?: string[]): PageResponse =>
  page(ctx, {
    status: 200,
    title: 'Your API key is being created',
    refreshSeconds: 3,
    cookies,
    content: html`<p>This usually takes a few seconds. This page refreshes by itself; you do not need to do anything.</p>
<p>Keep this page open: the key will be shown here once, when it is ready.</p>
<p><a href="./">Check again now</a></p>`,
  });

/** *ready*: a key that has never been shown, behind a "Show my key" button (a POST with its CSRF token). */
export const readyPage = (ctx: PageContext, csrf: string): PageResponse =>
  page(ctx, {
    status: 200,
    title: 'Your API key is ready',
    content: html`<p>Your key will be shown <strong>once</strong>. Be ready to copy it and keep it somewhere safe, such as a password manager or your application's secret store.</p>
${form('show', csrf, 'Show my key')}`,
  });

/** *shown*: the value, once, with a copy button and how to call the API. The value appears in this answer only. */
export function shownPage(ctx: PageContext, value: string): PageResponse {
  const base = ctx.branding.apiBaseUrl ?? 'https://<the API base URL>';
  return page(ctx, {
    status: 200,
    title: 'Your API key',
    content: html`<p class="warning">Copy your key now. It will not be shown again.</p>
<label for="api-key">API key</label>
<input id="api-key" class="key" type="text" readonly value="${value}" autocomplete="off" autocapitalize="off" spellcheck="false">
<button type="button" id="copy" class="button" hidden>Copy key</button>
<p id="copy-status" role="status" aria-live="polite"></p>
<h2>How to use it</h2>
<p>Send the key in the <code>x-api-key</code> header of every request to ${seller(ctx.branding) === 'API key' ? 'the API' : `${seller(ctx.branding)}'s API`}. For example, with curl:</p>
<pre><code>export API_KEY='paste your key here'
curl -H "x-api-key: $API_KEY" ${base}</code></pre>
<p>If you lose this key, come back here through AWS Marketplace and get a new one.</p>`,
  });
}

/** *already shown*: the key was shown once; a new key can be asked for (the old one keeps working for a grace period). */
export const alreadyShownPage = (ctx: PageContext, csrf: string): PageResponse =>
  page(ctx, {
    status: 200,
    title: 'Your API key has already been shown',
    content: html`<p>For your security, a key is shown only once. If you did not keep it, get a new key.</p>
<p>Your current key keeps working for a grace period after the new one is made, so you can switch over without interruption.</p>
${form('roll', csrf, 'Get a new key', true)}`,
  });

/** *subscription ended*: the key is disabled. */
export const endedPage = (ctx: PageContext): PageResponse =>
  page(ctx, {
    status: 200,
    title: 'Your subscription has ended',
    content: html`<p>Your API key no longer works because your subscription has ended.</p>
<p>To use the API again, subscribe again in <a href="${ctx.marketplaceUrl}">AWS Marketplace</a>.</p>`,
  });

/** *subscription failed*: AWS Marketplace could not complete the subscription. */
export const failedPage = (ctx: PageContext): PageResponse =>
  page(ctx, {
    status: 200,
    title: 'Your subscription could not be completed',
    content: html`<p>AWS Marketplace told us that your subscription did not go through, so no key was made for it.</p>
<p>Check your subscription in <a href="${ctx.marketplaceUrl}">AWS Marketplace</a>, then choose “Set up your account” again.</p>`,
  });

const SET_UP_AGAIN = (ctx: PageContext): SafeHtml =>
  html`<p>Go back to <a href="${ctx.marketplaceUrl}">AWS Marketplace</a>, open your subscription to this product and choose “Set up your account” again. It brings you back here with a fresh link.</p>`;

/**
 * *link expired*: no session, an expired one, an expired or already used reference (410), a malformed or forged one
 * (400), or a form without a valid session (403). The buyer starts again from AWS Marketplace.
 */
export function linkExpiredPage(ctx: PageContext, status: 400 | 403 | 410, cookies?: string[]): PageResponse {
  return page(ctx, {
    status,
    title: status === 400 ? 'This link is not valid' : 'This link has expired',
    cookies,
    content: html`<p>${status === 400 ? 'The link that brought you here is not one we can use.' : 'For your security, links to this page work once, for a short time, in the browser that opened them.'}</p>
${SET_UP_AGAIN(ctx)}`,
  });
}

/** 404 / 405: not a page of this site. */
export function notFoundPage(ctx: PageContext, allow?: string): PageResponse {
  return page(ctx, {
    status: allow ? 405 : 404,
    title: 'Page not found',
    headers: allow ? { allow } : {},
    content: html`<p>There is nothing here.</p>${SET_UP_AGAIN(ctx)}`,
  });
}

/** 503: AWS kept failing within the request's budget; trying again may work. */
export const tryAgainPage = (ctx: PageContext): PageResponse =>
  page(ctx, {
    status: 503,
    title: 'Sorry, please try again in a minute',
    headers: { 'retry-after': '30' },
    content: html`<p>We could not load your key just now. Nothing is lost: wait a minute, then reload this page.</p>`,
  });

/** 500: a problem on the seller's side; the reference id (the Lambda request id) is what support needs. */
export const errorPage = (ctx: PageContext): PageResponse =>
  page(ctx, {
    status: 500,
    title: 'Sorry, there is a problem with this page',
    content: html`<p>A problem on our side keeps us from showing your key right now; we have been alerted. Your subscription is not affected.</p>
<p>Please try again later. If this persists, contact us and quote the reference below.</p>`,
  });

/** 303 See Other to the page itself (relative: the page may be served under a path, as locally). */
export const seeThePage = (cookies?: string[]): PageResponse => ({
  statusCode: 303,
  headers: { ...BASE_HEADERS, location: './', 'content-type': 'text/plain; charset=utf-8' },
  ...(cookies && { cookies }),
  body: '',
});
