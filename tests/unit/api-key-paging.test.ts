/**
 * Paging GetApiKeys in findApiKey / valueOf (issue 23, hazard 5): a position handed back again (or a cycle of them)
 * ends the paging instead of paging forever, and each page is a call of its own through the caller's runner — its
 * own rate-limiter slot, its own retries — not one slot for the whole listing. moto and the realistic layer answer
 * GetApiKeys in one page (they ignore `limit` / `position`), so the pages are mocked here.
 */
import { APIGatewayClient, type ApiKey, GetApiKeysCommand, TooManyRequestsException } from '@aws-sdk/client-api-gateway';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-jest';
import { apiGatewayAdapter } from '../../lib/aws/api-gateway.js';
import type { CallRunner } from '../../lib/quota/call-path.js';
import { createRateLimiter } from '../../lib/quota/rate-limiter.js';
import { withRetry } from '../../lib/quota/retry.js';
import { fakeClock } from '../helpers/fake-clock.js';

const apigw = mockClient(APIGatewayClient);
const adapter = apiGatewayAdapter(new APIGatewayClient({ region: 'us-east-1' }));
const NAME = 'keyprov/test/_/acme';
const other = (i: number): ApiKey => ({ id: `other${i}`, name: `${NAME}-${i}`, value: `v${i}`, enabled: true });
const ours: ApiKey = { id: 'ours', name: NAME, value: 'the-value', enabled: true };

/** Pages by position (undefined: the first); more calls than `limit` fail the test instead of hanging it. */
function pages(byPosition: Record<string, { items: ApiKey[]; position?: string }>, limit = 20) {
  let calls = 0;
  apigw.on(GetApiKeysCommand).callsFake((input: { position?: string }) => {
    calls++;
    if (calls > limit) throw new Error(`GetApiKeys called ${calls} times: paging without end`);
    const page = byPosition[input.position ?? 'first'];
    if (!page) throw new Error(`no page at position ${input.position}`);
    return page;
  });
}

const positionsAsked = () => apigw.commandCalls(GetApiKeysCommand).map((call) => call.args[0].input.position);

beforeEach(() => apigw.reset());

describe('a position seen before ends the paging', () => {
  test('a service that hands back the position it was asked for: two pages, then not found', async () => {
    pages({ first: { items: [other(1)], position: 'p1' }, p1: { items: [other(2)], position: 'p1' } });
    await expect(adapter.findApiKey(NAME, 'the-value')).resolves.toBeUndefined();
    expect(positionsAsked()).toEqual([undefined, 'p1']);
  });

  test('a cycle of positions (p1 → p2 → p1) is paged once round', async () => {
    pages({
      first: { items: [other(1)], position: 'p1' },
      p1: { items: [other(2)], position: 'p2' },
      p2: { items: [other(3)], position: 'p1' },
    });
    await expect(adapter.valueOf(NAME, 'ours')).resolves.toBeUndefined();
    expect(positionsAsked()).toEqual([undefined, 'p1', 'p2']);
  });

  test('the key on a later page is still found', async () => {
    pages({ first: { items: [other(1)], position: 'p1' }, p1: { items: [other(2), ours], position: 'p2' } });
    await expect(adapter.findApiKey(NAME, 'the-value')).resolves.toBe('ours');
    await expect(adapter.valueOf(NAME, 'ours')).resolves.toBe('the-value');
  });
});

describe('each page is a call of its own through the runner', () => {
  test('three pages: the runner runs three GetApiKeys calls', async () => {
    pages({
      first: { items: [other(1)], position: 'p1' },
      p1: { items: [other(2)], position: 'p2' },
      p2: { items: [ours] },
    });
    const operations: string[] = [];
    const run: CallRunner = (operation, call) => {
      operations.push(operation);
      return call();
    };
    await expect(adapter.findApiKey(NAME, 'the-value', run)).resolves.toBe('ours');
    expect(operations).toEqual(['GetApiKeys', 'GetApiKeys', 'GetApiKeys']);
  });

  test('under withRetry and a rate limiter, each page takes its own slot, and a throttled page is retried alone', async () => {
    pages({ first: { items: [other(1)], position: 'p1' }, p1: { items: [ours] } });
    const throttled = new TooManyRequestsException({ message: 'Too Many Requests', $metadata: { httpStatusCode: 429 } });
    let throttle = true;
    apigw.on(GetApiKeysCommand, { position: 'p1' }).callsFake(() => {
      if (throttle) {
        throttle = false;
        throw throttled;
      }
      return { items: [ours] };
    });
    const clock = fakeClock();
    // Total operations at 2 × 1/s, one slot at a time: every call waits 500 ms for its slot after the first.
    const limiter = createRateLimiter({ sharePerSecond: 1, burst: 1, now: clock.now });
    const taken: number[] = [];
    const take = limiter.take.bind(limiter);
    limiter.take = (operation) => {
      const wait = take(operation);
      if (wait === 0) taken.push(clock.now());
      return wait;
    };
    const run: CallRunner = (operation, call) =>
      withRetry(operation, call, {
        policy: { maxAttempts: 3, baseDelayMs: 10, maxDelayMs: 1_000, safetyMarginMs: 0 },
        remainingTimeMs: () => 60_000,
        limiter,
        random: () => 0,
        sleep: async (ms) => clock.advance(ms),
      });
    await expect(adapter.findApiKey(NAME, 'the-value', run)).resolves.toBe('ours');
    // The first page, the second (throttled), the second again: three slots; the first page is not asked again.
    expect(positionsAsked()).toEqual([undefined, 'p1', 'p1']);
    expect(taken).toHaveLength(3);
  });
});
