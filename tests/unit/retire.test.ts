/**
 * The maintenance sweep's pure parts: what is due (lib/maintenance/retire.ts), the retirement's steps against an
 * in-memory record store and a recording API Gateway, the index's membership (lib/aws/dynamodb.ts dueSince), and the
 * adapter's DeleteApiKey and key count (aws-sdk-client-mock: moto answers GetApiKeys in one page).
 */
import {
  APIGatewayClient,
  type ApiKey,
  CreateApiKeyCommand,
  DeleteApiKeyCommand,
  GetApiKeysCommand,
  LimitExceededException,
  NotFoundException,
  TooManyRequestsException,
} from '@aws-sdk/client-api-gateway';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-jest';
import { apiGatewayAdapter } from '../../lib/aws/api-gateway.js';
import { dueSince } from '../../lib/aws/dynamodb.js';
import type { KeyRecord } from '../../lib/customer-key/key-record.js';
import type { RecordStore, Versioned } from '../../lib/customer-key/record-store.js';
import { EnvironmentError, LimitExceededError, ThrottledError } from '../../lib/errors.js';
import { loadSweepConfig } from '../../lib/maintenance/config.js';
import { dueBefore, isDue, type RetireDeps, retireKey } from '../../lib/maintenance/retire.js';
import { type DueIndex, sweep } from '../../lib/maintenance/sweep.js';

const DAY = 86_400_000;
const REVOKED_AT = '2026-11-01T00:00:00.000Z';
const revoked = (extra: Partial<KeyRecord> = {}): KeyRecord => ({
  customerId: 'acme',
  productCode: 'prod',
  plan: null,
  apiKeyName: 'keyprov/test/prod/acme',
  createdAt: '2026-10-01T00:00:00.000Z',
  apiKeyId: 'k1',
  status: 'revoked',
  revokedAt: REVOKED_AT,
  ...extra,
});

/** The records in memory, written only on the version read, as DynamoDB's conditional PutItem. */
function memoryStore(initial: Record<string, KeyRecord>): RecordStore & { items: Map<string, Versioned> } {
  const items = new Map(Object.entries(initial).map(([key, record]) => [key, { record, version: 1 }]));
  return {
    items,
    async get(key) {
      return structuredClone(items.get(key));
    },
    async put(key, record, expected) {
      if ((items.get(key)?.version ?? undefined) !== expected) return false;
      items.set(key, { record: structuredClone(JSON.parse(JSON.stringify(record))), version: (expected ?? 0) + 1 });
      return true;
    },
  };
}

function depsFor(records: RecordStore, calls: string[], keys = new Set(['k1'])): RetireDeps {
  return {
    config: { usagePlans: { prod: 'plan1' }, retireAfterDays: 30 },
    apiKeys: {
      async removeFromUsagePlan(plan, id) {
        calls.push(`DeleteUsagePlanKey ${plan} ${id}`);
      },
      async deleteApiKey(id) {
        calls.push(`DeleteApiKey ${id}`);
        keys.delete(id);
      },
      async getApiKey(id) {
        calls.push(`GetApiKey ${id}`);
        return keys.has(id) ? { id, name: 'n', enabled: false, tags: {} } : undefined;
      },
    },
    records,
    retry: { apiGateway: (_op, call) => call(), records: (_op, call) => call() },
    now: () => new Date('2026-12-06T00:00:00.000Z'),
  };
}

const at = (days: number) => new Date(Date.parse(REVOKED_AT) + days * DAY);

describe('what is due', () => {
  test('revoked or failed, with a key, revoked at or before as-of − RETIRE_AFTER_DAYS', () => {
    const until = dueBefore(at(30), 30) ?? '';
    expect(until).toBe(REVOKED_AT);
    expect(isDue(revoked(), until)).toBe(true);
    expect(isDue(revoked({ status: 'failed' }), until)).toBe(true);
    expect(isDue(revoked({ revokedAt: '2026-11-01T00:00:00.001Z' }), until)).toBe(false);
    expect(isDue(revoked({ status: 'active' }), until)).toBe(false);
    expect(isDue(revoked({ apiKeyId: undefined }), until)).toBe(false);
  });

  test('RETIRE_AFTER_DAYS=0 retires nothing, ever', () => {
    expect(dueBefore(at(10_000), 0)).toBeUndefined();
  });

  test('the index: a revoked key by when it was revoked; a retirement under way before any as-of; a retired record not at all', () => {
    expect(dueSince(revoked())).toEqual({ partition: 'revoked', at: REVOKED_AT });
    expect(dueSince(revoked({ status: 'active' }))).toBeUndefined();
    expect(dueSince(revoked({ apiKeyId: undefined, retiredKeyId: 'k1' }))).toEqual({
      partition: 'revoked',
      at: '1970-01-01T00:00:00.000Z',
    });
    // Old keys of a roll first, at the earliest end, whatever else the record is due for: one partition at a time.
    const ending = [
      { apiKeyId: 'old2', endsAt: '2026-12-08T00:00:00.000Z' },
      { apiKeyId: 'old1', endsAt: '2026-12-07T00:00:00.000Z' },
    ];
    expect(dueSince(revoked({ endingKeys: ending }))).toEqual({ partition: 'overlap', at: '2026-12-07T00:00:00.000Z' });
    expect(dueSince(revoked({ status: 'active', endingKeys: ending }))).toEqual({ partition: 'overlap', at: '2026-12-07T00:00:00.000Z' });
    expect(dueSince(revoked({ apiKeyId: undefined, retiredKeyId: 'k1', retiredAt: '2026-12-06T00:00:00.000Z' }))).toBeUndefined();
    // A re-subscription after the retirement finished: active, the old key kept as history, out of the index.
    expect(
      dueSince(revoked({ status: 'active', apiKeyId: 'k2', retiredKeyId: 'k1', retiredAt: '2026-12-06T00:00:00.000Z' })),
    ).toBeUndefined();
  });
});

describe('retireKey', () => {
  test('due: claimed, out of the plan, deleted, then marked retired (in that order)', async () => {
    const records = memoryStore({ 'prod/acme': revoked() });
    const calls: string[] = [];
    await expect(retireKey('prod/acme', at(31), depsFor(records, calls))).resolves.toBe('retired');
    expect(calls).toEqual(['DeleteUsagePlanKey plan1 k1', 'DeleteApiKey k1']);
    expect(records.items.get('prod/acme')).toEqual({
      record: { ...revoked({ apiKeyId: undefined }), retiredKeyId: 'k1', retiredAt: '2026-12-06T00:00:00.000Z' },
      version: 3,
    });
  });

  test('not due yet, or already retired, or no record: nothing is called or written', async () => {
    const records = memoryStore({
      'prod/acme': revoked(),
      'prod/done': revoked({ apiKeyId: undefined, retiredKeyId: 'k0', retiredAt: REVOKED_AT }),
    });
    const calls: string[] = [];
    await expect(retireKey('prod/acme', at(29), depsFor(records, calls))).resolves.toBe('not-due');
    await expect(retireKey('prod/done', at(300), depsFor(records, calls))).resolves.toBe('not-due');
    await expect(retireKey('prod/none', at(300), depsFor(records, calls))).resolves.toBe('not-due');
    expect(calls).toEqual([]);
    expect(records.items.get('prod/acme')?.version).toBe(1);
  });

  test('a record written between the read and the claim (a re-subscription): nothing deleted', async () => {
    const records = memoryStore({ 'prod/acme': revoked() });
    const calls: string[] = [];
    const racing: RecordStore = {
      get: records.get,
      async put(key, record, expected) {
        // Someone re-subscribes first: the record is active again, one version on.
        await records.put(key, { ...revoked(), status: 'active', revokedAt: undefined }, 1);
        return records.put(key, record, expected);
      },
    };
    await expect(retireKey('prod/acme', at(31), depsFor(racing, calls))).resolves.toBe('changed');
    expect(calls).toEqual([]);
    expect(records.items.get('prod/acme')?.record).toMatchObject({ status: 'active', apiKeyId: 'k1' });
  });

  test('a retirement left under way: finished whatever RETIRE_AFTER_DAYS says; a key already gone is not deleted again', async () => {
    const records = memoryStore({ 'prod/acme': revoked({ apiKeyId: undefined, retiredKeyId: 'k1' }) });
    const calls: string[] = [];
    await expect(retireKey('prod/acme', at(1), depsFor(records, calls, new Set()))).resolves.toBe('finished');
    expect(calls).toEqual(['DeleteUsagePlanKey plan1 k1', 'GetApiKey k1']);
    expect(records.items.get('prod/acme')?.record).toMatchObject({ retiredKeyId: 'k1', retiredAt: '2026-12-06T00:00:00.000Z' });
  });

  test('never deletes the key a record holds as its own', async () => {
    const records = memoryStore({ 'prod/acme': revoked({ status: 'active', apiKeyId: 'k1', retiredKeyId: 'k1' }) });
    const calls: string[] = [];
    await expect(retireKey('prod/acme', at(31), depsFor(records, calls))).resolves.toBe('changed');
    expect(calls).toEqual([]);
  });
});

describe('sweep', () => {
  test('pages through the index to its end, goes on after a failure, and reports it without a stack', async () => {
    const records = memoryStore({
      'prod/a': revoked({ apiKeyId: 'ka' }),
      'prod/b': revoked({ apiKeyId: 'kb' }),
      'prod/c': revoked({ apiKeyId: 'kc' }),
    });
    const calls: string[] = [];
    const base = depsFor(records, calls, new Set(['ka', 'kb', 'kc']));
    const pages: Record<string, { keys: string[]; next?: unknown }> = {
      first: { keys: ['prod/a', 'prod/b'], next: 'p2' },
      p2: { keys: ['prod/c'] },
    };
    // The overlap partition lists nothing here; the revoked one takes two pages.
    const dueIndex: DueIndex = {
      page: async (_until, start, _limit, partition) =>
        partition === 'overlap' ? { keys: [] } : (pages[String(start ?? 'first')] ?? { keys: [] }),
    };
    const report = await sweep(
      {
        ...base,
        config: { ...base.config, apiKeyQuota: 10_000 },
        dueIndex,
        apiKeys: {
          ...base.apiKeys,
          async deleteApiKey(id) {
            if (id === 'kb') throw new ThrottledError('DeleteApiKey failed with TooManyRequestsException (HTTP 429)', 1000);
            return base.apiKeys.deleteApiKey(id);
          },
          countApiKeys: async () => 8_123,
        },
      },
      { asOf: at(31) },
    );
    expect(report.pages).toBe(3);
    expect(report.outcomes).toEqual({ 'prod/a': 'retired', 'prod/c': 'retired' });
    expect(report.failures).toEqual([
      { key: 'prod/b', error: 'ThrottledError: DeleteApiKey failed with TooManyRequestsException (HTTP 429)' },
    ]);
    expect(report.capacity).toEqual({ apiKeys: 8_123, quota: 10_000 });
    // prod/b stays claimed and in the index: the next run finishes it.
    expect(records.items.get('prod/b')?.record).toMatchObject({ retiredKeyId: 'kb' });
    expect(records.items.get('prod/b')?.record.retiredAt).toBeUndefined();
  });
});

describe('the adapter: DeleteApiKey and the key count', () => {
  const apigw = mockClient(APIGatewayClient);
  const adapter = apiGatewayAdapter(new APIGatewayClient({ region: 'us-east-1' }));
  beforeEach(() => apigw.reset());

  test('DeleteApiKey of a key that is gone (404) is success; a throttle is a ThrottledError', async () => {
    apigw
      .on(DeleteApiKeyCommand, { apiKey: 'gone' })
      .rejects(new NotFoundException({ message: 'Invalid API Key identifier specified', $metadata: {} }));
    apigw
      .on(DeleteApiKeyCommand, { apiKey: 'busy' })
      .rejects(new TooManyRequestsException({ message: 'Too Many Requests', $metadata: { httpStatusCode: 429 } }));
    await expect(adapter.deleteApiKey('gone')).resolves.toBeUndefined();
    await expect(adapter.deleteApiKey('busy')).rejects.toBeInstanceOf(ThrottledError);
    expect(apigw).toHaveReceivedCommandWith(DeleteApiKeyCommand, { apiKey: 'gone' });
  });

  test('CreateApiKey answered 429 LimitExceededException: a LimitExceededError (a throttle the caller may count keys for); 400: an environment error', async () => {
    apigw
      .on(CreateApiKeyCommand, { name: 'full' })
      .rejects(new LimitExceededException({ message: 'API key limit exceeded', $metadata: { httpStatusCode: 429 } }));
    apigw
      .on(CreateApiKeyCommand, { name: 'quota' })
      .rejects(new LimitExceededException({ message: 'quota', $metadata: { httpStatusCode: 400 } }));
    const key = { value: 'v'.repeat(40), description: 'd', customerId: 'c', tags: {} };
    await expect(adapter.createApiKey({ ...key, name: 'full' })).rejects.toBeInstanceOf(LimitExceededError);
    await expect(adapter.createApiKey({ ...key, name: 'quota' })).rejects.toBeInstanceOf(EnvironmentError);
  });

  test('the count pages through every key of the Region, 500 a page, without values, one runner call per page', async () => {
    const items = (n: number, from: number): ApiKey[] =>
      Array.from({ length: n }, (_, i) => ({ id: `k${from + i}`, name: `n${from + i}` }));
    apigw
      .on(GetApiKeysCommand, { position: undefined })
      .resolves({ items: items(500, 0), position: 'p1' })
      .on(GetApiKeysCommand, { position: 'p1' })
      .resolves({ items: items(500, 500), position: 'p2' })
      .on(GetApiKeysCommand, { position: 'p2' })
      .resolves({ items: items(7, 1000) });
    const ran: string[] = [];
    const runner = <T>(operation: string, call: () => Promise<T>) => {
      ran.push(operation);
      return call();
    };
    await expect(adapter.countApiKeys(runner)).resolves.toBe(1007);
    expect(ran).toEqual(['GetApiKeys', 'GetApiKeys', 'GetApiKeys']);
    for (const call of apigw.commandCalls(GetApiKeysCommand)) {
      expect(call.args[0].input).toMatchObject({ includeValues: false, limit: 500 });
      expect(call.args[0].input.nameQuery).toBeUndefined();
    }
  });
});

describe('the sweep’s configuration', () => {
  const env = { KEY_RECORDS_TABLE: 'api-key-provisioner-test-key-records' };
  test('defaults: 30 days, a quota of 10,000, 1 API Gateway call a second', () => {
    expect(loadSweepConfig(env)).toMatchObject({ retireAfterDays: 30, apiKeyQuota: 10_000, apiGatewayRatePerSecond: 1, usagePlans: {} });
  });
  test('a bad value is named', () => {
    expect(() => loadSweepConfig({ ...env, RETIRE_AFTER_DAYS: '-1' })).toThrow(/RETIRE_AFTER_DAYS/);
    expect(() => loadSweepConfig({ ...env, API_KEY_QUOTA: 'many' })).toThrow(/API_KEY_QUOTA/);
    expect(() => loadSweepConfig({})).toThrow(/KEY_RECORDS_TABLE is required/);
  });
});
