import { DynamoDBClient, GetItemCommand } from '@aws-sdk/client-dynamodb';
import { FLEET_ITEM_KEY, TURNS_ITEM_KEY } from '../../lib/aws/dynamodb.js';
import { signup } from '../helpers/events.js';
import { COORDINATION_TABLE_NAME, type Pipeline, startPipeline } from '../helpers/pipeline.js';
import { createApiStage, createUsagePlan, usagePlanKeyIds } from '../helpers/usage-plans.js';

// Several function instances coordinating through the coordination table (COORDINATION_TABLE): usage-plan writes on
// the shared turns (lib/quota/usage-plan-turns.ts), through the realistic layer, whose usage-plan writes run one at a time
// and answer an overlapping one 409; heartbeats that tell each rate limiter how many instances are busy (lib/quota/fleet.ts).
jest.setTimeout(90_000);

const PRODUCT = 'prodturns7q2';
const UPDATE_ITEM = 'DynamoDB_20120810.UpdateItem';
let pipeline: Pipeline;
let plan: string;

beforeAll(async () => {
  pipeline = await startPipeline({ visibilityTimeoutSeconds: 10, maxReceiveCount: 4 }, async ({ apigw }) => {
    plan = await createUsagePlan(apigw, 'turns-plan', [await createApiStage(apigw, 'turns-api')]);
    return { USAGE_PLANS: JSON.stringify({ [PRODUCT]: plan }) };
  });
});
afterAll(() => pipeline.close());
beforeEach(async () => {
  await pipeline.clearCompletions();
  pipeline.proxy.clear();
  pipeline.proxy.resetStats();
  pipeline.proxy.configure({ accessDenied: undefined });
});

const signups = (tag: string, n: number) => Array.from({ length: n }, (_, i) => signup(`${tag}-${i}`, { productCode: PRODUCT }));

/** The limiter is off in the other suites (tests/helpers/env.ts); on here as a deployment of 4 has it, at the layer's 20 × AWS's quota. */
const LIMITER_ON = { API_GATEWAY_RATE_PER_SECOND: '25', API_GATEWAY_ACCOUNT_RATE_PER_SECOND: '100' };

const readItem = (key: string) =>
  new DynamoDBClient({ endpoint: process.env.MOTO_ENDPOINT }).send(
    new GetItemCommand({ TableName: COORDINATION_TABLE_NAME, Key: { pk: { S: key } } }),
  );

/** Drains the signup queue with `instances` function instances at once, each its own configuration and caches. */
async function drainWith(instances: number, env: Record<string, string> = {}) {
  await Promise.all(Array.from({ length: instances }, () => pipeline.drain({ handler: pipeline.handlerWith(undefined, env) })));
}

async function provisionedCustomers(): Promise<string[]> {
  const events = await pipeline.completionEvents();
  // A record redelivered while its first delivery still ran is announced twice (SQS delivers at least once).
  return [...new Set(events.filter((e) => e.type === 'api-key.provisioned').map((e) => e.customerId ?? ''))];
}

test('three instances take turns: every write had a turn, every key is in its plan, every signup announced', async () => {
  const startedAt = Date.now();
  await pipeline.send(...signups('turn', 24));

  await drainWith(3);

  const stats = pipeline.proxy.stats();
  const writes = stats.requests.CreateUsagePlanKey ?? 0;
  // A write without a turn would be one UpdateItem short (a lost race costs one more, never one less).
  expect(writes).toBeGreaterThanOrEqual(24);
  expect(stats.requests[UPDATE_ITEM] ?? 0).toBeGreaterThanOrEqual(writes);
  const item = await readItem(TURNS_ITEM_KEY);
  expect(Number(item.Item?.busyUntil?.N)).toBeGreaterThan(startedAt);
  const customers = await provisionedCustomers();
  expect(customers.sort()).toEqual(
    signups('turn', 24)
      .map((s) => s.customerId as string)
      .sort(),
  );
  const inPlan = new Set(await usagePlanKeyIds(pipeline.apigw, plan));
  const keys = (await pipeline.apiKeys()).filter((k) => k.customerId?.startsWith('turn-'));
  expect(keys).toHaveLength(24);
  expect(keys.filter((k) => !inPlan.has(k.id ?? ''))).toEqual([]);
  expect(await pipeline.deadLetterIds()).toEqual([]);
});

test('the table refused by IAM: each instance asks it once for a turn and once for a heartbeat, then does without; nothing is lost', async () => {
  // The coordination table's one call; the record table (GetItem, PutItem) stays allowed: without it nothing is provisioned.
  pipeline.proxy.configure({ accessDenied: { dynamodb: ['UpdateItem'] } });
  await pipeline.send(...signups('denied', 12));

  await drainWith(2, LIMITER_ON);

  const stats = pipeline.proxy.stats();
  // Twice per instance: the turns and the heartbeats each leave the store alone for 30 s after it failed.
  expect(stats.deniedCalls[UPDATE_ITEM]).toBe(4);
  expect(stats.requests[UPDATE_ITEM]).toBe(4);
  expect((await provisionedCustomers()).sort()).toEqual(
    signups('denied', 12)
      .map((s) => s.customerId as string)
      .sort(),
  );
  const inPlan = new Set(await usagePlanKeyIds(pipeline.apigw, plan));
  const keys = (await pipeline.apiKeys()).filter((k) => k.customerId?.startsWith('denied-'));
  expect(keys.filter((k) => !inPlan.has(k.id ?? ''))).toEqual([]);
  expect(await pipeline.deadLetterIds()).toEqual([]);
});

test('instances with their rate limiter on beat into the table while they work, and leave it when their invocation ends', async () => {
  const startedAt = Date.now();
  await pipeline.send(...signups('beat', 12));
  /** The ids with a beat of this run in the item now. */
  const beating = async () =>
    Object.entries((await readItem(FLEET_ITEM_KEY)).Item ?? {})
      .filter(([name, value]) => name.startsWith('i_') && Number(value.N) >= startedAt)
      .map(([name]) => name);
  const seen = new Set<string>();
  let draining = true;
  const watching = (async () => {
    while (draining) {
      for (const id of await beating()) seen.add(id);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  })();

  await drainWith(2, LIMITER_ON).finally(() => {
    draining = false;
  });
  await watching;

  expect(seen.size).toBe(2);
  expect(await beating()).toEqual([]);
  expect((await provisionedCustomers()).sort()).toEqual(
    signups('beat', 12)
      .map((s) => s.customerId as string)
      .sort(),
  );
  expect(await pipeline.deadLetterIds()).toEqual([]);
});
