/**
 * The call path (lib/quota/call-path.ts): the use cases call the adapters, and every method reaches AWS through the
 * runner put around it where the dependencies are built — with the operation its adapter's table names, a paged
 * method once per page — so that no call skips the retry policy, the rate limiter or the usage-plan write turns.
 */

import { Logger } from '@aws-lambda-powertools/logger';
import { APIGatewayClient, GetApiKeysCommand } from '@aws-sdk/client-api-gateway';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import { API_GATEWAY_CALLS, type ApiKeyStore, apiGatewayAdapter } from '../../lib/aws/api-gateway.js';
import { DUE_INDEX_CALLS, dynamoDbDueIndex, dynamoDbRecordStore, RECORD_CALLS } from '../../lib/aws/dynamodb.js';
import { SECRET_CALLS, type SecretStore, secretsManagerAdapter } from '../../lib/aws/secrets-manager.js';
import { loadConfig } from '../../lib/config.js';
import type { RecordStore } from '../../lib/customer-key/record-store.js';
import { TransientError } from '../../lib/errors.js';
import type { BatchDeps } from '../../lib/pipeline/deps.js';
import { createUseCaseDeps } from '../../lib/pipeline/process-record.js';
import { type CallRunner, throughRunner } from '../../lib/quota/call-path.js';
import type { RateLimiter } from '../../lib/quota/rate-limiter.js';
import type { Turn, WriteTurns } from '../../lib/quota/usage-plan-turns.js';
import { lambdaContext } from '../helpers/events.js';

/** A port whose every method records its name and answers it. */
function recordingPort<Port extends object>(names: readonly string[], called: string[]): Port {
  return Object.fromEntries(
    names.map((name) => [
      name,
      async (...args: unknown[]) => {
        called.push(`${name}(${args.filter((arg) => typeof arg !== 'function').join(',')})`);
        // A paged method is handed the runner last: make one call of each page through it.
        const run = args.at(-1);
        if (typeof run === 'function') {
          await (run as CallRunner)('GetApiKeys', async () => 'page 1');
          await (run as CallRunner)('GetApiKeys', async () => 'page 2');
        }
        return name;
      },
    ]),
  ) as Port;
}

/** A runner that makes each call once and notes its operation. */
function recordingRunner(): { ran: string[]; run: CallRunner } {
  const ran: string[] = [];
  return {
    ran,
    run: (operation, call) => {
      ran.push(operation);
      return call();
    },
  };
}

describe('throughRunner', () => {
  test('each method goes through the runner under its table operation, with its arguments and its answer', async () => {
    const called: string[] = [];
    const { ran, run } = recordingRunner();
    const port = recordingPort<RecordStore>(['get', 'put'], called);
    const routed = throughRunner(port, RECORD_CALLS, run);
    await expect(routed.get('k')).resolves.toBe('get');
    await expect(routed.put('k', {} as never, 3)).resolves.toBe('put');
    expect(ran).toEqual(['GetItem', 'PutItem']);
    expect(called).toEqual(['get(k)', 'put(k,[object Object],3)']);
  });

  test('a paged method is given the runner: each page is a call of its own, the method itself is not wrapped', async () => {
    const called: string[] = [];
    const { ran, run } = recordingRunner();
    const routed = throughRunner(recordingPort<ApiKeyStore>(Object.keys(API_GATEWAY_CALLS), called), API_GATEWAY_CALLS, run);
    await routed.findApiKey('name', 'value');
    await routed.valueOf('name', 'id');
    await routed.countApiKeys();
    expect(ran).toEqual(Array(6).fill('GetApiKeys'));
    expect(called).toEqual(['findApiKey(name,value)', 'valueOf(name,id)', 'countApiKeys()']);
  });

  test('a retried call is the method called again, and an error the runner gives up on reaches the caller', async () => {
    let attempts = 0;
    const flaky = {
      get: async () => {
        attempts++;
        if (attempts < 3) throw new TransientError('503');
        return undefined;
      },
      put: async () => {
        throw new TransientError('still 503');
      },
    };
    const retryThrice: CallRunner = async (_operation, call) => {
      for (let i = 1; ; i++) {
        try {
          return await call();
        } catch (error) {
          if (i >= 3) throw error;
        }
      }
    };
    const routed = throughRunner<RecordStore>(flaky, RECORD_CALLS, retryThrice);
    await expect(routed.get('k')).resolves.toBeUndefined();
    expect(attempts).toBe(3);
    await expect(routed.put('k', {} as never, 1)).rejects.toThrow('still 503');
  });

  test('the routed port is a plain object: a test can replace one method with a spread', async () => {
    const routed = throughRunner(recordingPort<RecordStore>(['get', 'put'], []), RECORD_CALLS, (_op, call) => call());
    const replaced: RecordStore = { ...routed, put: async () => false };
    await expect(replaced.get('k')).resolves.toBe('get');
    await expect(replaced.put('k', {} as never, 1)).resolves.toBe(false);
  });
});

describe('the tables name every method of their adapters, and nothing else', () => {
  const adapters: Array<[string, object, object]> = [
    ['API Gateway', apiGatewayAdapter(new APIGatewayClient({ region: 'us-east-1' })), API_GATEWAY_CALLS],
    ['Secrets Manager', secretsManagerAdapter(new SecretsManagerClient({ region: 'us-east-1' })), SECRET_CALLS],
    ['the record table', dynamoDbRecordStore(new DynamoDBClient({ region: 'us-east-1' }), 't'), RECORD_CALLS],
    ['the due index', dynamoDbDueIndex(new DynamoDBClient({ region: 'us-east-1' }), 't'), DUE_INDEX_CALLS],
  ];
  test.each(adapters)('%s', (_service, adapter, table) => {
    expect(Object.keys(table).sort()).toEqual(Object.keys(adapter).sort());
  });

  test('a paged GetApiKeys of the real adapter takes one runner call per page', async () => {
    const apigw = mockClient(APIGatewayClient);
    apigw
      .on(GetApiKeysCommand)
      .resolvesOnce({ items: [], position: 'p1' })
      .resolvesOnce({ items: [{ id: 'k', name: 'n', value: 'v' }] });
    const { ran, run } = recordingRunner();
    const keys = throughRunner(apiGatewayAdapter(new APIGatewayClient({ region: 'us-east-1' })), API_GATEWAY_CALLS, run);
    await expect(keys.findApiKey('n', 'v')).resolves.toBe('k');
    expect(ran).toEqual(['GetApiKeys', 'GetApiKeys']);
    apigw.restore();
  });
});

describe("the function's per-record dependencies (lib/pipeline/process-record.ts)", () => {
  /** The use cases' dependencies over recording adapters, a limiter that records its slots and turns that record theirs. */
  function useCaseDeps() {
    const called: string[] = [];
    const slots: string[] = [];
    const turns: string[] = [];
    const limiter: RateLimiter = {
      delayMs: () => 0,
      take: (operation) => {
        slots.push(String(operation));
        return 0;
      },
      onThrottle: () => undefined,
      onSuccess: () => undefined,
      onFailure: () => undefined,
      rate: 1,
    };
    const writeTurns: WriteTurns = {
      covers: (operation) => operation.includes('UsagePlanKey') && !operation.startsWith('Get'),
      take: async (): Promise<Turn> => {
        turns.push('turn');
        return { end: () => undefined };
      },
    };
    const batch = {
      config: loadConfig({ ...process.env, API_GATEWAY_RATE_PER_SECOND: '5' }),
      apiKeys: recordingPort<ApiKeyStore>(Object.keys(API_GATEWAY_CALLS), called),
      secrets: recordingPort<SecretStore>(Object.keys(SECRET_CALLS), called),
      records: recordingPort<RecordStore>(Object.keys(RECORD_CALLS), called),
      apiGatewayLimiter: limiter,
      usagePlanTurns: writeTurns,
      logger: new Logger({ serviceName: 'call-path-test', logLevel: 'SILENT' }),
    } as unknown as BatchDeps;
    const deps = createUseCaseDeps(batch, () => new Date())(batch.logger, lambdaContext(30_000));
    return { deps, called, slots, turns };
  }

  test('every API Gateway method takes a limiter slot for its operation (a paged one, one per page); writes to plans take a turn', async () => {
    const { deps, slots, turns } = useCaseDeps();
    for (const [method, plan] of Object.entries(API_GATEWAY_CALLS)) {
      const before = slots.length;
      await (deps.apiKeys as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>)[method]?.('a', 'b');
      expect(slots.slice(before)).toEqual(typeof plan === 'string' ? [plan] : ['GetApiKeys', 'GetApiKeys']);
    }
    expect(turns).toHaveLength(2);
  });

  test('the secrets and the records go through the retry policy without the limiter', async () => {
    const { deps, called, slots } = useCaseDeps();
    await deps.secrets.getSecret('s');
    await deps.records.get('k');
    expect(called).toEqual(['getSecret(s)', 'get(k)']);
    expect(slots).toEqual([]);
  });
});
