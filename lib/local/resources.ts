import { CreateTableCommand, DescribeTableCommand, type DynamoDBClient, ResourceNotFoundException } from '@aws-sdk/client-dynamodb';
import { CreateQueueCommand, GetQueueAttributesCommand, GetQueueUrlCommand, type SQSClient } from '@aws-sdk/client-sqs';

export interface QueueNames {
  signups: string;
  deadLetter: string;
  completions: string;
}

export interface PipelineQueues {
  signupUrl: string;
  signupArn: string;
  deadLetterUrl: string;
  completionUrl: string;
}

export interface QueueSettings {
  /** Seconds a received message stays hidden: how soon a handed-back record is redelivered. */
  visibilityTimeoutSeconds: number;
  /** Deliveries before SQS moves a message to the dead-letter queue. */
  maxReceiveCount: number;
}

async function queueArn(sqs: SQSClient, url: string): Promise<string> {
  const { Attributes } = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['QueueArn'] }));
  if (!Attributes?.QueueArn) throw new Error(`no ARN for queue ${url}`);
  return Attributes.QueueArn;
}

/** Returns the URL of the named queue, creating it with `attributes` only when it does not exist yet. */
async function ensureQueue(sqs: SQSClient, name: string, attributes: Record<string, string>): Promise<{ url: string; created: boolean }> {
  try {
    const { QueueUrl } = await sqs.send(new GetQueueUrlCommand({ QueueName: name }));
    if (QueueUrl) return { url: QueueUrl, created: false };
  } catch (error) {
    if (!(error instanceof Error) || !/NonExistentQueue|QueueDoesNotExist/.test(error.name)) throw error;
  }
  const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: name, Attributes: attributes }));
  if (!QueueUrl) throw new Error(`CreateQueue returned no URL for ${name}`);
  return { url: QueueUrl, created: true };
}

/**
 * Creates what the pipeline needs and is missing — the signup queue with a redrive policy to its DLQ, and the
 * completion queue — and leaves existing queues as they are. Returns their URLs and which ones it created.
 */
export async function ensureQueues(
  sqs: SQSClient,
  names: QueueNames,
  settings: QueueSettings,
): Promise<PipelineQueues & { created: string[] }> {
  const created: string[] = [];
  const dlq = await ensureQueue(sqs, names.deadLetter, { MessageRetentionPeriod: '1209600' });
  if (dlq.created) created.push(names.deadLetter);
  const signups = await ensureQueue(sqs, names.signups, {
    VisibilityTimeout: String(settings.visibilityTimeoutSeconds),
    RedrivePolicy: JSON.stringify({ deadLetterTargetArn: await queueArn(sqs, dlq.url), maxReceiveCount: settings.maxReceiveCount }),
  });
  if (signups.created) created.push(names.signups);
  const completions = await ensureQueue(sqs, names.completions, {});
  if (completions.created) created.push(names.completions);
  return {
    signupUrl: signups.url,
    signupArn: await queueArn(sqs, signups.url),
    deadLetterUrl: dlq.url,
    completionUrl: completions.url,
    created,
  };
}

/**
 * Creates the usage-plan write turns table (COORDINATION_TABLE, lib/quota/usage-plan-turns.ts) as serverless.yml
 * declares it — partition key `pk` (string), on demand — unless it exists. Returns whether it created it.
 */
export async function ensureCoordinationTable(dynamodb: DynamoDBClient, tableName: string): Promise<boolean> {
  if (await tableExists(dynamodb, tableName)) return false;
  await dynamodb.send(
    new CreateTableCommand({
      TableName: tableName,
      AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }],
      KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
      BillingMode: 'PAY_PER_REQUEST',
    }),
  );
  return true;
}

/**
 * Creates the record table (KEY_RECORDS_TABLE, lib/aws/dynamodb.ts) as serverless.yml declares it — partition key
 * `pk` (string), the sparse index `due` (`due`, `dueAt`), on demand — unless it exists. Returns whether it created it.
 */
export async function ensureKeyRecordsTable(dynamodb: DynamoDBClient, tableName: string): Promise<boolean> {
  if (await tableExists(dynamodb, tableName)) return false;
  await dynamodb.send(
    new CreateTableCommand({
      TableName: tableName,
      AttributeDefinitions: [
        { AttributeName: 'pk', AttributeType: 'S' },
        { AttributeName: 'due', AttributeType: 'S' },
        { AttributeName: 'dueAt', AttributeType: 'S' },
      ],
      KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
      GlobalSecondaryIndexes: [
        {
          IndexName: 'due',
          KeySchema: [
            { AttributeName: 'due', KeyType: 'HASH' },
            { AttributeName: 'dueAt', KeyType: 'RANGE' },
          ],
          Projection: { ProjectionType: 'KEYS_ONLY' },
        },
      ],
      BillingMode: 'PAY_PER_REQUEST',
    }),
  );
  return true;
}

/**
 * Creates the key page's table (KEY_REVEALS_TABLE, lib/aws/dynamodb-reveals.ts) as serverless.yml declares it —
 * partition key `pk` (string), on demand; its TTL is not needed locally — unless it exists. Returns whether it created it.
 */
export const ensureKeyRevealsTable = (dynamodb: DynamoDBClient, tableName: string): Promise<boolean> =>
  ensureCoordinationTable(dynamodb, tableName);

async function tableExists(dynamodb: DynamoDBClient, tableName: string): Promise<boolean> {
  try {
    await dynamodb.send(new DescribeTableCommand({ TableName: tableName }));
    return true;
  } catch (error) {
    if (error instanceof ResourceNotFoundException) return false;
    throw error;
  }
}
