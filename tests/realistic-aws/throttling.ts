import { API_GATEWAY_QUOTAS, type ThrottleSettings } from './settings.js';

/** A token bucket: `rate` tokens a second, holding at most `burst`; it starts full, as an idle account's would. */
export class TokenBucket {
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

  /** Whether a token is there (without taking it). */
  has(): boolean {
    this.#refill();
    return this.#tokens >= 1;
  }

  take(): void {
    this.#refill();
    this.#tokens -= 1;
  }

  /** Seconds until the next token. */
  secondsToNext(): number {
    this.#refill();
    return Math.max(0, (1 - this.#tokens) / this.rate);
  }
}

/** The operations with a quota of their own (the rest share "Total operations" only). */
const OWN_QUOTAS: Record<string, readonly [perSecond: number, burst: number]> = {
  CreateApiKey: [API_GATEWAY_QUOTAS.createApiKeyPerSecond, API_GATEWAY_QUOTAS.createApiKeyBurst],
  DeleteApiKey: [API_GATEWAY_QUOTAS.deleteApiKeyPerSecond, API_GATEWAY_QUOTAS.deleteApiKeyBurst],
};

/**
 * API Gateway's control-plane throttling for one account: a bucket per operation with a quota of its own and one
 * "Total operations" bucket, each scaled by `factor` and shrunk by the neighbour's share. A call needs a token from
 * every bucket it draws on, and takes them only if all have one (a throttled call costs nothing, as on AWS).
 */
export class ApiGatewayThrottle {
  #settings: ThrottleSettings | undefined;
  #buckets = new Map<string, TokenBucket>();

  /** Applies new settings; the buckets are rebuilt (full) only when the numbers change. */
  configure(settings: ThrottleSettings | undefined): void {
    if (JSON.stringify(settings) === JSON.stringify(this.#settings)) return;
    this.#settings = settings ? { ...settings } : undefined;
    this.reset();
  }

  /** Refills every bucket. */
  reset(): void {
    this.#buckets.clear();
  }

  #bucket(name: string, perSecond: number, burst: number): TokenBucket {
    let bucket = this.#buckets.get(name);
    if (!bucket) {
      const { factor = 1, neighbourShare = 0 } = this.#settings ?? {};
      const ours = factor * (1 - neighbourShare);
      bucket = new TokenBucket(perSecond * ours, burst * ours);
      this.#buckets.set(name, bucket);
    }
    return bucket;
  }

  /** Takes the tokens of one call; gives the Retry-After (whole seconds, at least 1) when the call is throttled. */
  take(operation: string): { retryAfterSeconds: number } | undefined {
    const settings = this.#settings;
    if (!settings) return undefined;
    const own = OWN_QUOTAS[operation];
    const buckets: TokenBucket[] = [];
    if (own) buckets.push(this.#bucket(operation, own[0], own[1]));
    if (!own || !settings.separateBuckets)
      buckets.push(this.#bucket('Total', API_GATEWAY_QUOTAS.totalPerSecond, API_GATEWAY_QUOTAS.totalBurst));
    const empty = buckets.filter((b) => !b.has());
    if (empty.length > 0) {
      return { retryAfterSeconds: Math.max(1, Math.ceil(Math.max(...empty.map((b) => b.secondsToNext())))) };
    }
    for (const bucket of buckets) bucket.take();
    return undefined;
  }
}
