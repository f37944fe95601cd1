import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { APIGatewayClient, CreateApiKeyCommand } from '@aws-sdk/client-api-gateway';
import { DynamoDBClient, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { CreateSecretCommand, GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { ReceiveMessageCommand, SendMessageBatchCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { runSimulation } from '@cloud-copilot/iam-simulate';
import { sqsSourceAdapter } from '../../lib/aws/sqs.js';
import { ACCOUNT, PACKAGE_PARAMS, PRINCIPALS, REGION, STACK_NAMES, stackIamWorld } from '../helpers/iam.js';
import { COORDINATION_TABLE_NAME, type Pipeline, SECRETS_KEY_ID, startPipeline } from '../helpers/pipeline.js';
import { failure } from '../realistic-aws/clients.js';
import { evaluate, UnevaluableRequestError } from '../realistic-aws/iam/evaluate.js';
import { packagedTemplate } from '../realistic-aws/iam/package.js';
import { UnresolvableTemplateError } from '../realistic-aws/iam/template.js';
import { IamWorld } from '../realistic-aws/iam/world.js';

/*
 * The realistic layer's IAM switch (tests/realistic-aws/iam): requests evaluated with @cloud-copilot/iam-simulate
 * against the packaged stack's roles and resource policies before moto sees them, answered with each service's
 * AccessDenied when AWS would refuse them. The suites run with it on (tests/helpers/pipeline.ts); this one checks
 * the switch itself and the findings it was built for.
 */

let pipeline: Pipeline;
beforeAll(async () => {
  pipeline = await startPipeline();
});
afterAll(() => pipeline?.close());

const as = (principal: string) => {
  const config = {
    endpoint: pipeline.proxy.endpoint,
    region: REGION,
    credentials: { accessKeyId: principal, secretAccessKey: 'testing' },
    maxAttempts: 1,
  };
  return {
    sqs: new SQSClient(config),
    secrets: new SecretsManagerClient(config),
    apigw: new APIGatewayClient(config),
    dynamodb: new DynamoDBClient(config),
  };
};
const signupUrl = () => pipeline.queues.signupUrl.replace(process.env.MOTO_ENDPOINT ?? '', pipeline.proxy.endpoint);
const stackKeyArn = `arn:aws:kms:${REGION}:${ACCOUNT}:key/${SECRETS_KEY_ID}`;

describe('the signup queue policy with signupPublisherArns set (serverless.yml SignupQueuePolicy)', () => {
  test('the registration hook (RegisterRole) may send: DenyEveryoneElse exempts its role', async () => {
    const register = as(PRINCIPALS.register);
    const sent = await register.sqs.send(
      new SendMessageBatchCommand({ QueueUrl: signupUrl(), Entries: [{ Id: '1', MessageBody: '{"probe":"register"}' }] }),
    );
    expect(sent.Failed ?? []).toEqual([]);
  });

  test('the policy as it was (RegisterRole not exempted) denies the hook: the finding this switch was built for', async () => {
    const template = structuredClone(packagedTemplate({ stage: 'test', region: REGION, params: PACKAGE_PARAMS }));
    const document = template.Resources.SignupQueuePolicy?.Properties?.PolicyDocument as { Statement: Array<Record<string, unknown>> };
    const deny = document.Statement.find((s) => s.Sid === 'DenyEveryoneElse') as { Condition: { ArnNotLike: Record<string, unknown> } };
    deny.Condition.ArnNotLike['aws:PrincipalArn'] = {
      'Fn::If': ['HasSignupPublishers', { 'Fn::Split': [',', { Ref: 'SignupPublisherArns' }] }, ['arn:aws:iam::123456789012:*']],
    };
    const world = new IamWorld(template, {
      account: ACCOUNT,
      region: REGION,
      stackName: 'api-key-provisioner-test',
      physicalIds: { SecretsKey: SECRETS_KEY_ID },
      roles: [{ name: 'register', roleId: 'RegisterRole', session: 'api-key-provisioner-test-register' }],
    });
    const register = world.principal('register');
    const queue = `arn:aws:sqs:${REGION}:${ACCOUNT}:${STACK_NAMES.signups}`;
    const verdict = await evaluate(register.arn, ACCOUNT, register.policies, {
      action: 'sqs:SendMessage',
      resource: queue,
      context: { 'aws:PrincipalArn': register.principalArn },
      resourcePolicy: world.queuePolicies.get(queue),
    });
    expect(verdict).toEqual({ decision: 'ExplicitlyDenied', deniedBy: 'resource-based' });
  });

  test('the configured Marketplace topic may deliver (SNS, aws:SourceArn); another topic of the account may not', async () => {
    const world = stackIamWorld({ secretsKeyId: SECRETS_KEY_ID });
    const queue = `arn:aws:sqs:${REGION}:${ACCOUNT}:${STACK_NAMES.signups}`;
    const delivery = (topic: string) =>
      evaluate('sns.amazonaws.com', ACCOUNT, [], {
        action: 'sqs:SendMessage',
        resource: queue,
        context: { 'aws:SourceArn': `arn:aws:sns:${REGION}:${ACCOUNT}:${topic}`, 'aws:SourceAccount': ACCOUNT },
        resourcePolicy: world.queuePolicies.get(queue),
      });
    expect((await delivery('aws-mp-subscription-notification-prod4k2j9x8l7')).decision).toBe('Allowed');
    expect(await delivery('someone-elses-topic')).toEqual({ decision: 'ExplicitlyDenied', deniedBy: 'resource-based' });
  });

  test("a listed publisher of this account needs no IAM policy of its own: the queue policy's Allow is enough", async () => {
    // IAM's same-account rule (user guide, "Policy evaluation logic"): an Allow in the resource policy suffices.
    const world = stackIamWorld({ secretsKeyId: SECRETS_KEY_ID });
    const queue = `arn:aws:sqs:${REGION}:${ACCOUNT}:${STACK_NAMES.signups}`;
    const send = (role: string) =>
      evaluate(`arn:aws:sts::${ACCOUNT}:assumed-role/${role.split('/').pop()}/s`, ACCOUNT, [], {
        action: 'sqs:SendMessage',
        resource: queue,
        context: { 'aws:PrincipalArn': `arn:aws:iam::${ACCOUNT}:role/${role}` },
        resourcePolicy: world.queuePolicies.get(queue),
      });
    expect((await send('ops/night-shift')).decision).toBe('Allowed');
    expect((await send('some-other-role')).decision).toBe('ExplicitlyDenied');
  });

  test("a listed publisher may send; a role of the account that is not listed is denied by the queue policy, in SQS's shape", async () => {
    await as(PRINCIPALS.publisher).sqs.send(new SendMessageCommand({ QueueUrl: signupUrl(), MessageBody: '{"probe":"publisher"}' }));
    // The provision role is not a publisher, and its own policy does not allow sqs:SendMessage on the signup queue either.
    const error = await failure(as(PRINCIPALS.provision).sqs.send(new SendMessageCommand({ QueueUrl: signupUrl(), MessageBody: '{}' })));
    expect(error.name).toBe('AccessDenied');
    expect(error.$metadata?.httpStatusCode).toBe(403);
    expect(error.message).toBe(
      `User: arn:aws:sts::${ACCOUNT}:assumed-role/api-key-provisioner-test-us-east-1-provision/api-key-provisioner-test-provision ` +
        `is not authorized to perform: sqs:sendmessage on resource: arn:aws:sqs:${REGION}:${ACCOUNT}:${STACK_NAMES.signups} ` +
        'with an explicit deny in a resource-based policy',
    );
  });
});

describe("denials in each service's shape", () => {
  test('API Gateway: 403 AccessDeniedException, the action and the resource ARN', async () => {
    const error = await failure(as(PRINCIPALS.register).apigw.send(new CreateApiKeyCommand({ name: 'not-mine', enabled: true })));
    expect(error.name).toBe('AccessDeniedException');
    expect(error.$metadata?.httpStatusCode).toBe(403);
    expect(error.message).toMatch(
      /is not authorized to perform: apigateway:POST on resource: arn:aws:apigateway:us-east-1::\/apikeys because no identity-based policy allows the apigateway:POST action$/,
    );
  });

  test('API Gateway: CreateApiKey without the ownership tag is refused to the provision role (aws:RequestTag)', async () => {
    const error = await failure(
      as(PRINCIPALS.provision).apigw.send(new CreateApiKeyCommand({ name: 'untagged', enabled: true, tags: { team: 'x' } })),
    );
    expect(error.name).toBe('AccessDeniedException');
    const tagged = await as(PRINCIPALS.provision).apigw.send(
      new CreateApiKeyCommand({ name: 'tagged', enabled: true, tags: { 'keyprov:owner': 'keyprov/test/' } }),
    );
    expect(tagged.id).toEqual(expect.any(String));
  });

  test('Secrets Manager: 400 AccessDeniedException naming the secret; a KMS refusal is "Access to KMS is not allowed"', async () => {
    await pipeline.secrets.send(new CreateSecretCommand({ Name: 'other-app/secret', SecretString: 'v' }));
    const denied = await failure(as(PRINCIPALS.provision).secrets.send(new GetSecretValueCommand({ SecretId: 'other-app/secret' })));
    expect(denied.name).toBe('AccessDeniedException');
    expect(denied.$metadata?.httpStatusCode).toBe(400);
    expect(denied.message).toMatch(
      /not authorized to perform: secretsmanager:GetSecretValue on resource: other-app\/secret because no identity-based policy/,
    );

    // A secret of this deployment, encrypted with the stack's key: RegisterRole may read no such secret, the
    // provision role may; an operator too (docs/operator-policy.json).
    await pipeline.secrets.send(
      new CreateSecretCommand({ Name: 'keyprov/test/probe/api-key', SecretString: '{}', KmsKeyId: STACK_NAMES.secretsKeyAlias }),
    );
    await expect(
      as(PRINCIPALS.provision).secrets.send(new GetSecretValueCommand({ SecretId: 'keyprov/test/probe/api-key' })),
    ).resolves.toBeDefined();
    await expect(
      as(PRINCIPALS.operator).secrets.send(new GetSecretValueCommand({ SecretId: 'keyprov/test/probe/api-key' })),
    ).resolves.toBeDefined();

    // The signing key under the stack's key instead of aws/secretsmanager: RegisterRole may read the secret, but has
    // no kms:Decrypt on that key, and the key policy leaves the key to IAM policies (EnableIamPolicies).
    await pipeline.secrets.send(
      new CreateSecretCommand({ Name: STACK_NAMES.signingKeySecret, SecretString: 'v', KmsKeyId: STACK_NAMES.secretsKeyAlias }),
    );
    const kms = await failure(as(PRINCIPALS.register).secrets.send(new GetSecretValueCommand({ SecretId: STACK_NAMES.signingKeySecret })));
    expect(kms.name).toBe('AccessDeniedException');
    expect(kms.$metadata?.httpStatusCode).toBe(400);
    expect(kms.message).toBe('Access to KMS is not allowed');
    expect(pipeline.iam?.denials.at(-1)).toMatchObject({ principal: PRINCIPALS.register, action: 'kms:Decrypt', resource: stackKeyArn });
  });

  test('DynamoDB: 400 AccessDeniedException naming the table', async () => {
    const error = await failure(
      as(PRINCIPALS.register).dynamodb.send(
        new UpdateItemCommand({
          TableName: COORDINATION_TABLE_NAME,
          Key: { pk: { S: 'instances' } },
          UpdateExpression: 'SET x = :x',
          ExpressionAttributeValues: { ':x': { N: '1' } },
        }),
      ),
    );
    expect(error.name).toBe('AccessDeniedException');
    expect(error.$metadata?.httpStatusCode).toBe(400);
    expect(error.message).toContain(
      `dynamodb:UpdateItem on resource: arn:aws:dynamodb:${REGION}:${ACCOUNT}:table/${COORDINATION_TABLE_NAME}`,
    );
    // dynamodb:LeadingKeys: the provision role may touch the two coordination items only.
    const other = await failure(
      as(PRINCIPALS.provision).dynamodb.send(
        new UpdateItemCommand({
          TableName: COORDINATION_TABLE_NAME,
          Key: { pk: { S: 'elsewhere' } },
          UpdateExpression: 'SET x = :x',
          ExpressionAttributeValues: { ':x': { N: '1' } },
        }),
      ),
    );
    expect(other.name).toBe('AccessDeniedException');
  });

  test("SQS: the provision role delays a handed-back record with the function's own adapter (GetQueueUrl, ChangeMessageVisibilityBatch)", async () => {
    await pipeline.sqs.send(new SendMessageCommand({ QueueUrl: pipeline.queues.signupUrl, MessageBody: '{"probe":"delay"}' }));
    const { Messages = [] } = await pipeline.sqs.send(
      new ReceiveMessageCommand({ QueueUrl: pipeline.queues.signupUrl, MaxNumberOfMessages: 10 }),
    );
    const handles = Messages.map((m) => ({ receiptHandle: m.ReceiptHandle ?? '', visibilityTimeoutSeconds: 0 }));
    expect(handles.length).toBeGreaterThan(0);
    const deniedBefore = pipeline.iam?.denials.length ?? 0;
    await sqsSourceAdapter(as(PRINCIPALS.provision).sqs).changeVisibility(pipeline.queues.signupArn, handles);
    expect(pipeline.iam?.denials.slice(deniedBefore)).toEqual([]);
  });

  test('SQS: the provision role may not receive from the completion queue it sends to', async () => {
    const completions = pipeline.queues.completionUrl.replace(process.env.MOTO_ENDPOINT ?? '', pipeline.proxy.endpoint);
    const error = await failure(as(PRINCIPALS.provision).sqs.send(new ReceiveMessageCommand({ QueueUrl: completions })));
    expect(error.name).toBe('AccessDenied');
    expect(error.message).toContain('sqs:receivemessage');
  });
});

describe('kms:EncryptionContext:<key> (iam-simulate drops it; the switch evaluates it)', () => {
  const secretArn = (name: string) => `arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret:${name}-AbCdEf`;
  const decrypt = (name: string) => ({
    action: 'kms:Decrypt',
    resource: stackKeyArn,
    context: { 'kms:ViaService': `secretsmanager.${REGION}.amazonaws.com`, 'kms:EncryptionContext:SecretARN': secretArn(name) },
  });

  test("runSimulation alone ignores the key, so the role's StringLike on it never matches", async () => {
    const provision = stackIamWorld({ secretsKeyId: SECRETS_KEY_ID }).principal(PRINCIPALS.provision);
    const auth = decrypt('keyprov/test/acme/api-key');
    const result = await runSimulation(
      {
        request: {
          principal: provision.arn,
          action: auth.action,
          resource: { resource: auth.resource, accountId: ACCOUNT },
          contextVariables: auth.context,
        },
        identityPolicies: provision.policies,
        serviceControlPolicies: [],
        resourceControlPolicies: [],
      },
      {},
    );
    expect(result.resultType).toBe('single');
    if (result.resultType !== 'single') return;
    expect(result.result.ignoredContextKeys).toEqual(['kms:EncryptionContext:SecretARN']);
    expect(result.overallResult).toBe('ImplicitlyDenied');
  });

  test('through the switch: allowed for a secret under NAME_PREFIX, denied for another', async () => {
    const world = stackIamWorld({ secretsKeyId: SECRETS_KEY_ID });
    const provision = world.principal(PRINCIPALS.provision);
    const policy = world.keyPolicies.get(stackKeyArn);
    expect(policy).toBeDefined();
    const verdict = (name: string) => evaluate(provision.arn, ACCOUNT, provision.policies, { ...decrypt(name), resourcePolicy: policy });
    expect((await verdict('keyprov/test/acme/api-key')).decision).toBe('Allowed');
    expect((await verdict('other-app/secret')).decision).toBe('ImplicitlyDenied');
  });
});

describe('what cannot be evaluated fails loudly', () => {
  test('an action IAM does not know throws, naming it', async () => {
    const provision = stackIamWorld({ secretsKeyId: SECRETS_KEY_ID }).principal(PRINCIPALS.provision);
    await expect(
      evaluate(provision.arn, ACCOUNT, provision.policies, { action: 'sqs:Teleport', resource: 'arn:aws:sqs:us-east-1:1:q', context: {} }),
    ).rejects.toThrow(UnevaluableRequestError);
    await expect(
      evaluate(provision.arn, ACCOUNT, provision.policies, {
        action: 'apigateway:GET',
        resource: 'arn:aws:apigateway:us-east-1::/nothing/here',
        context: {},
      }),
    ).rejects.toThrow(/apigateway:GET on arn:aws:apigateway:us-east-1::\/nothing\/here/);
  });

  test('a template reference the resolver cannot follow, a physical id not given, an omission naming nothing: thrown', () => {
    const template = packagedTemplate({ stage: 'test', region: REGION, params: PACKAGE_PARAMS });
    const broken = structuredClone(template);
    const policies = broken.Resources.RegisterRole?.Properties?.Policies as Array<{ PolicyDocument: { Statement: unknown[] } }> | undefined;
    const statements = policies?.[0]?.PolicyDocument.Statement;
    statements?.push({ Sid: 'Broken', Effect: 'Allow', Action: 'sqs:SendMessage', Resource: { 'Fn::GetAtt': ['NoSuchQueue', 'Arn'] } });
    const settings = {
      account: ACCOUNT,
      region: REGION,
      stackName: 's',
      physicalIds: { SecretsKey: SECRETS_KEY_ID },
      roles: [{ name: 'r', roleId: 'RegisterRole', session: 's' }],
    };
    expect(() => new IamWorld(broken, settings)).toThrow(/Fn::GetAtt NoSuchQueue.Arn/);
    expect(() => new IamWorld(template, { ...settings, physicalIds: {} })).toThrow(UnresolvableTemplateError);
    expect(() => new IamWorld(template, { ...settings, omit: [{ holder: 'RegisterRole', sid: 'NoSuchSid' }] })).toThrow(
      /RegisterRole:NoSuchSid/,
    );
  });

  test('a request by a principal the world does not know is answered 500 and recorded, never let through', async () => {
    const stranger = as('stranger');
    const error = await failure(stranger.sqs.send(new SendMessageCommand({ QueueUrl: signupUrl(), MessageBody: '{}' })));
    expect(error.$metadata?.httpStatusCode).toBe(500);
    expect(pipeline.iam?.problems.pop()).toMatch(/by unknown principal "stranger" \(from the access key id/);
  });
});

describe('the operator under docs/operator-policy.json', () => {
  /** `npm run redrive` as a child process, signed as `principal` (the layer names the caller by the access key id). */
  const redriveCli = (principal: string, args: string[]) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((done) => {
      const { AWS_ENDPOINT_URL: _layer, ...env } = process.env;
      execFile(
        join(process.cwd(), 'node_modules', '.bin', 'tsx'),
        ['lib/ops/redrive/cli.ts', ...args],
        { cwd: process.cwd(), env: { ...env, AWS_ACCESS_KEY_ID: principal }, timeout: 50_000 },
        (error, stdout, stderr) => done({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      );
    });

  test('redrive moves a dead-lettered signup back to the signup queue (read, send, delete: each allowed)', async () => {
    const moto = process.env.MOTO_ENDPOINT ?? '';
    await pipeline.sqs.send(new SendMessageCommand({ QueueUrl: pipeline.queues.deadLetterUrl, MessageBody: '{"customerId":"redriven"}' }));
    const deniedBefore = pipeline.iam?.denials.length ?? 0;
    const dlq = pipeline.queues.deadLetterUrl.replace(moto, pipeline.proxy.endpoint);
    const run = await redriveCli(PRINCIPALS.operator, [
      '--endpoint',
      pipeline.proxy.endpoint,
      '--dlq-url',
      dlq,
      '--no-move-task',
      '--rate',
      '50',
    ]);
    expect({ code: run.code, stderr: run.stderr }).toEqual({ code: 0, stderr: '' });
    expect(pipeline.iam?.denials.slice(deniedBefore)).toEqual([]);
    const moved = await pipeline.sqs.send(new ReceiveMessageCommand({ QueueUrl: pipeline.queues.signupUrl, MaxNumberOfMessages: 10 }));
    expect((moved.Messages ?? []).map((m) => m.Body)).toContain('{"customerId":"redriven"}');
  });
});

test('docs/operations.md gives the operator policy the suites use (docs/operator-policy.json), verbatim', () => {
  const root = resolve(__dirname, '../..');
  const policy = readFileSync(resolve(root, 'docs/operator-policy.json'), 'utf8').trim();
  expect(readFileSync(resolve(root, 'docs/operations.md'), 'utf8')).toContain(`\`\`\`json\n${policy}\n\`\`\``);
});
