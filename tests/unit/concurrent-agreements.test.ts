/**
 * Concurrent agreements through the function (unit level): a buyer with two licenses for the same product keeps one
 * key while either is active, in every order of the two licenses' EventBridge events. The integration suites run
 * the same against moto.
 */
import { APIGatewayClient, CreateApiKeyCommand, UpdateApiKeyCommand } from '@aws-sdk/client-api-gateway';
import { type AttributeValue, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-jest';
import { loadConfig } from '../../lib/config.js';
import type { CompletionEvent } from '../../lib/pipeline/completion.js';
import { createDeps } from '../../lib/pipeline/deps.js';
import { createBatchHandler } from '../../lib/pipeline/process-batch.js';
import { lambdaContext, licenseEvent as marketplaceLicenseEvent, sqsEvent } from '../helpers/events.js';
import { storeBackedRecords, storeBackedSecrets, storedState } from '../helpers/secrets-mock.js';

const apigw = mockClient(APIGatewayClient);
const secretsClient = mockClient(SecretsManagerClient);
const sqs = mockClient(SQSClient);
const recordsClient = mockClient(DynamoDBClient);

const ACCOUNT = '731245098716';
const PRODUCT = 'prod4k2j9x8l7';
const SECRET = `keyprov/test/${PRODUCT}/${ACCOUNT}/api-key`;
const license = (n: number) => `arn:aws:license-manager::386209384616:license:l-${n}`;

/** A Marketplace EventBridge license event, as AWS documents them (lib/messages/marketplace-eventbridge.ts). */
const licenseEvent = (kind: 'Updated' | 'Deprovisioned', n: number, time: string) =>
  marketplaceLicenseEvent(kind, { productCode: PRODUCT, accountId: ACCOUNT, time, licenseArn: license(n), id: `evt-${kind}-${n}-${time}` });

let stored: Map<string, string>;
let items: Map<string, Record<string, AttributeValue>>;
let enabled: Map<string, boolean>;
beforeEach(() => {
  apigw.reset();
  secretsClient.reset();
  sqs.reset();
  recordsClient.reset();
  items = storeBackedRecords(recordsClient);
  stored = storeBackedSecrets(secretsClient);
  enabled = new Map();
  apigw.on(CreateApiKeyCommand).callsFake(async () => {
    enabled.set('key1', true);
    return { id: 'key1' };
  });
  apigw.on(UpdateApiKeyCommand).callsFake(async (input: { apiKey: string; patchOperations: { value: string }[] }) => {
    enabled.set(input.apiKey, input.patchOperations[0]?.value === 'true');
    return {};
  });
  sqs.on(SendMessageBatchCommand).callsFake(async (input: { Entries: { Id: string }[] }) => ({
    Successful: input.Entries.map((e) => ({ Id: e.Id, MessageId: `m-${e.Id}`, MD5OfMessageBody: '' })),
    Failed: [],
  }));
});

const run = async (event: SQSEvent) => {
  const handler = createBatchHandler(createDeps(loadConfig(process.env)));
  return (await handler(event, lambdaContext(30_000))) as SQSBatchResponse;
};
const events = (): CompletionEvent[] =>
  sqs
    .commandCalls(SendMessageBatchCommand)
    .flatMap((c) => c.args[0].input.Entries ?? [])
    .map((e) => JSON.parse(e.MessageBody ?? '{}') as CompletionEvent);

function permutations<T>(items: T[]): T[][] {
  if (items.length <= 1) return [items];
  return items.flatMap((item, i) => permutations([...items.slice(0, i), ...items.slice(i + 1)]).map((rest) => [item, ...rest]));
}

const UPDATED_1 = licenseEvent('Updated', 1, '2026-07-01T00:00:00Z');
const UPDATED_2 = licenseEvent('Updated', 2, '2026-07-02T00:00:00Z');
const DEPROVISIONED_1 = licenseEvent('Deprovisioned', 1, '2026-07-03T00:00:00Z');
const DEPROVISIONED_2 = licenseEvent('Deprovisioned', 2, '2026-07-04T00:00:00Z');

describe.each(permutations([UPDATED_1, UPDATED_2, DEPROVISIONED_1]).map((order) => [order.map((e) => e.id).join(' → '), order]))(
  'License Updated 1, Updated 2, Deprovisioned 1 in the order %s',
  (_name, order) => {
    test('one key, enabled (license 2 is active), both licenses and the account recorded', async () => {
      for (const event of order) expect((await run(sqsEvent(event))).batchItemFailures).toEqual([]);

      expect(apigw).toHaveReceivedCommandTimes(CreateApiKeyCommand, 1);
      expect(apigw).toHaveReceivedCommandWith(CreateApiKeyCommand, {
        customerId: ACCOUNT,
        tags: expect.objectContaining({ 'keyprov:account': ACCOUNT }),
      });
      expect(enabled.get('key1')).toBe(true);
      const record = storedState(items, stored, SECRET);
      expect(record).toMatchObject({ status: 'active', customerAccountId: ACCOUNT });
      expect(record.licenses).toEqual({
        [license(1)]: { status: 'deprovisioned', at: '2026-07-03T00:00:00Z' },
        [license(2)]: { status: 'active', at: '2026-07-02T00:00:00Z' },
      });
    });
  },
);

test('the last license deprovisioned disables the key; repeats change nothing', async () => {
  for (const event of [UPDATED_1, UPDATED_2, DEPROVISIONED_1, DEPROVISIONED_2, DEPROVISIONED_1, UPDATED_1]) await run(sqsEvent(event));
  expect(enabled.get('key1')).toBe(false);
  expect(storedState(items, stored, SECRET)).toMatchObject({ status: 'revoked' });
});

test('completion events carry the account, the license and the licenses still active', async () => {
  await run(sqsEvent(UPDATED_1));
  await run(sqsEvent(UPDATED_2));
  expect(events()).toEqual([
    expect.objectContaining({
      type: 'api-key.provisioned',
      customerAccountId: ACCOUNT,
      licenseArn: license(1),
      activeLicenses: [license(1)],
    }),
    expect.objectContaining({
      type: 'api-key.provisioned',
      outcome: 'already-provisioned',
      licenseArn: license(2),
      activeLicenses: [license(1), license(2)],
    }),
  ]);
});

// Two license events of one buyer processed at the same moment (one batch: its records run in parallel) both count:
// each change of the record is a conditional write, and the loser reads again (issue 23, hazard 1).
describe.each([
  ['Updated 1 ∥ Updated 2, from none', [], [UPDATED_1, UPDATED_2], { 1: 'active', 2: 'active' }, true],
  [
    'Deprovisioned 1 ∥ Deprovisioned 2, from both active',
    [UPDATED_1, UPDATED_2],
    [DEPROVISIONED_1, DEPROVISIONED_2],
    { 1: 'deprovisioned', 2: 'deprovisioned' },
    false,
  ],
  ['Deprovisioned 1 ∥ Updated 2, from 1 active', [UPDATED_1], [DEPROVISIONED_1, UPDATED_2], { 1: 'deprovisioned', 2: 'active' }, true],
  [
    'Updated 1 ∥ Deprovisioned 2, from 2 active',
    [UPDATED_2],
    [licenseEvent('Updated', 1, '2026-07-05T00:00:00Z'), DEPROVISIONED_2],
    { 1: 'active', 2: 'deprovisioned' },
    true,
  ],
] as const)('%s, in one batch', (_name, before, together, licenses, keyEnabled) => {
  test.each([
    ['in this order', [0, 1]],
    ['the other way round', [1, 0]],
  ])('%s: both licenses recorded, the key enabled iff one is active', async (_order, [a, b]) => {
    for (const event of before) expect((await run(sqsEvent(event))).batchItemFailures).toEqual([]);
    expect((await run(sqsEvent(together[a ?? 0], together[b ?? 1]))).batchItemFailures).toEqual([]);

    const record = storedState(items, stored, SECRET);
    const statuses = Object.fromEntries(
      Object.entries(record.licenses as Record<string, { status: string }>).map(([arn, s]) => [arn, s.status]),
    );
    expect(statuses).toEqual(Object.fromEntries(Object.entries(licenses).map(([n, status]) => [license(Number(n)), status])));
    expect(enabled.get('key1')).toBe(keyEnabled);
    expect(apigw).toHaveReceivedCommandTimes(CreateApiKeyCommand, 1);
  });
});

test('a second license deprovisioned at the same time as the first is recorded, so its late Updated gives no key back', async () => {
  const at = '2026-07-03T00:00:00Z';
  // Both deprovisions carry the same time: the second finds the record revoked already, at that very time.
  for (const event of [licenseEvent('Deprovisioned', 1, at), licenseEvent('Deprovisioned', 2, at), UPDATED_2])
    expect((await run(sqsEvent(event))).batchItemFailures).toEqual([]);

  expect(apigw).toHaveReceivedCommandTimes(CreateApiKeyCommand, 0);
  const record = storedState(items, stored, SECRET);
  expect(record.licenses).toEqual({
    [license(1)]: { status: 'deprovisioned', at },
    [license(2)]: { status: 'deprovisioned', at },
  });
});
