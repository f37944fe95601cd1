/**
 * The function against answers real AWS gives and moto does not (tests/realistic-aws/README.md has the sources):
 * 409s from usage-plan writes, unknown plans, one plan per stage, listing lag during a revoke, a revoke racing a
 * provisioning. Each test fails without the fix it names.
 */
import {
  APIGatewayClient,
  ConflictException,
  CreateApiKeyCommand,
  CreateUsagePlanKeyCommand,
  DeleteUsagePlanKeyCommand,
  GetApiKeysCommand,
  GetUsagePlanCommand,
  GetUsagePlanKeyCommand,
  NotFoundException,
  UpdateApiKeyCommand,
} from '@aws-sdk/client-api-gateway';
import { type AttributeValue, DynamoDBClient, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { CreateSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-jest';
import { loadConfig } from '../../lib/config.js';
import type { CompletionEvent } from '../../lib/pipeline/completion.js';
import { createDeps } from '../../lib/pipeline/deps.js';
import { createBatchHandler, messageGroupId } from '../../lib/pipeline/process-batch.js';
import { lambdaContext, marketplaceNotification, signup, snsEnvelope, sqsEvent } from '../helpers/events.js';
import { storeBackedRecords, storeBackedSecrets, storedState } from '../helpers/secrets-mock.js';

const apigw = mockClient(APIGatewayClient);
const secretsClient = mockClient(SecretsManagerClient);
const sqs = mockClient(SQSClient);
const recordsClient = mockClient(DynamoDBClient);
const meta = (httpStatusCode: number) => ({ $metadata: { httpStatusCode } });
const PLAN = 'plan1';
const PRODUCT = 'prod4k2j9x8l7';

let stored: Map<string, string>;
let items: Map<string, Record<string, AttributeValue>>;

let keys: number;
beforeEach(() => {
  apigw.reset();
  secretsClient.reset();
  sqs.reset();
  recordsClient.reset();
  items = storeBackedRecords(recordsClient);
  stored = storeBackedSecrets(secretsClient);
  keys = 0;
  apigw.on(CreateApiKeyCommand).callsFake(async () => ({ id: `key${++keys}` }));
  apigw.on(GetUsagePlanCommand).resolves({ id: PLAN, apiStages: [{ apiId: 'api1', stage: 'prod' }] });
  apigw.on(CreateUsagePlanKeyCommand).resolves({});
  apigw.on(GetUsagePlanKeyCommand).resolves({});
  apigw.on(UpdateApiKeyCommand).resolves({});
  apigw.on(DeleteUsagePlanKeyCommand).resolves({});
  sqs.on(SendMessageBatchCommand).callsFake(async (input: { Entries: { Id: string }[] }) => ({
    Successful: input.Entries.map((e) => ({ Id: e.Id, MessageId: `m-${e.Id}`, MD5OfMessageBody: '' })),
    Failed: [],
  }));
});

function buildHandler(env: Record<string, string> = {}) {
  const config = loadConfig({ ...process.env, USAGE_PLANS: JSON.stringify({ [PRODUCT]: PLAN }), RETRY_MAX_ATTEMPTS: '3', ...env });
  const handler = createBatchHandler(createDeps(config));
  return (event: SQSEvent) => handler(event, lambdaContext(30_000)) as Promise<SQSBatchResponse>;
}
const events = (): CompletionEvent[] =>
  sqs
    .commandCalls(SendMessageBatchCommand)
    .flatMap((c) => c.args[0].input.Entries ?? [])
    .map((e) => JSON.parse(e.MessageBody ?? '{}') as CompletionEvent);
const record = (name: string) => storedState(items, stored, name);
const SECRET = `keyprov/test/${PRODUCT}/acme/api-key`;
const conflict = () =>
  new ConflictException({ message: 'Unable to complete operation due to concurrent modification. Please try again later.', ...meta(409) });

describe('a 409 from a usage-plan write is never success by itself', () => {
  test('409 while the key is not in the plan: retried until the association is there, then active', async () => {
    apigw.on(CreateUsagePlanKeyCommand).rejectsOnce(conflict()).resolves({});
    apigw.on(GetUsagePlanKeyCommand).rejects(new NotFoundException({ message: 'Invalid Usage Plan Key', ...meta(404) }));

    const response = await buildHandler()(sqsEvent(signup('acme', { productCode: PRODUCT })));

    expect(response.batchItemFailures).toEqual([]);
    expect(apigw).toHaveReceivedCommandTimes(CreateUsagePlanKeyCommand, 2);
    expect(record(SECRET)).toMatchObject({ status: 'active', usagePlanId: PLAN });
  });

  test('409 on every try while the key stays out of the plan: handed back, never announced as provisioned', async () => {
    apigw.on(CreateUsagePlanKeyCommand).rejects(conflict());
    apigw.on(GetUsagePlanKeyCommand).rejects(new NotFoundException({ message: 'Invalid Usage Plan Key', ...meta(404) }));
    const event = sqsEvent(signup('acme', { productCode: PRODUCT }));

    const response = await buildHandler()(event);

    expect(response.batchItemFailures).toEqual([{ itemIdentifier: event.Records[0]?.messageId }]);
    expect(events()).toEqual([]);
    expect(record(SECRET).status).toBeUndefined();
  });

  test('409 "concurrent modification" wrote nothing: retried without looking at the plan', async () => {
    apigw.on(CreateUsagePlanKeyCommand).rejectsOnce(conflict()).resolves({});

    const response = await buildHandler()(sqsEvent(signup('acme', { productCode: PRODUCT })));

    expect(response.batchItemFailures).toEqual([]);
    expect(apigw).toHaveReceivedCommandTimes(CreateUsagePlanKeyCommand, 2);
    expect(apigw).toHaveReceivedCommandTimes(GetUsagePlanKeyCommand, 0);
  });

  test('409 worded otherwise, because the association exists already (GetUsagePlanKey finds it): success', async () => {
    // AWS's wording for an existing association is not documented: any 409 that is not "concurrent modification".
    apigw.on(CreateUsagePlanKeyCommand).rejects(new ConflictException({ message: 'Conflict', ...meta(409) }));

    const response = await buildHandler()(sqsEvent(signup('acme', { productCode: PRODUCT })));

    expect(response.batchItemFailures).toEqual([]);
    expect(events()).toEqual([expect.objectContaining({ type: 'api-key.provisioned', usagePlanId: PLAN })]);
  });
});

test('an unknown usage plan is caught before any key is created, and the record is retried, not rejected', async () => {
  apigw.on(GetUsagePlanCommand).rejects(new NotFoundException({ message: 'Invalid Usage Plan ID specified', ...meta(404) }));
  const event = sqsEvent(signup('acme', { productCode: PRODUCT }));

  const response = await buildHandler()(event);

  expect(response.batchItemFailures).toEqual([{ itemIdentifier: event.Records[0]?.messageId }]);
  expect(apigw).toHaveReceivedCommandTimes(CreateApiKeyCommand, 0);
  expect(secretsClient).toHaveReceivedCommandTimes(CreateSecretCommand, 0);
  expect(events()).toEqual([]);
});

test('the plan is looked up once per function instance', async () => {
  const run = buildHandler();
  await run(sqsEvent(signup('a', { productCode: PRODUCT }), signup('b', { productCode: PRODUCT })));
  await run(sqsEvent(signup('c', { productCode: PRODUCT })));
  expect(apigw).toHaveReceivedCommandTimes(GetUsagePlanCommand, 1);
});

describe('an unsubscribe racing a subscribe of the same customer never leaves an enabled key', () => {
  const unsubscribe = () => snsEnvelope(marketplaceNotification('unsubscribe-success', 'acme', PRODUCT));

  /** The subscribe wrote its pending record; its key may exist, but GetApiKeys does not list it (yet). */
  const pendingRecord = () =>
    stored.set(
      SECRET,
      JSON.stringify({
        value: 'v'.repeat(40),
        customerId: 'acme',
        productCode: PRODUCT,
        plan: null,
        apiKeyName: 'n',
        createdAt: new Date().toISOString(),
      }),
    );

  test('a revoke that finds no listed key for a pending record, and CreateApiKey with its value answers 409: handed back to look again', async () => {
    pendingRecord();
    apigw.on(GetApiKeysCommand).resolves({ items: [] });
    apigw.on(CreateApiKeyCommand).rejects(new ConflictException({ message: 'API Key already exists', ...meta(409) }));
    const event = sqsEvent(unsubscribe());

    const response = await buildHandler()(event);

    expect(response.batchItemFailures).toEqual([{ itemIdentifier: event.Records[0]?.messageId }]);
    expect(apigw).toHaveReceivedCommandWith(CreateApiKeyCommand, { value: 'v'.repeat(40), enabled: false });
    expect(record(SECRET).status).toBeUndefined();
  });

  test('a revoke whose pending record never got its key makes it, disabled, records it, and is announced', async () => {
    pendingRecord();
    apigw.on(GetApiKeysCommand).resolves({ items: [] });
    apigw.on(CreateApiKeyCommand).resolves({ id: 'key-never-made' });

    const response = await buildHandler({ REVOKED_SECRET_POLICY: 'delete-value' })(sqsEvent(unsubscribe()));

    expect(response.batchItemFailures).toEqual([]);
    expect(apigw).toHaveReceivedCommandWith(CreateApiKeyCommand, { value: 'v'.repeat(40), enabled: false, customerId: 'acme' });
    expect(apigw).toHaveReceivedCommandTimes(UpdateApiKeyCommand, 0);
    // The key is recorded, so the value goes as REVOKED_SECRET_POLICY says.
    expect(record(SECRET)).toMatchObject({ status: 'revoked', apiKeyId: 'key-never-made' });
    expect(record(SECRET)).not.toHaveProperty('value');
    expect(events()).toEqual([expect.objectContaining({ type: 'api-key.revoked' })]);
  });

  /** The revoke's record after a pending one: the value kept, no key id (GetApiKeys listed none). */
  const revokedWithValue = (value: string) =>
    JSON.stringify({
      value,
      customerId: 'acme',
      productCode: PRODUCT,
      plan: null,
      apiKeyName: 'n',
      createdAt: '2026-01-01T00:00:00Z',
      status: 'revoked',
      lastEventAt: '2099-01-01T00:00:00Z',
    });

  test('a grant that made its key and stopped, redelivered after the revoke, finds that key and disables it', async () => {
    const value = 'w'.repeat(40);
    stored.set(SECRET, revokedWithValue(value));
    apigw.on(GetApiKeysCommand).resolves({ items: [{ id: 'key-left', name: `keyprov/test/${PRODUCT}/acme`, value, enabled: true }] });

    const response = await buildHandler()(sqsEvent(signup('acme', { productCode: PRODUCT })));

    expect(response.batchItemFailures).toEqual([]);
    expect(apigw).toHaveReceivedCommandWith(UpdateApiKeyCommand, {
      apiKey: 'key-left',
      patchOperations: [{ op: 'replace', path: '/enabled', value: 'false' }],
    });
    expect(apigw).toHaveReceivedCommandTimes(CreateApiKeyCommand, 0);
    expect(record(SECRET)).toMatchObject({ status: 'revoked', apiKeyId: 'key-left' });
    expect(events()).toEqual([expect.objectContaining({ type: 'api-key.notification-ignored', reason: 'stale' })]);
  });

  test('the key that grant made is not listed yet (CreateApiKey with its value answers 409): handed back, to look again', async () => {
    stored.set(SECRET, revokedWithValue('x'.repeat(40)));
    apigw.on(GetApiKeysCommand).resolves({ items: [] });
    apigw.on(CreateApiKeyCommand).rejects(new ConflictException({ message: 'API Key already exists', ...meta(409) }));
    const event = sqsEvent(signup('acme', { productCode: PRODUCT }));

    const response = await buildHandler()(event);

    expect(response.batchItemFailures).toEqual([{ itemIdentifier: event.Records[0]?.messageId }]);
    expect(apigw).toHaveReceivedCommandWith(CreateApiKeyCommand, { value: 'x'.repeat(40), enabled: false });
    expect(events()).toEqual([]);
  });

  test('no key was made with that value: it is made now, disabled and in no plan, and recorded', async () => {
    stored.set(SECRET, revokedWithValue('y'.repeat(40)));
    apigw.on(GetApiKeysCommand).resolves({ items: [] });
    apigw.on(CreateApiKeyCommand).resolves({ id: 'key-disabled' });

    const response = await buildHandler()(sqsEvent(signup('acme', { productCode: PRODUCT })));

    expect(response.batchItemFailures).toEqual([]);
    expect(apigw).toHaveReceivedCommandWith(CreateApiKeyCommand, { value: 'y'.repeat(40), enabled: false, customerId: 'acme' });
    expect(apigw).toHaveReceivedCommandTimes(CreateUsagePlanKeyCommand, 0);
    expect(record(SECRET)).toMatchObject({ status: 'revoked', apiKeyId: 'key-disabled' });
    expect(events()).toEqual([expect.objectContaining({ type: 'api-key.notification-ignored', reason: 'stale' })]);
  });

  test("a provisioning whose final write would hide a revoke disables its key instead ('stale')", async () => {
    // The revoke lands while CreateApiKey runs.
    apigw.on(CreateApiKeyCommand).callsFake(async () => {
      const key = `${PRODUCT}/acme`;
      const item = items.get(key);
      const pending = JSON.parse(item?.record?.S ?? '{}');
      const revoked = { ...pending, status: 'revoked', lastEventAt: new Date(Date.now() + 1000).toISOString() };
      items.set(key, { pk: { S: key }, version: { N: String(Number(item?.version?.N) + 1) }, record: { S: JSON.stringify(revoked) } });
      return { id: 'key-raced' };
    });

    const response = await buildHandler()(sqsEvent(signup('acme', { productCode: PRODUCT })));

    expect(response.batchItemFailures).toEqual([]);
    expect(apigw).toHaveReceivedCommandWith(UpdateApiKeyCommand, {
      apiKey: 'key-raced',
      patchOperations: [{ op: 'replace', path: '/enabled', value: 'false' }],
    });
    expect(apigw).toHaveReceivedCommandWith(DeleteUsagePlanKeyCommand, { usagePlanId: PLAN, keyId: 'key-raced' });
    expect(record(SECRET)).toMatchObject({ status: 'revoked', apiKeyId: 'key-raced' });
    expect(events()).toEqual([expect.objectContaining({ type: 'api-key.notification-ignored', reason: 'stale' })]);
  });
});

describe('plan moves (ON_ENTITLEMENT_UPDATED=move-to-configured-plan)', () => {
  const entitlementUpdated = (at: string) => ({
    ...snsEnvelope(marketplaceNotification('entitlement-updated', 'acme', PRODUCT)),
    Timestamp: at,
  });
  const active = (usagePlanId: string) =>
    stored.set(
      SECRET,
      JSON.stringify({
        value: 'v'.repeat(40),
        customerId: 'acme',
        productCode: PRODUCT,
        plan: null,
        apiKeyName: 'n',
        createdAt: '2026-01-01T00:00:00Z',
        apiKeyId: 'key1',
        usagePlanId,
        status: 'active',
        lastEventAt: '2026-01-01T00:00:00Z',
      }),
    );
  const order = () =>
    apigw
      .calls()
      .map((c) => c.args[0].constructor.name)
      .filter((n) => /UsagePlanKeyCommand$/.test(n) && !n.startsWith('Get'));

  test('plans sharing an API stage: leave the old one first, then join (one plan per stage per key)', async () => {
    active('old');
    await buildHandler({ ON_ENTITLEMENT_UPDATED: 'move-to-configured-plan' })(sqsEvent(entitlementUpdated('2026-02-01T00:00:00Z')));
    expect(order()).toEqual(['DeleteUsagePlanKeyCommand', 'CreateUsagePlanKeyCommand']);
    expect(record(SECRET).usagePlanId).toBe(PLAN);
  });

  test('plans on different stages: join first, then leave (never without a plan)', async () => {
    active('old');
    apigw.on(GetUsagePlanCommand, { usagePlanId: 'old' }).resolves({ id: 'old', apiStages: [{ apiId: 'api1', stage: 'beta' }] });
    await buildHandler({ ON_ENTITLEMENT_UPDATED: 'move-to-configured-plan' })(sqsEvent(entitlementUpdated('2026-02-01T00:00:00Z')));
    expect(order()).toEqual(['CreateUsagePlanKeyCommand', 'DeleteUsagePlanKeyCommand']);
  });

  test('A→B→A→B moves the key each time: each move a conditional write of the record, one version more', async () => {
    const plans = ['plana', 'planb', 'plana', 'planb'];
    for (const [i, plan] of plans.entries()) {
      if (i === 0) active('planb');
      const run = buildHandler({ ON_ENTITLEMENT_UPDATED: 'move-to-configured-plan', USAGE_PLANS: JSON.stringify({ [PRODUCT]: plan }) });
      await run(sqsEvent(entitlementUpdated(`2026-02-0${i + 1}T00:00:00Z`)));
      expect(record(SECRET).usagePlanId).toBe(plan);
    }
    const writes = recordsClient.commandCalls(PutItemCommand).map((c) => c.args[0].input);
    expect(writes.map((w) => [w.ConditionExpression, w.Item?.version?.N])).toEqual([
      ['attribute_not_exists(pk)', '1'],
      ['version = :expected', '2'],
      ['version = :expected', '3'],
      ['version = :expected', '4'],
      ['version = :expected', '5'],
    ]);
  });
});

test('a FIFO MessageGroupId stays within 128 characters whatever the ids', () => {
  const base = {
    type: 'api-key.notification-acknowledged',
    eventId: 'e',
    occurredAt: '',
    correlationId: 'c',
    messageId: 'm',
    source: 'signup',
    action: 'x',
    eventTime: '',
  } as const;
  expect(messageGroupId({ ...base, customerId: 'acme', productCode: PRODUCT })).toBe(`${PRODUCT}/acme`);
  const long = messageGroupId({ ...base, customerId: 'c'.repeat(256), productCode: 'p'.repeat(64) });
  expect(long.length).toBeLessThanOrEqual(128);
  expect(long).not.toBe(messageGroupId({ ...base, customerId: `${'c'.repeat(255)}d`, productCode: 'p'.repeat(64) }));
});
