import { randomUUID } from 'node:crypto';
import { DescribeSecretCommand, GetSecretValueCommand } from '@aws-sdk/client-secrets-manager';
import type { CompletionEvent } from '../../lib/pipeline/completion.js';
import { marketplaceNotification, snsEnvelope } from '../helpers/events.js';
import { STACK_FUNCTION_ARNS } from '../helpers/iam.js';
import { type Pipeline, startPipeline } from '../helpers/pipeline.js';

/*
 * ROTATION_SCHEDULE (`--param rotationSchedule='rate(90 days)'`) through the realistic layer, as the provision
 * function's role (IAM switch on, ScheduleRotationPolicy in the stack): each customer's secret gets Secrets Manager's
 * schedule naming this function — RotateSecret with RotateImmediately false, which AWS answers by testing the
 * configuration with the function's testSecret and starting no rotation (tests/realistic-aws/rotation.ts) — and a
 * RotateSecret that fails hands the message back for a redelivery that finishes it.
 */

const SCHEDULE = 'rate(90 days)';
const PRODUCT = 'prod4k2j9x8l7';
let pipeline: Pipeline;

beforeAll(async () => {
  pipeline = await startPipeline(undefined, async () => ({ ROTATION_SCHEDULE: SCHEDULE }));
});
afterAll(() => pipeline.close());

const secretName = (customer: string) => `keyprov/test/_/${customer}/api-key`;

async function deliver(body: unknown): Promise<CompletionEvent[]> {
  await pipeline.clearCompletions();
  await pipeline.send(body);
  await pipeline.drain();
  return pipeline.completionEvents();
}

/** What DescribeSecret answers through the layer (moto alone would show no schedule and an AWSPENDING version). */
const described = (customer: string) => pipeline.viaLayer.secrets.send(new DescribeSecretCommand({ SecretId: secretName(customer) }));

/** The secret's one version is AWSCURRENT and holds the key's value: nothing rolled, no rotation under way. */
async function expectNotRolled(customer: string, apiKeyId: string): Promise<void> {
  const { VersionIdsToStages } = await described(customer);
  expect(Object.values(VersionIdsToStages ?? {})).toEqual([['AWSCURRENT']]);
  const { SecretString } = await pipeline.secrets.send(
    new GetSecretValueCommand({ SecretId: secretName(customer), VersionStage: 'AWSCURRENT' }),
  );
  const keys = (await pipeline.apiKeys()).filter((key) => key.customerId === customer);
  expect(keys.map((key) => key.id)).toEqual([apiKeyId]);
  expect((JSON.parse(SecretString ?? '{}') as { value?: string }).value === keys[0]?.value).toBe(true);
  expect((await pipeline.record(secretName(customer)))?.rolling).toBeUndefined();
}

test("a new customer's secret gets the schedule naming this function; no rotation starts, the key is not rolled", async () => {
  const customer = `scheduled-${randomUUID().slice(0, 8)}`;
  const [event] = await deliver({ customerId: customer, eventId: `signup-${customer}` });
  expect(event).toMatchObject({ type: 'api-key.provisioned', outcome: 'provisioned' });
  expect(await described(customer)).toMatchObject({
    RotationEnabled: true,
    RotationLambdaARN: STACK_FUNCTION_ARNS.provision,
    RotationRules: { ScheduleExpression: SCHEDULE },
  });
  await expectNotRolled(customer, String((event as { apiKeyId: string }).apiKeyId));
  // Secrets Manager's configuration test ran this function's testSecret, and it passed (else a 500 of the layer).
  expect(pipeline.proxy.seen.filter((call) => call === 'secretsmanager.RotateSecret')).toHaveLength(1);
  expect(pipeline.proxy.rotationProblems()).toEqual([]);
});

test('a RotateSecret refused after CreateSecret hands the message back; the redelivery finishes: schedule, one key, provisioned', async () => {
  const customer = `refused-${randomUUID().slice(0, 8)}`;
  pipeline.proxy.inject({ target: 'secretsmanager.RotateSecret', status: 400, errorType: 'AccessDeniedException', times: 1 });
  const events = await deliver({ customerId: customer, eventId: `signup-${customer}` });
  expect(pipeline.proxy.injected()).toEqual([1]);
  pipeline.proxy.clear();
  expect(events).toEqual([expect.objectContaining({ type: 'api-key.provisioned', outcome: 'provisioned' })]);
  expect(await pipeline.deadLetterIds()).toEqual([]);
  expect(await described(customer)).toMatchObject({ RotationEnabled: true, RotationRules: { ScheduleExpression: SCHEDULE } });
  await expectNotRolled(customer, String((events[0] as { apiKeyId: string }).apiKeyId));
});

test('a returning customer whose secret has the schedule already is not asked again', async () => {
  const customer = `returning-${randomUUID().slice(0, 8)}`;
  const at = (minute: number) => ({
    ...snsEnvelope(marketplaceNotification(minute === 1 ? 'unsubscribe-success' : 'subscribe-success', customer, PRODUCT)),
    Timestamp: `2026-11-26T10:0${minute}:00.000Z`,
  });
  await deliver(at(0));
  const rotateSecrets = () => pipeline.proxy.seen.filter((call) => call === 'secretsmanager.RotateSecret').length;
  const before = rotateSecrets();
  await deliver(at(1));
  const [back] = await deliver(at(2));
  expect(back).toMatchObject({ type: 'api-key.enabled' });
  expect(rotateSecrets()).toBe(before);
  expect(
    await pipeline.viaLayer.secrets.send(new DescribeSecretCommand({ SecretId: `keyprov/test/${PRODUCT}/${customer}/api-key` })),
  ).toMatchObject({ RotationEnabled: true, RotationRules: { ScheduleExpression: SCHEDULE } });
});
