import { randomUUID } from 'node:crypto';
import { DescribeSecretCommand, GetSecretValueCommand } from '@aws-sdk/client-secrets-manager';
import { loadConfig } from '../../lib/config.js';
import type { CompletionEvent } from '../../lib/pipeline/completion.js';
import { type BatchDeps, createDeps } from '../../lib/pipeline/deps.js';
import { createRotationHandler } from '../../lib/pipeline/rotation.js';
import { crashAfter } from '../helpers/crash.js';
import { lambdaContext, marketplaceNotification, snsEnvelope } from '../helpers/events.js';
import { PRINCIPALS, STACK_FUNCTION_ARNS } from '../helpers/iam.js';
import { type Pipeline, startPipeline } from '../helpers/pipeline.js';
import { actingAs } from '../realistic-aws/index.js';

/*
 * ROTATION_SCHEDULE (`--param rotationSchedule='rate(90 days)'`) through the realistic layer, as the provision
 * function's role (IAM switch on, ScheduleRotationPolicy in the stack): each customer's secret gets Secrets Manager's
 * schedule naming this function — RotateSecret with RotateImmediately false, which AWS answers by testing the
 * configuration with the function's testSecret and starting no rotation (tests/realistic-aws/rotation.ts) — and a
 * RotateSecret that fails hands the message back for a redelivery that finishes it. A revoke turns the leaver's
 * rotation off (CancelRotateSecret), crash-safe; a re-subscription puts it back, clearing what a cancelled rotation
 * left.
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

/** A Marketplace SNS notification for the customer at minute `minute` (its time orders the lifecycle). */
const notification = (action: string, customer: string, minute: number) => ({
  ...snsEnvelope(marketplaceNotification(action, customer, PRODUCT)),
  Timestamp: `2026-11-26T10:${String(minute).padStart(2, '0')}:00.000Z`,
});
const productSecret = (customer: string) => `keyprov/test/${PRODUCT}/${customer}/api-key`;
const describedSecret = (name: string) => pipeline.viaLayer.secrets.send(new DescribeSecretCommand({ SecretId: name }));
const calls = (operation: string) => pipeline.proxy.seen.filter((call) => call === `secretsmanager.${operation}`).length;
const keysOf = async (customer: string) => (await pipeline.apiKeys()).filter((key) => key.customerId === customer);
const currentValue = async (name: string) => {
  const { SecretString } = await pipeline.secrets.send(new GetSecretValueCommand({ SecretId: name, VersionStage: 'AWSCURRENT' }));
  return (JSON.parse(SecretString ?? '{}') as { value?: string }).value;
};

describe("a leaver's rotation", () => {
  test('is turned off by the revoke (asked once, not again for a repeat); a re-subscription puts the schedule back', async () => {
    const customer = `leaver-${randomUUID().slice(0, 8)}`;
    const name = productSecret(customer);
    await deliver(notification('subscribe-success', customer, 0));
    expect(await describedSecret(name)).toMatchObject({ RotationEnabled: true });
    const [cancels, rotates] = [calls('CancelRotateSecret'), calls('RotateSecret')];
    const unsubscribe = notification('unsubscribe-success', customer, 1);
    expect(await deliver(unsubscribe)).toEqual([expect.objectContaining({ type: 'api-key.revoked' })]);
    // Off, as DescribeSecret shows it through the layer: no more scheduled rotations failing `customer-left`.
    expect(await describedSecret(name)).toMatchObject({ RotationEnabled: false, RotationLambdaARN: STACK_FUNCTION_ARNS.provision });
    expect(calls('CancelRotateSecret') - cancels).toBe(1);
    await deliver(unsubscribe);
    expect(calls('CancelRotateSecret') - cancels).toBe(1);

    const [back] = await deliver(notification('subscribe-success', customer, 2));
    expect(back).toMatchObject({ type: 'api-key.enabled' });
    expect(await describedSecret(name)).toMatchObject({
      RotationEnabled: true,
      RotationLambdaARN: STACK_FUNCTION_ARNS.provision,
      RotationRules: { ScheduleExpression: SCHEDULE },
    });
    expect(calls('RotateSecret') - rotates).toBe(1);
    expect(pipeline.proxy.rotationProblems()).toEqual([]);
  });

  test.each([
    ['CancelRotateSecret', 'secrets', 'cancelRotation'],
    ["the record's revoked write", 'records', 'put'],
  ] as const)('a revoke stopped right after %s: its redelivery converges, CancelRotateSecret once', async (_step, port, method) => {
    const customer = `stopped-${method.toLowerCase()}-${randomUUID().slice(0, 8)}`;
    const name = productSecret(customer);
    await deliver(notification('subscribe-success', customer, 0));
    const cancels = calls('CancelRotateSecret');
    await pipeline.send(notification('unsubscribe-success', customer, 1));
    const first = await pipeline.drain({ handler: pipeline.handlerWith(crashAfter(port, method)), maxInvocations: 1 });
    expect(first.invocations).toBe(1);
    expect((await pipeline.drain()).drained).toBe(true);

    expect(await describedSecret(name)).toMatchObject({ RotationEnabled: false });
    // After the cancel, the redelivery's DescribeSecret shows it off; after the write, it finds the record revoked.
    expect(calls('CancelRotateSecret') - cancels).toBe(1);
    expect(await pipeline.record(name)).toMatchObject({ status: 'revoked' });
    expect((await keysOf(customer)).map((key) => key.enabled)).toEqual([false]);
    expect(await pipeline.deadLetterIds()).toEqual([]);
  });

  test('a CancelRotateSecret refused hands the revoke back; its redelivery turns the rotation off and revokes', async () => {
    const customer = `cancel-refused-${randomUUID().slice(0, 8)}`;
    await deliver(notification('subscribe-success', customer, 0));
    pipeline.proxy.inject({ target: 'secretsmanager.CancelRotateSecret', status: 400, errorType: 'AccessDeniedException', times: 1 });
    const events = await deliver(notification('unsubscribe-success', customer, 1));
    expect(pipeline.proxy.injected()).toEqual([1]);
    pipeline.proxy.clear();
    expect(events).toEqual([expect.objectContaining({ type: 'api-key.revoked' })]);
    expect(await describedSecret(productSecret(customer))).toMatchObject({ RotationEnabled: false });
    expect(await pipeline.deadLetterIds()).toEqual([]);
  });

  /** One rotation step as Secrets Manager invokes the function (its role), through `override`'s dependencies. */
  const rotationStep = (name: string, token: string, Step: string, override = (deps: BatchDeps) => deps) => {
    const rotate = createRotationHandler(override(createDeps(loadConfig(process.env))));
    return actingAs(PRINCIPALS.provision, () => rotate({ Step, SecretId: name, ClientRequestToken: token }, lambdaContext()))();
  };

  test.each([
    ['before its switch: createSecret done', false],
    ['switched: finishSecret stopped after its record write, AWSCURRENT not moved', true],
  ])('a rotation in progress at the revoke (%s): cancelled; a re-subscription clears its AWSPENDING', async (_case, switched) => {
    const customer = `in-progress-${switched ? 'switched' : 'created'}-${randomUUID().slice(0, 8)}`;
    const name = productSecret(customer);
    await deliver(notification('subscribe-success', customer, 0));
    const token = randomUUID();
    await rotationStep(name, token, 'createSecret');
    if (switched) {
      for (const step of ['setSecret', 'testSecret']) await rotationStep(name, token, step);
      await expect(rotationStep(name, token, 'finishSecret', crashAfter('records', 'put'))).rejects.toThrow('injected crash');
      expect(await pipeline.record(name)).toMatchObject({ rolling: { switching: true } });
    }
    await deliver(notification('unsubscribe-success', customer, 1));
    // Cancelled; the labels stay as the rotation left them (AWS: "it can leave the VersionStage labels in an unexpected state").
    const cancelled = await describedSecret(name);
    expect(cancelled.RotationEnabled).toBe(false);
    expect(cancelled.VersionIdsToStages?.[token]).toEqual(['AWSPENDING']);

    const [back] = await deliver(notification('subscribe-success', customer, 2));
    expect(back).toMatchObject({ type: 'api-key.enabled' });
    const after = await describedSecret(name);
    expect(after).toMatchObject({ RotationEnabled: true, RotationRules: { ScheduleExpression: SCHEDULE } });
    expect(Object.values(after.VersionIdsToStages ?? {}).flat()).not.toContain('AWSPENDING');
    // The secret's current value is the enabled key's: the switched roll's labels finished, the other's dropped.
    const enabled = (await keysOf(customer)).filter((key) => key.enabled);
    expect(enabled).toHaveLength(1);
    expect((await currentValue(name)) === enabled[0]?.value).toBe(true);
    expect(pipeline.proxy.rotationProblems()).toEqual([]);
    expect(await pipeline.deadLetterIds()).toEqual([]);
  });
});
