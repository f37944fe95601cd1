import {
  type AttributeValue,
  ConditionalCheckFailedException,
  type DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
} from '@aws-sdk/client-dynamodb';
import {
  CreateSecretCommand,
  GetSecretValueCommand,
  PutSecretValueCommand,
  ResourceExistsException,
  ResourceNotFoundException,
  type SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import type { AwsStub } from 'aws-sdk-client-mock';

const meta = (httpStatusCode: number) => ({ $metadata: { httpStatusCode } });
const arnOf = (name: string) => `arn:aws:secretsmanager:us-east-1:123456789012:secret:${name}-AbCdEf`;

/**
 * Makes a mocked Secrets Manager client behave like a name → current value map: CreateSecret and PutSecretValue
 * write, GetSecretValue reads. ClientRequestToken is honoured as Secrets Manager does (and moto): a token becomes the
 * version id; the same token again with the same value is ignored, with another value refused
 * (ResourceExistsException). For unit tests of the use cases' reads and writes; the integration suites run the same
 * cases against moto. Returns the map.
 */
// biome-ignore lint/suspicious/noExplicitAny: aws-sdk-client-mock's stub types its inputs and outputs loosely.
export function storeBackedSecrets(mock: AwsStub<any, any, SecretsManagerClient['config']>): Map<string, string> {
  const stored = new Map<string, string>();
  /** The value of each version, by secret and token. */
  const versions = new Map<string, string>();
  const version = (name: string, token: string | undefined, value: string): 'new' | 'repeat' => {
    if (token === undefined) return 'new';
    const known = versions.get(`${name}\u0000${token}`);
    if (known === undefined) {
      versions.set(`${name}\u0000${token}`, value);
      return 'new';
    }
    if (known === value) return 'repeat';
    throw new ResourceExistsException({
      message: `You can't use ClientRequestToken ${token} because that value is already in use`,
      ...meta(400),
    });
  };
  mock.on(GetSecretValueCommand).callsFake(async ({ SecretId }: { SecretId: string }) => {
    const value = stored.get(SecretId);
    if (value === undefined) throw new ResourceNotFoundException({ message: 'not found', ...meta(400) });
    return { ARN: arnOf(SecretId), Name: SecretId, SecretString: value };
  });
  mock
    .on(CreateSecretCommand)
    .callsFake(async ({ Name, SecretString, ClientRequestToken }: { Name: string; SecretString: string; ClientRequestToken?: string }) => {
      if (stored.has(Name)) throw new ResourceExistsException({ message: 'exists', ...meta(400) });
      version(Name, ClientRequestToken, SecretString);
      stored.set(Name, SecretString);
      return { ARN: arnOf(Name), Name };
    });
  mock
    .on(PutSecretValueCommand)
    .callsFake(
      async ({ SecretId, SecretString, ClientRequestToken }: { SecretId: string; SecretString: string; ClientRequestToken?: string }) => {
        if (!stored.has(SecretId)) throw new ResourceNotFoundException({ message: 'not found', ...meta(400) });
        if (version(SecretId, ClientRequestToken, SecretString) === 'new') stored.set(SecretId, SecretString);
        return {};
      },
    );
  return stored;
}

/**
 * Makes a mocked DynamoDB client hold the record table as a pk → item map, honouring the two conditions the record
 * store writes with (`attribute_not_exists(pk)`, `version = :expected`) as DynamoDB does: a failed one throws
 * ConditionalCheckFailedException and writes nothing. For unit tests; the integration suites use moto's DynamoDB.
 * Returns the map.
 */
// biome-ignore lint/suspicious/noExplicitAny: aws-sdk-client-mock's stub types its inputs and outputs loosely.
export function storeBackedRecords(mock: AwsStub<any, any, DynamoDBClient['config']>): Map<string, Record<string, AttributeValue>> {
  const items = new Map<string, Record<string, AttributeValue>>();
  mock.on(GetItemCommand).callsFake(async ({ Key }: { Key: { pk: { S: string } } }) => {
    const item = items.get(Key.pk.S);
    return item ? { Item: item } : {};
  });
  mock
    .on(PutItemCommand)
    .callsFake(
      async (input: {
        Item: Record<string, AttributeValue> & { pk: { S: string } };
        ConditionExpression?: string;
        ExpressionAttributeValues?: Record<string, AttributeValue>;
      }) => {
        const current = items.get(input.Item.pk.S);
        const condition = input.ConditionExpression;
        const holds =
          condition === undefined ||
          (condition === 'attribute_not_exists(pk)' && !current) ||
          (condition === 'version = :expected' && current?.version?.N === input.ExpressionAttributeValues?.[':expected']?.N);
        if (condition !== undefined && !['attribute_not_exists(pk)', 'version = :expected'].includes(condition))
          throw new Error(`storeBackedRecords: condition ${condition} not emulated`);
        if (!holds) throw new ConditionalCheckFailedException({ message: 'The conditional request failed', ...meta(400) });
        items.set(input.Item.pk.S, input.Item);
        return {};
      },
    );
  return items;
}

/**
 * What is stored for the customer of secret `name` (`<prefix><product>/<customer>/api-key`): the secret's content with
 * the record of the table over it (the record is the truth; a legacy record in the secret is what was there before).
 */
export function storedState(
  items: Map<string, Record<string, AttributeValue>>,
  secrets: Map<string, string>,
  name: string,
  prefix = process.env.NAME_PREFIX ?? '',
): Record<string, unknown> {
  const key = name.slice(prefix.length).replace(/\/api-key$/, '');
  const item = items.get(key)?.record?.S;
  return {
    ...(JSON.parse(secrets.get(name) ?? '{}') as Record<string, unknown>),
    ...(item ? (JSON.parse(item) as Record<string, unknown>) : {}),
  };
}
