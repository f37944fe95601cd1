import { DynamoDBClient, GetItemCommand } from '@aws-sdk/client-dynamodb';
import { TURNS_ITEM_KEY } from '../../lib/aws/dynamodb.js';
import { signup } from '../helpers/events.js';
import { COORDINATION_TABLE_NAME, type Pipeline, startPipeline } from '../helpers/pipeline.js';
import { createApiStage, createUsagePlan, usagePlanKeyIds } from '../helpers/usage-plans.js';

// Usage-plan writes of several function instances on the shared turns (lib/usage-plan-turns.ts), through the
// realistic layer, whose usage-plan writes run one at a time and answer an overlapping one 409.
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
});

const signups = (tag: string, n: number) => Array.from({ length: n }, (_, i) => signup(`${tag}-${i}`, { productCode: PRODUCT }));

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
  const item = await new DynamoDBClient({ endpoint: process.env.MOTO_ENDPOINT }).send(
    new GetItemCommand({ TableName: COORDINATION_TABLE_NAME, Key: { pk: { S: TURNS_ITEM_KEY } } }),
  );
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

test('the turns table refused by IAM: each instance asks it once, then writes one at a time on its own; nothing is lost', async () => {
  pipeline.proxy.configure({ accessDenied: { dynamodb: 'all' } });
  await pipeline.send(...signups('denied', 12));

  await drainWith(2);

  const stats = pipeline.proxy.stats();
  // Once per instance: the store is left alone for 30 s after it failed.
  expect(stats.deniedCalls[UPDATE_ITEM]).toBe(2);
  expect(stats.requests[UPDATE_ITEM]).toBe(2);
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
