import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { DescribeSecretCommand, GetSecretValueCommand } from '@aws-sdk/client-secrets-manager';
import type { SQSBatchResponse } from 'aws-lambda';
import { loadConfig } from '../../lib/config.js';
import type { KeyRecord } from '../../lib/customer-key/key-record.js';
import type { CompletionEvent } from '../../lib/pipeline/completion.js';
import { type BatchDeps, createDeps } from '../../lib/pipeline/deps.js';
import { createRotationHandler } from '../../lib/pipeline/rotation.js';
import { crashAfter } from '../helpers/crash.js';
import { lambdaContext, licenseEvent, marketplaceNotification, snsEnvelope, sqsEvent } from '../helpers/events.js';
import { PRINCIPALS, STACK_FUNCTION_ARNS } from '../helpers/iam.js';
import { type Pipeline, startPipeline } from '../helpers/pipeline.js';
import { actingAs } from '../realistic-aws/index.js';

/*
 * ROTATION_SCHEDULE (`--param rotationSchedule='rate(90 days)'`) through the realistic layer, as the provision
 * function's role (IAM switch on, ScheduleRotationPolicy in the stack): each customer's secret gets Secrets Manager's
 * schedule naming this function — RotateSecret with RotateImmediately false, which AWS answers by testing the
 * configuration with the function's testSecret and starting no rotation (tests/realistic-aws/rotation.ts) — and a
 * RotateSecret that fails hands the message back for a redelivery that finishes it. A revoke turns the leaver's
 * rotation off (CancelRotateSecret), crash-safe and without breaking the grant/revoke races; a re-subscription puts
 * it back, clearing what a cancelled rotation left.
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

/**
 * `deps` with `port.method` held, the first time `when(args)` is true, until `release()`; `arrived` resolves then.
 * A grant and a revoke of one customer interleaved at the worst moment, as tests/integration/record-races.test.ts does.
 */
function holdOnce(port: 'secrets' | 'records', method: string, when: (args: unknown[]) => boolean = () => true) {
  let reached!: () => void;
  let release!: () => void;
  const arrived = new Promise<void>((resolve) => {
    reached = resolve;
  });
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  let held = false;
  const override = (deps: BatchDeps): BatchDeps => {
    const original = deps[port] as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
    const wrapped = {
      ...original,
      [method]: async (...args: unknown[]) => {
        if (!held && when(args)) {
          held = true;
          reached();
          await released;
        }
        return original[method]?.(...args);
      },
    };
    return { ...deps, [port]: wrapped };
  };
  return { override, arrived, release };
}

const statusWritten = (status: string) => (args: unknown[]) => (args[1] as KeyRecord).status === status;
const invoke = (handler: ReturnType<Pipeline['handlerWith']>, body: unknown) =>
  handler(sqsEvent(body), lambdaContext(30_000)) as Promise<SQSBatchResponse>;

describe('the schedule and the grant/revoke races (revoke.ts): whoever wins the record, the rotation follows it', () => {
  test('a revoke that turned the rotation off, then lost its write to a grant of another license, puts it back', async () => {
    const account = String(100_000_000_000 + Math.floor(Math.random() * 899_999_999_999));
    const name = productSecret(account);
    const license = (n: number) => `arn:aws:license-manager::386209384616:license:l-${account}-${n}`;
    const event = (kind: 'Updated' | 'Deprovisioned', n: number, minute: number) =>
      licenseEvent(kind, { productCode: PRODUCT, accountId: account, time: `2026-11-26T11:0${minute}:00.000Z`, licenseArn: license(n) });
    await deliver(event('Updated', 1, 0));
    const revoke = holdOnce('records', 'put', statusWritten('revoked'));
    const revoking = invoke(pipeline.handlerWith(revoke.override), event('Deprovisioned', 1, 1));
    await revoke.arrived;
    expect((await describedSecret(name)).RotationEnabled).toBe(false);
    // License 2 meanwhile: the key exists, the record notes the license (the grant writes, the revoke then loses).
    expect((await invoke(pipeline.handlerWith(), event('Updated', 2, 2))).batchItemFailures).toEqual([]);
    revoke.release();
    expect((await revoking).batchItemFailures).toEqual([]);

    expect(await pipeline.record(name)).toMatchObject({ status: 'active' });
    expect((await keysOf(account)).map((key) => key.enabled)).toEqual([true]);
    expect(await describedSecret(name)).toMatchObject({ RotationEnabled: true, RotationRules: { ScheduleExpression: SCHEDULE } });
  });

  test('a stale grant that put the schedule on after the revoke looked, then lost to the revoke, turns it off again', async () => {
    const customer = `stale-grant-${randomUUID().slice(0, 8)}`;
    const name = productSecret(customer);
    // The grant: secret and pending record made, DescribeSecret saw no schedule; held before its RotateSecret.
    const grant = holdOnce('secrets', 'scheduleRotation');
    const granting = invoke(pipeline.handlerWith(grant.override), notification('subscribe-success', customer, 0));
    await grant.arrived;
    // The revoke, newer, finds the pending record (its key made disabled, the rotation off already) and wins.
    expect((await invoke(pipeline.handlerWith(), notification('unsubscribe-success', customer, 5))).batchItemFailures).toEqual([]);
    // GetApiKeys' listing lag (the layer's 300 ms): the grant's 409 then finds the revoke's key at once.
    await sleep(600);
    grant.release();
    expect((await granting).batchItemFailures).toEqual([]);

    expect(await pipeline.record(name)).toMatchObject({ status: 'revoked' });
    expect((await keysOf(customer)).map((key) => key.enabled)).toEqual([false]);
    expect(await describedSecret(name)).toMatchObject({ RotationEnabled: false });
  });

  test('a stale grant whose turning off came after a newer grant put the schedule back, and lost to it, puts it back', async () => {
    const customer = `late-stale-${randomUUID().slice(0, 8)}`;
    const name = productSecret(customer);
    await deliver(notification('subscribe-success', customer, 0));
    await deliver(notification('unsubscribe-success', customer, 1));
    // The newer grant re-enables the key and puts the schedule back; held before its active write.
    const newer = holdOnce('records', 'put', statusWritten('active'));
    const granting = invoke(pipeline.handlerWith(newer.override), notification('subscribe-success', customer, 5));
    await newer.arrived;
    // A stale grant (a late copy of the first subscribe) secures the revoked record: rotation off, key disabled; held
    // before the write that confirms it.
    const stale = holdOnce('records', 'put', statusWritten('revoked'));
    const securing = invoke(pipeline.handlerWith(stale.override), notification('subscribe-success', customer, 0));
    await stale.arrived;
    expect((await describedSecret(name)).RotationEnabled).toBe(false);
    newer.release();
    expect((await granting).batchItemFailures).toEqual([]);
    stale.release();
    expect((await securing).batchItemFailures).toEqual([]);

    expect(await pipeline.record(name)).toMatchObject({ status: 'active' });
    expect((await keysOf(customer)).map((key) => key.enabled)).toEqual([true]);
    expect(await describedSecret(name)).toMatchObject({ RotationEnabled: true, RotationRules: { ScheduleExpression: SCHEDULE } });
  });
});
