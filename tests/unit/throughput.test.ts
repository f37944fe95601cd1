import {
  APIGatewayClient,
  ConflictException,
  CreateApiKeyCommand,
  CreateUsagePlanKeyCommand,
  GetUsagePlanCommand,
  GetUsagePlanKeyCommand,
  NotFoundException,
  ServiceUnavailableException,
  TooManyRequestsException,
} from '@aws-sdk/client-api-gateway';
import { type AttributeValue, DynamoDBClient, GetItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import {
  CreateSecretCommand,
  GetSecretValueCommand,
  PutSecretValueCommand,
  ResourceNotFoundException,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { ChangeMessageVisibilityBatchCommand, GetQueueUrlCommand, SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-jest';
import { loadConfig } from '../../lib/config.js';
import { DeadlineError, RetryableError, ThrottledError, TransientError } from '../../lib/errors.js';
import { createDeps } from '../../lib/pipeline/deps.js';
import { createBatchHandler, redeliveryDelaySeconds } from '../../lib/pipeline/process-batch.js';
import { lambdaContext, signup, sqsEvent } from '../helpers/events.js';
import { storeBackedRecords } from '../helpers/secrets-mock.js';

const apigw = mockClient(APIGatewayClient);
const secrets = mockClient(SecretsManagerClient);
const sqs = mockClient(SQSClient);
const recordsClient = mockClient(DynamoDBClient);

const SIGNUP_QUEUE_URL = 'https://sqs.us-east-1.amazonaws.com/123456789012/signups';
const meta = (httpStatusCode: number) => ({ $metadata: { httpStatusCode } });
const arnOf = (name: string) => `arn:aws:secretsmanager:us-east-1:123456789012:secret:${name}-AbCdEf`;
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * A fresh handler with production dependencies (real adapters, mocked SDK clients) and its own rate limiter.
 * Defaults: 4 CreateApiKey calls per second, which is also the account quota (so no probing above it), 2 records
 * at a time.
 */
function buildHandler(env: Record<string, string | undefined> = {}) {
  const config = loadConfig({
    ...process.env,
    API_GATEWAY_RATE_PER_SECOND: '4',
    API_GATEWAY_ACCOUNT_RATE_PER_SECOND: env.API_GATEWAY_RATE_PER_SECOND ?? '4',
    RECORD_CONCURRENCY: '2',
    ...env,
  });
  const handler = createBatchHandler({ ...createDeps(config) });
  return (event: SQSEvent, remainingMs = 30_000) => handler(event, lambdaContext(remainingMs)) as Promise<SQSBatchResponse>;
}

/** Date.now() of each CreateApiKey call, in call order. */
let createApiKeyTimes: number[];
let keyCounter: number;

beforeEach(() => {
  apigw.reset();
  secrets.reset();
  sqs.reset();
  recordsClient.reset();
  storeBackedRecords(recordsClient);
  createApiKeyTimes = [];
  keyCounter = 0;
  secrets.on(GetSecretValueCommand).rejects(new ResourceNotFoundException({ message: 'not found', ...meta(400) }));
  secrets.on(CreateSecretCommand).callsFake(async (input: { Name: string }) => ({ ARN: arnOf(input.Name), Name: input.Name }));
  apigw.on(CreateApiKeyCommand).callsFake(async (input: { value: string }) => {
    createApiKeyTimes.push(Date.now());
    return { id: `key${++keyCounter}`, value: input.value, enabled: true };
  });
  secrets.on(PutSecretValueCommand).resolves({});
  sqs.on(SendMessageBatchCommand).callsFake(async (input: { Entries: { Id: string }[] }) => ({
    Successful: input.Entries.map((e) => ({ Id: e.Id, MessageId: `m-${e.Id}`, MD5OfMessageBody: '' })),
    Failed: [],
  }));
  sqs.on(ChangeMessageVisibilityBatchCommand).resolves({});
  sqs.on(GetQueueUrlCommand).resolves({ QueueUrl: SIGNUP_QUEUE_URL });
});

const failedIds = (response: SQSBatchResponse) => response.batchItemFailures.map((f) => f.itemIdentifier);
const customersOfCreateApiKey = () => apigw.commandCalls(CreateApiKeyCommand).map((c) => c.args[0].input.customerId);
const visibilityEntries = () => sqs.commandCalls(ChangeMessageVisibilityBatchCommand).flatMap((c) => c.args[0].input.Entries ?? []);
const customers = (n: number) => Array.from({ length: n }, (_, i) => signup(`customer-${i}`));

describe('pacing of API Gateway calls', () => {
  test('at 4 calls per second, the CreateApiKey calls of 8 records are spaced at least ~250 ms apart after the burst', async () => {
    const run = buildHandler();

    const response = await run(sqsEvent(...customers(8)));

    expect(response.batchItemFailures).toEqual([]);
    expect(createApiKeyTimes).toHaveLength(8);
    const times = [...createApiKeyTimes].sort((a, b) => a - b);
    // The limiter's default burst (one second of its rate: 4) lets the first four go together after its idle start;
    // each later one has its slot 250 ms after the one before: the k-th after the burst k × 250 ms after the first
    // call at the earliest (less 50 ms of slack for the first call's own start). Measured from the first call, not as
    // gaps: a call that a busy machine starts late makes the gap after it short, never the schedule early.
    const first = times[0] ?? 0;
    for (let k = 1; k <= 4; k++) expect((times[3 + k] ?? 0) - first).toBeGreaterThanOrEqual(k * 250 - 50);
  });

  test('alone, an instance probes from its share up to the account quota (lib/quota/rate-limiter.ts)', async () => {
    // Share 5/s of a 50/s quota: 30 records would take 6 s at the share.
    const run = buildHandler({ API_GATEWAY_RATE_PER_SECOND: '5', API_GATEWAY_ACCOUNT_RATE_PER_SECOND: '50', RECORD_CONCURRENCY: '30' });

    const started = Date.now();
    const response = await run(sqsEvent(...customers(30)));

    expect(response.batchItemFailures).toEqual([]);
    expect(createApiKeyTimes).toHaveLength(30);
    const times = [...createApiKeyTimes].sort((a, b) => a - b);
    const gaps = times.slice(1).map((t, i) => t - (times[i] ?? 0));
    // The first gaps are the share's 200 ms; the last ones are under the 100 ms of twice the share.
    expect(Math.max(...gaps.slice(-5))).toBeLessThan(100);
    expect(Date.now() - started).toBeLessThan(4_000);
  });

  test('records in progress never exceed RECORD_CONCURRENCY', async () => {
    let active = 0;
    let maxActive = 0;
    let creating = 0;
    let maxCreating = 0;
    // A record is in progress from its first call (reading its record) to its last (writing it active).
    const started = new Set<string>();
    const items = new Map<string, Record<string, AttributeValue>>();
    recordsClient.on(GetItemCommand).callsFake(async (input: { Key: { pk: { S: string } } }) => {
      if (!started.has(input.Key.pk.S)) {
        started.add(input.Key.pk.S);
        active++;
      }
      maxActive = Math.max(maxActive, active);
      const item = items.get(input.Key.pk.S);
      return item ? { Item: item } : {};
    });
    recordsClient.on(PutItemCommand).callsFake(async (input: { Item: Record<string, AttributeValue> & { pk: { S: string } } }) => {
      items.set(input.Item.pk.S, input.Item);
      if (input.Item.status?.S === 'active') {
        await sleep(5);
        active--;
      }
      return {};
    });
    secrets.on(CreateSecretCommand).callsFake(async (input: { Name: string }) => {
      creating++;
      maxCreating = Math.max(maxCreating, creating);
      await sleep(30);
      creating--;
      return { ARN: arnOf(input.Name), Name: input.Name };
    });
    const run = buildHandler({ API_GATEWAY_RATE_PER_SECOND: '100' });

    const response = await run(sqsEvent(...customers(6)));

    expect(response.batchItemFailures).toEqual([]);
    // Each key: its record written pending, then active (the secret is written once, by CreateSecret).
    expect(recordsClient).toHaveReceivedCommandTimes(PutItemCommand, 12);
    expect(maxActive).toBe(2);
    expect(maxCreating).toBe(2);
    expect(active).toBe(0);
  });
});

describe('records that cannot be done in this invocation', () => {
  test('a record whose API Gateway slot is past the deadline is handed back with a visibility timeout of its wait', async () => {
    // 0.5/s: the next slot after the immediate one(s) is 2 s away. 2.5 s left, margin 1 s (records stop one
    // margin early, then keep another): only a slot inside the first ~0.5 s can be used.
    const run = buildHandler({ API_GATEWAY_RATE_PER_SECOND: '0.5', DEADLINE_SAFETY_MARGIN_MS: '1000' });
    const event = sqsEvent(...customers(4));

    const started = Date.now();
    const response = await run(event, 2_500);

    // The record that got the immediate slot completed (the limiter's default burst: one second of 0.5/s, at least one).
    const served = customersOfCreateApiKey();
    expect(served).toHaveLength(1);
    const done = event.Records.filter((r) => served.some((c) => r.body.includes(`"${c}"`)));
    expect(done).toHaveLength(served.length);
    const handedBack = event.Records.filter((r) => !done.includes(r));
    expect(handedBack.length).toBeGreaterThanOrEqual(2);
    expect(failedIds(response).sort()).toEqual(handedBack.map((r) => r.messageId).sort());
    for (const record of done) expect(failedIds(response)).not.toContain(record.messageId);
    expect(sqs).toHaveReceivedCommandTimes(SendMessageBatchCommand, 1);

    // The others are delayed by their wait (~2 s, in whole seconds, rounded up), not left to the queue's default.
    expect(sqs).toHaveReceivedCommandTimes(ChangeMessageVisibilityBatchCommand, 1);
    expect(sqs).toHaveReceivedCommandWith(ChangeMessageVisibilityBatchCommand, { QueueUrl: SIGNUP_QUEUE_URL });
    const entries = visibilityEntries();
    expect(entries.map((e) => e.ReceiptHandle).sort()).toEqual(handedBack.map((r) => r.receiptHandle).sort());
    for (const record of done) expect(entries.map((e) => e.ReceiptHandle)).not.toContain(record.receiptHandle);
    for (const entry of entries) {
      expect(entry.VisibilityTimeout).toBeGreaterThanOrEqual(1);
      expect(entry.VisibilityTimeout).toBe(2);
    }
    expect(new Set(entries.map((e) => e.Id)).size).toBe(entries.length);
    // They were handed back at once, not after waiting for the slot.
    expect(Date.now() - started).toBeLessThan(1_500);
  });

  test('a Retry-After above RETRY_MAX_DELAY_MS hands the record back with that Retry-After as its visibility timeout', async () => {
    apigw.on(CreateApiKeyCommand).rejects(new TooManyRequestsException({ message: 'slow down', retryAfterSeconds: '120', ...meta(429) }));
    const run = buildHandler();
    const event = sqsEvent(signup('acme'));

    const response = await run(event);

    expect(failedIds(response)).toEqual([event.Records[0]?.messageId]);
    expect(apigw).toHaveReceivedCommandTimes(CreateApiKeyCommand, 1);
    expect(sqs).toHaveReceivedCommandTimes(ChangeMessageVisibilityBatchCommand, 1);
    expect(sqs).toHaveReceivedCommandWith(ChangeMessageVisibilityBatchCommand, {
      QueueUrl: SIGNUP_QUEUE_URL,
      Entries: [{ Id: '0', ReceiptHandle: event.Records[0]?.receiptHandle, VisibilityTimeout: 120 }],
    });
    expect(sqs).toHaveReceivedCommandTimes(SendMessageBatchCommand, 0);
  });

  test('a usage-plan write that keeps overlapping others is handed back after the limiter’s write gap, not the queue’s timeout', async () => {
    apigw.on(GetUsagePlanCommand).resolves({ id: 'plan1', apiStages: [] });
    // 409 "concurrent modification", and GetUsagePlanKey does not find the key: not associated yet.
    apigw.on(CreateUsagePlanKeyCommand).rejects(new ConflictException({ message: 'concurrent modification', ...meta(409) }));
    apigw.on(GetUsagePlanKeyCommand).rejects(new NotFoundException({ message: 'Invalid Usage Plan ID specified', ...meta(404) }));
    const run = buildHandler({ USAGE_PLANS: '{"prod":"plan1"}', API_GATEWAY_RATE_PER_SECOND: '1000' });
    const event = sqsEvent(signup('acme', { productCode: 'prod' }));

    const response = await run(event);

    expect(failedIds(response)).toEqual([event.Records[0]?.messageId]);
    expect(apigw).toHaveReceivedCommandTimes(CreateUsagePlanKeyCommand, Number(process.env.RETRY_MAX_ATTEMPTS ?? 6));
    // The gap before the instance's next write (ms in tests: RETRY_BASE_DELAY_MS is 1), rounded up to SQS's 1 s.
    expect(sqs).toHaveReceivedCommandWith(ChangeMessageVisibilityBatchCommand, {
      Entries: [{ Id: '0', ReceiptHandle: event.Records[0]?.receiptHandle, VisibilityTimeout: 1 }],
    });
  });

  test('a record handed back without a known wait keeps the queue visibility timeout', async () => {
    apigw.on(CreateApiKeyCommand).rejects(new ServiceUnavailableException({ message: 'try later', ...meta(503) }));
    const run = buildHandler({ API_GATEWAY_RATE_PER_SECOND: '1000' });
    const event = sqsEvent(signup('acme'));

    const response = await run(event);

    expect(failedIds(response)).toEqual([event.Records[0]?.messageId]);
    expect(apigw).toHaveReceivedCommandTimes(CreateApiKeyCommand, Number(process.env.RETRY_MAX_ATTEMPTS ?? 6));
    expect(sqs).toHaveReceivedCommandTimes(ChangeMessageVisibilityBatchCommand, 0);
  });

  test("the queue URL comes from the record's queue ARN, asked once per function instance", async () => {
    apigw.on(CreateApiKeyCommand).rejects(new TooManyRequestsException({ message: 'slow down', retryAfterSeconds: '120', ...meta(429) }));
    const run = buildHandler();

    await run(sqsEvent(signup('acme')));
    await run(sqsEvent(signup('globex')));

    expect(sqs).toHaveReceivedCommandTimes(GetQueueUrlCommand, 1);
    expect(sqs).toHaveReceivedCommandWith(GetQueueUrlCommand, {
      QueueName: 'api-key-provisioner-test-signups',
      QueueOwnerAWSAccountId: '123456789012',
    });
    expect(sqs).toHaveReceivedCommandTimes(ChangeMessageVisibilityBatchCommand, 2);
  });

  test("when the queue URL cannot be found, the record is still handed back (the queue's own timeout applies)", async () => {
    apigw.on(CreateApiKeyCommand).rejects(new TooManyRequestsException({ message: 'slow down', retryAfterSeconds: '120', ...meta(429) }));
    sqs.on(GetQueueUrlCommand).rejects(new Error('AccessDenied'));
    const run = buildHandler();
    const event = sqsEvent(signup('acme'));

    const response = await run(event);

    expect(failedIds(response)).toEqual([event.Records[0]?.messageId]);
    expect(sqs).toHaveReceivedCommandTimes(ChangeMessageVisibilityBatchCommand, 0);
  });

  test('a failing ChangeMessageVisibilityBatch does not fail the batch', async () => {
    apigw.on(CreateApiKeyCommand).rejects(new TooManyRequestsException({ message: 'slow down', retryAfterSeconds: '120', ...meta(429) }));
    sqs.on(ChangeMessageVisibilityBatchCommand).rejects(new Error('receipt handle expired'));
    const run = buildHandler();
    const event = sqsEvent(signup('acme'));

    await expect(run(event)).resolves.toEqual({ batchItemFailures: [{ itemIdentifier: event.Records[0]?.messageId }] });
    expect(sqs).toHaveReceivedCommandTimes(ChangeMessageVisibilityBatchCommand, 1);
  });
});

describe('redeliveryDelaySeconds', () => {
  test.each([
    [1_000, 1],
    [1_001, 2],
    [1_500, 2],
    [2_000, 2],
    [120_000, 120],
  ])('retryAfterMs %i is %i s (rounded up)', (ms, seconds) => {
    expect(redeliveryDelaySeconds(new ThrottledError('x', ms))).toBe(seconds);
  });

  test.each([0, 1, 999])('at least 1 s (retryAfterMs %i)', (ms) => {
    expect(redeliveryDelaySeconds(new RetryableError('x', { retryAfterMs: ms }))).toBe(1);
  });

  test('at most 43200 s, SQS’s longest visibility timeout', () => {
    expect(redeliveryDelaySeconds(new ThrottledError('x', 43_200_000))).toBe(43_200);
    expect(redeliveryDelaySeconds(new ThrottledError('x', 43_200_001))).toBe(43_200);
    expect(redeliveryDelaySeconds(new DeadlineError('x', { retryAfterMs: 7 * 24 * 3_600_000 }))).toBe(43_200);
  });

  test('is read from an error in the cause chain', () => {
    const throttle = new ThrottledError('slow down', 5_000);
    expect(redeliveryDelaySeconds(new Error('wrapped', { cause: throttle }))).toBe(5);
    expect(redeliveryDelaySeconds(new Error('outer', { cause: new TransientError('middle', { cause: throttle }) }))).toBe(5);
  });

  test('the outermost known wait wins', () => {
    const error = new DeadlineError('deadline', { retryAfterMs: 3_000, cause: new ThrottledError('inner', 60_000) });
    expect(redeliveryDelaySeconds(error)).toBe(3);
  });

  test.each([
    ['a plain Error', new Error('boom')],
    ['a RetryableError without retryAfterMs', new TransientError('503')],
    ['a ThrottledError without Retry-After', new ThrottledError('429', undefined)],
    ['a chain with no retryAfterMs', new Error('outer', { cause: new TransientError('inner', { cause: new Error('root') }) })],
    ['a string', 'TooManyRequestsException'],
    ['undefined', undefined],
  ])('is undefined for %s', (_, error) => {
    expect(redeliveryDelaySeconds(error)).toBeUndefined();
  });
});
