import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { inflateRawSync } from 'node:zlib';
import { FLEET_ITEM_KEY, TURNS_ITEM_KEY } from '../../lib/aws/dynamodb.js';
import { OWNER_TAG, ownedTags } from '../../lib/customer-key/naming.js';
import { type Run, run } from '../helpers/run-command.js';

/*
 * The deployment, checked offline: `serverless package` (no AWS credentials, no network) once, then the generated
 * CloudFormation template is read as CloudFormation would: its parameters and conditions evaluated for two
 * deployments, the default one and one with every setting configured (`--param` values become the parameters'
 * defaults; overriding a default here is what a different `--param` would do). cfn-lint checks the template when it
 * is installed; without it, that test is skipped and says so.
 */

const ROOT = resolve(__dirname, '../..');
const PACKAGE_TIMEOUT_MS = 150_000;
const STAGE = 'dev';
const REGION = 'us-east-1';
const ACCOUNT = '123456789012';

// ---------------------------------------------------------------------------------------------------------------
// Running `serverless package`

/** This process's environment without any AWS setting or credential: packaging must not need an account. */
function offlineEnv(scratch: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) if (!name.startsWith('AWS_')) env[name] = value;
  env.AWS_SHARED_CREDENTIALS_FILE = join(scratch, 'no-credentials');
  env.AWS_CONFIG_FILE = join(scratch, 'no-config');
  return env;
}

/** The names and contents of a zip's entries (stored or deflated; enough for the package serverless writes). */
function readZip(buffer: Buffer): Map<string, Buffer> {
  const entries = new Map<string, Buffer>();
  const eocd = buffer.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  if (eocd < 0) throw new Error('not a zip file');
  let offset = buffer.readUInt32LE(eocd + 16);
  const count = buffer.readUInt16LE(eocd + 10);
  for (let i = 0; i < count; i++) {
    const method = buffer.readUInt16LE(offset + 10);
    const compressedSize = buffer.readUInt32LE(offset + 20);
    const nameLength = buffer.readUInt16LE(offset + 28);
    const extraLength = buffer.readUInt16LE(offset + 30);
    const commentLength = buffer.readUInt16LE(offset + 32);
    const localHeader = buffer.readUInt32LE(offset + 42);
    const name = buffer.toString('utf8', offset + 46, offset + 46 + nameLength);
    const dataStart = localHeader + 30 + buffer.readUInt16LE(localHeader + 26) + buffer.readUInt16LE(localHeader + 28);
    const data = buffer.subarray(dataStart, dataStart + compressedSize);
    entries.set(name, method === 8 ? inflateRawSync(data) : Buffer.from(data));
    offset += 46 + nameLength + extraLength + commentLength;
  }
  return entries;
}

// ---------------------------------------------------------------------------------------------------------------
// Reading the template as CloudFormation does, for given parameter values

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

interface Template {
  Parameters?: Record<string, { Type: string; Default?: string; AllowedPattern?: string }>;
  Conditions?: Record<string, Json>;
  Resources: Record<
    string,
    {
      Type: string;
      Condition?: string;
      DependsOn?: string | string[];
      DeletionPolicy?: string;
      UpdateReplacePolicy?: string;
      Properties?: JsonObject;
    }
  >;
  Outputs?: Record<string, JsonObject>;
}

interface Resource {
  Type: string;
  DependsOn: string[];
  DeletionPolicy?: string;
  Properties: JsonObject;
}

/** What AWS::NoValue leaves: the key or list item is removed. */
const NO_VALUE = Symbol('AWS::NoValue');
type Value = Json | typeof NO_VALUE;

const isObject = (value: unknown): value is JsonObject => typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * The template's resources as one deployment creates them: conditions decided, intrinsic functions applied.
 * A resource's own attributes stay symbolic: `Ref` gives `ref:<LogicalId>`, `Fn::GetAtt` gives `<LogicalId.Attribute>`.
 */
class Deployment {
  readonly parameters: Record<string, string>;
  readonly conditions: Record<string, boolean> = {};
  readonly resources: Record<string, Resource> = {};

  constructor(
    readonly template: Template,
    overrides: Record<string, string> = {},
  ) {
    this.parameters = {};
    for (const [name, parameter] of Object.entries(template.Parameters ?? {})) this.parameters[name] = parameter.Default ?? '';
    for (const [name, value] of Object.entries(overrides)) {
      if (!(name in this.parameters)) throw new Error(`the template has no parameter ${name}`);
      this.parameters[name] = value;
    }
    for (const name of Object.keys(template.Conditions ?? {})) this.condition(name);
    for (const [id, resource] of Object.entries(template.Resources)) {
      if (resource.Condition !== undefined && !this.condition(resource.Condition)) continue;
      const dependsOn = resource.DependsOn === undefined ? [] : ([] as string[]).concat(resource.DependsOn);
      this.resources[id] = {
        Type: resource.Type,
        DependsOn: dependsOn,
        DeletionPolicy: resource.DeletionPolicy,
        Properties: (this.evaluate(resource.Properties ?? {}) as JsonObject) ?? {},
      };
    }
  }

  condition(name: string): boolean {
    const known = this.conditions[name];
    if (known !== undefined) return known;
    const definition = this.template.Conditions?.[name];
    if (definition === undefined) throw new Error(`no condition ${name}`);
    const value = this.conditionValue(definition);
    this.conditions[name] = value;
    return value;
  }

  private conditionValue(node: Json): boolean {
    if (!isObject(node)) throw new Error(`not a condition: ${JSON.stringify(node)}`);
    const [fn, args] = Object.entries(node)[0] ?? [];
    if (fn === 'Condition') return this.condition(String(args));
    if (!Array.isArray(args)) throw new Error(`${fn} takes a list`);
    if (fn === 'Fn::Equals') return JSON.stringify(this.evaluate(args[0] ?? null)) === JSON.stringify(this.evaluate(args[1] ?? null));
    if (fn === 'Fn::Not') return !this.conditionValue(args[0] ?? null);
    if (fn === 'Fn::And') return args.every((arg) => this.conditionValue(arg));
    if (fn === 'Fn::Or') return args.some((arg) => this.conditionValue(arg));
    throw new Error(`unknown condition function ${fn}`);
  }

  private ref(name: string): Value {
    if (name === 'AWS::NoValue') return NO_VALUE;
    if (name === 'AWS::Region') return REGION;
    if (name === 'AWS::AccountId') return ACCOUNT;
    if (name === 'AWS::Partition') return 'aws';
    if (name === 'AWS::StackName') return `api-key-provisioner-${STAGE}`;
    if (name in this.parameters) return this.parameters[name] ?? '';
    if (name in this.template.Resources) return `ref:${name}`;
    throw new Error(`Ref to unknown ${name}`);
  }

  private sub(text: string, variables: Record<string, Value>): string {
    return text.replace(/\$\{([^}]+)\}/g, (whole, name: string) => {
      if (name.startsWith('!')) return `\${${name.slice(1)}}`;
      if (name in variables) return String(variables[name]);
      if (name.includes('.')) {
        const [id] = name.split('.');
        if (id === undefined || !(id in this.template.Resources)) throw new Error(`Fn::Sub ${whole}: unknown resource`);
        return `<${name}>`;
      }
      return String(this.ref(name));
    });
  }

  evaluate(node: Json): Value {
    if (Array.isArray(node)) return node.map((item) => this.evaluate(item)).filter((item): item is Json => item !== NO_VALUE);
    if (!isObject(node)) return node;
    const keys = Object.keys(node);
    const [fn] = keys;
    if (keys.length === 1 && fn !== undefined && (fn === 'Ref' || fn.startsWith('Fn::'))) {
      const args = node[fn] ?? null;
      switch (fn) {
        case 'Ref':
          return this.ref(String(args));
        case 'Fn::GetAtt': {
          const [id, attribute] = Array.isArray(args) ? args : String(args).split('.');
          if (!(String(id) in this.template.Resources)) throw new Error(`Fn::GetAtt on unknown ${String(id)}`);
          return `<${String(id)}.${String(attribute)}>`;
        }
        case 'Fn::Sub': {
          if (typeof args === 'string') return this.sub(args, {});
          if (!Array.isArray(args) || typeof args[0] !== 'string' || !isObject(args[1] ?? null)) throw new Error('bad Fn::Sub');
          const variables: Record<string, Value> = {};
          for (const [name, value] of Object.entries(args[1] as JsonObject)) variables[name] = this.evaluate(value);
          return this.sub(args[0], variables);
        }
        case 'Fn::Join': {
          if (!Array.isArray(args) || typeof args[0] !== 'string') throw new Error('bad Fn::Join: the delimiter must be a literal');
          const items = this.evaluate(args[1] ?? null);
          if (!Array.isArray(items)) throw new Error('Fn::Join needs a list');
          return items.map(String).join(args[0]);
        }
        case 'Fn::Split': {
          if (!Array.isArray(args) || typeof args[0] !== 'string') throw new Error('bad Fn::Split');
          return String(this.evaluate(args[1] ?? null)).split(args[0]);
        }
        case 'Fn::Select': {
          if (!Array.isArray(args)) throw new Error('bad Fn::Select');
          const list = this.evaluate(args[1] ?? null);
          if (!Array.isArray(list)) throw new Error('Fn::Select needs a list');
          return list[Number(this.evaluate(args[0] ?? null))] ?? null;
        }
        case 'Fn::If': {
          if (!Array.isArray(args) || typeof args[0] !== 'string') throw new Error('bad Fn::If');
          return this.evaluate((this.condition(args[0]) ? args[1] : args[2]) ?? null);
        }
        default:
          throw new Error(`intrinsic function ${fn} is not evaluated here`);
      }
    }
    const result: JsonObject = {};
    for (const [key, value] of Object.entries(node)) {
      const evaluated = this.evaluate(value);
      if (evaluated !== NO_VALUE) result[key] = evaluated;
    }
    return result;
  }

  ofType(type: string): Array<[string, Resource]> {
    return Object.entries(this.resources).filter(([, resource]) => resource.Type === type);
  }

  resource(id: string): Resource {
    const found = this.resources[id];
    if (!found) throw new Error(`the deployment has no resource ${id} (it has ${Object.keys(this.resources).join(', ')})`);
    return found;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// IAM statements, normalized

interface Statement {
  Sid?: string;
  Effect: 'Allow' | 'Deny';
  Principal?: Json;
  Action: string[];
  Resource: string[];
  Condition?: Record<string, Record<string, string[]>>;
}

const list = (value: Json | undefined): string[] =>
  value === undefined || value === null ? [] : Array.isArray(value) ? value.map(String) : [String(value)];

function statementsOf(document: Json | undefined): Statement[] {
  if (!isObject(document ?? null)) throw new Error('not a policy document');
  return ((document as JsonObject).Statement as Json[]).map((raw) => {
    const s = raw as JsonObject;
    const condition: Record<string, Record<string, string[]>> = {};
    for (const [operator, keys] of Object.entries((s.Condition as JsonObject | undefined) ?? {})) {
      condition[operator] = {};
      for (const [key, values] of Object.entries(keys as JsonObject)) (condition[operator] as Record<string, string[]>)[key] = list(values);
    }
    return {
      ...(s.Sid !== undefined && { Sid: String(s.Sid) }),
      Effect: s.Effect as 'Allow' | 'Deny',
      ...(s.Principal !== undefined && { Principal: s.Principal }),
      Action: list(s.Action),
      Resource: list(s.Resource),
      ...(s.Condition !== undefined && { Condition: condition }),
    };
  });
}

/** Every statement a role holds (the provision function's by default): its inline policies and the AWS::IAM::Policy resources attached to it. */
function roleStatements(deployment: Deployment, roleId = 'ProvisionRole'): Statement[] {
  const role = deployment.resource(roleId);
  const inline = ((role.Properties.Policies as JsonObject[] | undefined) ?? []).flatMap((policy) => statementsOf(policy.PolicyDocument));
  const attached = deployment
    .ofType('AWS::IAM::Policy')
    .filter(([, policy]) => list(policy.Properties.Roles).includes(`ref:${roleId}`))
    .flatMap(([, policy]) => statementsOf(policy.Properties.PolicyDocument));
  return [...inline, ...attached];
}

const bySid = (statements: Statement[]): Record<string, Statement> => Object.fromEntries(statements.map((s) => [s.Sid ?? '(no Sid)', s]));

interface SendRequest {
  /** The caller: an IAM principal's ARN, or a service principal (which has no aws:PrincipalArn). */
  principalArn?: string;
  service?: string;
  sourceArn?: string;
}

/** IAM's ARN matching: `*` any run of characters, `?` one. */
const arnMatches = (pattern: string, value: string): boolean =>
  new RegExp(
    `^${pattern
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.')}$`,
  ).test(value);

/** One condition operator on one key, with IAM's rule for an absent key: positive operators false, negated ones true. */
function conditionHolds(operator: string, key: string, values: string[], request: SendRequest): boolean {
  const actual = key === 'aws:PrincipalArn' ? request.principalArn : key === 'aws:SourceArn' ? request.sourceArn : undefined;
  const negated = operator.includes('Not');
  if (actual === undefined) return negated;
  const matches = values.some((pattern) => (operator.includes('Like') ? arnMatches(pattern, actual) : pattern === actual));
  return negated ? !matches : matches;
}

/** `"*"` and `{"AWS": "*"}` are the same: everyone, services included; `{"Service": [...]}` those services. */
function principalMatches(principal: Json | undefined, request: SendRequest): boolean {
  if (principal === '*') return true;
  if (!isObject(principal ?? null)) return false;
  const { AWS, Service } = principal as JsonObject;
  if (list(AWS).includes('*')) return true;
  if (request.service !== undefined) return list(Service).includes(request.service);
  return list(AWS).some((arn) => request.principalArn !== undefined && arnMatches(arn, request.principalArn));
}

function statementApplies(statement: Statement, request: SendRequest): boolean {
  if (!statement.Action.includes('sqs:SendMessage') || !principalMatches(statement.Principal, request)) return false;
  return Object.entries(statement.Condition ?? {}).every(([operator, keys]) =>
    Object.entries(keys).every(([key, values]) => conditionHolds(operator, key, values, request)),
  );
}

/** The queue policy's verdict on a SendMessage (an explicit Deny wins; otherwise an Allow is needed). */
function queuePolicyAllows(statements: Statement[], request: SendRequest): boolean {
  if (statements.some((s) => s.Effect === 'Deny' && statementApplies(s, request))) return false;
  return statements.some((s) => s.Effect === 'Allow' && statementApplies(s, request));
}

// ---------------------------------------------------------------------------------------------------------------

/**
 * What each SDK command in lib/aws/*.ts needs from IAM (the Service Authorization Reference and the API references).
 * `whenConfigured`: granted only when configured (usage plans: the function calls it only for configured plans; a rotation schedule).
 * `role`: the role of the function that makes the call, when it is not the provision function's (ProvisionRole).
 */
const ACTIONS_OF_COMMAND: Record<string, { actions: string[]; whenConfigured?: true; operatorOnly?: true; role?: string }> = {
  CreateApiKeyCommand: { actions: ['apigateway:POST', 'apigateway:PUT'] },
  GetApiKeysCommand: { actions: ['apigateway:GET'] },
  UpdateApiKeyCommand: { actions: ['apigateway:PATCH'] },
  CreateUsagePlanKeyCommand: { actions: ['apigateway:POST'], whenConfigured: true },
  DeleteUsagePlanKeyCommand: { actions: ['apigateway:DELETE'], whenConfigured: true },
  GetUsagePlanCommand: { actions: ['apigateway:GET'], whenConfigured: true },
  GetUsagePlanKeyCommand: { actions: ['apigateway:GET'], whenConfigured: true },
  // The maintenance sweep's (functions/sweep.ts), with its own role: the key deleted, the one a stopped run claimed
  // looked at first, the due records found through the index (and read and written like the function's).
  DeleteApiKeyCommand: { actions: ['apigateway:DELETE'], role: 'SweepRole' },
  // Also the function's: a roll reads the old key's tags, checks the new key, looks before disabling old keys.
  GetApiKeyCommand: { actions: ['apigateway:GET'] },
  QueryCommand: { actions: ['dynamodb:Query'], role: 'SweepRole' },
  // Calls of the operations tools (reconcile), which run with the operator's credentials: not the function's role.
  GetUsagePlanKeysCommand: { actions: [], operatorOnly: true },
  ListSecretsCommand: { actions: [], operatorOnly: true },
  // The registration hook's (functions/register.ts), with its own role.
  ResolveCustomerCommand: { actions: ['aws-marketplace:ResolveCustomer'], role: 'RegisterRole' },
  GetSecretValueCommand: { actions: ['secretsmanager:GetSecretValue', 'kms:Decrypt'] },
  CreateSecretCommand: { actions: ['secretsmanager:CreateSecret', 'secretsmanager:TagResource', 'kms:GenerateDataKey', 'kms:Decrypt'] },
  PutSecretValueCommand: { actions: ['secretsmanager:PutSecretValue', 'kms:GenerateDataKey'] },
  // lib/customer-key/roll.ts: the rotation protocol's labels (which version is AWSCURRENT, moved to the new value).
  DescribeSecretCommand: { actions: ['secretsmanager:DescribeSecret'] },
  UpdateSecretVersionStageCommand: { actions: ['secretsmanager:UpdateSecretVersionStage'] },
  // Only with rotationSchedule (ScheduleRotationPolicy): the schedule put on a customer's secret, naming this function.
  RotateSecretCommand: { actions: ['secretsmanager:RotateSecret', 'lambda:InvokeFunction'], whenConfigured: true },
  // Only with rotationSchedule too: a revoke turns the leaver's rotation off.
  CancelRotateSecretCommand: { actions: ['secretsmanager:CancelRotateSecret'], whenConfigured: true },
  SendMessageBatchCommand: { actions: ['sqs:SendMessage'] },
  GetQueueUrlCommand: { actions: ['sqs:GetQueueUrl'] },
  ChangeMessageVisibilityBatchCommand: { actions: ['sqs:ChangeMessageVisibility'] },
  // lib/aws/dynamodb.ts: the usage-plan write turns (a failed condition's old item comes with the answer, no read action).
  UpdateItemCommand: { actions: ['dynamodb:UpdateItem'] },
  // lib/aws/dynamodb.ts: the customers' records, read strongly consistent and written conditionally.
  GetItemCommand: { actions: ['dynamodb:GetItem'] },
  PutItemCommand: { actions: ['dynamodb:PutItem'] },
};

const CONFIGURED = {
  SignupSourceArns: `arn:aws:sns:us-east-1:${ACCOUNT}:aws-mp-subscription-notification-prod4k2j9x8l7,arn:aws:events:${REGION}:${ACCOUNT}:rule/signups-to-keyprov`,
  SignupPublisherArns: `arn:aws:iam::${ACCOUNT}:role/signup-service,arn:aws:iam::${ACCOUNT}:role/ops/*`,
  SecretsKmsKeyArn: `arn:aws:kms:${REGION}:${ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab`,
  UsagePlanIds: 'abc123,def456',
  AlarmTopicArn: `arn:aws:sns:${REGION}:${ACCOUNT}:ops-alarms`,
  RotationSchedule: 'rate(90 days)',
};

function hasCfnLint(): boolean {
  const probe = spawnSync('cfn-lint', ['--version'], { encoding: 'utf8', timeout: 60_000 });
  return probe.status === 0;
}

const CFN_LINT = hasCfnLint();
if (!CFN_LINT) console.log('skipped: cfn-lint not installed (pip install cfn-lint); the template is not linted');

describe('serverless.yml: the packaged deployment (serverless package, offline)', () => {
  let scratch: string;
  let packageDir: string;
  let result: Run;
  let template: Template;
  let byDefault: Deployment;
  let configured: Deployment;
  let functionTimeout: number;

  beforeAll(async () => {
    scratch = mkdtempSync(join(tmpdir(), 'keyprov-deployment-'));
    packageDir = join(scratch, 'package');
    // The esbuild work folder in the scratch directory too, so a concurrent package of the service cannot collide.
    const workFolder = relative(ROOT, join(scratch, 'esbuild'));
    result = await run(
      'npm',
      [
        'exec',
        '--',
        'serverless',
        'package',
        '--stage',
        STAGE,
        '--region',
        REGION,
        '--package',
        packageDir,
        '--param',
        `bundleWorkFolder=${workFolder}`,
      ],
      offlineEnv(scratch),
      PACKAGE_TIMEOUT_MS,
    );
    if (result.code !== 0)
      throw new Error(`serverless package failed (exit ${result.code} ${result.signal ?? ''}):\n${result.stdout}\n${result.stderr}`);
    template = JSON.parse(readFileSync(join(packageDir, 'cloudformation-template-update-stack.json'), 'utf8')) as Template;
    byDefault = new Deployment(template);
    configured = new Deployment(template, CONFIGURED);
    functionTimeout = Number(byDefault.resource('ProvisionLambdaFunction').Properties.Timeout);
  }, PACKAGE_TIMEOUT_MS + 30_000);

  afterAll(() => {
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  describe('the package', () => {
    test('is built without AWS credentials: the zip holds the minified CommonJS bundle and its source map', () => {
      expect(readdirSync(packageDir).sort()).toEqual(
        expect.arrayContaining([
          'api-key-provisioner.zip',
          'cloudformation-template-create-stack.json',
          'cloudformation-template-update-stack.json',
        ]),
      );
      const zip = readZip(readFileSync(join(packageDir, 'api-key-provisioner.zip')));
      // One zip for both functions: each loads only its own bundle.
      expect([...zip.keys()].sort()).toEqual([
        'functions/key-page.cjs',
        'functions/key-page.cjs.map',
        'functions/provision.cjs',
        'functions/provision.cjs.map',
        'functions/register.cjs',
        'functions/register.cjs.map',
        'functions/sweep.cjs',
        'functions/sweep.cjs.map',
      ]);
      const bundle = zip.get('functions/provision.cjs')?.toString('utf8') ?? '';
      // Minified: a few long lines, not one line per statement.
      expect(bundle.length).toBeGreaterThan(100_000);
      expect(bundle.split('\n').length).toBeLessThan(200);
      expect(bundle.trimEnd()).toMatch(/\/\/# sourceMappingURL=provision\.cjs\.map$/);
      const map = JSON.parse(zip.get('functions/provision.cjs.map')?.toString('utf8') ?? '{}') as { sources?: string[] };
      expect(map.sources?.some((source) => source.endsWith('functions/provision.ts'))).toBe(true);
      // The SDK's ES modules, which esbuild can tree-shake, not its CommonJS build (serverless.yml mainFields).
      expect(map.sources?.some((source) => source.includes('@aws-sdk/client-api-gateway/dist-es/'))).toBe(true);
      expect(map.sources?.filter((source) => source.includes('/dist-cjs/'))).toEqual([]);
    });

    test('leaves no esbuild work folder behind', () => {
      expect(existsSync(join(scratch, 'esbuild'))).toBe(false);
    });
  });

  describe('the function and its trigger', () => {
    test('nodejs22.x on arm64, 256 MB, 30 s, source maps enabled at run time, its own role', () => {
      const fn = byDefault.resource('ProvisionLambdaFunction').Properties;
      expect(fn).toMatchObject({
        Runtime: 'nodejs22.x',
        Architectures: ['arm64'],
        MemorySize: 256,
        Timeout: 30,
        FunctionName: `api-key-provisioner-${STAGE}-provision`,
        Handler: 'functions/provision.handler',
        Role: '<ProvisionRole.Arn>',
      });
      const env = (fn.Environment as JsonObject).Variables as JsonObject;
      expect(String(env.NODE_OPTIONS)).toContain('--enable-source-maps');
      expect(env).toMatchObject({
        COMPLETION_QUEUE_URL: 'ref:CompletionQueue',
        NAME_PREFIX: `keyprov/${STAGE}/`,
        USAGE_PLANS: '',
        // No rotation schedule unless `--param rotationSchedule=…` (then ScheduleRotationPolicy too).
        ROTATION_SCHEDULE: '',
      });
      // One role per function: the framework's default role (and its broader log statements) is not generated.
      expect(byDefault.ofType('AWS::IAM::Role').map(([id]) => id)).toEqual(['ProvisionRole', 'SweepRole', 'RegisterRole', 'KeyPageRole']);
    });

    test('the log group keeps 30 days', () => {
      expect(byDefault.resource('ProvisionLogGroup').Properties).toEqual({
        LogGroupName: `/aws/lambda/api-key-provisioner-${STAGE}-provision`,
        RetentionInDays: 30,
      });
    });

    test('the SQS trigger reports batch item failures, 10 records per batch, 1 s window, at most 4 instances', () => {
      const mappings = byDefault.ofType('AWS::Lambda::EventSourceMapping');
      expect(mappings).toHaveLength(1);
      const [, mapping] = mappings[0] as [string, Resource];
      expect(mapping.Properties).toMatchObject({
        EventSourceArn: '<SignupQueue.Arn>',
        FunctionName: '<ProvisionLambdaFunction.Arn>',
        FunctionResponseTypes: ['ReportBatchItemFailures'],
        BatchSize: 10,
        MaximumBatchingWindowInSeconds: 1,
        ScalingConfig: { MaximumConcurrency: 4 },
      });
      // Starts only once the key alias the function names in SECRET_KMS_KEY_ID exists.
      expect(mapping.DependsOn).toContain('SecretsKeyAlias');
    });

    test('the instances share API Gateway’s 5 CreateApiKey calls a second: rate per instance × maximumConcurrency = 5', () => {
      const env = ((byDefault.resource('ProvisionLambdaFunction').Properties.Environment as JsonObject).Variables as JsonObject) ?? {};
      const [, mapping] = byDefault.ofType('AWS::Lambda::EventSourceMapping')[0] as [string, Resource];
      const maximumConcurrency = Number((mapping.Properties.ScalingConfig as JsonObject).MaximumConcurrency);
      expect(Number(env.API_GATEWAY_RATE_PER_SECOND) * maximumConcurrency).toBeCloseTo(5, 6);
    });
  });

  describe('the queues', () => {
    test('four queues, named by stage, every one encrypted (SSE-SQS)', () => {
      const queues = byDefault.ofType('AWS::SQS::Queue');
      expect(Object.fromEntries(queues.map(([id, q]) => [id, q.Properties.QueueName]))).toEqual({
        SignupQueue: `api-key-provisioner-${STAGE}-signups`,
        SignupDeadLetterQueue: `api-key-provisioner-${STAGE}-signups-dlq`,
        CompletionQueue: `api-key-provisioner-${STAGE}-completions`,
        CompletionDeadLetterQueue: `api-key-provisioner-${STAGE}-completions-dlq`,
      });
      for (const [, queue] of queues)
        expect(queue.Properties.SqsManagedSseEnabled === true || queue.Properties.KmsMasterKeyId !== undefined).toBe(true);
    });

    test('the signup queue: visibility timeout ≥ 6 × the function timeout + the batching window; redrive to its DLQ after 10 receives', () => {
      const signups = byDefault.resource('SignupQueue').Properties;
      expect(Number(signups.VisibilityTimeout)).toBeGreaterThanOrEqual(6 * functionTimeout + 1);
      expect(signups.RedrivePolicy).toEqual({ deadLetterTargetArn: '<SignupDeadLetterQueue.Arn>', maxReceiveCount: 10 });
    });

    test('the completion queue redrives to its own DLQ', () => {
      expect(byDefault.resource('CompletionQueue').Properties.RedrivePolicy).toEqual({
        deadLetterTargetArn: '<CompletionDeadLetterQueue.Arn>',
        maxReceiveCount: 5,
      });
    });

    test('the dead-letter queues keep messages 14 days and take them only from their own source queue', () => {
      for (const [dlq, source] of [
        ['SignupDeadLetterQueue', 'signups'],
        ['CompletionDeadLetterQueue', 'completions'],
      ] as const) {
        const properties = byDefault.resource(dlq).Properties;
        expect(properties.MessageRetentionPeriod).toBe(1_209_600);
        expect(properties.RedriveAllowPolicy).toEqual({
          redrivePermission: 'byQueue',
          sourceQueueArns: [`arn:aws:sqs:${REGION}:${ACCOUNT}:api-key-provisioner-${STAGE}-${source}`],
        });
      }
    });
  });

  describe('who may send to the signup queue', () => {
    const policyOf = (deployment: Deployment): Statement[] => {
      const policies = deployment.ofType('AWS::SQS::QueuePolicy');
      expect(policies.map(([, p]) => p.Properties.Queues)).toEqual([['ref:SignupQueue']]);
      return statementsOf((policies[0] as [string, Resource])[1].Properties.PolicyDocument);
    };
    const marketplaceTopic = `arn:aws:sns:us-east-1:${ACCOUNT}:aws-mp-subscription-notification-prod4k2j9x8l7`;
    const rule = `arn:aws:events:${REGION}:${ACCOUNT}:rule/signups-to-keyprov`;

    test('by default: the queue policy grants nobody (a principal of this account needs sqs:SendMessage of its own), denies other accounts, no SNS topic', () => {
      const statements = policyOf(byDefault);
      expect(statements.map((s) => s.Sid)).toEqual(['DenyEveryoneElse']);
      for (const s of statements) expect(s).toMatchObject({ Action: ['sqs:SendMessage'], Resource: ['<SignupQueue.Arn>'] });
      const denies = (request: SendRequest) => statements.some((s) => s.Effect === 'Deny' && statementApplies(s, request));
      // Not allowed by the queue policy: an unrelated role of the account cannot send on the strength of it.
      expect(queuePolicyAllows(statements, { principalArn: `arn:aws:iam::${ACCOUNT}:role/signup-service` })).toBe(false);
      // Not denied either: its own IAM policy decides (IAM's same-account rule).
      expect(denies({ principalArn: `arn:aws:iam::${ACCOUNT}:role/signup-service` })).toBe(false);
      expect(denies({ principalArn: 'arn:aws:iam::999999999999:role/intruder' })).toBe(true);
      expect(denies({ service: 'sns.amazonaws.com', sourceArn: marketplaceTopic })).toBe(true);
    });

    test('configured: the Marketplace topic and the EventBridge rule, and the listed publishers; nobody else', () => {
      const statements = policyOf(configured);
      expect(statements.map((s) => s.Sid)).toEqual(['AllowConfiguredTopicsAndRules', 'AllowSellerPublishers', 'DenyEveryoneElse']);
      expect(bySid(statements).AllowConfiguredTopicsAndRules).toMatchObject({
        Principal: { Service: ['sns.amazonaws.com', 'events.amazonaws.com'] },
        Condition: { ArnEquals: { 'aws:SourceArn': [marketplaceTopic, rule] } },
      });
      const allows = (request: SendRequest) => queuePolicyAllows(statements, request);
      expect(allows({ service: 'sns.amazonaws.com', sourceArn: marketplaceTopic })).toBe(true);
      expect(allows({ service: 'events.amazonaws.com', sourceArn: rule })).toBe(true);
      expect(allows({ principalArn: `arn:aws:iam::${ACCOUNT}:role/signup-service` })).toBe(true);
      expect(allows({ principalArn: `arn:aws:iam::${ACCOUNT}:role/ops/replayer` })).toBe(true);
      // Another topic, another rule, another role of this account, another account: denied.
      expect(allows({ service: 'sns.amazonaws.com', sourceArn: 'arn:aws:sns:us-east-1:999999999999:someone-elses-topic' })).toBe(false);
      expect(allows({ service: 'events.amazonaws.com', sourceArn: `arn:aws:events:${REGION}:${ACCOUNT}:rule/other` })).toBe(false);
      expect(allows({ principalArn: `arn:aws:iam::${ACCOUNT}:role/some-other-role` })).toBe(false);
      expect(allows({ principalArn: 'arn:aws:iam::999999999999:role/signup-service' })).toBe(false);
    });

    test('every Allow is conditioned on the caller or the source: none lets anyone in unconditionally', () => {
      for (const deployment of [byDefault, configured]) {
        for (const s of policyOf(deployment).filter((s) => s.Effect === 'Allow'))
          expect(Object.keys(s.Condition ?? {})).not.toHaveLength(0);
      }
    });
  });

  describe('the KMS key of the secrets', () => {
    test('by default the stack creates one: rotated, kept when the stack goes; the alias the function uses points to it', () => {
      const key = byDefault.resource('SecretsKey');
      expect(key.DeletionPolicy).toBe('Retain');
      expect(key.Properties).toMatchObject({ EnableKeyRotation: true, KeySpec: 'SYMMETRIC_DEFAULT', KeyUsage: 'ENCRYPT_DECRYPT' });
      const alias = byDefault.resource('SecretsKeyAlias').Properties;
      expect(alias).toEqual({ AliasName: `alias/api-key-provisioner-${STAGE}-secrets`, TargetKeyId: 'ref:SecretsKey' });
      const env = (byDefault.resource('ProvisionLambdaFunction').Properties.Environment as JsonObject).Variables as JsonObject;
      expect(env.SECRET_KMS_KEY_ID).toBe(alias.AliasName);
    });

    test('configured: no key is created, the alias points to the configured key', () => {
      expect(configured.resources.SecretsKey).toBeUndefined();
      expect(configured.resource('SecretsKeyAlias').Properties.TargetKeyId).toBe(CONFIGURED.SecretsKmsKeyArn);
    });
  });

  describe('the usage-plan write turns table', () => {
    const tableName = `api-key-provisioner-${STAGE}-coordination`;
    const variablesOf = (deployment: Deployment, functionId: string) =>
      (deployment.resource(functionId).Properties.Environment as JsonObject).Variables as JsonObject;

    test('on demand, partition key `pk` (a string) and nothing else, named by stage; deleted with the stack', () => {
      for (const deployment of [byDefault, configured]) {
        const table = deployment.resource('CoordinationTable');
        expect(table.Type).toBe('AWS::DynamoDB::Table');
        expect(table.Properties).toEqual({
          TableName: tableName,
          BillingMode: 'PAY_PER_REQUEST',
          AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }],
          KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
        });
      }
      // Coordination state only: nothing to keep, and a retained table would keep its name taken.
      expect(template.Resources.CoordinationTable).toMatchObject({ DeletionPolicy: 'Delete', UpdateReplacePolicy: 'Delete' });
    });

    test('the provision function gets its name as COORDINATION_TABLE, a plain string; the register function does not', () => {
      for (const deployment of [byDefault, configured]) {
        expect(variablesOf(deployment, 'ProvisionLambdaFunction').COORDINATION_TABLE).toBe(
          deployment.resource('CoordinationTable').Properties.TableName,
        );
        expect(variablesOf(deployment, 'RegisterLambdaFunction').COORDINATION_TABLE).toBeUndefined();
      }
      // As written in the template: no Ref, so `serverless invoke local` resolves it without a deployed stack.
      expect(template.Resources.ProvisionLambdaFunction).toMatchObject({
        Properties: { Environment: { Variables: { COORDINATION_TABLE: tableName } } },
      });
    });
  });

  describe('the function’s role: least privilege', () => {
    const namePrefix = `keyprov/${STAGE}/`;
    const secrets = `arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret:${namePrefix}*`;
    const apiKeys = `arn:aws:apigateway:${REGION}::/apikeys`;
    // The ownership tag (lib/customer-key/naming.ts OWNER_TAG) valued with this stage's NAME_PREFIX.
    const owned = (operator: string, key: 'aws:RequestTag' | 'aws:ResourceTag') => ({
      [operator]: { [`${key}/${OWNER_TAG}`]: [namePrefix] },
    });
    const expectedStatements = (keyArn: string): Record<string, Omit<Statement, 'Sid'>> => ({
      WriteOwnLogs: { Effect: 'Allow', Action: ['logs:CreateLogStream', 'logs:PutLogEvents'], Resource: ['<ProvisionLogGroup.Arn>'] },
      ConsumeSignupQueue: {
        Effect: 'Allow',
        Action: ['sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:GetQueueAttributes'],
        Resource: ['<SignupQueue.Arn>'],
      },
      DelayHandedBackRecords: {
        Effect: 'Allow',
        Action: ['sqs:GetQueueUrl', 'sqs:ChangeMessageVisibility'],
        Resource: ['<SignupQueue.Arn>'],
      },
      SendCompletionEvents: { Effect: 'Allow', Action: ['sqs:SendMessage'], Resource: ['<CompletionQueue.Arn>'] },
      CreateOwnedApiKeys: {
        Effect: 'Allow',
        Action: ['apigateway:POST'],
        Resource: [apiKeys],
        Condition: owned('StringEquals', 'aws:RequestTag'),
      },
      FindApiKeys: { Effect: 'Allow', Action: ['apigateway:GET'], Resource: [apiKeys] },
      TagNewApiKeys: {
        Effect: 'Allow',
        Action: ['apigateway:PUT'],
        Resource: [`arn:aws:apigateway:${REGION}::/tags/*apikeys*`],
        Condition: owned('StringEqualsIfExists', 'aws:RequestTag'),
      },
      EnableAndDisableApiKeys: {
        Effect: 'Allow',
        Action: ['apigateway:PATCH'],
        Resource: [`${apiKeys}/*`],
        Condition: owned('StringEquals', 'aws:ResourceTag'),
      },
      ReadApiKeys: { Effect: 'Allow', Action: ['apigateway:GET'], Resource: [`${apiKeys}/*`] },
      ReadOwnSecrets: { Effect: 'Allow', Action: ['secretsmanager:GetSecretValue'], Resource: [secrets] },
      RollOwnedSecrets: {
        Effect: 'Allow',
        Action: ['secretsmanager:DescribeSecret', 'secretsmanager:UpdateSecretVersionStage'],
        Resource: [secrets],
        Condition: owned('StringEquals', 'aws:ResourceTag'),
      },
      CreateOwnedSecrets: {
        Effect: 'Allow',
        Action: ['secretsmanager:CreateSecret'],
        Resource: [secrets],
        Condition: owned('StringEquals', 'aws:RequestTag'),
      },
      TagOwnedSecrets: {
        Effect: 'Allow',
        Action: ['secretsmanager:TagResource'],
        Resource: [secrets],
        Condition: owned('StringEqualsIfExists', 'aws:RequestTag'),
      },
      UpdateOwnedSecrets: {
        Effect: 'Allow',
        Action: ['secretsmanager:PutSecretValue'],
        Resource: [secrets],
        Condition: owned('StringEquals', 'aws:ResourceTag'),
      },
      UseSecretsKeyThroughSecretsManager: {
        Effect: 'Allow',
        Action: ['kms:GenerateDataKey', 'kms:Decrypt'],
        Resource: [keyArn],
        Condition: {
          StringEquals: { 'kms:ViaService': [`secretsmanager.${REGION}.amazonaws.com`] },
          StringLike: { 'kms:EncryptionContext:SecretARN': [secrets] },
        },
      },
      CoordinateInstances: {
        Effect: 'Allow',
        Action: ['dynamodb:UpdateItem'],
        Resource: ['<CoordinationTable.Arn>'],
        Condition: { 'ForAllValues:StringEquals': { 'dynamodb:LeadingKeys': [TURNS_ITEM_KEY, FLEET_ITEM_KEY] } },
      },
      ReadAndWriteCustomerRecords: {
        Effect: 'Allow',
        Action: ['dynamodb:GetItem', 'dynamodb:PutItem'],
        Resource: ['<KeyRecordsTable.Arn>'],
      },
    });
    const withoutSid = (statements: Statement[]) => Object.fromEntries(statements.map(({ Sid, ...rest }) => [Sid ?? '(no Sid)', rest]));

    test('by default: exactly these statements, each on its own resources', () => {
      expect(withoutSid(roleStatements(byDefault))).toEqual(expectedStatements('<SecretsKey.Arn>'));
    });

    // The partition is `*` here: the ARN prefix repeats inside Fn::Join's delimiter, which must be a literal
    // (serverless.yml, UsagePlanKeysPolicy). A role belongs to one partition, so `*` grants no more.
    const usagePlan = (id: string) => `arn:*:apigateway:${REGION}::/usageplans/${id}`;

    test('configured: the configured key instead, and the usage plan statements on the listed plans only', () => {
      const planKeys = (suffix: string) => ['abc123', 'def456'].map((id) => `${usagePlan(id)}/keys${suffix}`);
      expect(withoutSid(roleStatements(configured))).toEqual({
        ...expectedStatements(CONFIGURED.SecretsKmsKeyArn),
        AddKeysToUsagePlans: { Effect: 'Allow', Action: ['apigateway:POST'], Resource: planKeys('') },
        RemoveKeysFromUsagePlans: { Effect: 'Allow', Action: ['apigateway:DELETE'], Resource: planKeys('/*') },
        ReadUsagePlansAndTheirKeys: {
          Effect: 'Allow',
          Action: ['apigateway:GET'],
          Resource: [...['abc123', 'def456'].map(usagePlan), ...planKeys('/*')],
        },
        ScheduleRotationOfOwnedSecrets: {
          Effect: 'Allow',
          Action: ['secretsmanager:RotateSecret'],
          Resource: [secrets],
          Condition: owned('StringEquals', 'aws:ResourceTag'),
        },
        NameThisFunctionForRotation: { Effect: 'Allow', Action: ['lambda:InvokeFunction'], Resource: ['<ProvisionLambdaFunction.Arn>'] },
        StopRotationOfOwnedSecrets: {
          Effect: 'Allow',
          Action: ['secretsmanager:CancelRotateSecret'],
          Resource: [secrets],
          Condition: owned('StringEquals', 'aws:ResourceTag'),
        },
      });
    });

    test('no wildcard action, no Resource "*", no Deny to lean on, the role assumable by Lambda only', () => {
      for (const deployment of [byDefault, configured]) {
        for (const s of roleStatements(deployment)) {
          expect(s.Effect).toBe('Allow');
          for (const action of s.Action) expect(action).toMatch(/^[a-z0-9-]+:[A-Za-z]+$/);
          // The pseudo parameter AWS::Partition renders as `aws` here; `*` only in the usage-plan lists.
          for (const resource of s.Resource) expect(resource).toMatch(/^(arn:aws:|arn:\*:apigateway:|<)/);
        }
      }
      expect(statementsOf(byDefault.resource('ProvisionRole').Properties.AssumeRolePolicyDocument)).toEqual([
        { Effect: 'Allow', Principal: { Service: 'lambda.amazonaws.com' }, Action: ['sts:AssumeRole'], Resource: [] },
      ]);
    });

    test('every AWS call in lib/aws/*.ts is covered by the role (usage plan calls only when plans are configured)', () => {
      const adapters = readdirSync(join(ROOT, 'lib/aws')).filter((file) => file.endsWith('.ts'));
      const commands = new Set(
        adapters.flatMap((file) =>
          [...readFileSync(join(ROOT, 'lib/aws', file), 'utf8').matchAll(/new (\w+Command)\(/g)].map((m) => m[1] ?? ''),
        ),
      );
      // A new SDK call needs its IAM statement in serverless.yml (and in docs/deployment.md), then its entry here.
      expect([...commands].filter((command) => !(command in ACTIONS_OF_COMMAND))).toEqual([]);
      const granted = (deployment: Deployment, roleId?: string) => new Set(roleStatements(deployment, roleId).flatMap((s) => s.Action));
      const missing = (deployment: Deployment, whenConfigured: boolean) =>
        [...commands].flatMap((command) => {
          const needs = ACTIONS_OF_COMMAND[command];
          if (!needs || (needs.whenConfigured && !whenConfigured)) return [];
          return needs.actions.filter((action) => !granted(deployment, needs.role).has(action)).map((action) => `${command}: ${action}`);
        });
      expect(missing(byDefault, false)).toEqual([]);
      expect(missing(configured, true)).toEqual([]);
    });

    test('the ownership conditions name OWNER_TAG and the NAME_PREFIX the function runs with', () => {
      const env = (byDefault.resource('ProvisionLambdaFunction').Properties.Environment as JsonObject).Variables as JsonObject;
      expect(env.NAME_PREFIX).toBe(namePrefix);
      for (const deployment of [byDefault, configured]) {
        // The KMS statement and the DynamoDB one have conditions of their own (tests above and below).
        const conditioned = roleStatements(deployment).filter(
          (s) => s.Condition && !s.Action.every((a) => a.startsWith('kms:') || a.startsWith('dynamodb:')),
        );
        expect(conditioned.map((s) => s.Sid).sort()).toEqual(
          [
            'CreateOwnedApiKeys',
            'CreateOwnedSecrets',
            'EnableAndDisableApiKeys',
            'RollOwnedSecrets',
            'TagNewApiKeys',
            'TagOwnedSecrets',
            'UpdateOwnedSecrets',
            ...(deployment === configured ? ['ScheduleRotationOfOwnedSecrets', 'StopRotationOfOwnedSecrets'] : []),
          ].sort(),
        );
        for (const s of conditioned) {
          const entries = Object.values(s.Condition ?? {}).flatMap((keys) => Object.entries(keys));
          expect({ sid: s.Sid, entries }).toEqual({
            sid: s.Sid,
            entries: [[expect.stringMatching(new RegExp(`^aws:(RequestTag|ResourceTag)/${OWNER_TAG}$`)), [namePrefix]]],
          });
        }
      }
    });

    // The role's statements evaluated for concrete requests, with IAM's rules for the operators used here: StringEquals
    // is false when the key is absent from the request context; StringEqualsIfExists is then true. Condition key names
    // are case-insensitive. What IAM puts in the context (which tags) is what AWS documents; see docs/deployment.md.
    interface IamRequest {
      action: string;
      resource: string;
      /** Tags sent with the request (aws:RequestTag). */
      requestTags?: Record<string, string>;
      /** Tags of the resource acted on (aws:ResourceTag); undefined for one that does not exist. */
      resourceTags?: Record<string, string>;
      /** Partition keys of the DynamoDB items the request touches (dynamodb:LeadingKeys). */
      leadingKeys?: string[];
    }
    const contextValue = (key: string, request: IamRequest): string | undefined => {
      const [prefix, ...rest] = key.split('/');
      const tagKey = rest.join('/').toLowerCase();
      const tags = prefix === 'aws:RequestTag' ? request.requestTags : prefix === 'aws:ResourceTag' ? request.resourceTags : undefined;
      if (tags === undefined && prefix !== 'aws:RequestTag' && prefix !== 'aws:ResourceTag')
        throw new Error(`condition key ${key} is not modelled`);
      return Object.entries(tags ?? {}).find(([k]) => k.toLowerCase() === tagKey)?.[1];
    };
    const holds = (operator: string, key: string, values: string[], request: IamRequest): boolean => {
      // A set of values: true when every value of the request is listed (and so, as IAM has it, when there is none).
      if (operator === 'ForAllValues:StringEquals') {
        if (key.toLowerCase() !== 'dynamodb:leadingkeys') throw new Error(`condition key ${key} is not modelled`);
        return (request.leadingKeys ?? []).every((value) => values.includes(value));
      }
      const actual = contextValue(key, request);
      if (operator === 'StringEquals') return actual !== undefined && values.includes(actual);
      if (operator === 'StringEqualsIfExists') return actual === undefined || values.includes(actual);
      throw new Error(`condition operator ${operator} is not modelled`);
    };
    const roleAllows = (deployment: Deployment, request: IamRequest): boolean =>
      roleStatements(deployment).some(
        (s) =>
          s.Effect === 'Allow' &&
          s.Action.includes(request.action) &&
          s.Resource.some((pattern) => arnMatches(pattern, request.resource)) &&
          Object.entries(s.Condition ?? {}).every(([operator, keys]) =>
            Object.entries(keys).every(([key, values]) => holds(operator, key, values, request)),
          ),
      );

    test('API keys: created only with the ownership tag, changed only when they carry it', () => {
      const tags = ownedTags(namePrefix, { app: 'keyprov' }, { team: 'payments' });
      const otherStage = ownedTags('keyprov/prod/', {}, undefined);
      const allows = (request: IamRequest) => roleAllows(configured, request);
      // CreateApiKey (POST /apikeys, and PUT on the new key's Tags) with the tags the function sends.
      expect(allows({ action: 'apigateway:POST', resource: apiKeys, requestTags: tags })).toBe(true);
      expect(allows({ action: 'apigateway:POST', resource: apiKeys, requestTags: { app: 'keyprov' } })).toBe(false);
      expect(allows({ action: 'apigateway:POST', resource: apiKeys, requestTags: otherStage })).toBe(false);
      const tagsOfKey = `arn:aws:apigateway:${REGION}::/tags/${encodeURIComponent(`${apiKeys}/k1`)}`;
      expect(allows({ action: 'apigateway:PUT', resource: tagsOfKey, requestTags: tags })).toBe(true);
      expect(allows({ action: 'apigateway:PUT', resource: tagsOfKey })).toBe(true);
      // Never an ownership tag that names another deployment; PUT on anything but an API key's tags, never.
      expect(allows({ action: 'apigateway:PUT', resource: tagsOfKey, requestTags: otherStage })).toBe(false);
      expect(allows({ action: 'apigateway:PUT', resource: `arn:aws:apigateway:${REGION}::/restapis/r1`, requestTags: tags })).toBe(false);
      // GetApiKeys: the collection, unconditioned.
      expect(allows({ action: 'apigateway:GET', resource: apiKeys })).toBe(true);
      // UpdateApiKey: this deployment's keys only; a key without the tag (older) or another deployment's is refused.
      expect(allows({ action: 'apigateway:PATCH', resource: `${apiKeys}/k1`, resourceTags: tags })).toBe(true);
      expect(allows({ action: 'apigateway:PATCH', resource: `${apiKeys}/k1`, resourceTags: { app: 'keyprov' } })).toBe(false);
      expect(allows({ action: 'apigateway:PATCH', resource: `${apiKeys}/k1`, resourceTags: otherStage })).toBe(false);
      expect(allows({ action: 'apigateway:PATCH', resource: `${apiKeys}/k1` })).toBe(false);
      // Usage plans: the listed ones only (the key's tags play no part, see serverless.yml).
      expect(allows({ action: 'apigateway:POST', resource: `arn:aws:apigateway:${REGION}::/usageplans/abc123/keys` })).toBe(true);
      expect(allows({ action: 'apigateway:POST', resource: `arn:aws:apigateway:${REGION}::/usageplans/zzz999/keys` })).toBe(false);
      expect(allows({ action: 'apigateway:DELETE', resource: `arn:aws:apigateway:${REGION}::/usageplans/def456/keys/k1` })).toBe(true);
      expect(allows({ action: 'apigateway:DELETE', resource: `arn:aws:apigateway:${REGION}::/usageplans/def456` })).toBe(false);
    });

    test('secrets: read by name; created only with the ownership tag; written only when they carry it', () => {
      const secret = `arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret:${namePrefix}_/cust-1/api-key-a1B2c3`;
      const record = ownedTags(namePrefix, { app: 'keyprov' }, { team: 'payments' });
      const tombstone = ownedTags(namePrefix, { app: 'keyprov' }, undefined);
      const otherStage = ownedTags('keyprov/prod/', {}, undefined);
      const allows = (request: IamRequest) => roleAllows(byDefault, request);
      // GetSecretValue also before the secret exists ("no key yet"), and never outside the prefix.
      expect(allows({ action: 'secretsmanager:GetSecretValue', resource: secret })).toBe(true);
      expect(allows({ action: 'secretsmanager:GetSecretValue', resource: secret.replace(namePrefix, 'keyprov/prod/') })).toBe(false);
      // CreateSecret (and the TagResource it implies) with a key record's tags or a tombstone's.
      for (const tags of [record, tombstone]) {
        expect(allows({ action: 'secretsmanager:CreateSecret', resource: secret, requestTags: tags })).toBe(true);
        expect(allows({ action: 'secretsmanager:TagResource', resource: secret, requestTags: tags })).toBe(true);
      }
      expect(allows({ action: 'secretsmanager:CreateSecret', resource: secret, requestTags: { app: 'keyprov' } })).toBe(false);
      expect(allows({ action: 'secretsmanager:CreateSecret', resource: secret, requestTags: otherStage })).toBe(false);
      expect(allows({ action: 'secretsmanager:TagResource', resource: secret, requestTags: otherStage })).toBe(false);
      // PutSecretValue: secrets owned by this deployment only.
      expect(allows({ action: 'secretsmanager:PutSecretValue', resource: secret, resourceTags: tombstone })).toBe(true);
      expect(allows({ action: 'secretsmanager:PutSecretValue', resource: secret, resourceTags: {} })).toBe(false);
      expect(allows({ action: 'secretsmanager:PutSecretValue', resource: secret, resourceTags: otherStage })).toBe(false);
      // No way to remove the ownership tag.
      expect(allows({ action: 'secretsmanager:UntagResource', resource: secret, resourceTags: record })).toBe(false);
    });

    test('the turns table: UpdateItem on its one item only; the record table: GetItem and PutItem; no other DynamoDB right', () => {
      for (const deployment of [byDefault, configured]) {
        const statements = roleStatements(deployment);
        const dynamoDb = statements.filter((s) => JSON.stringify(s).toLowerCase().includes('dynamodb'));
        expect(dynamoDb).toEqual([
          {
            Sid: 'CoordinateInstances',
            Effect: 'Allow',
            Action: ['dynamodb:UpdateItem'],
            Resource: ['<CoordinationTable.Arn>'],
            Condition: { 'ForAllValues:StringEquals': { 'dynamodb:LeadingKeys': [TURNS_ITEM_KEY, FLEET_ITEM_KEY] } },
          },
          {
            Sid: 'ReadAndWriteCustomerRecords',
            Effect: 'Allow',
            Action: ['dynamodb:GetItem', 'dynamodb:PutItem'],
            Resource: ['<KeyRecordsTable.Arn>'],
          },
        ]);
        const records = '<KeyRecordsTable.Arn>';
        // The function never deletes, scans or queries records, nor reads the index.
        for (const action of ['dynamodb:DeleteItem', 'dynamodb:Scan', 'dynamodb:Query', 'dynamodb:UpdateItem'])
          expect({ action, allowed: roleAllows(deployment, { action, resource: records }) }).toEqual({ action, allowed: false });
        expect(roleAllows(deployment, { action: 'dynamodb:Query', resource: `${records}/index/due` })).toBe(false);
        // Nothing else names the table either.
        expect(statements.filter((s) => JSON.stringify(s).includes('CoordinationTable')).map((s) => s.Sid)).toEqual([
          'CoordinateInstances',
        ]);
        const table = '<CoordinationTable.Arn>';
        const allows = (request: IamRequest) => roleAllows(deployment, request);
        // What lib/aws/dynamodb.ts sends: UpdateItem with Key pk = TURNS_ITEM_KEY (turns) or FLEET_ITEM_KEY (heartbeats).
        expect(allows({ action: 'dynamodb:UpdateItem', resource: table, leadingKeys: [TURNS_ITEM_KEY] })).toBe(true);
        expect(allows({ action: 'dynamodb:UpdateItem', resource: table, leadingKeys: [FLEET_ITEM_KEY] })).toBe(true);
        expect(allows({ action: 'dynamodb:UpdateItem', resource: table, leadingKeys: ['another-item'] })).toBe(false);
        expect(
          allows({
            action: 'dynamodb:UpdateItem',
            resource: `arn:aws:dynamodb:${REGION}:${ACCOUNT}:table/other`,
            leadingKeys: [TURNS_ITEM_KEY],
          }),
        ).toBe(false);
        for (const action of ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:DeleteItem', 'dynamodb:Scan', 'dynamodb:Query'])
          expect({ action, allowed: allows({ action, resource: table, leadingKeys: [TURNS_ITEM_KEY] }) }).toEqual({
            action,
            allowed: false,
          });
      }
    });

    test('no hard-coded partition: serverless.yml has no `arn:aws:` outside comments, the packaged template none at all', () => {
      const lines = readFileSync(join(ROOT, 'serverless.yml'), 'utf8').split('\n');
      const code = lines.map((line, i) => [i + 1, line.replace(/(^|\s)#.*$/, '')] as const);
      expect(code.filter(([, line]) => line.includes('arn:aws:')).map(([n, line]) => `${n}: ${line.trim()}`)).toEqual([]);
      expect(JSON.stringify(template)).not.toContain('arn:aws:');
    });
  });

  describe('alarms', () => {
    test('DLQ depth of both dead-letter queues, function errors and the API key capacity, named by stage', () => {
      const alarms = Object.fromEntries(byDefault.ofType('AWS::CloudWatch::Alarm').map(([, a]) => [a.Properties.AlarmName, a.Properties]));
      expect(Object.keys(alarms).sort()).toEqual(
        [
          `api-key-provisioner-${STAGE}-api-key-capacity`,
          `api-key-provisioner-${STAGE}-capacity-exhausted`,
          `api-key-provisioner-${STAGE}-completions-dlq-not-empty`,
          `api-key-provisioner-${STAGE}-provision-errors`,
          `api-key-provisioner-${STAGE}-signups-dlq-not-empty`,
        ].sort(),
      );
      expect(alarms[`api-key-provisioner-${STAGE}-signups-dlq-not-empty`]).toMatchObject({
        Namespace: 'AWS/SQS',
        MetricName: 'ApproximateNumberOfMessagesVisible',
        Dimensions: [{ Name: 'QueueName', Value: '<SignupDeadLetterQueue.QueueName>' }],
        Threshold: 0,
        ComparisonOperator: 'GreaterThanThreshold',
      });
      expect(alarms[`api-key-provisioner-${STAGE}-completions-dlq-not-empty`]).toMatchObject({
        Dimensions: [{ Name: 'QueueName', Value: '<CompletionDeadLetterQueue.QueueName>' }],
      });
      expect(alarms[`api-key-provisioner-${STAGE}-provision-errors`]).toMatchObject({
        Namespace: 'AWS/Lambda',
        MetricName: 'Errors',
        Dimensions: [{ Name: 'FunctionName', Value: 'ref:ProvisionLambdaFunction' }],
        Statistic: 'Sum',
      });
    });

    test('they notify the configured topic, and no topic by default', () => {
      for (const [, alarm] of byDefault.ofType('AWS::CloudWatch::Alarm')) expect(alarm.Properties.AlarmActions).toBeUndefined();
      for (const [, alarm] of configured.ofType('AWS::CloudWatch::Alarm')) {
        expect(alarm.Properties).toMatchObject({ AlarmActions: [CONFIGURED.AlarmTopicArn], OKActions: [CONFIGURED.AlarmTopicArn] });
      }
    });
  });

  describe('the settings', () => {
    const pattern = (name: string) => new RegExp(template.Parameters?.[name]?.AllowedPattern ?? '(?!)');

    test('empty by default, and the configured values fit their CloudFormation parameters', () => {
      expect(byDefault.parameters).toEqual(Object.fromEntries(Object.keys(CONFIGURED).map((name) => [name, ''])));
      for (const [name, value] of Object.entries(CONFIGURED)) {
        expect({ name, fits: pattern(name).test(value) }).toEqual({ name, fits: true });
        expect({ name, emptyFits: pattern(name).test('') }).toEqual({ name, emptyFits: true });
      }
    });

    test('values CloudFormation refuses: a key alias instead of a key ARN, spaces in lists, a non-SNS alarm target', () => {
      expect(pattern('SecretsKmsKeyArn').test(`arn:aws:kms:${REGION}:${ACCOUNT}:alias/keyprov`)).toBe(false);
      expect(pattern('SecretsKmsKeyArn').test('alias/keyprov')).toBe(false);
      expect(pattern('UsagePlanIds').test('abc123, def456')).toBe(false);
      expect(pattern('SignupSourceArns').test(`arn:aws:sqs:${REGION}:${ACCOUNT}:q`)).toBe(false);
      expect(pattern('AlarmTopicArn').test(`arn:aws:lambda:${REGION}:${ACCOUNT}:function:x`)).toBe(false);
      for (const schedule of ['90 days', 'rate(90 minutes)', 'rate(1 day)', 'cron()'])
        expect({ schedule, fits: pattern('RotationSchedule').test(schedule) }).toEqual({ schedule, fits: false });
      expect(pattern('RotationSchedule').test('cron(0 16 1,15 * ? *)')).toBe(true);
    });
  });

  describe('the registration hook: its function, URL and signing key', () => {
    const register = () => byDefault.resource('RegisterLambdaFunction').Properties;
    const variables = () => (register().Environment as JsonObject).Variables as JsonObject;

    test('nodejs22.x on arm64, 10 s (the retry budget is 6 s), its own role, configured from the stack', () => {
      expect(register()).toMatchObject({
        Runtime: 'nodejs22.x',
        Architectures: ['arm64'],
        Timeout: 10,
        FunctionName: `api-key-provisioner-${STAGE}-register`,
        Handler: 'functions/register.handler',
        Role: '<RegisterRole.Arn>',
      });
      expect(variables()).toMatchObject({
        SIGNUP_QUEUE_URL: 'ref:SignupQueue',
        REGISTRATION_SIGNING_KEY_SECRET_ID: 'ref:RegistrationSigningKey',
        // The key page by default; `--param registrationPageUrl=…` names a page of the seller's own.
        REGISTRATION_PAGE_URL: '<KeyPageLambdaFunctionUrl.FunctionUrl>',
      });
      expect(variables().REGISTRATION_SIGNING_KEY).toBeUndefined();
      expect(byDefault.resource('RegisterLogGroup').Properties).toEqual({
        LogGroupName: `/aws/lambda/api-key-provisioner-${STAGE}-register`,
        RetentionInDays: 30,
      });
      const zip = readZip(readFileSync(join(packageDir, 'api-key-provisioner.zip')));
      expect([...zip.keys()]).toEqual(expect.arrayContaining(['functions/register.cjs', 'functions/register.cjs.map']));
    });

    test('a public function URL: AuthType NONE, invocable by anyone only through the URL; no other trigger', () => {
      const urls = byDefault.ofType('AWS::Lambda::Url');
      // In any order: the template's order of resources is the framework's, not a promise.
      const byTarget = (a: JsonObject, b: JsonObject) => String(a.TargetFunctionArn).localeCompare(String(b.TargetFunctionArn));
      expect(urls.map(([, url]) => url.Properties).sort(byTarget)).toEqual([
        { AuthType: 'NONE', TargetFunctionArn: '<KeyPageLambdaFunction.Arn>' },
        { AuthType: 'NONE', TargetFunctionArn: '<RegisterLambdaFunction.Arn>' },
      ]);
      const permissions = byDefault
        .ofType('AWS::Lambda::Permission')
        .filter(([, p]) => p.Properties.FunctionName === '<RegisterLambdaFunction.Arn>')
        .map(([, p]) => p.Properties);
      expect(permissions).toEqual(
        expect.arrayContaining([
          { FunctionName: '<RegisterLambdaFunction.Arn>', Action: 'lambda:InvokeFunctionUrl', Principal: '*', FunctionUrlAuthType: 'NONE' },
          { FunctionName: '<RegisterLambdaFunction.Arn>', Action: 'lambda:InvokeFunction', Principal: '*', InvokedViaFunctionUrl: true },
        ]),
      );
      expect(permissions).toHaveLength(2);
      expect(
        byDefault.ofType('AWS::Lambda::EventSourceMapping').filter(([, m]) => m.Properties.FunctionName === '<RegisterLambdaFunction.Arn>'),
      ).toEqual([]);
      expect(template.Outputs?.RegisterLambdaFunctionUrl?.Value).toEqual({ 'Fn::GetAtt': ['RegisterLambdaFunctionUrl', 'FunctionUrl'] });
    });

    test('the signing key: generated, 64 letters and digits, named outside NAME_PREFIX (no provision-role access)', () => {
      const secret = byDefault.resource('RegistrationSigningKey').Properties;
      expect(secret.GenerateSecretString).toEqual({ PasswordLength: 64, ExcludePunctuation: true });
      expect(secret.Name).toBe(`api-key-provisioner/${STAGE}/registration-signing-key`);
      expect(String(secret.Name).startsWith(`keyprov/${STAGE}/`)).toBe(false);
      expect(template.Outputs?.RegistrationSigningKeyArn?.Value).toEqual({ Ref: 'RegistrationSigningKey' });
    });
  });

  describe('the key page: its function, URL, table and role', () => {
    const keyPage = () => byDefault.resource('KeyPageLambdaFunction').Properties;
    const secretsUnderPrefix = `arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret:keyprov/${STAGE}/*`;

    test('nodejs22.x on arm64, 10 s, its own role, configured from the stack; the hook sends buyers to its URL', () => {
      expect(keyPage()).toMatchObject({
        Runtime: 'nodejs22.x',
        Architectures: ['arm64'],
        Timeout: 10,
        FunctionName: `api-key-provisioner-${STAGE}-keyPage`,
        Handler: 'functions/key-page.handler',
        Role: '<KeyPageRole.Arn>',
      });
      expect((keyPage().Environment as JsonObject).Variables).toMatchObject({
        SIGNUP_QUEUE_URL: 'ref:SignupQueue',
        KEY_RECORDS_TABLE: `api-key-provisioner-${STAGE}-key-records`,
        KEY_REVEALS_TABLE: `api-key-provisioner-${STAGE}-key-reveals`,
        REGISTRATION_SIGNING_KEY_SECRET_ID: 'ref:RegistrationSigningKey',
        SELLER_NAME: '',
      });
      const permissions = byDefault
        .ofType('AWS::Lambda::Permission')
        .filter(([, p]) => p.Properties.FunctionName === '<KeyPageLambdaFunction.Arn>')
        .map(([, p]) => p.Properties);
      expect(permissions).toHaveLength(2);
      expect(template.Outputs?.KeyPageLambdaFunctionUrl?.Value).toEqual({ 'Fn::GetAtt': ['KeyPageLambdaFunctionUrl', 'FunctionUrl'] });
      const zip = readZip(readFileSync(join(packageDir, 'api-key-provisioner.zip')));
      expect([...zip.keys()]).toEqual(expect.arrayContaining(['functions/key-page.cjs', 'functions/key-page.cjs.map']));
    });

    test('its table: on demand, encrypted, point-in-time recovery, TTL on expiresAt, retained', () => {
      const table = byDefault.resource('KeyRevealsTable');
      expect(table.Properties).toMatchObject({
        TableName: `api-key-provisioner-${STAGE}-key-reveals`,
        BillingMode: 'PAY_PER_REQUEST',
        SSESpecification: { SSEEnabled: true },
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
        TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: true },
        KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
      });
    });

    test("its role: the stage's secrets read (owned ones), its markers, roll requests to the signup queue; nothing else", () => {
      expect(Object.fromEntries(roleStatements(byDefault, 'KeyPageRole').map(({ Sid, ...rest }) => [Sid ?? '(no Sid)', rest]))).toEqual({
        WriteOwnLogs: { Effect: 'Allow', Action: ['logs:CreateLogStream', 'logs:PutLogEvents'], Resource: ['<KeyPageLogGroup.Arn>'] },
        ReadSigningKey: { Effect: 'Allow', Action: ['secretsmanager:GetSecretValue'], Resource: ['ref:RegistrationSigningKey'] },
        ReadOwnKeyValues: {
          Effect: 'Allow',
          Action: ['secretsmanager:GetSecretValue'],
          Resource: [secretsUnderPrefix],
          Condition: { StringEquals: { 'aws:ResourceTag/keyprov:owner': [`keyprov/${STAGE}/`] } },
        },
        DecryptOwnKeyValues: {
          Effect: 'Allow',
          Action: ['kms:Decrypt'],
          Resource: ['<SecretsKey.Arn>'],
          Condition: {
            StringEquals: { 'kms:ViaService': [`secretsmanager.${REGION}.amazonaws.com`] },
            StringLike: { 'kms:EncryptionContext:SecretARN': [secretsUnderPrefix] },
          },
        },
        ReadCustomerRecords: { Effect: 'Allow', Action: ['dynamodb:GetItem'], Resource: ['<KeyRecordsTable.Arn>'] },
        ReadAndWriteRevealMarkers: {
          Effect: 'Allow',
          Action: ['dynamodb:GetItem', 'dynamodb:UpdateItem'],
          Resource: ['<KeyRevealsTable.Arn>'],
        },
        SendRollRequests: { Effect: 'Allow', Action: ['sqs:SendMessage'], Resource: ['<SignupQueue.Arn>'] },
      });
      const granted = roleStatements(byDefault, 'KeyPageRole').flatMap((s) => s.Action);
      expect(
        granted.filter((a) => /^(apigateway|aws-marketplace):/.test(a) || (!a.startsWith('logs:') && /Put|Create|Delete/.test(a))),
      ).toEqual([]);
    });
  });

  describe('the maintenance sweep: its function, schedule, role and alarm', () => {
    const sweepFn = () => byDefault.resource('SweepLambdaFunction').Properties;
    const apiKeys = `arn:aws:apigateway:${REGION}::/apikeys`;
    const usagePlanKeys = ['abc123', 'def456'].map((id) => `arn:*:apigateway:${REGION}::/usageplans/${id}/keys/*`);
    const expected = {
      WriteOwnLogs: { Effect: 'Allow', Action: ['logs:CreateLogStream', 'logs:PutLogEvents'], Resource: ['<SweepLogGroup.Arn>'] },
      FindDueRecords: { Effect: 'Allow', Action: ['dynamodb:Query'], Resource: ['<KeyRecordsTable.Arn>/index/due'] },
      ReadAndWriteCustomerRecords: {
        Effect: 'Allow',
        Action: ['dynamodb:GetItem', 'dynamodb:PutItem'],
        Resource: ['<KeyRecordsTable.Arn>'],
      },
      DeleteOwnedApiKeys: {
        Effect: 'Allow',
        Action: ['apigateway:DELETE'],
        Resource: [`${apiKeys}/*`],
        Condition: { StringEquals: { [`aws:ResourceTag/${OWNER_TAG}`]: [`keyprov/${STAGE}/`] } },
      },
      CountAndReadApiKeys: { Effect: 'Allow', Action: ['apigateway:GET'], Resource: [apiKeys, `${apiKeys}/*`] },
      TakeUsagePlanWriteTurns: {
        Effect: 'Allow',
        Action: ['dynamodb:UpdateItem'],
        Resource: ['<CoordinationTable.Arn>'],
        Condition: { 'ForAllValues:StringEquals': { 'dynamodb:LeadingKeys': [TURNS_ITEM_KEY] } },
      },
    };
    const withoutSid = (statements: Statement[]) => Object.fromEntries(statements.map(({ Sid, ...rest }) => [Sid ?? '(no Sid)', rest]));

    test('nodejs22.x on arm64, its own role, one run at a time, every 5 minutes by default, configured from the stack', () => {
      expect(sweepFn()).toMatchObject({
        Runtime: 'nodejs22.x',
        Architectures: ['arm64'],
        Timeout: 120,
        FunctionName: `api-key-provisioner-${STAGE}-sweep`,
        Handler: 'functions/sweep.handler',
        Role: '<SweepRole.Arn>',
        ReservedConcurrentExecutions: 1,
      });
      expect((sweepFn().Environment as JsonObject).Variables).toMatchObject({
        KEY_RECORDS_TABLE: `api-key-provisioner-${STAGE}-key-records`,
        COORDINATION_TABLE: `api-key-provisioner-${STAGE}-coordination`,
        RETIRE_AFTER_DAYS: '30',
        API_KEY_QUOTA: '10000',
        SWEEP_RATE_PER_SECOND: '1',
      });
      const rules = byDefault.ofType('AWS::Events::Rule').map(([, rule]) => rule.Properties);
      expect(rules).toEqual([expect.objectContaining({ ScheduleExpression: 'rate(5 minutes)', State: 'ENABLED' })]);
    });

    test('its role: exactly these statements; the plans’ keys only when plans are configured, on those plans only', () => {
      expect(withoutSid(roleStatements(byDefault, 'SweepRole'))).toEqual(expected);
      expect(withoutSid(roleStatements(configured, 'SweepRole'))).toEqual({
        ...expected,
        RemoveRetiredKeysFromUsagePlans: { Effect: 'Allow', Action: ['apigateway:DELETE', 'apigateway:GET'], Resource: usagePlanKeys },
      });
      expect(statementsOf(byDefault.resource('SweepRole').Properties.AssumeRolePolicyDocument)).toEqual([
        { Effect: 'Allow', Principal: { Service: 'lambda.amazonaws.com' }, Action: ['sts:AssumeRole'], Resource: [] },
      ]);
      // The provision role gets neither the delete of keys nor the index.
      const provision = roleStatements(configured);
      expect(provision.flatMap((s) => s.Action)).not.toContain('dynamodb:Query');
      expect(provision.filter((s) => s.Action.includes('apigateway:DELETE')).flatMap((s) => s.Resource)).toEqual(
        ['abc123', 'def456'].map((id) => `arn:*:apigateway:${REGION}::/usageplans/${id}/keys/*`),
      );
    });

    test('the capacity alarms: API keys at 80 % of API_KEY_QUOTA (a silent sweep alarms too); any record capacity-exhausted', () => {
      expect(byDefault.resource('CapacityExhaustedAlarm').Properties).toMatchObject({
        Namespace: 'ApiKeyProvisioner',
        MetricName: 'CapacityExhausted',
        Statistic: 'Sum',
        Threshold: 0,
        ComparisonOperator: 'GreaterThanThreshold',
      });
      const provisionEnv = (byDefault.resource('ProvisionLambdaFunction').Properties.Environment as JsonObject).Variables as JsonObject;
      expect(provisionEnv.API_KEY_QUOTA).toBe('10000');
      expect(byDefault.resource('ApiKeyCapacityAlarm').Properties).toMatchObject({
        Namespace: 'ApiKeyProvisioner',
        MetricName: 'ApiKeyQuotaUsed',
        Dimensions: [{ Name: 'service', Value: 'api-key-provisioner' }],
        Threshold: 80,
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
        TreatMissingData: 'breaching',
      });
    });
  });

  describe('the registration hook’s role: least privilege', () => {
    /** What each SDK command the hook makes needs (lib/aws/metering.ts; sqsAdapter.sendBatch; secretsManagerAdapter.getSecret). */
    const REGISTER_ACTIONS_OF_COMMAND: Record<string, string[]> = {
      ResolveCustomerCommand: ['aws-marketplace:ResolveCustomer'],
      SendMessageBatchCommand: ['sqs:SendMessage'],
      GetSecretValueCommand: ['secretsmanager:GetSecretValue'],
    };

    test('exactly these statements, in both deployments; Resource "*" only for ResolveCustomer, which has no resource type', () => {
      for (const deployment of [byDefault, configured]) {
        expect(Object.fromEntries(roleStatements(deployment, 'RegisterRole').map(({ Sid, ...rest }) => [Sid ?? '(no Sid)', rest]))).toEqual(
          {
            WriteOwnLogs: { Effect: 'Allow', Action: ['logs:CreateLogStream', 'logs:PutLogEvents'], Resource: ['<RegisterLogGroup.Arn>'] },
            RedeemRegistrationTokens: { Effect: 'Allow', Action: ['aws-marketplace:ResolveCustomer'], Resource: ['*'] },
            SendSignups: { Effect: 'Allow', Action: ['sqs:SendMessage'], Resource: ['<SignupQueue.Arn>'] },
            ReadSigningKey: { Effect: 'Allow', Action: ['secretsmanager:GetSecretValue'], Resource: ['ref:RegistrationSigningKey'] },
          },
        );
      }
      expect(statementsOf(byDefault.resource('RegisterRole').Properties.AssumeRolePolicyDocument)).toEqual([
        { Effect: 'Allow', Principal: { Service: 'lambda.amazonaws.com' }, Action: ['sts:AssumeRole'], Resource: [] },
      ]);
    });

    test('the hook’s calls (lib/aws/metering.ts, its SQS and Secrets Manager calls) are granted; the provision role gets neither ResolveCustomer nor the key', () => {
      const metering = [...readFileSync(join(ROOT, 'lib/aws/metering.ts'), 'utf8').matchAll(/new (\w+Command)\(/g)].map((m) => m[1] ?? '');
      expect(metering.filter((command) => !(command in REGISTER_ACTIONS_OF_COMMAND))).toEqual([]);
      const granted = new Set(roleStatements(byDefault, 'RegisterRole').flatMap((s) => s.Action));
      expect(
        Object.values(REGISTER_ACTIONS_OF_COMMAND)
          .flat()
          .filter((action) => !granted.has(action)),
      ).toEqual([]);
      for (const deployment of [byDefault, configured]) {
        const provision = roleStatements(deployment);
        expect(provision.flatMap((s) => s.Action)).not.toContain('aws-marketplace:ResolveCustomer');
        expect(provision.flatMap((s) => s.Resource)).not.toContain('ref:RegistrationSigningKey');
      }
    });
  });

  // Without cfn-lint this test is reported as skipped (and a line above says why), never passed silently.
  (CFN_LINT ? test : test.skip)(
    'cfn-lint finds no error and no warning in the template serverless package generated',
    () => {
      const lint = spawnSync('cfn-lint', [join(packageDir, 'cloudformation-template-update-stack.json'), '--regions', REGION], {
        encoding: 'utf8',
        timeout: 120_000,
      });
      expect({ status: lint.status, output: `${lint.stdout}${lint.stderr}`.trim() }).toEqual({ status: 0, output: '' });
    },
    150_000,
  );
});
