import { createServer, type IncomingMessage, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A fault to inject: requests matching it are answered with an AWS-style JSON error (or held) instead of being forwarded. */
export interface FaultRule {
  method?: string;
  /** Matched against the URL path (REST APIs such as API Gateway: `/apikeys`). */
  path?: string | RegExp;
  /** Matched against the request body (e.g. a customerId). */
  bodyIncludes?: string;
  /** Matched against the `X-Amz-Target` header of JSON protocols, e.g. `secretsmanager.PutSecretValue`. */
  target?: string;
  status: number;
  errorType: string;
  /** Never answer a matching request (as if the caller died waiting); `onMatch` says when one arrived. */
  hold?: boolean;
  onMatch?: () => void;
  retryAfterSeconds?: number;
  /** How many matching requests fail; Infinity for all. */
  times: number;
}

export interface FaultProxy {
  endpoint: string;
  /** Requests seen: the `X-Amz-Target` of JSON protocols (`secretsmanager.CreateSecret`), else `METHOD path`. */
  seen: string[];
  inject(rule: FaultRule): void;
  /** Removes every rule: from now on everything is forwarded. */
  clear(): void;
  /** How many requests each rule failed so far, in order of injection. */
  injected(): number[];
  close(): Promise<void>;
}

const readBody = (req: IncomingMessage) =>
  new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });

/**
 * An HTTP proxy on loopback in front of the local AWS endpoint: it forwards every request unchanged, except those
 * matching an injected {@link FaultRule}, which get the service's error shape (`x-amzn-ErrorType` + JSON body).
 */
export async function startFaultProxy(target: string): Promise<FaultProxy> {
  const upstream = new URL(target);
  const rules: Array<FaultRule & { used: number }> = [];
  const seen: string[] = [];
  const server: Server = createServer(async (req, res) => {
    const body = await readBody(req);
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const target = req.headers['x-amz-target'];
    seen.push(typeof target === 'string' ? target : `${req.method} ${path}`);
    const rule = rules.find(
      (r) =>
        r.used < r.times &&
        (!r.method || r.method === req.method) &&
        (!r.path || (typeof r.path === 'string' ? r.path === path : r.path.test(path))) &&
        (!r.bodyIncludes || body.toString('utf8').includes(r.bodyIncludes)) &&
        (!r.target || req.headers['x-amz-target'] === r.target),
    );
    if (rule) {
      rule.used++;
      rule.onMatch?.();
      if (rule.hold) return;
      const headers: Record<string, string> = { 'content-type': 'application/json', 'x-amzn-ErrorType': rule.errorType };
      if (rule.retryAfterSeconds !== undefined) headers['retry-after'] = String(rule.retryAfterSeconds);
      res.writeHead(rule.status, headers).end(JSON.stringify({ message: `injected ${rule.errorType}`, __type: rule.errorType }));
      return;
    }
    const forward = request(
      { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers },
      (upstreamRes) => {
        res.writeHead(upstreamRes.statusCode ?? 502, upstreamRes.headers);
        upstreamRes.pipe(res);
      },
    );
    forward.on('error', (error) => res.writeHead(502).end(error.message));
    forward.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    seen,
    inject: (rule) => rules.push({ ...rule, used: 0 }),
    clear: () => rules.splice(0),
    injected: () => rules.map((r) => r.used),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
