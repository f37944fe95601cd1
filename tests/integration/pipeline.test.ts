import { GetSecretValueCommand } from '@aws-sdk/client-secrets-manager';
import type { ProvisionedEvent } from '../../lib/pipeline/completion.js';
import { sampleEvent } from '../helpers/events.js';
import { type Pipeline, startPipeline } from '../helpers/pipeline.js';

let pipeline: Pipeline;
beforeAll(async () => {
  pipeline = await startPipeline();
});
afterAll(() => pipeline.close());

const bodiesOf = (file: string) => sampleEvent(file).Records.map((r) => r.body);

describe('the sample events, through real SQS, API Gateway and Secrets Manager', () => {
  const files = [
    'signup',
    'signup-eventbridge',
    'marketplace-subscribe-sns',
    'marketplace-subscribe-raw',
    'dlq-replay',
    'marketplace-unsubscribe-pending-sns',
    'invalid',
  ];
  let sent: Map<string, string>;

  beforeAll(async () => {
    const bodies = files.flatMap((file) => bodiesOf(file).map((body) => ({ file, body })));
    const ids = await pipeline.send(...bodies.map((b) => b.body));
    sent = new Map(ids.map((id, i) => [id, bodies[i]?.file ?? '']));
    const run = await pipeline.drain();
    expect(run.drained).toBe(true);
  });

  test('every message has exactly one completion event, and none went to the DLQ', async () => {
    const events = await pipeline.completionEvents();
    expect(events.map((e) => e.messageId).sort()).toEqual([...sent.keys()].sort());
    expect(await pipeline.deadLetterIds()).toEqual([]);
  });

  test('each event source ends as expected', async () => {
    const events = await pipeline.completionEvents();
    const byFile = (file: string) =>
      events.filter((e) => sent.get(e.messageId) === file).map((e) => [e.type, 'customerId' in e ? e.customerId : undefined]);
    expect(byFile('signup')).toEqual(
      expect.arrayContaining([
        ['api-key.provisioned', 'acme-corp'],
        ['api-key.provisioned', 'globex-42'],
      ]),
    );
    expect(byFile('signup-eventbridge')).toEqual([['api-key.provisioned', 'initech']]);
    expect(byFile('marketplace-subscribe-sns')).toEqual([['api-key.provisioned', 'QWxwaGFCdXllcjAx']]);
    expect(byFile('marketplace-subscribe-raw')).toEqual([['api-key.provisioned', 'QnJhdm9CdXllcjAy']]);
    expect(byFile('dlq-replay')).toHaveLength(2);
    expect(byFile('marketplace-unsubscribe-pending-sns')).toEqual([['api-key.notification-acknowledged', 'QWxwaGFCdXllcjAx']]);
    expect(
      events
        .filter((e) => sent.get(e.messageId) === 'invalid')
        .map((e) => e.type === 'api-key.provisioning-failed' && e.reason)
        .sort(),
    ).toEqual(['invalid-customer-id', 'invalid-json', 'invalid-tags', 'unrecognized-event']);
  });

  test('each provisioned key exists in API Gateway, enabled, with its customerId and tags, and its value is the one in the secret', async () => {
    const provisioned = (await pipeline.completionEvents()).filter((e): e is ProvisionedEvent => e.type === 'api-key.provisioned');
    const keys = await pipeline.apiKeys();
    expect(provisioned).toHaveLength(7);
    expect(keys).toHaveLength(7);
    for (const event of provisioned) {
      const key = keys.find((k) => k.id === event.apiKeyId);
      expect(key).toMatchObject({ name: event.apiKeyName, customerId: event.customerId, enabled: true });
      expect(key?.tags).toMatchObject({ 'managed-by': 'api-key-provisioner', stage: 'test' });
      const secret = await pipeline.secretJson(event.secretName);
      expect(secret).toMatchObject({ apiKeyId: event.apiKeyId, customerId: event.customerId });
      expect(secret.value).toBe(key?.value);
      const { ARN } = await pipeline.secrets.send(new GetSecretValueCommand({ SecretId: event.secretName }));
      expect(event.secretArn).toBe(ARN);
      expect(JSON.stringify(event)).not.toContain(String(key?.value));
    }
    const acme = keys.find((k) => k.customerId === 'acme-corp');
    expect(acme?.tags).toMatchObject({ team: 'growth', 'signup-channel': 'web' });
  });
});

describe('retries through SQS', () => {
  test('a message that fails transiently in every attempt of one delivery succeeds on redelivery', async () => {
    const attempts = Number(process.env.RETRY_MAX_ATTEMPTS ?? 6);
    pipeline.proxy.inject({
      method: 'POST',
      path: '/apikeys',
      bodyIncludes: '"flaky-co"',
      status: 503,
      errorType: 'ServiceUnavailableException',
      times: attempts,
    });
    const [id] = await pipeline.send({ customerId: 'flaky-co' });

    const run = await pipeline.drain();

    expect(run.handedBack.get(id ?? '')).toBe(1);
    const events = (await pipeline.completionEvents()).filter((e) => e.messageId === id);
    expect(events).toEqual([expect.objectContaining({ type: 'api-key.provisioned', customerId: 'flaky-co' })]);
    expect((await pipeline.apiKeys()).filter((k) => k.customerId === 'flaky-co')).toHaveLength(1);
  });

  test('a poison message that never succeeds moves to the DLQ after maxReceiveCount, without holding up its batch', async () => {
    pipeline.proxy.inject({
      method: 'POST',
      path: '/apikeys',
      bodyIncludes: '"poison-co"',
      status: 429,
      errorType: 'TooManyRequestsException',
      times: Infinity,
    });
    const [poison, good] = await pipeline.send({ customerId: 'poison-co' }, { customerId: 'neighbour-co' });

    const run = await pipeline.drain();

    expect(run.drained).toBe(true);
    expect(run.handedBack.get(poison ?? '')).toBe(2);
    expect(await pipeline.deadLetterIds()).toEqual([poison]);
    const events = await pipeline.completionEvents();
    expect(events.filter((e) => e.messageId === poison)).toEqual([]);
    expect(events.filter((e) => e.messageId === good)).toEqual([
      expect.objectContaining({ type: 'api-key.provisioned', customerId: 'neighbour-co' }),
    ]);
  });
});
