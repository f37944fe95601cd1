import { createServer, type IncomingMessage, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A token bucket: `rate` tokens a second, holding at most `burst`. */
class TokenBucket {
  #tokens: number;
  #last = performance.now();
  constructor(
    readonly rate: number,
    readonly burst: number,
  ) {
    this.#tokens = burst;
  }
  #refill(): void {
    const now = performance.now();
    this.#tokens = Math.min(this.burst, this.#tokens + ((now - this.#last) / 1000) * this.rate);
    this.#last = now;
  }
  /** Takes a token if there is one. */
  take(): boolean {
    this.#refill();
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }
  /** Seconds until the next token. */
  secondsToNext(): number {
    this.#refill();
    return Math.max(0, (1 - this.#tokens) / this.rate);
  }
}

/** API Gateway's control-plane quotas per account (aws-facts.md): CreateApiKey 5/s; all other calls 10/s, burst 40. */
export const API_GATEWAY_QUOTAS = { createApiKeyPerSecond: 5, createApiKeyBurst: 5, totalPerSecond: 10, totalBurst: 40 };

export interface ProxyStats {
  /** Requests by operation (`X-Amz-Target` for JSON protocols, `METHOD /path-shape` for API Gateway). */
  requests: Record<string, number>;
  /** 429s answered by the proxy, by operation. */
  throttled: Record<string, number>;
  /** Successful CreateApiKey responses, by second since `reset()`. */
  createdPerSecond: number[];
}

export interface ThrottlingProxy {
  endpoint: string;
  /** Zeroes the statistics and refills the buckets. */
  reset(): void;
  stats(): ProxyStats;
  close(): Promise<void>;
}

/** API Gateway REST calls carry no X-Amz-Target: name them by method and path, ids replaced. */
function operationOf(req: IncomingMessage): { name: string; apiGateway: boolean } {
  const target = req.headers['x-amz-target'];
  if (typeof target === 'string') return { name: target, apiGateway: false };
  const path = (req.url ?? '/').split('?')[0] ?? '/';
  if (req.method === 'POST' && path === '/apikeys') return { name: 'CreateApiKey', apiGateway: true };
  if (req.method === 'GET' && path === '/apikeys') return { name: 'GetApiKeys', apiGateway: true };
  if (req.method === 'POST' && /^\/usageplans\/[^/]+\/keys$/.test(path)) return { name: 'CreateUsagePlanKey', apiGateway: true };
  const apiGateway = /^\/(apikeys|usageplans|restapis|tags)/.test(path);
  return { name: `${req.method} ${path.replace(/\/[a-z0-9]{6,}(?=\/|$)/g, '/{id}')}`, apiGateway };
}

/**
 * An HTTP proxy in front of moto that throttles API Gateway's control plane like the real one: a token bucket for
 * CreateApiKey and one for all other API Gateway calls, each `factor` times the real quota; a request without a
 * token gets HTTP 429 `TooManyRequestsException` with the service's JSON error shape and a `Retry-After` header.
 * Other services pass through, counted.
 */
export async function startThrottlingProxy(target: string, factor: number): Promise<ThrottlingProxy> {
  const upstream = new URL(target);
  const q = API_GATEWAY_QUOTAS;
  let create = new TokenBucket(q.createApiKeyPerSecond * factor, q.createApiKeyBurst * factor);
  let total = new TokenBucket(q.totalPerSecond * factor, q.totalBurst * factor);
  let stats: ProxyStats = { requests: {}, throttled: {}, createdPerSecond: [] };
  let started = performance.now();
  const count = (table: Record<string, number>, name: string) => {
    table[name] = (table[name] ?? 0) + 1;
  };

  const server: Server = createServer((req, res) => {
    const { name, apiGateway } = operationOf(req);
    count(stats.requests, name);
    if (apiGateway) {
      const bucket = name === 'CreateApiKey' ? create : total;
      if (!bucket.take()) {
        count(stats.throttled, name);
        req.resume();
        res
          .writeHead(429, {
            'content-type': 'application/json',
            'x-amzn-ErrorType': 'TooManyRequestsException',
            'retry-after': String(Math.max(1, Math.ceil(bucket.secondsToNext()))),
          })
          .end(JSON.stringify({ message: 'Too Many Requests' }));
        return;
      }
    }
    const forward = request(
      { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers },
      (upstreamRes) => {
        if (name === 'CreateApiKey' && (upstreamRes.statusCode ?? 500) < 300) {
          const second = Math.floor((performance.now() - started) / 1000);
          stats.createdPerSecond[second] = (stats.createdPerSecond[second] ?? 0) + 1;
        }
        res.writeHead(upstreamRes.statusCode ?? 502, upstreamRes.headers);
        upstreamRes.pipe(res);
      },
    );
    forward.on('error', (error) => res.writeHead(502).end(error.message));
    req.pipe(forward);
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    reset() {
      create = new TokenBucket(q.createApiKeyPerSecond * factor, q.createApiKeyBurst * factor);
      total = new TokenBucket(q.totalPerSecond * factor, q.totalBurst * factor);
      stats = { requests: {}, throttled: {}, createdPerSecond: [] };
      started = performance.now();
    },
    stats: () => ({ ...stats, createdPerSecond: Array.from(stats.createdPerSecond, (n) => n ?? 0) }),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
