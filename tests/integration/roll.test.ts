import { randomUUID } from 'node:crypto';
import { GetApiKeyCommand, GetApiKeysCommand, NotFoundException } from '@aws-sdk/client-api-gateway';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DescribeSecretCommand, GetSecretValueCommand } from '@aws-sdk/client-secrets-manager';
import type { Context } from 'aws-lambda';
import { loadSweepConfig } from '../../lib/maintenance/config.js';
import { createSweepInstance } from '../../lib/maintenance/deps.js';
import { sweep } from '../../lib/maintenance/sweep.js';
import { reconcile } from '../../lib/ops/reconcile/reconcile.js';
import { storesFor } from '../../lib/ops/reconcile/stores.js';
import type { CompletionEvent } from '../../lib/pipeline/completion.js';
import { crashAfter } from '../helpers/crash.js';
import { lambdaContext, marketplaceNotification, snsEnvelope } from '../helpers/events.js';
import { PRINCIPALS } from '../helpers/iam.js';
import { KEY_RECORDS_TABLE_NAME, type Pipeline, startPipeline } from '../helpers/pipeline.js';
import { runTool } from '../helpers/run-command.js';
import { createApiStage, createUsagePlan, usagePlanKeyIds } from '../helpers/usage-plans.js';
import { actingAs } from '../realistic-aws/index.js';

/*
 * Rolling a key through the realistic layer, as the provision function's role (IAM switch on): a roll request on
 * the signup queue, and Secrets Manager rotation's four calls, make one new key (same customer id, tags and plan)
 * while the old one works until its grace ends; the secret's AWSCURRENT is the new value, AWSPREVIOUS the old one;
 * the sweep deletes the old key when the grace is over; repeats, leavers, revokes during the overlap and crashes.
 * Key values are compared, never printed.
 */

const PRODUCT = 'prod4k2j9x8l7';
const HOUR_MS = 3_600_000;
let pipeline: Pipeline;
let planId: string;

beforeAll(async () => {
  pipeline = await startPipeline(undefined, async ({ apigw }) => {
    planId = await createUsagePlan(apigw, 'gold', [await createApiStage(apigw, 'roll-api')]);
    return { USAGE_PLANS: JSON.stringify({ [PRODUCT]: planId }), ROLL_GRACE_SECONDS: '3600' };
  });
});
afterAll(() => pipeline.close());

const secretName = (customer: string) => `keyprov/test/${PRODUCT}/${customer}/api-key`;
const keyName = (customer: string) => `keyprov/test/${PRODUCT}/${customer}`;
const recordOf = async (customer: string) => (await pipeline.record(secretName(customer))) ?? {};

async function deliver(...bodies: unknown[]): Promise<CompletionEvent[]> {
  await pipeline.clearCompletions();
  for (const body of bodies) {
    await pipeline.send(body);
    await pipeline.drain();
  }
  return pipeline.completionEvents();
}

const rollRequest = (customer: string, extra: Record<string, unknown> = {}) => ({
  action: 'roll',
  customerId: customer,
  productCode: PRODUCT,
  eventId: `roll-${randomUUID()}`,
  occurredAt: new Date().toISOString(),
  ...extra,
});

/** Marketplace's unsubscribe-success for the customer, in its SNS envelope. */
const unsubscribe = (customer: string) => snsEnvelope(marketplaceNotification('unsubscribe-success', customer, PRODUCT));

/** A customer with a key: signed up, drained; its key id. */
async function customerWithKey(customer: string): Promise<string> {
  const [event] = await deliver({ customerId: customer, productCode: PRODUCT, eventId: `signup-${customer}` });
  expect(event).toMatchObject({ type: 'api-key.provisioned', outcome: 'provisioned' });
  return String((event as { apiKeyId: string }).apiKeyId);
}

/** The customer's keys in moto, by name, with their values (compared only). */
async function keysOf(customer: string) {
  const { items } = await pipeline.apigw.send(new GetApiKeysCommand({ nameQuery: keyName(customer), includeValues: true, limit: 500 }));
  return (items ?? []).filter((key) => key.name === keyName(customer));
}

async function keyExists(apiKeyId: string): Promise<boolean> {
  try {
    await pipeline.apigw.send(new GetApiKeyCommand({ apiKey: apiKeyId }));
    return true;
  } catch (error) {
    if (error instanceof NotFoundException) return false;
    throw error;
  }
}

async function secretValue(customer: string, stage: 'AWSCURRENT' | 'AWSPREVIOUS'): Promise<string | undefined> {
  const { SecretString } = await pipeline.secrets.send(new GetSecretValueCommand({ SecretId: secretName(customer), VersionStage: stage }));
  return (JSON.parse(SecretString ?? '{}') as { value?: string }).value;
}

/** One sweep run as the sweep's role, as of `asOf`. */
function runSweep(asOf: Date) {
  const instance = createSweepInstance(loadSweepConfig({ ...process.env, RETIRE_AFTER_DAYS: '30', SWEEP_RATE_PER_SECOND: '5' }));
  return actingAs(PRINCIPALS.sweep, () =>
    sweep(
      instance.forRun(() => 60_000),
      { asOf, countKeys: false },
    ),
  )();
}

describe('a roll request', () => {
  const customer = 'roll-basic';
  let oldKeyId: string;
  let request: ReturnType<typeof rollRequest>;
  let rolled: CompletionEvent | undefined;

  beforeAll(async () => {
    oldKeyId = await customerWithKey(customer);
    request = rollRequest(customer, { graceSeconds: 7200 });
    [rolled] = await deliver(request);
  });

  test('makes a new key with the same customer id, tags and plan; the old one keeps working', async () => {
    expect(rolled).toMatchObject({
      type: 'api-key.rolled',
      outcome: 'rolled',
      rollId: request.eventId,
      customerId: customer,
      previousApiKeyId: oldKeyId,
      usagePlanId: planId,
    });
    const newKeyId = (rolled as { apiKeyId: string }).apiKeyId;
    expect(newKeyId).not.toBe(oldKeyId);
    const keys = await keysOf(customer);
    expect(keys.map((key) => key.id).sort()).toEqual([oldKeyId, newKeyId].sort());
    const [oldKey, newKey] = [keys.find((k) => k.id === oldKeyId), keys.find((k) => k.id === newKeyId)];
    expect(newKey).toMatchObject({ enabled: true, customerId: customer, tags: oldKey?.tags });
    expect(oldKey).toMatchObject({ enabled: true });
    expect(newKey?.value).not.toBe(oldKey?.value);
    expect((await usagePlanKeyIds(pipeline.apigw, planId)).filter((id) => id === oldKeyId || id === newKeyId).sort()).toEqual(
      [oldKeyId, newKeyId].sort(),
    );
  });

  test("the secret's AWSCURRENT is the new key's value, AWSPREVIOUS the old one's; no AWSPENDING is left", async () => {
    const keys = await keysOf(customer);
    const newKeyId = (rolled as { apiKeyId: string }).apiKeyId;
    expect((await secretValue(customer, 'AWSCURRENT')) === keys.find((k) => k.id === newKeyId)?.value).toBe(true);
    expect((await secretValue(customer, 'AWSPREVIOUS')) === keys.find((k) => k.id === oldKeyId)?.value).toBe(true);
    const { VersionIdsToStages } = await pipeline.secrets.send(new DescribeSecretCommand({ SecretId: secretName(customer) }));
    expect(Object.values(VersionIdsToStages ?? {}).flat()).not.toContain('AWSPENDING');
  });

  test('GetSecretValue without a stage answers AWSCURRENT, as AWS does, through the layer (moto alone answers the old value)', async () => {
    const current = await secretValue(customer, 'AWSCURRENT');
    const plain = async (client: typeof pipeline.secrets) =>
      (
        JSON.parse((await client.send(new GetSecretValueCommand({ SecretId: secretName(customer) }))).SecretString ?? '{}') as {
          value?: string;
        }
      ).value;
    expect((await plain(pipeline.viaLayer.secrets)) === current).toBe(true);
    expect((await plain(pipeline.secrets)) === (await secretValue(customer, 'AWSPREVIOUS'))).toBe(true);
  });

  test('the record names the new key and the old one ending at now + grace; no roll is under way', async () => {
    const record = await recordOf(customer);
    expect(record).toMatchObject({
      status: 'active',
      apiKeyId: (rolled as { apiKeyId: string }).apiKeyId,
      lastRollId: request.eventId,
      endingKeys: [{ apiKeyId: oldKeyId, endsAt: (rolled as { overlapEndsAt: string }).overlapEndsAt }],
    });
    expect(record.rolling).toBeUndefined();
    const endsIn = Date.parse(String((rolled as { overlapEndsAt: string }).overlapEndsAt)) - Date.now();
    expect(endsIn).toBeGreaterThan(2 * HOUR_MS - 60_000);
    expect(endsIn).toBeLessThanOrEqual(2 * HOUR_MS);
  });

  test('a repeat of the request, and a replay of an older one, make no second key', async () => {
    const [repeat] = await deliver(request);
    expect(repeat).toMatchObject({
      type: 'api-key.rolled',
      outcome: 'already-rolled',
      apiKeyId: (rolled as { apiKeyId: string }).apiKeyId,
    });
    const [older] = await deliver(rollRequest(customer, { occurredAt: new Date(Date.now() - HOUR_MS).toISOString() }));
    expect(older).toMatchObject({ type: 'api-key.rolled', outcome: 'already-rolled' });
    expect(await keysOf(customer)).toHaveLength(2);
  });

  test('the sweep deletes the old key once its grace is over, not before', async () => {
    const before = await runSweep(new Date(Date.now() + HOUR_MS));
    expect(before.overlaps[`${PRODUCT}/${customer}`]).toBeUndefined();
    expect(await keyExists(oldKeyId)).toBe(true);
    const after = await runSweep(new Date(Date.now() + 2 * HOUR_MS + 60_000));
    expect(after.failures).toEqual([]);
    expect(after.overlaps[`${PRODUCT}/${customer}`]).toBe('ended');
    expect(await keyExists(oldKeyId)).toBe(false);
    expect(await usagePlanKeyIds(pipeline.apigw, planId)).not.toContain(oldKeyId);
    const record = await recordOf(customer);
    expect(record.endingKeys).toBeUndefined();
    expect(record).toMatchObject({ status: 'active', apiKeyId: (rolled as { apiKeyId: string }).apiKeyId });
    expect(await keyExists(String(record.apiKeyId))).toBe(true);
  });
});

describe('grace', () => {
  test('0: the old key is disabled and out of its plan at once, and deleted at the next sweep', async () => {
    const customer = 'roll-grace-zero';
    const oldKeyId = await customerWithKey(customer);
    const [event] = await deliver(rollRequest(customer, { graceSeconds: 0 }));
    expect(event).toMatchObject({ type: 'api-key.rolled', outcome: 'rolled', previousApiKeyId: oldKeyId });
    const old = (await keysOf(customer)).find((k) => k.id === oldKeyId);
    expect(old?.enabled).toBe(false);
    expect(await usagePlanKeyIds(pipeline.apigw, planId)).not.toContain(oldKeyId);
    expect((await runSweep(new Date())).overlaps[`${PRODUCT}/${customer}`]).toBe('ended');
    expect(await keyExists(oldKeyId)).toBe(false);
  });

  test("absent: the deployment's ROLL_GRACE_SECONDS (1 hour here)", async () => {
    const customer = 'roll-grace-default';
    await customerWithKey(customer);
    const [event] = await deliver(rollRequest(customer));
    const endsIn = Date.parse(String((event as { overlapEndsAt: string }).overlapEndsAt)) - Date.now();
    expect(endsIn).toBeGreaterThan(HOUR_MS - 60_000);
    expect(endsIn).toBeLessThanOrEqual(HOUR_MS);
  });

  test('a roll during an overlap ends the earlier overlap at once: at most two keys work', async () => {
    const customer = 'roll-twice';
    const first = await customerWithKey(customer);
    const [one] = await deliver(rollRequest(customer));
    const second = (one as { apiKeyId: string }).apiKeyId;
    const [two] = await deliver(rollRequest(customer));
    const third = (two as { apiKeyId: string }).apiKeyId;
    const keys = await keysOf(customer);
    expect(Object.fromEntries(keys.map((k) => [k.id, k.enabled]))).toEqual({ [first]: false, [second]: true, [third]: true });
    expect((await runSweep(new Date())).overlaps[`${PRODUCT}/${customer}`]).toBe('ended');
    expect((await keysOf(customer)).map((k) => k.id).sort()).toEqual([second, third].sort());
  });
});

describe('bad roll requests are rejected with a named reason, nothing created', () => {
  test.each([
    ['a customer with no key', { customerId: 'roll-nobody' }, 'no-key'],
    ['a negative grace', { graceSeconds: -1 }, 'invalid-roll-request'],
    ['a grace that is not a number of seconds', { graceSeconds: '15m' }, 'invalid-roll-request'],
    ['a grace over 7 days', { graceSeconds: 7 * 86_400 + 1 }, 'invalid-roll-request'],
    ['no eventId', { eventId: undefined }, 'invalid-roll-request'],
  ])('%s', async (_name, extra, reason) => {
    const before = (await pipeline.apiKeys()).length;
    const [event] = await deliver(rollRequest('roll-bad-input', extra));
    expect(event).toMatchObject({ type: 'api-key.provisioning-failed', reason });
    expect((await pipeline.apiKeys()).length).toBe(before);
  });

  test('a buyer who left: customer-left, no key made or re-enabled', async () => {
    const customer = 'roll-leaver';
    const keyId = await customerWithKey(customer);
    await deliver(unsubscribe(customer));
    expect(await recordOf(customer)).toMatchObject({ status: 'revoked' });
    const [event] = await deliver(rollRequest(customer));
    expect(event).toMatchObject({ type: 'api-key.provisioning-failed', reason: 'customer-left' });
    expect((await keysOf(customer)).map((k) => [k.id, k.enabled])).toEqual([[keyId, false]]);
  });
});

describe('a revoke during the overlap', () => {
  test('disables both keys and takes both out of the plan; the sweep deletes the old one', async () => {
    const customer = 'roll-then-leave';
    const first = await customerWithKey(customer);
    const [rolled] = await deliver(rollRequest(customer));
    const second = (rolled as { apiKeyId: string }).apiKeyId;
    await deliver(unsubscribe(customer));
    const keys = await keysOf(customer);
    expect(Object.fromEntries(keys.map((k) => [k.id, k.enabled]))).toEqual({ [first]: false, [second]: false });
    const members = await usagePlanKeyIds(pipeline.apigw, planId);
    expect(members).not.toContain(first);
    expect(members).not.toContain(second);
    expect(await recordOf(customer)).toMatchObject({ status: 'revoked', apiKeyId: second });
    expect((await runSweep(new Date())).overlaps[`${PRODUCT}/${customer}`]).toBe('ended');
    expect(await keyExists(first)).toBe(false);
    expect(await keyExists(second)).toBe(true);
  });
});

describe('a crash after any step, then redelivery, converges on one new key', () => {
  test.each([
    ['PutSecretValue (createSecret)', 'secrets', 'putSecretValue', 1],
    ['CreateApiKey (setSecret)', 'apiKeys', 'createApiKey', 1],
    ['the record noting the new key', 'records', 'put', 2],
    ['the record switching keys', 'records', 'put', 3],
    ['UpdateSecretVersionStage (finishSecret)', 'secrets', 'moveStage', 1],
  ] as const)('%s', async (_step, port, method, nth) => {
    const customer = `roll-crash-${port}-${method}-${nth}`.toLowerCase();
    const oldKeyId = await customerWithKey(customer);
    await pipeline.clearCompletions();
    await pipeline.send(rollRequest(customer));
    await pipeline.drain({ handler: pipeline.handlerWith(crashAfter(port, method, nth)), maxInvocations: 1 });
    await pipeline.drain();
    const events = (await pipeline.completionEvents()).filter((e) => e.type === 'api-key.rolled');
    expect(events).toHaveLength(1);
    const newKeyId = (events[0] as { apiKeyId: string }).apiKeyId;
    const keys = await keysOf(customer);
    expect(keys.map((k) => k.id).sort()).toEqual([oldKeyId, newKeyId].sort());
    expect(keys.every((k) => k.enabled)).toBe(true);
    expect(await recordOf(customer)).toMatchObject({ apiKeyId: newKeyId, endingKeys: [{ apiKeyId: oldKeyId }] });
    expect((await recordOf(customer)).rolling).toBeUndefined();
    expect((await secretValue(customer, 'AWSCURRENT')) === keys.find((k) => k.id === newKeyId)?.value).toBe(true);
  });
});

describe('Secrets Manager rotation', () => {
  type RotationHandler = (event: unknown, context: Context) => Promise<unknown>;
  const rotate = async (customer: string, token: string, steps = ['createSecret', 'setSecret', 'testSecret', 'finishSecret']) => {
    const { handler } = (await import('../../functions/provision.js')) as unknown as { handler: RotationHandler };
    for (const Step of steps)
      await actingAs(PRINCIPALS.provision, () =>
        handler({ Step, SecretId: secretName(customer), ClientRequestToken: token }, lambdaContext()),
      )();
  };

  test("its four calls roll the key through the same path: AWSCURRENT on Secrets Manager's token, a rolled event", async () => {
    const customer = 'roll-rotation';
    const oldKeyId = await customerWithKey(customer);
    await pipeline.clearCompletions();
    const token = randomUUID();
    await rotate(customer, token, ['createSecret']);
    // Between calls the record shows a roll under way (the key page reveals nothing), the new value as AWSPENDING.
    expect(await recordOf(customer)).toMatchObject({ rolling: { rollId: token, token } });
    const { VersionIdsToStages } = await pipeline.secrets.send(new DescribeSecretCommand({ SecretId: secretName(customer) }));
    expect(VersionIdsToStages?.[token]).toEqual(['AWSPENDING']);
    await rotate(customer, token, ['setSecret', 'testSecret', 'finishSecret']);
    const record = await recordOf(customer);
    expect(record).toMatchObject({ lastRollId: token, endingKeys: [{ apiKeyId: oldKeyId }] });
    expect(record.rolling).toBeUndefined();
    const { VersionIdsToStages: after } = await pipeline.secrets.send(new DescribeSecretCommand({ SecretId: secretName(customer) }));
    expect(after?.[token]).toEqual(['AWSCURRENT']);
    const events = await pipeline.completionEvents();
    expect(events).toEqual([
      expect.objectContaining({ type: 'api-key.rolled', source: 'rotation', rollId: token, previousApiKeyId: oldKeyId }),
    ]);
    // Secrets Manager calling a step again (a retry of its own, e.g. after a send that failed) changes nothing, and
    // announces the roll again with the same eventId (already-rolled; the FIFO completion queue deduplicates it).
    await rotate(customer, token, ['finishSecret']);
    expect(await keysOf(customer)).toHaveLength(2);
    const again = await pipeline.completionEvents();
    expect(new Set(again.map((e) => e.eventId))).toEqual(new Set([events[0]?.eventId]));
  });

  test("testSecret alone with a token of Secrets Manager's own (its configuration test) starts no roll and writes nothing", async () => {
    const customer = 'roll-rotation-config-test';
    const keyId = await customerWithKey(customer);
    const describe = async () =>
      (await pipeline.secrets.send(new DescribeSecretCommand({ SecretId: secretName(customer) }))).VersionIdsToStages;
    const [record, stages] = [await recordOf(customer), await describe()];
    await rotate(customer, randomUUID(), ['testSecret']);
    expect(await recordOf(customer)).toEqual(record);
    expect(await describe()).toEqual(stages);
    expect((await keysOf(customer)).map((key) => key.id)).toEqual([keyId]);
  });

  test('a rotation that stopped after createSecret is finished by the next roll request, then that one rolls', async () => {
    const customer = 'roll-rotation-stopped';
    await customerWithKey(customer);
    const token = randomUUID();
    await rotate(customer, token, ['createSecret']);
    const events = await deliver(rollRequest(customer));
    expect(events).toEqual([expect.objectContaining({ type: 'api-key.rolled', outcome: 'rolled' })]);
    // The stopped rotation's key and the request's: three keys, the first two ending.
    expect(await keysOf(customer)).toHaveLength(3);
    expect((await recordOf(customer)).rolling).toBeUndefined();
  });
});

/** Runs `npm run roll`'s entry as a child process (tsx), signed as the seller's producer (a signup publisher), through the layer. */
const rollCli = (args: string[]) => runTool('lib/ops/roll/cli.ts', PRINCIPALS.publisher, args);

describe('npm run roll', () => {
  test('sends one roll request with the grace given as a duration; draining it rolls the key', async () => {
    const customer = 'roll-cli';
    const oldKeyId = await customerWithKey(customer);
    await pipeline.clearCompletions();
    const queueUrl = pipeline.queues.signupUrl.replace(String(process.env.MOTO_ENDPOINT), pipeline.proxy.endpoint);
    const run = await rollCli([
      '--customer',
      customer,
      '--product',
      PRODUCT,
      '--grace',
      '15m',
      '--endpoint',
      pipeline.proxy.endpoint,
      '--queue-url',
      queueUrl,
    ]);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const eventId = /eventId (roll-[0-9a-f-]+)/.exec(run.stdout)?.[1];
    expect(eventId).toBeDefined();
    await pipeline.drain();
    const [event] = await pipeline.completionEvents();
    expect(event).toMatchObject({ type: 'api-key.rolled', outcome: 'rolled', rollId: eventId, previousApiKeyId: oldKeyId });
    const endsIn = Date.parse(String((event as { overlapEndsAt: string }).overlapEndsAt)) - Date.now();
    expect(endsIn).toBeGreaterThan(14 * 60_000);
    expect(endsIn).toBeLessThanOrEqual(15 * 60_000);
  });

  test.each([
    [['--product', PRODUCT], /--customer is required/],
    [['--customer', 'c', '--grace', '8d', '--queue-url', 'http://x'], /--grace must be a whole number of seconds from 0 to 604800/],
    [['--customer', 'c'], /give --queue-url URL or --stage STAGE/],
  ])('%j is refused with exit 2 and one line on stderr', async (args, message) => {
    const run = await rollCli(args);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(message);
    expect(run.stdout).toBe('');
  });
});

describe('reconcile during an overlap', () => {
  test("finds nothing wrong with a rolled customer's old and new keys (same name): they are not duplicates", async () => {
    const customer = 'roll-reconciled';
    await customerWithKey(customer);
    await deliver(rollRequest(customer));
    const stores = storesFor({
      ...pipeline.operator,
      dynamodb: {
        client: new DynamoDBClient({
          endpoint: pipeline.proxy.endpoint,
          credentials: { accessKeyId: PRINCIPALS.operator, secretAccessKey: 'testing' },
        }),
        recordsTable: KEY_RECORDS_TABLE_NAME,
      },
    });
    const report = await reconcile(stores, { prefix: 'keyprov/test/', usagePlans: { [PRODUCT]: planId } });
    expect(report.findings.filter((finding) => finding.customerId === customer)).toEqual([]);
  });
});
