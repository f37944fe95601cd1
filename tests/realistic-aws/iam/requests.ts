import { type AwsRequest, isRecord, motoGet, motoJson, parseJson } from '../http.js';
import type { Operation } from '../operations.js';
import type { Authorization } from './evaluate.js';
import { UnevaluableRequestError } from './evaluate.js';
import type { IamWorld, Principal } from './world.js';

/**
 * What AWS authorizes for a request, per the Service Authorization Reference ("Actions, resources, and condition
 * keys for …" of each service): the IAM action, the resource's ARN, and the context keys the request and the
 * resource's state give (aws:RequestTag, aws:TagKeys, aws:ResourceTag, dynamodb:LeadingKeys, kms:ViaService,
 * kms:EncryptionContext:SecretARN). One request may need several authorizations (CreateApiKey with tags: POST on
 * the collection and PUT on the key's tags; CreateSecret with tags: CreateSecret and TagResource; a Secrets Manager
 * call that uses the KMS key: the KMS action too, made by Secrets Manager on the caller's behalf).
 */
export interface Check {
  auth: Authorization;
  /** The service whose error shape a denial takes: Secrets Manager answers for KMS too ("Access to KMS is not allowed"). */
  via: 'kms-through-secretsmanager' | 'caller';
  /** The resource as the error message names it. */
  named: string;
}

const SQS_ACTIONS: Record<string, string> = {
  SendMessageBatch: 'SendMessage',
  DeleteMessageBatch: 'DeleteMessage',
  ChangeMessageVisibilityBatch: 'ChangeMessageVisibility',
};

/** Secrets Manager operations that use the secret's KMS key, and the KMS action (developer guide, "Secret encryption and decryption"). */
const SECRETS_KMS: Record<string, string> = {
  CreateSecret: 'kms:GenerateDataKey',
  PutSecretValue: 'kms:GenerateDataKey',
  UpdateSecret: 'kms:GenerateDataKey',
  GetSecretValue: 'kms:Decrypt',
};

const bodyOf = (req: AwsRequest): Record<string, unknown> => {
  const parsed = parseJson(req.body);
  return isRecord(parsed) ? parsed : {};
};

const tagContext = (tags: Record<string, string>, prefix: 'aws:RequestTag' | 'aws:ResourceTag'): Record<string, string | string[]> => {
  const context: Record<string, string | string[]> = {};
  for (const [key, value] of Object.entries(tags)) context[`${prefix}/${key}`] = value;
  if (prefix === 'aws:RequestTag' && Object.keys(tags).length > 0) context['aws:TagKeys'] = Object.keys(tags);
  return context;
};

const secretsTags = (tags: unknown): Record<string, string> =>
  Object.fromEntries((Array.isArray(tags) ? tags : []).filter(isRecord).map((t) => [String(t.Key), String(t.Value)] as const));

/** Moto's answer to a JSON-protocol call for the state a condition needs, or undefined when it refused. */
async function motoState(moto: URL, like: AwsRequest, target: string, version: string, body: unknown) {
  const answer = await motoJson(moto, like, target, version, body);
  return answer.status < 300 ? answer.json : undefined;
}

function queueArn(op: Operation, world: IamWorld, url: string): string {
  const [, owner, name] = new URL(url, 'http://layer.invalid').pathname.split('/');
  if (!owner || !name) throw new UnevaluableRequestError(`${op.name}: no queue in QueueUrl ${url}`);
  return `arn:${world.stack.partition}:sqs:${op.region}:${owner}:${name}`;
}

function sqsChecks(op: Operation, req: AwsRequest, world: IamWorld, principal: Principal): Check[] {
  const body = bodyOf(req);
  const action = `sqs:${SQS_ACTIONS[op.name] ?? op.name}`;
  const context = { 'aws:PrincipalArn': principal.principalArn, 'aws:PrincipalAccount': world.settings.account };
  if (op.name === 'ListQueues') return [{ auth: { action, resource: '*', context }, via: 'caller', named: '*' }];
  let resource: string;
  if (typeof body.QueueUrl === 'string') resource = queueArn(op, world, body.QueueUrl);
  else if (typeof body.QueueName === 'string')
    resource = `arn:${world.stack.partition}:sqs:${op.region}:${String(body.QueueOwnerAWSAccountId ?? world.settings.account)}:${body.QueueName}`;
  else if (typeof body.SourceArn === 'string') resource = body.SourceArn;
  else if (typeof body.TaskHandle === 'string') throw new UnevaluableRequestError(`${op.name}: task handles are not evaluated`);
  else throw new UnevaluableRequestError(`${op.name}: no queue in the request`);
  const checks: Check[] = [
    { auth: { action, resource, context, resourcePolicy: world.queuePolicies.get(resource) }, via: 'caller', named: resource },
  ];
  // A message move task sends to its destination with the caller's permissions (SQS developer guide, "Configure
  // queue permissions for dead-letter queue redrive": sqs:SendMessage on the destination queue).
  if (op.name === 'StartMessageMoveTask' && typeof body.DestinationArn === 'string') {
    const destination = body.DestinationArn;
    checks.push({
      auth: { action: 'sqs:SendMessage', resource: destination, context, resourcePolicy: world.queuePolicies.get(destination) },
      via: 'caller',
      named: destination,
    });
  }
  return checks;
}

async function secretsChecks(moto: URL, op: Operation, req: AwsRequest, world: IamWorld, principal: Principal): Promise<Check[]> {
  const body = bodyOf(req);
  const action = `secretsmanager:${op.name}`;
  const base = { 'aws:PrincipalArn': principal.principalArn, 'aws:PrincipalAccount': world.settings.account };
  if (op.name === 'ListSecrets' || op.name === 'GetRandomPassword' || op.name === 'BatchGetSecretValue')
    return [{ auth: { action, resource: '*', context: base }, via: 'caller', named: '*' }];
  const p = world.stack.partition;
  const prefix = `arn:${p}:secretsmanager:${op.region}:${world.settings.account}:secret:`;
  let arn: string;
  let named: string;
  let kmsKeyId: string | undefined;
  let exists = false;
  const context: Record<string, string | string[]> = { ...base };
  const checks: Check[] = [];
  if (op.name === 'CreateSecret') {
    named = String(body.Name);
    // The new secret's ARN ends in six characters Secrets Manager draws; the request is authorized before they exist.
    arn = `${prefix}${named}-??????`;
    kmsKeyId = typeof body.KmsKeyId === 'string' ? body.KmsKeyId : undefined;
    const tags = secretsTags(body.Tags);
    Object.assign(context, tagContext(tags, 'aws:RequestTag'));
    checks.push({ auth: { action, resource: arn, context }, via: 'caller', named });
    // CreateSecret with Tags also needs secretsmanager:TagResource (API reference, CreateSecret: "Required permissions").
    if (Object.keys(tags).length > 0)
      checks.push({ auth: { action: 'secretsmanager:TagResource', resource: arn, context }, via: 'caller', named });
  } else {
    named = String(body.SecretId ?? '');
    const described = await motoState(moto, req, 'secretsmanager.DescribeSecret', '1.1', { SecretId: named });
    // A secret that does not exist: authorized against the name's ARN (what a policy on the name pattern matches).
    arn = typeof described?.ARN === 'string' ? described.ARN : named.startsWith('arn:') ? named : `${prefix}${named}-??????`;
    kmsKeyId = typeof described?.KmsKeyId === 'string' ? described.KmsKeyId : undefined;
    exists = described !== undefined;
    Object.assign(context, tagContext(secretsTags(described?.Tags), 'aws:ResourceTag'));
    if (op.name === 'TagResource') Object.assign(context, tagContext(secretsTags(body.Tags), 'aws:RequestTag'));
    checks.push({ auth: { action, resource: arn, context }, via: 'caller', named });
    // RotateSecret naming a function: "You also need lambda:InvokeFunction permissions on the rotation function"
    // (API reference, RotateSecret, "Required permissions"). Which text AWS's denial of it has is not documented.
    const fn = body.RotationLambdaARN;
    if (op.name === 'RotateSecret' && typeof fn === 'string')
      checks.push({ auth: { action: 'lambda:InvokeFunction', resource: fn, context: base }, via: 'caller', named: fn });
  }
  const kmsAction = SECRETS_KMS[op.name];
  // Secrets Manager calls KMS only for a value it stores or reads: not for a secret that does not exist (its answer
  // is ResourceNotFoundException), nor for a CreateSecret without a value.
  const usesKey =
    kmsAction !== undefined && (op.name === 'CreateSecret' ? body.SecretString !== undefined || body.SecretBinary !== undefined : exists);
  if (usesKey) {
    const keyArn = resolveKey(world, kmsKeyId ?? 'alias/aws/secretsmanager', op);
    checks.push({
      auth: {
        action: kmsAction,
        resource: keyArn,
        context: {
          ...base,
          'kms:ViaService': `secretsmanager.${op.region}.amazonaws.com`,
          'kms:CallerAccount': world.settings.account,
          // Secrets Manager's encryption context (developer guide, "Secrets Manager encryption context").
          'kms:EncryptionContext:SecretARN': arn,
          'kms:EncryptionContext:SecretVersionId': 'version-id',
        },
        resourcePolicy: world.keyPolicies.get(keyArn),
      },
      via: 'kms-through-secretsmanager',
      named: keyArn,
    });
  }
  return checks;
}

function resolveKey(world: IamWorld, keyId: string, op: Operation): string {
  if (keyId.startsWith('alias/')) {
    const arn = world.aliases.get(keyId);
    if (!arn) throw new UnevaluableRequestError(`${op.name}: KMS alias ${keyId} is not in the stack`);
    return arn;
  }
  if (keyId.startsWith('arn:')) return keyId;
  return `arn:${world.stack.partition}:kms:${op.region}:${world.settings.account}:key/${keyId}`;
}

async function apiGatewayChecks(moto: URL, op: Operation, req: AwsRequest, world: IamWorld, principal: Principal): Promise<Check[]> {
  const path = new URL(req.url, 'http://layer.invalid').pathname;
  const p = world.stack.partition;
  const resource = `arn:${p}:apigateway:${op.region}::${path}`;
  const action = `apigateway:${req.method}`;
  const context: Record<string, string | string[]> = {
    'aws:PrincipalArn': principal.principalArn,
    'aws:PrincipalAccount': world.settings.account,
  };
  const body = bodyOf(req);
  const requestTags = isRecord(body.tags) ? (body.tags as Record<string, string>) : {};
  const checks: Check[] = [];
  if (op.name === 'CreateApiKey' || op.name === 'TagResource') Object.assign(context, tagContext(requestTags, 'aws:RequestTag'));
  const keyId = op.params.apiKeyId;
  if (keyId && ['GetApiKey', 'UpdateApiKey', 'DeleteApiKey'].includes(op.name)) {
    const found = await motoGet(moto, req, `/apikeys/${encodeURIComponent(keyId)}`);
    const tags = isRecord(found.json) && isRecord(found.json.tags) ? (found.json.tags as Record<string, string>) : {};
    Object.assign(context, tagContext(tags, 'aws:ResourceTag'));
  }
  checks.push({ auth: { action, resource, context }, via: 'caller', named: resource });
  // CreateApiKey with tags: the Service Authorization Reference maps CreateApiKey to apigateway:POST and
  // apigateway:PUT; the PUT is the tag-on-create, on the Tags resource of the key being made. Its id does not exist
  // yet: the layer names it `new-key`. Whether AWS passes the request's tags to this PUT is not documented: they are.
  if (op.name === 'CreateApiKey' && Object.keys(requestTags).length > 0) {
    const keyArn = encodeURIComponent(`arn:${p}:apigateway:${op.region}::/apikeys/new-key`);
    const tagsResource = `arn:${p}:apigateway:${op.region}::/tags/${keyArn}`;
    checks.push({ auth: { action: 'apigateway:PUT', resource: tagsResource, context }, via: 'caller', named: tagsResource });
  }
  return checks;
}

async function dynamoDbChecks(moto: URL, op: Operation, req: AwsRequest, world: IamWorld, principal: Principal): Promise<Check[]> {
  const body = bodyOf(req);
  const table = String(body.TableName ?? '');
  // A Query or Scan of an index is authorized on the index's ARN, `table/<table>/index/<index>` (Service Authorization Reference, DynamoDB).
  const index = typeof body.IndexName === 'string' ? `/index/${body.IndexName}` : '';
  const resource = `arn:${world.stack.partition}:dynamodb:${op.region}:${world.settings.account}:table/${table}${index}`;
  const context: Record<string, string | string[]> = {
    'aws:PrincipalArn': principal.principalArn,
    'aws:PrincipalAccount': world.settings.account,
  };
  const item = isRecord(body.Key) ? body.Key : isRecord(body.Item) ? body.Item : undefined;
  if (item) {
    // dynamodb:LeadingKeys: the partition key values the request touches (the table's HASH key).
    const described = await motoState(moto, req, 'DynamoDB_20120810.DescribeTable', '1.0', { TableName: table });
    const schema = isRecord(described?.Table) && Array.isArray(described.Table.KeySchema) ? described.Table.KeySchema : [];
    const hash = schema.filter(isRecord).find((k) => k.KeyType === 'HASH')?.AttributeName;
    const value = typeof hash === 'string' && isRecord(item[hash]) ? Object.values(item[hash] as Record<string, unknown>)[0] : undefined;
    if (value !== undefined) context['dynamodb:LeadingKeys'] = [String(value)];
  }
  return [{ auth: { action: `dynamodb:${op.name}`, resource, context }, via: 'caller', named: resource }];
}

/** The authorizations a request needs; throws for a service or request the layer cannot name. */
export async function checksFor(moto: URL, op: Operation, req: AwsRequest, world: IamWorld, principal: Principal): Promise<Check[]> {
  const base = { 'aws:PrincipalArn': principal.principalArn, 'aws:PrincipalAccount': world.settings.account };
  switch (op.service) {
    case 'sqs':
      return sqsChecks(op, req, world, principal);
    case 'secretsmanager':
      return secretsChecks(moto, op, req, world, principal);
    case 'apigateway':
      return apiGatewayChecks(moto, op, req, world, principal);
    case 'dynamodb':
      return dynamoDbChecks(moto, op, req, world, principal);
    case 'metering':
      // No resource type and no condition key for ResolveCustomer (Service Authorization Reference, Marketplace Metering).
      return [{ auth: { action: `aws-marketplace:${op.name}`, resource: '*', context: base }, via: 'caller', named: '*' }];
    default:
      throw new UnevaluableRequestError(`a ${op.service} request (${op.seen}) is not evaluated by the layer`);
  }
}
