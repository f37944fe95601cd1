import { join } from 'node:path';
import { CreateApiKeyCommand, DeleteApiKeyCommand, GetApiKeysCommand } from '@aws-sdk/client-api-gateway';
import { DynamoDBClient, ScanCommand } from '@aws-sdk/client-dynamodb';
import { ListSecretsCommand } from '@aws-sdk/client-secrets-manager';
import { PurgeQueueCommand } from '@aws-sdk/client-sqs';
import type { SqsHandler } from '../../lib/local/event-source-mapping.js';
import { ACCOUNT, omissionsFromEnvironment, PRINCIPALS, REGION, STACK_NAMES, stackIamWorld } from '../helpers/iam.js';
import { type Pipeline, SECRETS_KEY_ID, startPipeline } from '../helpers/pipeline.js';
import { type Run, run } from '../helpers/run-command.js';
import { createApiStage, createUsagePlan, usagePlanKeyIds } from '../helpers/usage-plans.js';
import type { IamWorld, Omission } from '../realistic-aws/iam/world.js';

/*
 * `npm run smoke` (lib/ops/smoke) against the pipeline on moto, through the realistic layer with the IAM switch on:
 * the smoke runs as a child process signed as the operator (docs/operator-policy.json; its role matches the test
 * stage's signupPublisherArns, role/ops/*), while this file plays Lambda's event source mapping for the function.
 */
jest.setTimeout(120_000);

const PRODUCT = 'prodsmoke4x2';
const ROOT = process.cwd();
let pipeline: Pipeline;
let plan: string;
/** The function as Lambda runs it (made once: handlerWith redeploys the IAM world, which a test may have narrowed). */
let provision: SqsHandler;

beforeAll(async () => {
  pipeline = await startPipeline(undefined, async ({ apigw }) => {
    plan = await createUsagePlan(apigw, 'smoke-plan', [await createApiStage(apigw, 'smoke-api')]);
    return { USAGE_PLANS: JSON.stringify({ [PRODUCT]: plan }) };
  });
  provision = pipeline.handlerWith();
});
afterAll(() => pipeline?.close());

/**
 * The stack's IAM world without some statements (a role or the operator's policy missing one), and with `edit` applied
 * (a resource policy changed), for the calls through the layer; returns what puts the deployed world back.
 */
function deployedWith(omit: Omission[], edit: (world: IamWorld) => void = () => {}): () => void {
  const iam = pipeline.iam;
  if (!iam) throw new Error('the IAM switch is off (REALISTIC_IAM=off): these tests need it');
  const before = iam.world;
  // With the run's own omissions too (REALISTIC_IAM_OMIT: npm run iam:statements), which an explicit list replaces.
  const world = stackIamWorld({ secretsKeyId: SECRETS_KEY_ID, usagePlanIds: [plan], omit: [...omissionsFromEnvironment(), ...omit] });
  edit(world);
  iam.world = world;
  return () => {
    iam.world = before;
  };
}

interface SmokeRun extends Run {
  /** Every value an API key of a smoke customer had while the run went on (none may be in the output). */
  keyValues: string[];
}

/**
 * `npm run smoke` as the operator against the layer, while the function consumes the signup queue (unless `drain` is
 * false: no function at all, as with a disabled trigger). Collects the smoke keys' values as they exist.
 */
async function smoke(args: string[], options: { drain?: boolean } = {}): Promise<SmokeRun> {
  const { AWS_ENDPOINT_URL: _layer, USAGE_PLANS: _plans, ...env } = process.env;
  const child = run(
    join(ROOT, 'node_modules', '.bin', 'tsx'),
    [
      'lib/ops/smoke/cli.ts',
      '--stage',
      'test',
      '--region',
      'us-east-1',
      '--endpoint',
      pipeline.proxy.endpoint,
      '--usage-plans',
      JSON.stringify({ [PRODUCT]: plan }),
      ...args,
    ],
    { ...env, AWS_ACCESS_KEY_ID: PRINCIPALS.operator, AWS_SECRET_ACCESS_KEY: 'testing' },
    100_000,
  );
  let finished = false;
  const values = new Set<string>();
  // After each invocation of the function, the smoke keys' values (the smoke deletes them soon after).
  const handler: SqsHandler = async (event, context) => {
    const response = await provision(event, context);
    for (const key of await pipeline.apiKeys()) if (key.name?.includes('/smoke-') && key.value) values.add(key.value);
    return response;
  };
  const done = child.finally(() => {
    finished = true;
  });
  while (!finished) {
    if (options.drain !== false) await pipeline.drain({ maxDurationMs: 20_000, handler });
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return { ...(await done), keyValues: [...values] };
}

/** What is left of smoke customers in moto: API keys, secrets (also those scheduled for deletion), records. */
async function leftovers() {
  const keys = ((await pipeline.apigw.send(new GetApiKeysCommand({ nameQuery: 'keyprov/test/', limit: 500 }))).items ?? []).filter((k) =>
    k.name?.includes('/smoke-'),
  );
  const { SecretList = [] } = await pipeline.secrets.send(new ListSecretsCommand({ MaxResults: 100, IncludePlannedDeletion: true }));
  const { Items = [] } = await new DynamoDBClient({ endpoint: process.env.MOTO_ENDPOINT }).send(
    new ScanCommand({ TableName: STACK_NAMES.keyRecordsTable }),
  );
  return {
    keys: keys.map((k) => k.name),
    secrets: SecretList.filter((s) => s.Name?.includes('/smoke-')).map((s) => s.Name),
    records: Items.filter((i) => i.pk?.S?.includes('/smoke-')).map((i) => i.pk?.S),
    inPlan: await usagePlanKeyIds(pipeline.apigw, plan),
  };
}

const NOTHING_LEFT = { keys: [], secrets: [], records: [], inPlan: [] };

const expectNoKeyValue = (result: SmokeRun) => {
  expect(result.keyValues.length).toBeGreaterThan(0);
  for (const value of result.keyValues) {
    expect(result.stdout).not.toContain(value);
    expect(result.stderr).not.toContain(value);
  }
};

test('a deployed stage that works: every step passes, the key was checked in its plan, and nothing is left', async () => {
  const deniedBefore = pipeline.iam?.denials.length ?? 0;
  const result = await smoke([]);
  expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: '' });
  const lines = result.stdout.split('\n');
  expect(lines[0]).toMatch(
    /^Smoke test of stage test in us-east-1: customer smoke-\d{8}T\d{6}Z-[0-9a-f]{6} \(smoke-\* customer ids are reserved/,
  );
  expect(lines.filter((l) => /^(PASS|FAIL) /.test(l)).map((l) => l.slice(0, 20).trimEnd())).toEqual([
    'PASS  send signup',
    'PASS  provisioned',
    'PASS  API key',
    'PASS  usage plan',
    'PASS  secret',
    'PASS  record',
    'PASS  send revoke',
    'PASS  revoked',
    'PASS  clean up',
  ]);
  expect(result.stdout).toMatch(
    /PASS {2}secret {8}keyprov\/test\/prodsmoke4x2\/smoke-\S+\/api-key holds the key's value: 40 characters, SHA-256/,
  );
  expect(result.stdout).toContain(`is in usage plan ${plan}`);
  expect(result.stdout).toMatch(/PASS {2}clean up {6}removed API key \w+, secret \S+ \(no recovery window\), record \S+: nothing left/);
  expect(lines.at(-2)).toBe('Smoke test passed: 9 of 9 steps');
  expectNoKeyValue(result);
  expect(pipeline.iam?.denials.slice(deniedBefore)).toEqual([]);
  expect(await leftovers()).toEqual(NOTHING_LEFT);
});

test('--json: the same steps as one document, without the key value', async () => {
  const result = await smoke(['--json']);
  expect(result.code).toBe(0);
  const report = JSON.parse(result.stdout) as { passed: boolean; customerId: string; steps: Array<{ name: string; ok: boolean }> };
  expect(report.passed).toBe(true);
  expect(report.customerId).toMatch(/^smoke-/);
  expect(report.steps.map((s) => [s.name, s.ok])).toContainEqual(['clean up', true]);
  expectNoKeyValue(result);
  expect(await leftovers()).toEqual(NOTHING_LEFT);
});

test("the function's role denied CreateApiKey: a timeout naming where it stopped, the statements, the open IAM questions; exit 1, nothing left", async () => {
  const restore = deployedWith([{ holder: 'ProvisionRole', sid: 'CreateOwnedApiKeys' }]);
  let result: SmokeRun;
  try {
    result = await smoke(['--timeout', '6']);
  } finally {
    restore();
  }
  expect(result.code).toBe(1);
  expect(pipeline.iam?.denials.at(-1)).toMatchObject({
    principal: PRINCIPALS.provision,
    operation: 'CreateApiKey',
    action: 'apigateway:POST',
  });
  const out = result.stdout;
  expect(out).toContain(
    'FAIL  provisioned   no provisioned record within 6.0 s: the record is pending and its secret holds the value, but no API key exists: CreateApiKey did not succeed',
  );
  expect(out).toContain(
    'ProvisionRole api-key-provisioner-test-us-east-1-provision (serverless.yml), statement CreateOwnedApiKeys: apigateway:POST on /apikeys with aws:RequestTag/keyprov:owner=keyprov/test/',
  );
  expect(out).toContain('statement TagNewApiKeys: apigateway:PUT on /tags/*apikeys*');
  expect(out).toContain("1. whether API Gateway puts CreateApiKey's tags into aws:RequestTag for POST /apikeys");
  expect(out).toMatch(
    /aws logs filter-log-events --region us-east-1 --log-group-name \/aws\/lambda\/api-key-provisioner-test-provision \\\n/,
  );
  expect(out).toMatch(/--filter-pattern '"[0-9a-f-]{36}"'/);
  // The clean-up still ran: the secret and the pending record the function made are gone.
  expect(out).toMatch(/PASS {2}clean up {6}removed secret \S+ \(no recovery window\), record \S+\n/);
  expect(out).toContain('Smoke test FAILED: provisioned (2 of 3 steps passed)');
  expect(await leftovers()).toEqual(NOTHING_LEFT);
  await pipeline.sqs.send(new PurgeQueueCommand({ QueueUrl: pipeline.queues.deadLetterUrl }));
});

test("an operator's statement missing (SmokeDeleteOwnKeys): the AWS error and the statement to add; exit 1", async () => {
  const restore = deployedWith([{ holder: PRINCIPALS.operator, sid: 'SmokeDeleteOwnKeys' }]);
  let result: SmokeRun;
  try {
    result = await smoke([]);
  } finally {
    restore();
  }
  expect(result.code).toBe(1);
  const out = result.stdout;
  expect(out).toContain('FAIL  clean up      DeleteApiKey was refused or failed');
  expect(out).toMatch(
    /AWS error: DeleteApiKey: AccessDeniedException \(HTTP 403\): User: arn:aws:sts::123456789012:assumed-role\/keyprov-operator\/operator is not authorized to perform: apigateway:DELETE on resource: arn:aws:apigateway:us-east-1::\/apikeys\/\w+ because no identity-based policy allows the apigateway:DELETE action/,
  );
  expect(out).toContain(
    'operator policy (docs/operator-policy.json), statement SmokeDeleteOwnKeys: apigateway:DELETE on /apikeys/*, only keys tagged keyprov:owner=keyprov/test/ that carry the tag keyprov:smoke',
  );
  expect(out).toContain('Smoke test FAILED: clean up (8 of 9 steps passed)');
  expectNoKeyValue(result);
  // The key stays behind (the refusal is the point): removed here as the harness.
  const { keys } = await leftovers();
  expect(keys).toHaveLength(1);
  for (const key of (await pipeline.apiKeys()).filter((k) => k.name?.includes('/smoke-')))
    await pipeline.apigw.send(new DeleteApiKeyCommand({ apiKey: key.id }));
  expect(await leftovers()).toEqual(NOTHING_LEFT);
});

test("the function's role denied UpdateApiKey: the revoke stops with the key enabled; the statement to look at; the key removed all the same", async () => {
  const restore = deployedWith([{ holder: 'ProvisionRole', sid: 'EnableAndDisableApiKeys' }]);
  let result: SmokeRun;
  try {
    result = await smoke(['--timeout', '6']);
  } finally {
    restore();
  }
  expect(result.code).toBe(1);
  const out = result.stdout;
  expect(out).toMatch(
    /FAIL {2}revoked {7}no revoked record within 6\.0 s: the record is still active and key \w+ enabled: the unsubscribe was not received, or UpdateApiKey \(disable\) was refused\n/,
  );
  expect(out).toContain(
    'statement EnableAndDisableApiKeys: apigateway:PATCH on /apikeys/* with aws:ResourceTag/keyprov:owner=keyprov/test/',
  );
  expect(out).toMatch(/PASS {2}clean up {6}removed API key \w+, secret \S+ \(no recovery window\), record \S+\n/);
  expect(out).toContain('Smoke test FAILED: revoked (8 of 9 steps passed)');
  expectNoKeyValue(result);
  expect(await leftovers()).toEqual(NOTHING_LEFT);
  await pipeline.sqs.send(new PurgeQueueCommand({ QueueUrl: pipeline.queues.deadLetterUrl }));
});

test("an operator whose role is not in signupPublisherArns: the queue policy's explicit deny, in SQS's words, and where to list the role", async () => {
  const signups = `arn:aws:sqs:${REGION}:${ACCOUNT}:${STACK_NAMES.signups}`;
  // The stage deployed with signupPublisherArns naming the producer only (not role/ops/*).
  const restore = deployedWith([], (world) => {
    const policy = structuredClone(world.queuePolicies.get(signups));
    if (!policy) throw new Error('no signup queue policy');
    for (const statement of policy.Statement) {
      const condition = statement.Condition as Record<string, Record<string, unknown>> | undefined;
      for (const operator of ['ArnLike', 'ArnNotLike'])
        if (Array.isArray(condition?.[operator]?.['aws:PrincipalArn']))
          condition[operator]['aws:PrincipalArn'] = (condition[operator]['aws:PrincipalArn'] as string[]).filter(
            (arn) => !arn.includes(':role/ops/'),
          );
    }
    world.queuePolicies.set(signups, policy);
  });
  let result: SmokeRun;
  try {
    result = await smoke([], { drain: false });
  } finally {
    restore();
  }
  expect(result.code).toBe(1);
  const out = result.stdout;
  expect(out).toContain('FAIL  send signup   SendMessage was refused or failed');
  expect(out).toContain(
    `AWS error: SendMessage: AccessDenied (HTTP 403): User: arn:aws:sts::${ACCOUNT}:assumed-role/keyprov-operator/operator is not authorized to perform: sqs:sendmessage on resource: ${signups} with an explicit deny in a resource-based policy`,
  );
  expect(out).toContain(
    "the signup queue's policy (serverless.yml SignupQueuePolicy; your role must match --param signupPublisherArns), statement DenyEveryoneElse",
  );
  // Nothing was sent, so nothing is cleaned up.
  expect(out).not.toContain('clean up');
  expect(out).toContain('Smoke test FAILED: send signup (0 of 1 steps passed)');
  expect(await leftovers()).toEqual(NOTHING_LEFT);
});

test('the smoke may delete only smoke keys of its stage: a customer key is refused to the operator', async () => {
  const { id } = await pipeline.apigw.send(
    new CreateApiKeyCommand({ name: 'keyprov/test/prodsmoke4x2/acme', enabled: true, tags: { 'keyprov:owner': 'keyprov/test/' } }),
  );
  const denied = await pipeline.operator.apigw.send(new DeleteApiKeyCommand({ apiKey: id })).catch((error: Error) => error);
  expect(denied).toMatchObject({ name: 'AccessDeniedException' });
  await pipeline.apigw.send(new DeleteApiKeyCommand({ apiKey: id }));
});

test('no function consuming the queue (a disabled trigger): a clear timeout; the signup is left to the queue', async () => {
  const result = await smoke(['--timeout', '2'], { drain: false });
  expect(result.code).toBe(1);
  expect(result.stdout).toContain(
    'FAIL  provisioned   no provisioned record within 2.0 s: no record and no secret: the function has not stored a value for the customer. Either it has not received the signup (is the trigger enabled?)',
  );
  expect(result.stdout).toContain('statement ConsumeSignupQueue: sqs:ReceiveMessage, sqs:DeleteMessage, sqs:GetQueueAttributes');
  expect(result.stdout).toContain('PASS  clean up      nothing to remove: no key, secret or record was made');
  await pipeline.sqs.send(new PurgeQueueCommand({ QueueUrl: pipeline.queues.signupUrl }));
  expect(await leftovers()).toEqual(NOTHING_LEFT);
});

test('bad flags: one line naming the flag, exit 2, nothing sent', async () => {
  const { AWS_ENDPOINT_URL: _layer, ...env } = process.env;
  const tsx = join(ROOT, 'node_modules', '.bin', 'tsx');
  const missing = await run(tsx, ['lib/ops/smoke/cli.ts', '--region', 'us-east-1'], env, 30_000);
  expect({ code: missing.code, stderr: missing.stderr.trim() }).toEqual({
    code: 2,
    stderr: 'smoke: the stage is required: --stage STAGE (see --help)',
  });
  const product = await run(tsx, ['lib/ops/smoke/cli.ts', '--stage', 'test', '--usage-plans', '{"a":"p1","b":"p2"}'], env, 30_000);
  expect({ code: product.code, stderr: product.stderr.trim() }).toEqual({
    code: 2,
    stderr: 'smoke: --product is required: the usage plans name the products a, b (see --help)',
  });
});
