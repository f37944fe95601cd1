import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { APIGatewayProxyEventV2, Context } from 'aws-lambda';
import { html } from '../key-page/html.js';
import { BASE_HEADERS } from '../key-page/pages.js';
import { lambdaContext } from './lambda-context.js';

/*
 * The buyer journey on this machine (`npm start -- --serve`, and the browser tests): one HTTP server on 127.0.0.1
 * that plays three hosts. `/` stands in for AWS Marketplace (sample buyers, each with a "Set up your account" button
 * that posts a registration token, as Marketplace posts it to the fulfillment URL); `/fulfillment` is the registration
 * hook's function URL; `/key/` is the key page's function URL. Each request becomes the function URL event Lambda
 * would send (payload 2.0), each answer the HTTP response Lambda would make of it.
 */

/** A buyer of the Marketplace stand-in: the token its button posts, and what ResolveCustomer answers for it. */
export interface SampleBuyer {
  label: string;
  token: string;
  customerAWSAccountId: string;
  productCode: string;
  licenseArn?: string;
  customerIdentifier?: string;
}

/** A function URL's handler: the event in, the structured answer out (`cookies` become Set-Cookie). */
export type UrlHandler = (
  event: APIGatewayProxyEventV2,
  context: Context,
) => Promise<{ statusCode: number; headers?: Record<string, string>; cookies?: string[]; body?: string }>;

export interface JourneyHandlers {
  /** functions/register.ts: its REGISTRATION_PAGE_URL must be `<url>/key/`. */
  register: UrlHandler;
  /** functions/key-page.ts. */
  keyPage: UrlHandler;
}

export interface JourneyServer {
  /** `http://127.0.0.1:PORT` */
  url: string;
  close(): Promise<void>;
}

const MAX_BODY_BYTES = 64 * 1024;

async function bodyOf(req: IncomingMessage): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new Error('request body too large');
    chunks.push(chunk as Buffer);
  }
  return chunks.length ? Buffer.concat(chunks) : undefined;
}

/** The function URL event (payload 2.0) Lambda builds for this request, with the path under the function's prefix. */
export function functionUrlEvent(req: IncomingMessage, path: string, query: string, body: Buffer | undefined): APIGatewayProxyEventV2 {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) if (name !== 'cookie' && value !== undefined) headers[name] = String(value);
  const cookies = (req.headers.cookie ?? '')
    .split(';')
    .map((c) => c.trim())
    .filter(Boolean);
  const method = req.method ?? 'GET';
  return {
    version: '2.0',
    routeKey: '$default',
    rawPath: path,
    rawQueryString: query,
    ...(cookies.length > 0 && { cookies }),
    headers,
    requestContext: {
      accountId: 'anonymous',
      apiId: 'local',
      domainName: headers.host ?? '127.0.0.1',
      domainPrefix: 'local',
      http: {
        method,
        path,
        protocol: 'HTTP/1.1',
        sourceIp: req.socket.remoteAddress ?? '127.0.0.1',
        userAgent: headers['user-agent'] ?? '',
      },
      requestId: randomUUID(),
      routeKey: '$default',
      stage: '$default',
      time: new Date().toUTCString(),
      timeEpoch: Date.now(),
    },
    ...(body && { body: body.toString('base64'), isBase64Encoded: true }),
  } as APIGatewayProxyEventV2;
}

/** The Marketplace stand-in: one "Set up your account" form per sample buyer, posting its token to the fulfillment URL. */
export function marketplacePage(buyers: SampleBuyer[]): string {
  return html`<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>AWS Marketplace (local stand-in)</title></head>
<body>
<main>
<h1>AWS Marketplace (local stand-in)</h1>
<p>Each sample buyer below has subscribed to the product. “Set up your account” posts their registration token to the fulfillment URL, as AWS Marketplace does; the local ResolveCustomer answers it.</p>
<ul>
${buyers.map(
  (buyer) => html`<li><form method="post" action="/fulfillment">
<h2>${buyer.label}</h2>
<p>Customer ${buyer.customerIdentifier ?? buyer.customerAWSAccountId}, product ${buyer.productCode}</p>
<input type="hidden" name="x-amzn-marketplace-token" value="${buyer.token}">
<button type="submit" aria-label="Set up your account: ${buyer.label}">Set up your account</button>
</form></li>`,
)}
</ul>
</main>
</body>
</html>
`.toString();
}

/**
 * Starts the journey's server on 127.0.0.1 (`port` 0: any free port). `handlers` is called once with the server's URL,
 * before the first request is answered: the hook's configuration needs the key page's URL.
 */
export async function startJourneyServer(options: {
  port: number;
  buyers: SampleBuyer[];
  handlers: (url: string) => Promise<JourneyHandlers>;
}): Promise<JourneyServer> {
  let ready: Promise<JourneyHandlers> | undefined;
  const server: Server = createServer(async (req, res) => {
    const send = (status: number, headers: Record<string, string>, body: string, cookies: string[] = []) => {
      if (res.headersSent) return;
      res.writeHead(status, { ...headers, ...(cookies.length > 0 && { 'set-cookie': cookies }) }).end(body);
    };
    try {
      const handlers = await ready;
      if (!handlers) throw new Error('the journey server is not ready');
      const url = new URL(req.url ?? '/', 'http://127.0.0.1');
      const query = url.search.slice(1);
      let handler: UrlHandler | undefined;
      let path = url.pathname;
      if (path === '/' && (req.method === 'GET' || req.method === 'HEAD')) {
        send(200, { ...BASE_HEADERS, 'content-type': 'text/html; charset=utf-8' }, marketplacePage(options.buyers));
        return;
      }
      if (path === '/fulfillment') {
        handler = handlers.register;
        path = '/';
      } else if (path === '/key' || path.startsWith('/key/')) {
        handler = handlers.keyPage;
        path = path === '/key' ? '/' : path.slice('/key'.length);
      }
      if (!handler) {
        send(404, { 'content-type': 'text/plain; charset=utf-8' }, 'Not found\n');
        return;
      }
      const event = functionUrlEvent(req, path, query, await bodyOf(req));
      const answer = await handler(event, lambdaContext(10_000, 'local'));
      send(answer.statusCode, answer.headers ?? {}, req.method === 'HEAD' ? '' : (answer.body ?? ''), answer.cookies);
    } catch (error) {
      // What Lambda answers for a function that threw: a 502 without details.
      console.error(`journey server: ${error instanceof Error ? error.message : String(error)}`);
      send(502, { 'content-type': 'text/plain; charset=utf-8' }, 'Internal Server Error\n');
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, '127.0.0.1', resolve);
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  ready = options.handlers(url);
  await ready;
  return {
    url,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
