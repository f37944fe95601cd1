import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { ListSecretsCommand } from '@aws-sdk/client-secrets-manager';
import type { CompletionEvent, ProvisionedEvent } from '../../lib/pipeline/completion.js';
import { crashAfter } from '../helpers/crash.js';
import { eventBridgeEnvelope, marketplaceNotification, signup, snsEnvelope } from '../helpers/events.js';
import { type Pipeline, startPipeline } from '../helpers/pipeline.js';

let pipeline: Pipeline;
beforeAll(async () => {
  pipeline = await startPipeline();
});
afterAll(() => pipeline.close());

const provisioned = (events: CompletionEvent[], customerId: string) =>
  events.filter((e): e is ProvisionedEvent => e.type === 'api-key.provisioned' && e.customerId === customerId);

/**
 * The promise, read from moto: for each customer exactly one API key, enabled, and exactly one secret holding its
 * value and id; every completion event for the customer carries the same eventId.
 */
async function expectExactlyOnce(customerIds: string[]): Promise<void> {
  const keys = await pipeline.apiKeys();
  const { SecretList = [] } = await pipeline.secrets.send(new ListSecretsCommand({ MaxResults: 100 }));
  const events = await pipeline.completionEvents();
  for (const customerId of customerIds) {
    const own = keys.filter((k) => k.customerId === customerId);
    expect({ customerId, keys: own.length }).toEqual({ customerId, keys: 1 });
    const [key] = own;
    expect(key?.enabled).toBe(true);
    const secrets = SecretList.filter((s) => s.Name?.endsWith(`/${customerId}/api-key`));
    expect({ customerId, secrets: secrets.length }).toEqual({ customerId, secrets: 1 });
    const stored = await pipeline.secretJson(secrets[0]?.Name ?? '');
    expect(stored).toMatchObject({ value: key?.value, apiKeyId: key?.id, customerId });
    const announced = provisioned(events, customerId);
    expect(announced.length).toBeGreaterThan(0);
    expect(new Set(announced.map((e) => e.eventId)).size).toBe(1);
    expect(new Set(announced.map((e) => e.apiKeyId))).toEqual(new Set([key?.id]));
  }
}

describe('a function that stops right after a step: the next delivery finishes the work', () => {
  test.each([
    ['GetItem', 'records', 'get', 1],
    ['CreateSecret', 'secrets', 'createSecret', 1],
    ['PutItem-pending', 'records', 'put', 1],
    ['CreateApiKey', 'apiKeys', 'createApiKey', 1],
    ['PutItem-active', 'records', 'put', 2],
    ['SendMessageBatch', 'completions', 'sendBatch', 1],
  ] as const)('stopped after %s', async (step, port, method, nth) => {
    const customerId = `crash-after-${step.toLowerCase()}`;
    await pipeline.send(signup(customerId));

    const first = await pipeline.drain({ handler: pipeline.handlerWith(crashAfter(port, method, nth)), maxInvocations: 1 });
    expect(first.invocations).toBe(1);
    const second = await pipeline.drain();

    expect(second.drained).toBe(true);
    await expectExactlyOnce([customerId]);
    const outcomes = provisioned(await pipeline.completionEvents(), customerId).map((e) => e.outcome);
    // A crash after the last write (the active record) leaves nothing to do; before it, the next delivery finishes the work.
    const expected = { 'PutItem-active': ['already-provisioned'], SendMessageBatch: ['provisioned', 'already-provisioned'] } as Record<
      string,
      string[]
    >;
    expect(outcomes).toEqual(expected[step] ?? ['provisioned']);
  });

  test.each([
    ['CreateApiKey', 'DynamoDB_20120810.PutItem'],
    ['CreateSecret', undefined],
  ])('a function process killed (SIGKILL) after %s', async (step, heldTarget) => {
    const customerId = `killed-after-${step.toLowerCase()}`;
    await pipeline.send(signup(customerId));
    let arrived!: () => void;
    const stepDone = new Promise<void>((resolve) => {
      arrived = resolve;
    });
    // Hold the request that follows the step: when it arrives, the step is done and the process is killed.
    // After CreateApiKey comes the record's active write (its body names the status; the pending write came before).
    if (heldTarget)
      pipeline.proxy.inject({
        target: heldTarget,
        bodyIncludes: '{"S":"active"}',
        status: 500,
        errorType: 'Held',
        hold: true,
        times: 1,
        onMatch: () => arrived(),
      });
    else
      pipeline.proxy.inject({
        method: 'POST',
        path: '/apikeys',
        status: 500,
        errorType: 'Held',
        hold: true,
        times: 1,
        onMatch: () => arrived(),
      });

    // One process, node itself with tsx as a loader: SIGKILL to a tsx wrapper would leave its node child running,
    // consuming the next suite's queue.
    const child = spawn(process.execPath, ['--import', 'tsx', join('tests', 'helpers', 'crash-child.ts')], {
      env: { ...process.env, SIGNUP_QUEUE_URL: pipeline.queues.signupUrl, SIGNUP_QUEUE_ARN: pipeline.queues.signupArn },
      stdio: 'ignore',
    });
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_, signal) => resolve(signal)));
    await stepDone;
    child.kill('SIGKILL');
    expect(await exited).toBe('SIGKILL');

    await pipeline.drain();
    await expectExactlyOnce([customerId]);
  });
});

describe('duplicates and replays', () => {
  const customers = ['dup-signup', 'dup-eventbridge', 'dup-marketplace-sns', 'dup-marketplace-raw'];
  const bodies = [
    signup('dup-signup', { eventId: 'evt-dup-1' }),
    eventBridgeEnvelope(signup('dup-eventbridge')),
    snsEnvelope(marketplaceNotification('subscribe-success', 'dup-marketplace-sns')),
    marketplaceNotification('subscribe-success', 'dup-marketplace-raw'),
    'not json at all',
  ];

  test('every message of a mixed batch delivered three times, shuffled, to three concurrent instances', async () => {
    const copies = [...bodies, ...bodies, ...bodies]
      .map((body) => ({ body, order: Math.random() }))
      .sort((a, b) => a.order - b.order)
      .map((c) => c.body);
    await pipeline.send(...copies);

    const run = await pipeline.drain({ concurrency: 3, batchSize: 5 });

    expect(run.drained).toBe(true);
    expect(await pipeline.deadLetterIds()).toEqual([]);
    await expectExactlyOnce(customers);
    // At least one event per delivery: SQS may deliver a copy again when its visibility timeout lapses mid-batch.
    for (const customerId of customers) expect(provisioned(await pipeline.completionEvents(), customerId).length).toBeGreaterThanOrEqual(3);
  });

  test('the same signup in two batches handled at the same moment converges on one key and one secret', async () => {
    const body = signup('dup-simultaneous');
    await pipeline.send(body, body);

    await pipeline.drain({ concurrency: 2, batchSize: 1 });

    await expectExactlyOnce(['dup-simultaneous']);
  });

  test('a whole DLQ replayed after an incident: provisioned ones are re-announced, the rest are provisioned, nothing doubles', async () => {
    // The incident: the completion queue refuses everything, so provisioned records keep coming back and end in the DLQ.
    pipeline.proxy.inject({ target: 'AmazonSQS.SendMessageBatch', status: 500, errorType: 'InternalError', times: Infinity });
    // ... and API Gateway throttles one customer so hard that it never gets its key.
    pipeline.proxy.inject({
      method: 'POST',
      path: '/apikeys',
      bodyIncludes: '"dlq-never-created"',
      status: 429,
      errorType: 'TooManyRequestsException',
      times: Infinity,
    });
    await pipeline.send(signup('dlq-provisioned-1'), signup('dlq-provisioned-2'), signup('dlq-never-created'));
    await pipeline.drain();
    expect(await pipeline.deadLetterIds()).toHaveLength(3);
    pipeline.proxy.clear();

    expect(await pipeline.replayDeadLetters()).toBe(3);
    await pipeline.drain();

    expect(await pipeline.deadLetterIds()).toEqual([]);
    await expectExactlyOnce(['dlq-provisioned-1', 'dlq-provisioned-2', 'dlq-never-created']);
    const events = await pipeline.completionEvents();
    expect(provisioned(events, 'dlq-provisioned-1').map((e) => e.outcome)).toEqual(['already-provisioned']);
    expect(provisioned(events, 'dlq-never-created').map((e) => e.outcome)).toEqual(['provisioned']);
  });
});

describe('what provisioning costs, counted at the HTTP level', () => {
  const count = (seen: string[]) => Object.fromEntries([...new Set(seen)].sort().map((op) => [op, seen.filter((s) => s === op).length]));

  test('a new key: 1 API Gateway call; a repeat: none', async () => {
    pipeline.proxy.seen.splice(0);
    await pipeline.send(signup('cost-1'), signup('cost-2'));
    const firstRun = await pipeline.drain({ batchSize: 2 });
    const first = count(pipeline.proxy.seen);

    pipeline.proxy.seen.splice(0);
    await pipeline.send(signup('cost-1'), signup('cost-2'));
    const repeatRun = await pipeline.drain({ batchSize: 2 });
    const repeat = count(pipeline.proxy.seen);

    // One SendMessageBatch per invocation, whatever the number of records in it. Per new key: the record read, the
    // value stored (CreateSecret, the only Secrets Manager call), the record written pending, the key, the record
    // written active — a conditional write, so a concurrent revoke wins without a second look. Before the record
    // table (commit 07ebde9): GetSecretValue 2, CreateSecret 1, PutSecretValue 1 per key, the record in the secret.
    expect(first).toEqual({
      'AmazonSQS.SendMessageBatch': firstRun.invocations,
      'DynamoDB_20120810.GetItem': 2,
      'DynamoDB_20120810.PutItem': 4,
      'POST /apikeys': 2,
      'secretsmanager.CreateSecret': 2,
    });
    expect(repeat).toEqual({ 'AmazonSQS.SendMessageBatch': repeatRun.invocations, 'DynamoDB_20120810.GetItem': 2 });
  });
});
