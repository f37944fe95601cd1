import { setTimeout as sleep } from 'node:timers/promises';
import {
  BadRequestException,
  ConflictException,
  CreateRestApiCommand,
  DeleteUsagePlanKeyCommand,
  GetApiKeysCommand,
  GetUsagePlanKeysCommand,
  GetUsagePlansCommand,
  NotFoundException,
  TooManyRequestsException,
} from '@aws-sdk/client-api-gateway';
import { DynamoDBClient, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import {
  CancelRotateSecretCommand,
  CreateSecretCommand,
  DeleteSecretCommand,
  DescribeSecretCommand,
  GetSecretValueCommand,
  InvalidParameterException,
  InvalidRequestException,
  PutSecretValueCommand,
  ResourceNotFoundException,
  RestoreSecretCommand,
  RotateSecretCommand,
  UpdateSecretVersionStageCommand,
} from '@aws-sdk/client-secrets-manager';
import { CreateQueueCommand, SendMessageBatchCommand } from '@aws-sdk/client-sqs';
import { resetMoto } from '../../lib/local/moto.js';
import { ensureCoordinationTable } from '../../lib/local/resources.js';
import { errorsOf, failure, resolveCustomer, settle, TestClients, unique } from '../realistic-aws/clients.js';
import { NONE, REALISTIC, type RealisticAws, type RotationStepEvent, startRealisticAws } from '../realistic-aws/index.js';
import { NO_ROTATION_FUNCTION, ROTATION_NOT_COMPLETE } from '../realistic-aws/rotation.js';
import { MARKED_FOR_DELETION, NAME_SCHEDULED_FOR_DELETION } from '../realistic-aws/secrets.js';

jest.setTimeout(20_000);

// Each test shows a switch's effect through the layer AND that moto alone behaves otherwise: it fails if the switch
// does nothing. `layer` sends through the layer, `moto` straight to moto.
let aws: RealisticAws;
let layer: TestClients;
let moto: TestClients;
let motoEndpoint: string;

beforeAll(async () => {
  motoEndpoint = process.env.MOTO_ENDPOINT ?? '';
  if (!motoEndpoint) throw new Error('MOTO_ENDPOINT is not set: run the integration project (its global setup starts moto)');
  await resetMoto(motoEndpoint);
  aws = await startRealisticAws(motoEndpoint);
  layer = new TestClients(aws.endpoint);
  moto = new TestClients(motoEndpoint);
});
afterAll(async () => {
  layer.destroy();
  moto.destroy();
  await aws.close();
});
beforeEach(() => {
  aws.configure(NONE);
  aws.clear();
  aws.resetStats();
});

describe('with every switch off', () => {
  test('forwards unchanged, names operations as the old proxies did, and keeps the fault-rule API', async () => {
    const keyId = await layer.newKey();
    await layer.newSecret();
    expect(aws.seen).toEqual(['POST /apikeys', 'secretsmanager.CreateSecret']);
    expect(aws.stats().requests).toEqual({ CreateApiKey: 1, 'secretsmanager.CreateSecret': 1 });
    expect(aws.stats().createdPerSecond.reduce((a, b) => a + b, 0)).toBe(1);
    expect((await moto.apigw.send(new GetApiKeysCommand({}))).items?.map((k) => k.id)).toContain(keyId);

    aws.inject({ path: '/apikeys', method: 'POST', status: 429, errorType: 'TooManyRequestsException', retryAfterSeconds: 3, times: 1 });
    const error = await failure(layer.newKey());
    expect(error).toBeInstanceOf(TooManyRequestsException);
    expect(error.retryAfterSeconds).toBe('3');
    await layer.newKey();
    expect(aws.injected()).toEqual([1]);
  });
});

describe('throttle', () => {
  test('CreateApiKey 5/s burst 5 (factor 1): the 6th concurrent call gets 429 with Retry-After; moto alone takes all', async () => {
    expect(errorsOf(await settle(Array.from({ length: 8 }, () => moto.newKey())))).toEqual([]);
    aws.configure({ throttle: { factor: 1 } });
    const errors = errorsOf(await settle(Array.from({ length: 8 }, () => layer.newKey())));
    expect(errors).toHaveLength(3);
    for (const e of errors) expect(e).toBeInstanceOf(TooManyRequestsException);
    expect(errors[0]?.retryAfterSeconds).toBe('1');
    expect(aws.stats().throttled).toEqual({ CreateApiKey: 3 });
  });

  test('a neighbour taking 75% leaves 10 of the 40 "Total operations" burst; CreateApiKey draws on Total too', async () => {
    const plans = () => settle(Array.from({ length: 14 }, () => layer.apigw.send(new GetUsagePlansCommand({}))));
    expect(errorsOf(await plans())).toEqual([]);
    aws.configure({ throttle: { factor: 1, neighbourShare: 0.75 } });
    const started = performance.now();
    const refused = errorsOf(await plans()).length;
    // 14 calls on the 10 left: 4 refused, less the tokens Total's 2.5/s left to us refilled while they ran (a busy
    // machine takes longer over them); with the whole burst (40) none would be.
    const refilled = Math.floor(((performance.now() - started) / 1000) * 2.5);
    expect(refused).toBeLessThanOrEqual(4);
    expect(refused).toBeGreaterThanOrEqual(4 - refilled);
    expect(await failure(layer.newKey())).toBeInstanceOf(TooManyRequestsException);
    // The older model (its own bucket only) lets it through.
    aws.configure({ throttle: { factor: 1, neighbourShare: 0.75, separateBuckets: true } });
    await plans();
    await expect(layer.newKey()).resolves.toBeTruthy();
  });
});

describe('usagePlanWrites', () => {
  test('one write at a time per Region: overlapping CreateUsagePlanKey calls get 409; moto alone takes them all', async () => {
    const plan = await moto.newPlan();
    const keys = await Promise.all(Array.from({ length: 6 }, () => moto.newKey()));
    expect(errorsOf(await settle(keys.slice(0, 3).map((k) => moto.addKey(plan, k))))).toEqual([]);

    aws.configure({ usagePlanWrites: { serialise: true, holdMs: 300 } });
    const started = performance.now();
    const results = await settle(keys.slice(3).map((k) => layer.addKey(plan, k)));
    expect(performance.now() - started).toBeGreaterThanOrEqual(290);
    const errors = errorsOf(results);
    expect(errors).toHaveLength(2);
    for (const e of errors) {
      expect(e).toBeInstanceOf(ConflictException);
      expect(e.message).toBe('Unable to complete operation due to concurrent modification. Please try again later.');
    }
    expect(aws.stats().conflicts).toEqual({ CreateUsagePlanKey: 2 });
    // The one write that got the slot held it at least holdMs; the refused ones never held it.
    expect(aws.stats().usagePlanSlotMs).toEqual([expect.any(Number)]);
    expect(aws.stats().usagePlanSlotMs[0]).toBeGreaterThanOrEqual(299);
    // Once the first is done, a retry goes through.
    await expect(layer.addKey(plan, keys[3 + results.findIndex((r) => !r.ok)] ?? '')).resolves.toBeTruthy();
  });
});

describe('unknownPlan404', () => {
  test('usage-plan key calls on an unknown plan (or key) → 404 NotFoundException; moto alone accepts them', async () => {
    const key = await moto.newKey();
    expect((await moto.addKey('noplan1', key)).id).toBe(key);
    aws.configure({ unknownPlan404: true });
    const error = await failure(layer.addKey('noplan2', key));
    expect(error).toBeInstanceOf(NotFoundException);
    expect(error.message).toBe('Invalid Usage Plan ID specified');
    expect(await failure(layer.apigw.send(new GetUsagePlanKeysCommand({ usagePlanId: 'noplan1' })))).toBeInstanceOf(NotFoundException);
    const plan = await moto.newPlan();
    await expect(layer.addKey(plan, key)).resolves.toBeTruthy();
    // Removing a key that is not in the plan: moto fails (HTML 500), AWS answers 404.
    const remove = (c: TestClients) => c.apigw.send(new DeleteUsagePlanKeyCommand({ usagePlanId: plan, keyId: 'nokey' }));
    expect((await failure(remove(moto))).$metadata?.httpStatusCode).toBe(500);
    expect(await failure(remove(layer))).toBeInstanceOf(NotFoundException);
    expect(aws.stats().unknownPlans).toEqual({ CreateUsagePlanKey: 1, GetUsagePlanKeys: 1, DeleteUsagePlanKey: 1 });
  });
});

describe('onePlanPerStage', () => {
  test('a key cannot join a second plan with a common API stage (400); moto alone lets it', async () => {
    const apiId = (await moto.apigw.send(new CreateRestApiCommand({ name: unique('api') }))).id ?? '';
    const first = await moto.newPlan([{ apiId, stage: 'prod' }]);
    const second = await moto.newPlan([{ apiId, stage: 'prod' }]);
    const other = await moto.newPlan([{ apiId, stage: 'test' }]);
    const key = await moto.newKey();
    await moto.addKey(first, key);
    await moto.addKey(second, key);
    await moto.apigw.send(new DeleteUsagePlanKeyCommand({ usagePlanId: second, keyId: key }));

    aws.configure({ onePlanPerStage: true });
    const error = await failure(layer.addKey(second, key));
    expect(error).toBeInstanceOf(BadRequestException);
    expect(error.message).toBe(
      `Usage Plan ${second} cannot be added because API Key ${key} cannot reference multiple Usage Plans with the same API Stage: ${apiId}:prod`,
    );
    await expect(layer.addKey(other, key)).resolves.toBeTruthy();
    expect(aws.stats().planStageConflicts).toBe(1);
  });
});

describe('listingLagMs', () => {
  test('GetApiKeys and ListSecrets leave out what was created in the last listingLagMs; moto lists it at once', async () => {
    aws.configure({ listingLagMs: 400 });
    const prefix = unique('lag');
    await layer.newKey(`${prefix}-a`);
    const secret = await layer.newSecret();
    expect(await moto.keyNames(prefix)).toEqual([`${prefix}-a`]);
    expect(await moto.secretNames()).toContain(secret);
    expect(await layer.keyNames(prefix)).toEqual([]);
    expect(await layer.secretNames()).not.toContain(secret);
    expect(aws.stats().listingHidden).toEqual({ GetApiKeys: 1, 'secretsmanager.ListSecrets': 1 });
    await sleep(450);
    expect(await layer.keyNames(prefix)).toEqual([`${prefix}-a`]);
    expect(await layer.secretNames()).toContain(secret);
  });
});

describe('apiKeyPaging', () => {
  test('GetApiKeys in pages of limit (default 25) with a position, as AWS answers; moto answers one page', async () => {
    await resetMoto(motoEndpoint);
    const ids = [];
    for (let i = 0; i < 30; i++) ids.push(await moto.newKey(`paging-${String(i).padStart(2, '0')}`));
    expect((await moto.apigw.send(new GetApiKeysCommand({ limit: 10 }))).items).toHaveLength(30);
    aws.configure({ apiKeyPaging: true });

    const first = await layer.apigw.send(new GetApiKeysCommand({}));
    expect(first.items?.map((k) => k.id)).toEqual(ids.slice(0, 25));
    expect(first.position).toEqual(expect.any(String));
    const second = await layer.apigw.send(new GetApiKeysCommand({ position: first.position }));
    expect(second.items?.map((k) => k.id)).toEqual(ids.slice(25));
    expect(second.position).toBeUndefined();
    const pages: string[][] = [];
    let position: string | undefined;
    do {
      const page = await layer.apigw.send(new GetApiKeysCommand({ limit: 12, position }));
      pages.push((page.items ?? []).map((k) => k.id ?? ''));
      position = page.position;
    } while (position);
    expect(pages.map((p) => p.length)).toEqual([12, 12, 6]);
    expect(pages.flat()).toEqual(ids);
    expect(aws.stats().requests.GetApiKeys).toBe(5);
  });
});

describe('accessDenied', () => {
  test('Secrets Manager: 400 AccessDeniedException (IAM, then KMS); API Gateway: 403; moto alone has no IAM', async () => {
    const name = await layer.newSecret();
    aws.configure({ accessDenied: { secretsManager: ['GetSecretValue'], kms: ['PutSecretValue'], apiGateway: ['CreateApiKey'] } });
    await expect(moto.secrets.send(new GetSecretValueCommand({ SecretId: name }))).resolves.toBeTruthy();

    const iam = await failure(layer.secrets.send(new GetSecretValueCommand({ SecretId: name })));
    expect([iam.name, iam.$metadata?.httpStatusCode]).toEqual(['AccessDeniedException', 400]);
    expect(iam.message).toMatch(
      /^User: arn:aws:sts::\d{12}:assumed-role\/.+ is not authorized to perform: secretsmanager:GetSecretValue on resource: /,
    );
    const kms = await failure(layer.secrets.send(new PutSecretValueCommand({ SecretId: name, SecretString: 'v2' })));
    expect([kms.name, kms.$metadata?.httpStatusCode, kms.message]).toEqual(['AccessDeniedException', 400, 'Access to KMS is not allowed']);
    const apigw = await failure(layer.newKey());
    expect([apigw.name, apigw.$metadata?.httpStatusCode]).toEqual(['AccessDeniedException', 403]);
    expect(apigw.message).toContain('is not authorized to perform: apigateway:POST on resource: arn:aws:apigateway:us-east-1::/apikeys');
    await expect(layer.apigw.send(new GetApiKeysCommand({}))).resolves.toBeTruthy();
    expect(aws.stats().deniedCalls).toEqual({ 'secretsmanager.GetSecretValue': 1, 'secretsmanager.PutSecretValue': 1, CreateApiKey: 1 });
  });

  test('DynamoDB: 400 AccessDeniedException naming the action and the table; moto alone has no IAM', async () => {
    const table = unique('turns');
    const dynamodb = (endpoint: string) => new DynamoDBClient({ endpoint });
    await ensureCoordinationTable(dynamodb(motoEndpoint), table);
    const update = (client: DynamoDBClient) =>
      client.send(
        new UpdateItemCommand({
          TableName: table,
          Key: { pk: { S: 'usage-plan-writes' } },
          UpdateExpression: 'SET busyUntil = :end',
          ExpressionAttributeValues: { ':end': { N: '1' } },
        }),
      );
    aws.configure({ accessDenied: { dynamodb: ['UpdateItem'] } });
    await expect(update(dynamodb(motoEndpoint))).resolves.toBeTruthy();

    const denied = await failure(update(dynamodb(aws.endpoint)));
    expect([denied.name, denied.$metadata?.httpStatusCode]).toEqual(['AccessDeniedException', 400]);
    expect(denied.message).toMatch(
      new RegExp(`is not authorized to perform: dynamodb:UpdateItem on resource: arn:aws:dynamodb:us-east-1:\\d{12}:table/${table} `),
    );
    expect(aws.stats().deniedCalls).toEqual({ 'DynamoDB_20120810.UpdateItem': 1 });
  });
});

describe('deletingSecrets', () => {
  const create = (c: TestClients, name: string) => c.secrets.send(new CreateSecretCommand({ Name: name, SecretString: 'again' }));

  test('a force-deleted name stays marked for deletion for ms; moto frees it at once', async () => {
    const baseline = await moto.newSecret();
    await moto.secrets.send(new DeleteSecretCommand({ SecretId: baseline, ForceDeleteWithoutRecovery: true }));
    await expect(create(moto, baseline)).resolves.toBeTruthy();

    aws.configure({ deletingSecrets: { ms: 400 } });
    const name = await layer.newSecret();
    await layer.secrets.send(new DeleteSecretCommand({ SecretId: name, ForceDeleteWithoutRecovery: true }));
    const get = await failure(layer.secrets.send(new GetSecretValueCommand({ SecretId: name })));
    expect([get, get.message]).toEqual([expect.any(InvalidRequestException), MARKED_FOR_DELETION]);
    const again = await failure(create(layer, name));
    expect([again, again.message]).toEqual([expect.any(InvalidRequestException), NAME_SCHEDULED_FOR_DELETION]);
    await sleep(450);
    await expect(create(layer, name)).resolves.toBeTruthy();
  });

  test('a secret in its recovery window refuses PutSecretValue until restored; moto alone accepts it', async () => {
    const put = (c: TestClients, id: string) => c.secrets.send(new PutSecretValueCommand({ SecretId: id, SecretString: 'v2' }));
    const baseline = await moto.newSecret();
    await moto.secrets.send(new DeleteSecretCommand({ SecretId: baseline, RecoveryWindowInDays: 7 }));
    await expect(put(moto, baseline)).resolves.toBeTruthy();

    aws.configure({ deletingSecrets: { ms: 100 } });
    const name = await layer.newSecret();
    await layer.secrets.send(new DeleteSecretCommand({ SecretId: name, RecoveryWindowInDays: 7 }));
    expect(await failure(put(layer, name))).toBeInstanceOf(InvalidRequestException);
    expect((await layer.secrets.send(new DescribeSecretCommand({ SecretId: name }))).DeletedDate).toBeDefined();
    await layer.secrets.send(new RestoreSecretCommand({ SecretId: name }));
    await expect(put(layer, name)).resolves.toBeTruthy();
    expect(aws.stats().deletingSecrets).toEqual({ 'secretsmanager.PutSecretValue': 1 });
  });
});

describe('RotateSecret with RotateImmediately false (always on)', () => {
  const FUNCTION = 'arn:aws:lambda:us-east-1:123456789012:function:rotator';
  const schedule = (c: TestClients, id: string, extra: Record<string, unknown> = {}) =>
    c.secrets.send(
      new RotateSecretCommand({
        SecretId: id,
        RotationLambdaARN: FUNCTION,
        RotationRules: { ScheduleExpression: 'rate(90 days)' },
        RotateImmediately: false,
        ...extra,
      }),
    );
  const describe = (c: TestClients, id: string) => c.secrets.send(new DescribeSecretCommand({ SecretId: id }));
  const current = async (id: string) =>
    (await moto.secrets.send(new GetSecretValueCommand({ SecretId: id, VersionStage: 'AWSCURRENT' }))).SecretString;
  afterEach(() => aws.rotationFunction(FUNCTION, undefined));

  test('keeps the schedule, tests it with testSecret on a passing AWSPENDING version, starts no rotation; moto starts one', async () => {
    const baseline = await moto.newSecret();
    // moto alone (its own Lambda backend holds no such function): whatever it answers, it leaves an AWSPENDING
    // version behind and rotation disabled — the schedule is lost.
    await schedule(moto, baseline).catch(() => undefined);
    const motoSaw = await describe(moto, baseline);
    expect(Object.values(motoSaw.VersionIdsToStages ?? {}).flat()).toContain('AWSPENDING');
    expect(motoSaw.RotationEnabled).not.toBe(true);

    const name = await layer.newSecret();
    const [versionId] = Object.keys((await describe(moto, name)).VersionIdsToStages ?? {});
    const value = await current(name);
    const steps: Array<RotationStepEvent & { stages?: string[]; value?: string; enabled?: boolean }> = [];
    aws.rotationFunction(FUNCTION, async (event) => {
      // What the function sees while it runs: the configuration on, the token's version AWSPENDING.
      const seen = await describe(layer, event.SecretId);
      const pending = await moto.secrets.send(new GetSecretValueCommand({ SecretId: event.SecretId, VersionId: event.ClientRequestToken }));
      steps.push({
        ...event,
        stages: seen.VersionIdsToStages?.[event.ClientRequestToken],
        value: pending.SecretString,
        enabled: seen.RotationEnabled,
      });
    });
    await schedule(layer, name);
    const arn = (await describe(moto, name)).ARN;
    expect(steps).toEqual([
      { Step: 'testSecret', SecretId: arn, ClientRequestToken: expect.any(String), stages: ['AWSPENDING'], value, enabled: true },
    ]);
    const after = await describe(layer, name);
    expect(after).toMatchObject({
      RotationEnabled: true,
      RotationLambdaARN: FUNCTION,
      RotationRules: { ScheduleExpression: 'rate(90 days)' },
    });
    expect(after.VersionIdsToStages).toEqual({ [String(versionId)]: ['AWSCURRENT'] });
    expect(await current(name)).toBe(value);
  });

  test("a testSecret that fails is a 500 naming it (AWS's answer is not documented); a function not registered too", async () => {
    const name = await layer.newSecret();
    const unregistered = await failure(schedule(layer, name));
    expect([unregistered.$metadata?.httpStatusCode, unregistered.message]).toEqual([500, expect.stringContaining('no rotation function')]);
    aws.rotationFunction(FUNCTION, async () => {
      throw new Error('cannot log in');
    });
    const failed = await failure(schedule(layer, name));
    expect([failed.$metadata?.httpStatusCode, failed.message]).toEqual([500, expect.stringContaining('cannot log in')]);
    expect(aws.rotationProblems()).toEqual([expect.stringContaining('no rotation function'), expect.stringContaining('cannot log in')]);
    // The test's version lost its label either way: nothing AWSPENDING is left.
    expect(Object.values((await describe(layer, name)).VersionIdsToStages ?? {}).flat()).toEqual(['AWSCURRENT']);
  });

  test("AWS's refusals: no function, bad rules, a rotation not complete", async () => {
    aws.rotationFunction(FUNCTION, async () => undefined);
    const name = await layer.newSecret();
    const none = await failure(
      layer.secrets.send(
        new RotateSecretCommand({ SecretId: name, RotationRules: { ScheduleExpression: 'rate(90 days)' }, RotateImmediately: false }),
      ),
    );
    expect([none, none.message]).toEqual([expect.any(InvalidRequestException), NO_ROTATION_FUNCTION]);
    for (const rules of [{ ScheduleExpression: 'rate(1 hours)' }, { ScheduleExpression: 'rate(90 day)' }, { AutomaticallyAfterDays: 0 }])
      expect(await failure(schedule(layer, name, { RotationRules: rules }))).toBeInstanceOf(InvalidParameterException);
    await layer.secrets.send(new PutSecretValueCommand({ SecretId: name, SecretString: 'next', VersionStages: ['AWSPENDING'] }));
    const pending = await failure(schedule(layer, name));
    expect([pending, pending.message]).toEqual([expect.any(InvalidRequestException), ROTATION_NOT_COMPLETE]);
    expect((await describe(layer, name)).RotationEnabled).toBeUndefined();
  });

  test('CancelRotateSecret turns a kept schedule off, function and rules kept, labels left; moto alone refuses it', async () => {
    aws.rotationFunction(FUNCTION, async () => undefined);
    const cancel = (c: TestClients, id: string) => c.secrets.send(new CancelRotateSecretCommand({ SecretId: id }));
    const name = await layer.newSecret();
    await schedule(layer, name);
    // moto never saw that RotateSecret: it holds no function for the secret.
    expect(await failure(cancel(moto, name))).toBeInstanceOf(InvalidRequestException);
    // A rotation in progress: its AWSPENDING version (as a rotation function's createSecret writes it) stays.
    await layer.secrets.send(new PutSecretValueCommand({ SecretId: name, SecretString: 'next', VersionStages: ['AWSPENDING'] }));
    const stages = (await describe(layer, name)).VersionIdsToStages ?? {};
    await cancel(layer, name);
    expect(await describe(layer, name)).toMatchObject({
      RotationEnabled: false,
      RotationLambdaARN: FUNCTION,
      RotationRules: { ScheduleExpression: 'rate(90 days)' },
      VersionIdsToStages: stages,
    });
    // "Failing to clean up a cancelled rotation can block you from starting future rotations"; cleaned, it turns on.
    expect((await failure(schedule(layer, name))).message).toBe(ROTATION_NOT_COMPLETE);
    const pending = Object.keys(stages).find((id) => stages[id]?.includes('AWSPENDING'));
    await layer.secrets.send(
      new UpdateSecretVersionStageCommand({ SecretId: name, VersionStage: 'AWSPENDING', RemoveFromVersionId: pending }),
    );
    await layer.secrets.send(new RotateSecretCommand({ SecretId: name, RotateImmediately: false }));
    expect(await describe(layer, name)).toMatchObject({ RotationEnabled: true, RotationLambdaARN: FUNCTION });
    await layer.secrets.send(new DeleteSecretCommand({ SecretId: name, RecoveryWindowInDays: 7 }));
    expect(await failure(cancel(layer, name))).toBeInstanceOf(InvalidRequestException);
    expect(await failure(cancel(layer, unique('missing')))).toBeInstanceOf(ResourceNotFoundException);
  });
});

describe('sendMessageBatchFailures', () => {
  test('every Nth entry fails server-side (not sent, listed in Failed); moto alone sends all', async () => {
    const Entries = Array.from({ length: 10 }, (_, i) => ({ Id: `m${i}`, MessageBody: `body ${i}` }));
    // Created through the layer, the queue URL names the layer (the SQS client sends to the queue URL's host).
    const { QueueUrl = '' } = await layer.sqs.send(new CreateQueueCommand({ QueueName: unique('batch') }));
    const depth = () => moto.queueDepth(QueueUrl.replace(aws.endpoint, motoEndpoint));
    expect((await layer.sqs.send(new SendMessageBatchCommand({ QueueUrl, Entries }))).Successful).toHaveLength(10);
    aws.configure({ sendMessageBatchFailures: { rate: 0, everyNth: 3 } });
    const result = await layer.sqs.send(new SendMessageBatchCommand({ QueueUrl, Entries }));
    expect(result.Successful).toHaveLength(7);
    const failed = ['m2', 'm5', 'm8'].map((Id) => ({
      Id,
      SenderFault: false,
      Code: 'InternalError',
      Message: 'An internal error occurred.',
    }));
    expect(result.Failed).toEqual(failed);
    expect(await depth()).toBe(17);
    aws.configure({ sendMessageBatchFailures: { rate: 1 } });
    expect((await layer.sqs.send(new SendMessageBatchCommand({ QueueUrl, Entries }))).Failed).toHaveLength(10);
    expect(await depth()).toBe(17);
    expect(aws.stats().batchEntriesFailed).toBe(13);
  });
});

describe('chaos', () => {
  test('5xx before the service: a server fault, nothing written', async () => {
    aws.configure({ chaos: { rate: 1, kinds: ['5xx'], phases: ['before'], operations: ['CreateApiKey'] } });
    const prefix = unique('chaos5xx');
    const error = await failure(layer.newKey(prefix));
    expect([error.$fault, [500, 503].includes(error.$metadata?.httpStatusCode ?? 0)]).toEqual(['server', true]);
    expect(await moto.keyNames(prefix)).toEqual([]);
    await expect(layer.apigw.send(new GetApiKeysCommand({}))).resolves.toBeTruthy();
  });

  test('a reset after the service: the write happened, the caller sees a network error', async () => {
    aws.configure({ chaos: { rate: 1, kinds: ['reset'], phases: ['after'], operations: ['CreateSecret'] } });
    const name = unique('chaosreset');
    expect((await failure(layer.newSecret(name))).$metadata?.httpStatusCode).toBeUndefined();
    await expect(moto.secrets.send(new DescribeSecretCommand({ SecretId: name }))).resolves.toBeTruthy();
    expect(aws.stats().chaos).toEqual({ 'reset-after': 1 });
  });

  test('a timeout before / after the service: the client gives up; only "after" wrote', async () => {
    const timing = new TestClients(aws.endpoint, { requestTimeoutMs: 300 });
    const prefix = unique('chaostimeout');
    for (const phase of ['before', 'after'] as const) {
      aws.configure({ chaos: { rate: 1, kinds: ['timeout'], phases: [phase], operations: ['CreateApiKey'] } });
      expect((await failure(timing.newKey(`${prefix}-${phase}`))).name).toBe('TimeoutError');
    }
    expect(await moto.keyNames(prefix)).toEqual([`${prefix}-after`]);
    timing.destroy();
  });

  test('a held call outlives requestTimeout unless throwOnRequestTimeout is set (the SDK only warns)', async () => {
    const warnOnly = new TestClients(aws.endpoint, { requestTimeoutMs: 100, throwOnRequestTimeout: false });
    aws.configure({ chaos: { rate: 1, kinds: ['timeout'], phases: ['before'], operations: ['GetApiKeys'] } });
    const warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
    try {
      const call = warnOnly.apigw.send(new GetApiKeysCommand({})).then(
        () => 'answered',
        () => 'failed',
      );
      expect(await Promise.race([call, sleep(600).then(() => 'still waiting')])).toBe('still waiting');
      expect(warn).toHaveBeenCalledWith(expect.stringContaining('exceeded the configured 100 ms requestTimeout'));
    } finally {
      warn.mockRestore();
      warnOnly.destroy();
    }
  });

  test('409 only on usage-plan writes; a seed replays the same faults', async () => {
    aws.configure({ chaos: { rate: 1, kinds: ['409'] } });
    expect(await failure(layer.addKey(await moto.newPlan(), await moto.newKey()))).toBeInstanceOf(ConflictException);
    await expect(layer.apigw.send(new GetApiKeysCommand({}))).resolves.toBeTruthy();

    const run = async () => {
      aws.configure({ chaos: { rate: 0.5, seed: 7, kinds: ['5xx'], phases: ['before'] } });
      const outcomes: boolean[] = [];
      for (let i = 0; i < 16; i++) outcomes.push((await settle([layer.apigw.send(new GetUsagePlansCommand({}))]))[0]?.ok ?? false);
      return outcomes;
    };
    const first = await run();
    expect(new Set(first)).toEqual(new Set([true, false]));
    expect(await run()).toEqual(first);
  });
});

describe('ResolveCustomer', () => {
  test('resolves registered tokens, and is never forwarded (moto has no Metering: it answers 500)', async () => {
    expect((await resolveCustomer(motoEndpoint, 'tok')).status).toBe(500);
    const licenseArn = 'arn:aws:license-manager::123456789012:license:l-0123456789abcdef';
    aws.registerToken('new', { customerAWSAccountId: '111122223333', productCode: 'prod-1', licenseArn });
    aws.registerToken('old', { customerAWSAccountId: '444455556666', productCode: 'prod-1', customerIdentifier: 'cust-1' });
    aws.registerToken('short', { customerAWSAccountId: '111122223333', productCode: 'prod-1' }, { expiresInMs: 1 });
    expect(await resolveCustomer(aws.endpoint, 'new')).toEqual({
      status: 200,
      json: { ProductCode: 'prod-1', CustomerAWSAccountId: '111122223333', LicenseArn: licenseArn },
    });
    const old = { CustomerIdentifier: 'cust-1', ProductCode: 'prod-1', CustomerAWSAccountId: '444455556666' };
    expect((await resolveCustomer(aws.endpoint, 'old')).json).toEqual(old);
    await sleep(5);
    const type = async (token: string) => {
      const { status, json } = await resolveCustomer(aws.endpoint, token);
      return [status, json.__type];
    };
    expect(await type('unknown')).toEqual([400, 'InvalidTokenException']);
    expect(await type('short')).toEqual([400, 'ExpiredTokenException']);
    aws.configure({ resolveCustomer: { throttle: true } });
    expect(await type('new')).toEqual([400, 'ThrottlingException']);
    aws.configure({ resolveCustomer: { disabled: true } });
    expect(await type('new')).toEqual([400, 'DisabledApiException']);
    const outcomes = { resolved: 2, InvalidTokenException: 1, ExpiredTokenException: 1, ThrottlingException: 1, DisabledApiException: 1 };
    expect(aws.stats().resolveCustomer).toEqual(outcomes);
  });
});

describe('the REALISTIC preset', () => {
  test('turns on the rules suites run under, and works as a whole', async () => {
    const realistic = await startRealisticAws(motoEndpoint, REALISTIC);
    const c = new TestClients(realistic.endpoint);
    try {
      expect(realistic.settings()).toMatchObject({
        throttle: { factor: 20 },
        unknownPlan404: true,
        onePlanPerStage: true,
        listingLagMs: 300,
      });
      const plan = await moto.newPlan();
      const keys = await Promise.all([c.newKey(), c.newKey()]);
      expect(errorsOf(await settle(keys.map((k) => c.addKey(plan, k))))).toEqual([expect.any(ConflictException)]);
      expect(await failure(c.addKey('noplan3', keys[0] ?? ''))).toBeInstanceOf(NotFoundException);
    } finally {
      c.destroy();
      await realistic.close();
    }
  });
});
