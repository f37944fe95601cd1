import { DeleteItemCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { GetSecretValueCommand, PutSecretValueCommand } from '@aws-sdk/client-secrets-manager';
import { reconcile } from '../../lib/ops/reconcile/reconcile.js';
import { storesFor } from '../../lib/ops/reconcile/stores.js';
import { marketplaceNotification, snsEnvelope } from '../helpers/events.js';
import { PRINCIPALS } from '../helpers/iam.js';
import { KEY_RECORDS_TABLE_NAME, type Pipeline, startPipeline } from '../helpers/pipeline.js';

// Deployments from before the record table kept each customer's record inside its secret. Such a record is moved into
// the table conditionally on the customer's first message, and `npm run reconcile` reports the others and, with
// --fix, moves them.

const PRODUCT = 'prod4k2j9x8l7';
const PREFIX = 'keyprov/test/';
const T = (minute: number) => `2026-11-26T18:${String(minute).padStart(2, '0')}:00.000Z`;
const notification = (action: string, customer: string, at: string) => ({
  ...snsEnvelope(marketplaceNotification(action, customer, PRODUCT)),
  Timestamp: at,
});
const secretOf = (customer: string) => `${PREFIX}${PRODUCT}/${customer}/api-key`;

let pipeline: Pipeline;
let dynamodb: DynamoDBClient;
beforeAll(async () => {
  pipeline = await startPipeline();
  dynamodb = new DynamoDBClient({ endpoint: process.env.MOTO_ENDPOINT });
});
afterAll(() => pipeline.close());

/**
 * Provisions the customer, then puts things as a deployment before the record table left them: no item, the whole
 * record (with the value) in the secret.
 */
async function legacyCustomer(customer: string): Promise<Record<string, unknown>> {
  await pipeline.send(notification('subscribe-success', customer, T(0)));
  expect((await pipeline.drain()).drained).toBe(true);
  const state = await pipeline.secretJson(secretOf(customer));
  const { secretArn: _, ...legacy } = state;
  await pipeline.secrets.send(new PutSecretValueCommand({ SecretId: secretOf(customer), SecretString: JSON.stringify(legacy) }));
  await dynamodb.send(new DeleteItemCommand({ TableName: KEY_RECORDS_TABLE_NAME, Key: { pk: { S: `${PRODUCT}/${customer}` } } }));
  expect(await pipeline.record(secretOf(customer))).toBeUndefined();
  return legacy;
}

const secretContent = async (customer: string) =>
  JSON.parse((await pipeline.secrets.send(new GetSecretValueCommand({ SecretId: secretOf(customer) }))).SecretString ?? '{}');

test("the first message of a customer whose record is in its secret moves it into the table; the message's work is done on it", async () => {
  const legacy = await legacyCustomer('legacy-leaver');

  await pipeline.send(notification('unsubscribe-success', 'legacy-leaver', T(5)));
  expect((await pipeline.drain()).drained).toBe(true);

  const keys = (await pipeline.apiKeys()).filter((k) => k.customerId === 'legacy-leaver');
  expect(keys.map((k) => [k.id, k.enabled])).toEqual([[legacy.apiKeyId, false]]);
  expect(await pipeline.record(secretOf('legacy-leaver'))).toMatchObject({
    status: 'revoked',
    apiKeyId: legacy.apiKeyId,
    lastEventAt: T(5),
  });
  // The secret keeps what it is for: the value.
  expect(await secretContent('legacy-leaver')).toEqual({
    value: legacy.value,
    customerId: 'legacy-leaver',
    productCode: PRODUCT,
    apiKeyName: legacy.apiKeyName,
  });
});

test('reconcile reports a record still in its secret (information), and --fix moves it: the table has it, the secret only the value', async () => {
  const legacy = await legacyCustomer('legacy-quiet');
  // Signed as the operator: the layer's IAM switch evaluates these calls under docs/operator-policy.json.
  const operatorDynamoDb = new DynamoDBClient({
    endpoint: pipeline.proxy.endpoint,
    credentials: { accessKeyId: PRINCIPALS.operator, secretAccessKey: 'testing' },
  });
  const stores = storesFor({ ...pipeline.operator, dynamodb: { client: operatorDynamoDb, recordsTable: KEY_RECORDS_TABLE_NAME } });
  const settings = { prefix: PREFIX, usagePlans: {} };

  const report = await reconcile(stores, settings);
  const mine = report.findings.filter((f) => f.customerId === 'legacy-quiet');
  expect(mine.map((f) => [f.kind, f.severity, f.repair])).toEqual([['record-in-secret', 'info', 'fix']]);

  const fixed = await reconcile(stores, { ...settings, fix: true });
  expect(fixed.fixes?.filter((f) => f.customerId === 'legacy-quiet').map((f) => [f.kind, f.outcome])).toEqual([
    ['record-in-secret', 'fixed'],
  ]);
  expect(fixed.remaining?.filter((f) => f.customerId === 'legacy-quiet')).toEqual([]);
  const { value: _, ...withoutValue } = legacy;
  expect(await pipeline.record(secretOf('legacy-quiet'))).toMatchObject({ ...withoutValue, status: 'active' });
  expect(await secretContent('legacy-quiet')).toEqual({
    value: legacy.value,
    customerId: 'legacy-quiet',
    productCode: PRODUCT,
    apiKeyName: legacy.apiKeyName,
  });

  // The moved record works with the pipeline: a repeat finds the key.
  await pipeline.clearCompletions();
  await pipeline.send(notification('subscribe-success', 'legacy-quiet', T(10)));
  await pipeline.drain();
  expect((await pipeline.completionEvents()).map((e) => ('outcome' in e ? e.outcome : e.type))).toEqual(['already-provisioned']);
});
