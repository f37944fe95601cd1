import {
  APIGatewayClient,
  BadRequestException,
  ConflictException,
  CreateApiKeyCommand,
  GetApiKeysCommand,
  LimitExceededException,
  NotFoundException,
  ServiceUnavailableException,
  TooManyRequestsException,
  UnauthorizedException,
} from '@aws-sdk/client-api-gateway';
import { type AttributeValue, DynamoDBClient, PutItemCommand } from '@aws-sdk/client-dynamodb';
import {
  CreateSecretCommand,
  GetSecretValueCommand,
  PutSecretValueCommand,
  ResourceExistsException,
  ResourceNotFoundException,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { ChangeMessageVisibilityBatchCommand, GetQueueUrlCommand, SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-jest';
import { handler } from '../../functions/provision.js';
import { peekEventId } from '../../lib/messages/index.js';
import type { CompletionEvent } from '../../lib/pipeline/completion.js';
import {
  eventBridgeEnvelope,
  lambdaContext,
  marketplaceNotification,
  sampleEvent,
  signup,
  snsEnvelope,
  sqsEvent,
  sqsRecord,
} from '../helpers/events.js';
import { storeBackedRecords, storeBackedSecrets } from '../helpers/secrets-mock.js';

const apigw = mockClient(APIGatewayClient);
const secrets = mockClient(SecretsManagerClient);
const sqs = mockClient(SQSClient);
const recordsClient = mockClient(DynamoDBClient);

const meta = (httpStatusCode: number) => ({ $metadata: { httpStatusCode } });
const arnOf = (name: string) => `arn:aws:secretsmanager:us-east-1:123456789012:secret:${name}-AbCdEf`;
/** The key values the function generated in this test (the values passed to CreateApiKey). */
const keyValues = () => apigw.commandCalls(CreateApiKeyCommand).map((call) => call.args[0].input.value ?? '');
/** A GetSecretValue answer holding a key record, as an earlier delivery left it. */
const storedSecret = (name: string, record: Record<string, unknown>) => ({
  ARN: arnOf(name),
  Name: name,
  SecretString: JSON.stringify(record),
});

/** The record table (its items by key), as the record store wrote them. */
let records = new Map<string, Record<string, AttributeValue>>();
/** The record stored under `key` (`<product or _>/<customer>`). */
const recordOf = (key: string) => {
  const item = records.get(key);
  return item?.record?.S ? (JSON.parse(item.record.S) as Record<string, unknown>) : undefined;
};
/** A record as an earlier delivery left it in the table. */
const seedRecord = (key: string, record: Record<string, unknown>, version = 1) =>
  records.set(key, { pk: { S: key }, version: { N: String(version) }, record: { S: JSON.stringify(record) } });

let keyCounter = 0;
beforeEach(() => {
  apigw.reset();
  secrets.reset();
  sqs.reset();
  recordsClient.reset();
  records = storeBackedRecords(recordsClient);
  keyCounter = 0;
  apigw
    .on(CreateApiKeyCommand)
    .callsFake(async (input: { value: string }) => ({ id: `key${++keyCounter}`, value: input.value, enabled: true }));
  secrets.on(GetSecretValueCommand).rejects(new ResourceNotFoundException({ message: 'not found', ...meta(400) }));
  secrets.on(CreateSecretCommand).callsFake(async (input: { Name: string }) => ({ ARN: arnOf(input.Name), Name: input.Name }));
  secrets.on(PutSecretValueCommand).resolves({});
  sqs.on(SendMessageBatchCommand).callsFake(async (input: { Entries: { Id: string }[] }) => ({
    Successful: input.Entries.map((e) => ({ Id: e.Id, MessageId: `m-${e.Id}`, MD5OfMessageBody: '' })),
    Failed: [],
  }));
});

const run = (event: SQSEvent, remainingMs = 30_000) => handler(event, lambdaContext(remainingMs)) as Promise<SQSBatchResponse>;

/** The completion events sent to the completion queue, in order. */
function sentEvents(): CompletionEvent[] {
  return sqs
    .commandCalls(SendMessageBatchCommand)
    .flatMap((call) => call.args[0].input.Entries ?? [])
    .map((entry) => JSON.parse(entry.MessageBody ?? '{}') as CompletionEvent);
}

const failedIds = (response: SQSBatchResponse) => response.batchItemFailures.map((f) => f.itemIdentifier);

describe('event sources', () => {
  test('a signup event provisions a key with name, description, customerId and merged tags', async () => {
    const response = await run(
      sqsEvent(signup('acme-corp', { productCode: 'prod4k2j9x8l7', tags: { team: 'growth', stage: 'override' } })),
    );

    expect(response.batchItemFailures).toEqual([]);
    expect(apigw).toHaveReceivedCommandTimes(CreateApiKeyCommand, 1);
    expect(apigw).toHaveReceivedCommandWith(CreateApiKeyCommand, {
      name: 'keyprov/test/prod4k2j9x8l7/acme-corp',
      description: expect.stringContaining('acme-corp'),
      enabled: true,
      customerId: 'acme-corp',
      tags: { 'managed-by': 'api-key-provisioner', stage: 'override', team: 'growth', 'keyprov:owner': 'keyprov/test/' },
    });
    const input = apigw.commandCalls(CreateApiKeyCommand)[0]?.args[0].input;
    expect(input).not.toHaveProperty('generateDistinctId');
    expect(input).not.toHaveProperty('stageKeys');
  });

  test('the key value is generated, stored in the secret first, given to CreateApiKey; the record goes pending, then active', async () => {
    await run(sqsEvent(signup('acme-corp', { productCode: 'prod4k2j9x8l7', plan: 'gold' })));

    const name = 'keyprov/test/prod4k2j9x8l7/acme-corp/api-key';
    expect(secrets).toHaveReceivedCommandWith(CreateSecretCommand, {
      Name: name,
      Tags: expect.arrayContaining([{ Key: 'managed-by', Value: 'api-key-provisioner' }]),
    });
    const stored = JSON.parse(secrets.commandCalls(CreateSecretCommand)[0]?.args[0].input.SecretString ?? '{}');
    expect(stored).toEqual({
      value: expect.stringMatching(/^[A-Za-z0-9]{40}$/),
      customerId: 'acme-corp',
      productCode: 'prod4k2j9x8l7',
      apiKeyName: 'keyprov/test/prod4k2j9x8l7/acme-corp',
    });
    expect(keyValues()).toEqual([stored.value]);
    // The secret is written once: the record's changes go to the table, never the value.
    expect(secrets).toHaveReceivedCommandTimes(PutSecretValueCommand, 0);
    const puts = recordsClient.commandCalls(PutItemCommand).map((call) => call.args[0].input);
    expect(puts.map((put) => [put.ConditionExpression, put.Item?.version?.N, put.Item?.status?.S])).toEqual([
      ['attribute_not_exists(pk)', '1', 'pending'],
      ['version = :expected', '2', 'active'],
    ]);
    expect(JSON.stringify(puts)).not.toContain(stored.value);
    expect(recordOf('prod4k2j9x8l7/acme-corp')).toEqual({
      customerId: 'acme-corp',
      productCode: 'prod4k2j9x8l7',
      // The body carries no occurredAt: its time is the queue's (lib/customer-key/lifecycle-order.ts).
      lastEventClock: 'queue',
      plan: 'gold',
      apiKeyName: 'keyprov/test/prod4k2j9x8l7/acme-corp',
      secretArn: arnOf(name),
      createdAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      lastEventAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      apiKeyId: 'key1',
      status: 'active',
    });
  });

  test('every new key gets its own value', async () => {
    await run(sqsEvent(signup('a'), signup('b'), signup('c')));
    expect(new Set(keyValues()).size).toBe(3);
  });

  test.each([
    ['signup', 'signup', ['acme-corp', 'globex-42']],
    ['signup-eventbridge', 'eventbridge', ['initech']],
    ['marketplace-subscribe-sns', 'marketplace', ['QWxwaGFCdXllcjAx']],
    ['marketplace-subscribe-raw', 'marketplace', ['QnJhdm9CdXllcjAy']],
    ['dlq-replay', undefined, ['hooli', 'Q2hhcmxpZUJ1eWVyMDM']],
  ])('sample events/%s.json provisions a key per record (source %s)', async (file, source, customers) => {
    const response = await run(sampleEvent(file));

    expect(response.batchItemFailures).toEqual([]);
    const events = sentEvents();
    expect(events.map((e) => e.type)).toEqual(customers.map(() => 'api-key.provisioned'));
    expect(events.map((e) => 'customerId' in e && e.customerId)).toEqual(customers);
    if (source) expect(events.every((e) => 'source' in e && e.source === source)).toBe(true);
  });

  test('a Marketplace subscribe-success uses customer-identifier as customerId and product-code in the names', async () => {
    await run(sqsEvent(snsEnvelope(marketplaceNotification('subscribe-success', 'QnV5ZXIx', 'prodabc123'))));

    expect(apigw).toHaveReceivedCommandWith(CreateApiKeyCommand, { customerId: 'QnV5ZXIx', name: 'keyprov/test/prodabc123/QnV5ZXIx' });
  });

  test.each(['unsubscribe-pending', 'entitlement-updated'])(
    'Marketplace %s is acknowledged with an event and no AWS call',
    async (action) => {
      const response = await run(sqsEvent(snsEnvelope(marketplaceNotification(action, 'QnV5ZXIx'))));

      expect(response.batchItemFailures).toEqual([]);
      expect(apigw.calls()).toHaveLength(0);
      expect(secrets.calls()).toHaveLength(0);
      expect(sentEvents()).toEqual([
        expect.objectContaining({ type: 'api-key.notification-acknowledged', action, customerId: 'QnV5ZXIx' }),
      ]);
    },
  );

  test.each([
    ['unsubscribe-success', 'revoked', { type: 'api-key.revoked' }],
    ['subscribe-fail', 'failed', { type: 'api-key.provisioning-failed', reason: 'subscribe-fail' }],
  ])('Marketplace %s before any key leaves a %s record and creates no key', async (action, status, expected) => {
    const response = await run(sqsEvent(snsEnvelope(marketplaceNotification(action, 'QnV5ZXIx'))));

    expect(response.batchItemFailures).toEqual([]);
    expect(apigw.calls()).toHaveLength(0);
    // A tombstone is a record, and no secret: there is no value to keep.
    expect(secrets).toHaveReceivedCommandTimes(CreateSecretCommand, 0);
    expect(recordOf('prod4k2j9x8l7/QnV5ZXIx')).toMatchObject({ customerId: 'QnV5ZXIx', status, lastEventAt: expect.any(String) });
    expect(sentEvents()).toEqual([expect.objectContaining({ ...expected, customerId: 'QnV5ZXIx' })]);
  });

  test('a DLQ replay (high receive count) is handled exactly like a first delivery', async () => {
    const first = sqsRecord(signup('hooli', { eventId: 'evt-1' }));
    const replay = sqsRecord(signup('hooli', { eventId: 'evt-1' }), { attributes: { ...first.attributes, ApproximateReceiveCount: '7' } });

    await run({ Records: [replay] });

    expect(sentEvents()).toEqual([
      expect.objectContaining({ type: 'api-key.provisioned', outcome: 'provisioned', customerId: 'hooli', correlationId: 'evt-1' }),
    ]);
  });
});

describe('idempotency', () => {
  const name = 'keyprov/test/_/hooli/api-key';
  const value = 'V'.repeat(40);
  const record = {
    customerId: 'hooli',
    productCode: null,
    plan: null,
    apiKeyName: 'keyprov/test/_/hooli',
    createdAt: '2026-11-01T00:00:00.000Z',
    secretArn: arnOf(name),
  };
  const secretHolding = (content: Record<string, unknown>) => storedSecret(name, content);
  const exists = () => secrets.on(CreateSecretCommand).rejects(new ResourceExistsException({ message: 'exists', ...meta(400) }));

  test('a repeat of a provisioned signup creates nothing and re-emits the same eventId as already-provisioned', async () => {
    await run(sqsEvent(signup('hooli')));
    const [first] = sentEvents();
    sqs.resetHistory();
    apigw.resetHistory();
    secrets.resetHistory();

    const response = await run(sqsEvent(signup('hooli')));

    expect(response.batchItemFailures).toEqual([]);
    expect(apigw.calls()).toHaveLength(0);
    expect(secrets.calls()).toHaveLength(0);
    expect(sentEvents()).toEqual([
      {
        ...first,
        outcome: 'already-provisioned',
        occurredAt: expect.any(String),
        messageId: expect.any(String),
        correlationId: expect.any(String),
      },
    ]);
  });

  test("a pending record (stopped before the key existed) gets its key with the secret's value", async () => {
    seedRecord('_/hooli', record);
    secrets.on(GetSecretValueCommand).resolves(secretHolding({ value, customerId: 'hooli' }));

    await run(sqsEvent(signup('hooli')));

    expect(secrets).toHaveReceivedCommandTimes(CreateSecretCommand, 0);
    expect(keyValues()).toEqual([value]);
    expect(recordOf('_/hooli')).toEqual({ ...record, apiKeyId: 'key1', status: 'active' });
    expect(records.get('_/hooli')?.version?.N).toBe('2');
    expect(sentEvents()).toEqual([expect.objectContaining({ outcome: 'provisioned', apiKeyId: 'key1', secretArn: arnOf(name) })]);
  });

  test('a 409 on CreateApiKey (the key exists, its id was not recorded) is resolved by looking the key up', async () => {
    seedRecord('_/hooli', record);
    secrets.on(GetSecretValueCommand).resolves(secretHolding({ value, customerId: 'hooli' }));
    apigw.on(CreateApiKeyCommand).rejects(new ConflictException({ message: 'API Key already exists', ...meta(409) }));
    apigw.on(GetApiKeysCommand).resolves({
      items: [
        { id: 'other', name: 'keyprov/test/_/hooli-2', value: 'W'.repeat(40) },
        { id: 'found', name: 'keyprov/test/_/hooli', value },
      ],
    });

    await run(sqsEvent(signup('hooli')));

    expect(apigw).toHaveReceivedCommandWith(GetApiKeysCommand, { nameQuery: 'keyprov/test/_/hooli', includeValues: true });
    expect(recordOf('_/hooli')?.apiKeyId).toBe('found');
    expect(sentEvents()).toEqual([expect.objectContaining({ type: 'api-key.provisioned', apiKeyId: 'found' })]);
  });

  test('the lookup follows GetApiKeys pages', async () => {
    seedRecord('_/hooli', record);
    secrets.on(GetSecretValueCommand).resolves(secretHolding({ value, customerId: 'hooli' }));
    apigw.on(CreateApiKeyCommand).rejects(new ConflictException({ message: 'API Key already exists', ...meta(409) }));
    apigw
      .on(GetApiKeysCommand)
      .resolvesOnce({ items: [{ id: 'x', name: 'keyprov/test/_/hooli', value: 'X'.repeat(40) }], position: 'p2' })
      .resolves({ items: [{ id: 'found', name: 'keyprov/test/_/hooli', value }] });

    await run(sqsEvent(signup('hooli')));

    expect(apigw).toHaveReceivedCommandTimes(GetApiKeysCommand, 2);
    expect(apigw.commandCalls(GetApiKeysCommand)[1]?.args[0].input.position).toBe('p2');
    expect(sentEvents()[0]).toMatchObject({ apiKeyId: 'found' });
  });

  test('a 409 whose key is not listed yet hands the record back to SQS, to look again within seconds', async () => {
    seedRecord('_/hooli', record);
    secrets.on(GetSecretValueCommand).resolves(secretHolding({ value, customerId: 'hooli' }));
    apigw.on(CreateApiKeyCommand).rejects(new ConflictException({ message: 'API Key already exists', ...meta(409) }));
    apigw.on(GetApiKeysCommand).resolves({ items: [] });
    sqs.on(GetQueueUrlCommand).resolves({ QueueUrl: 'https://sqs.us-east-1.amazonaws.com/123456789012/signups' });
    sqs.on(ChangeMessageVisibilityBatchCommand).resolves({ Successful: [], Failed: [] });
    const event = sqsEvent(signup('hooli'));

    expect(failedIds(await run(event))).toEqual([event.Records[0]?.messageId]);
    expect(recordOf('_/hooli')).toEqual(record);
    // "Not listed yet" carries a short delay (NOT_YET_RETRY_MS), not the whole visibility timeout.
    const change = sqs.commandCalls(ChangeMessageVisibilityBatchCommand)[0]?.args[0].input;
    expect(change?.Entries?.map((entry) => entry.VisibilityTimeout)).toEqual([2]);
  });

  test("losing the CreateSecret race uses the winner's value", async () => {
    exists();
    secrets
      .on(GetSecretValueCommand)
      .resolves(secretHolding({ value, customerId: 'hooli', productCode: null, apiKeyName: 'keyprov/test/_/hooli' }));

    await run(sqsEvent(signup('hooli')));

    expect(keyValues()).toEqual([value]);
    expect(sentEvents()).toEqual([expect.objectContaining({ type: 'api-key.provisioned', outcome: 'provisioned' })]);
  });

  test('a record of the time before the table, found in the secret, is moved into the table on first touch', async () => {
    exists();
    const legacy = { ...record, secretArn: undefined, value, apiKeyId: 'old1', status: 'active', lastEventAt: '2026-11-01T00:00:00.000Z' };
    secrets.on(GetSecretValueCommand).resolves(secretHolding(legacy));

    await run(sqsEvent(signup('hooli')));

    expect(apigw.calls()).toHaveLength(0);
    expect(sentEvents()).toEqual([expect.objectContaining({ outcome: 'already-provisioned', apiKeyId: 'old1' })]);
    const { value: _, secretArn: __, ...withoutValue } = legacy;
    expect(recordOf('_/hooli')).toEqual({ ...withoutValue, secretArn: arnOf(name) });
    expect(records.get('_/hooli')?.version?.N).toBe('1');
    // The secret keeps what it is for: the value.
    const put = secrets.commandCalls(PutSecretValueCommand)[0]?.args[0].input;
    expect(JSON.parse(put?.SecretString ?? '{}')).toEqual({
      value,
      customerId: 'hooli',
      productCode: null,
      apiKeyName: 'keyprov/test/_/hooli',
    });
  });

  test('a record item that does not parse is an environment error naming its key, never its content', async () => {
    records.set('_/hooli', { pk: { S: '_/hooli' }, version: { N: '3' }, record: { S: `{"value":"${value}", broken` } });
    const event = sqsEvent(signup('hooli'));

    expect(failedIds(await run(event))).toEqual([event.Records[0]?.messageId]);
    expect(apigw.calls()).toHaveLength(0);
    expect(sentEvents()).toEqual([]);
  });

  test('a record whose version goes back (restored from a backup while in use) is an environment error, never overwritten', async () => {
    seedRecord('_/hooli', record, 3);
    secrets.on(GetSecretValueCommand).resolves(secretHolding({ value, customerId: 'hooli' }));
    apigw.on(CreateApiKeyCommand).callsFake(async () => {
      seedRecord('_/hooli', record, 1);
      return { id: 'key1' };
    });
    const event = sqsEvent(signup('hooli'));

    expect(failedIds(await run(event))).toEqual([event.Records[0]?.messageId]);
    expect(records.get('_/hooli')?.version?.N).toBe('1');
    expect(sentEvents()).toEqual([]);
  });

  test('a whole record left in the secret after its move into the table is reduced to the value when next read', async () => {
    seedRecord('_/hooli', record);
    const legacy = { ...record, secretArn: undefined, value, createdAt: '2026-11-01T00:00:00.000Z' };
    secrets.on(GetSecretValueCommand).resolves(secretHolding(legacy));

    await run(sqsEvent(signup('hooli')));

    expect(keyValues()).toEqual([value]);
    const put = secrets.commandCalls(PutSecretValueCommand)[0]?.args[0].input;
    expect(JSON.parse(put?.SecretString ?? '{}')).toEqual({
      value,
      customerId: 'hooli',
      productCode: null,
      apiKeyName: 'keyprov/test/_/hooli',
    });
    expect(recordOf('_/hooli')).toMatchObject({ status: 'active', apiKeyId: 'key1' });
  });

  test('a secret of that name that is not a key record is rejected, and nothing is created', async () => {
    exists();
    secrets.on(GetSecretValueCommand).resolves({ ARN: arnOf(name), Name: name, SecretString: 'hunter2' });

    await run(sqsEvent(signup('hooli')));

    expect(apigw.calls()).toHaveLength(0);
    expect(sentEvents()).toEqual([expect.objectContaining({ type: 'api-key.provisioning-failed', reason: 'secret-unreadable' })]);
  });
});

describe('rejections are acknowledged and reported', () => {
  test.each([
    ['not json', 'invalid-json'],
    [{ hello: 'world' }, 'unrecognized-event'],
    [signup('../../etc/passwd'), 'invalid-customer-id'],
    [signup('acme', { productCode: 'bad code!' }), 'invalid-product-code'],
    [signup('acme', { tags: { 'aws:owner': 'x' } }), 'invalid-tags'],
    [signup('acme', { tags: { team: 'has space' } }), 'invalid-tags'],
    [signup('acme', { tags: Object.fromEntries(Array.from({ length: 49 }, (_, i) => [`t${i}`, 'v'])) }), 'invalid-tags'],
    [snsEnvelope('{broken'), 'invalid-sns-envelope'],
    [snsEnvelope(marketplaceNotification('subscribe-maybe', 'QnV5ZXIx')), 'invalid-marketplace-notification'],
    [snsEnvelope({ action: 'subscribe-success' }), 'invalid-customer-id'],
    [eventBridgeEnvelope('not an object'), 'invalid-eventbridge-event'],
    [eventBridgeEnvelope({ plan: 'gold' }), 'invalid-customer-id'],
    [eventBridgeEnvelope({ customerId: 'acme', plan: 'has space' }), 'invalid-signup-event'],
  ])('%j → %s', async (body, reason) => {
    const event = sqsEvent(body);
    const response = await run(event);

    expect(response.batchItemFailures).toEqual([]);
    expect(apigw).toHaveReceivedCommandTimes(CreateApiKeyCommand, 0);
    expect(secrets).toHaveReceivedCommandTimes(CreateSecretCommand, 0);
    expect(sentEvents()).toEqual([
      expect.objectContaining({
        type: 'api-key.provisioning-failed',
        eventId: expect.stringMatching(/^[0-9a-f]{8}-/),
        // The documented rule, for rejected messages too: the producer's well-formed event id, else the SQS message id.
        correlationId: peekEventId(event.Records[0]?.body ?? '') ?? event.Records[0]?.messageId,
        messageId: event.Records[0]?.messageId,
        reason,
        message: expect.any(String),
      }),
    ]);
  });

  test('a rejected signup correlates by its own eventId, a malformed eventId by the SQS message id', async () => {
    const valid = sqsEvent({ customerId: 'bad id!', eventId: 'evt-123' });
    const malformed = sqsEvent({ customerId: 'bad id!', eventId: 'evt 123 with spaces' });
    await run(valid);
    await run(malformed);
    expect(sentEvents()).toEqual([
      expect.objectContaining({ reason: 'invalid-customer-id', correlationId: 'evt-123' }),
      expect.objectContaining({ reason: 'invalid-customer-id', correlationId: malformed.Records[0]?.messageId }),
    ]);
  });

  test('the 50-tag limit counts the default tags and the ownership tag too', async () => {
    // 2 default tags + the ownership tag keyprov:owner + 47 of the event's own = 50.
    const tags = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`t${i}`, 'v']));
    const response = await run(sqsEvent(signup('acme', { tags: tags(47) }), signup('globex', { tags: tags(48) })));
    expect(failedIds(response)).toEqual([]);
    expect(sentEvents()).toEqual([
      expect.objectContaining({ type: 'api-key.provisioned', customerId: 'acme' }),
      expect.objectContaining({
        type: 'api-key.provisioning-failed',
        reason: 'invalid-tags',
        message: '51 tags given, at most 50 are allowed',
      }),
    ]);
  });
});

describe('CreateApiKey errors', () => {
  test('BadRequest is not retried: failure event with reason bad-request', async () => {
    apigw.on(CreateApiKeyCommand).rejects(new BadRequestException({ message: 'Invalid customer id', ...meta(400) }));

    const response = await run(sqsEvent(signup('acme')));

    expect(response.batchItemFailures).toEqual([]);
    expect(apigw).toHaveReceivedCommandTimes(CreateApiKeyCommand, 1);
    // The pending secret stays: a replay after the cause is fixed finishes with the recorded value.
    expect(secrets).toHaveReceivedCommandTimes(PutSecretValueCommand, 0);
    expect(sentEvents()).toEqual([
      expect.objectContaining({ type: 'api-key.provisioning-failed', reason: 'bad-request', customerId: 'acme' }),
    ]);
  });

  test.each([
    ['Unauthorized', () => new UnauthorizedException({ message: 'Unauthorized', ...meta(401) })],
    ['NotFound', () => new NotFoundException({ message: 'Invalid Usage Plan ID specified', ...meta(404) })],
    [
      'IAM AccessDenied (403)',
      () => Object.assign(new Error('User is not authorized to perform: apigateway:POST'), { name: 'AccessDeniedException', ...meta(403) }),
    ],
  ])('%s is our side, not the message: handed back at once (no retry now), no failure event', async (_what, make) => {
    apigw.on(CreateApiKeyCommand).rejects(make());

    const event = sqsEvent(signup('acme'));
    const response = await run(event);

    expect(response.batchItemFailures).toEqual([{ itemIdentifier: event.Records[0]?.messageId }]);
    expect(apigw).toHaveReceivedCommandTimes(CreateApiKeyCommand, 1);
    expect(sentEvents()).toEqual([]);
  });

  test.each([
    ['TooManyRequests without Retry-After', () => new TooManyRequestsException({ message: 'Too Many Requests', ...meta(429) })],
    [
      'TooManyRequests with Retry-After',
      () => new TooManyRequestsException({ message: 'Too Many Requests', retryAfterSeconds: '0', ...meta(429) }),
    ],
    ['LimitExceeded', () => new LimitExceededException({ message: 'Rate exceeded', ...meta(429) })],
    ['ServiceUnavailable', () => new ServiceUnavailableException({ message: 'try later', ...meta(503) })],
    ['a timeout', () => Object.assign(new Error('socket hang up'), { name: 'TimeoutError' })],
  ])('%s is retried, then the key is provisioned', async (_, makeError) => {
    apigw.on(CreateApiKeyCommand).rejectsOnce(makeError()).rejectsOnce(makeError()).resolves({ id: 'key9' });

    const response = await run(sqsEvent(signup('acme')));

    expect(response.batchItemFailures).toEqual([]);
    expect(apigw).toHaveReceivedCommandTimes(CreateApiKeyCommand, 3);
    expect(sentEvents()).toEqual([expect.objectContaining({ type: 'api-key.provisioned', apiKeyId: 'key9' })]);
  });

  test('a throttle that outlasts the attempts hands the record back to SQS, with no event', async () => {
    apigw.on(CreateApiKeyCommand).rejects(new TooManyRequestsException({ message: 'Too Many Requests', ...meta(429) }));
    const event = sqsEvent(signup('acme'));

    const response = await run(event);

    expect(failedIds(response)).toEqual([event.Records[0]?.messageId]);
    expect(apigw).toHaveReceivedCommandTimes(CreateApiKeyCommand, Number(process.env.RETRY_MAX_ATTEMPTS ?? 6));
    expect(sentEvents()).toEqual([]);
  });

  test('a Retry-After longer than the retry cap hands the record back to SQS at once', async () => {
    apigw.on(CreateApiKeyCommand).rejects(new TooManyRequestsException({ message: 'slow down', retryAfterSeconds: '30', ...meta(429) }));
    const event = sqsEvent(signup('acme'));

    const started = Date.now();
    const response = await run(event, 5_000);

    expect(failedIds(response)).toEqual([event.Records[0]?.messageId]);
    expect(apigw).toHaveReceivedCommandTimes(CreateApiKeyCommand, 1);
    expect(Date.now() - started).toBeLessThan(4_000);
  });

  test('with no time left before the safety margin, no call is made and the record is retried later', async () => {
    const event = sqsEvent(signup('acme'));

    const response = await run(event, 500);

    expect(failedIds(response)).toEqual([event.Records[0]?.messageId]);
    expect(apigw).toHaveReceivedCommandTimes(CreateApiKeyCommand, 0);
  });

  test('an unexpected error is handed back to SQS (retried, then the DLQ), not acknowledged', async () => {
    apigw.on(CreateApiKeyCommand).rejects(new Error('something nobody expected'));
    const event = sqsEvent(signup('acme'));

    expect(failedIds(await run(event))).toEqual([event.Records[0]?.messageId]);
    expect(apigw).toHaveReceivedCommandTimes(CreateApiKeyCommand, 1);
  });
});

describe('partial batches', () => {
  test('only the records that should be retried are in batchItemFailures; the others complete', async () => {
    apigw.on(CreateApiKeyCommand, { customerId: 'throttled' }).rejects(new TooManyRequestsException({ message: 'x', ...meta(429) }));
    const event = sqsEvent(signup('good-1'), 'garbage', signup('throttled'), signup('good-2'));

    const response = await run(event);

    expect(failedIds(response)).toEqual([event.Records[2]?.messageId]);
    expect(sentEvents().map((e) => [e.type, e.messageId])).toEqual([
      ['api-key.provisioned', event.Records[0]?.messageId],
      ['api-key.provisioning-failed', event.Records[1]?.messageId],
      ['api-key.provisioned', event.Records[3]?.messageId],
    ]);
  });

  test('all completion events of a batch go in one SendMessageBatch call', async () => {
    await run(sqsEvent(...Array.from({ length: 10 }, (_, i) => signup(`customer-${i}`))));

    expect(sqs).toHaveReceivedCommandTimes(SendMessageBatchCommand, 1);
    expect(sqs).toHaveReceivedCommandWith(SendMessageBatchCommand, { QueueUrl: process.env.COMPLETION_QUEUE_URL });
    expect(sentEvents()).toHaveLength(10);
  });

  test('records whose completion event SQS refused are handed back to SQS', async () => {
    sqs.on(SendMessageBatchCommand).resolves({
      Successful: [{ Id: '0', MessageId: 'm0', MD5OfMessageBody: '' }],
      Failed: [{ Id: '1', SenderFault: false, Code: 'InternalError' }],
    });
    const event = sqsEvent(signup('a'), signup('b'));

    expect(failedIds(await run(event))).toEqual([event.Records[1]?.messageId]);
  });

  test('when the completion queue cannot be reached, every record with an event is handed back', async () => {
    sqs.on(SendMessageBatchCommand).rejects(Object.assign(new Error('down'), { $metadata: { httpStatusCode: 500 } }));
    const event = sqsEvent(signup('a'), 'garbage');

    expect(failedIds(await run(event)).sort()).toEqual(event.Records.map((r) => r.messageId).sort());
  });
});

describe('completion events', () => {
  test('a success event carries what consumers need and never the key value', async () => {
    const event = sqsEvent(eventBridgeEnvelope(signup('initech', { eventId: 'evt-42', productCode: 'prod1', plan: 'silver' })));

    await run(event);

    const [sent] = sentEvents();
    expect(sent).toEqual({
      type: 'api-key.provisioned',
      outcome: 'provisioned',
      eventId: expect.stringMatching(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/),
      occurredAt: expect.any(String),
      correlationId: 'evt-42',
      messageId: event.Records[0]?.messageId,
      source: 'eventbridge',
      customerId: 'initech',
      productCode: 'prod1',
      plan: 'silver',
      apiKeyId: 'key1',
      apiKeyName: 'keyprov/test/prod1/initech',
      secretArn: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:keyprov/test/prod1/initech/api-key-AbCdEf',
      secretName: 'keyprov/test/prod1/initech/api-key',
    });
    expect(keyValues()).toHaveLength(1);
    expect(JSON.stringify(sent)).not.toContain(keyValues()[0]);
  });

  test('the provisioned eventId is the same for the same customer and product, different otherwise', async () => {
    // Two deliveries of a/p1 in one batch race for its secret: the store answers the loser as Secrets Manager does.
    storeBackedSecrets(secrets);
    await run(
      sqsEvent(signup('a', { productCode: 'p1' }), signup('a', { productCode: 'p1' }), signup('a'), signup('b', { productCode: 'p1' })),
    );

    const ids = sentEvents().map((e) => e.eventId);
    expect(ids[0]).toBe(ids[1]);
    expect(new Set(ids).size).toBe(3);
  });
});
