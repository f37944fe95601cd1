/**
 * The smoke test's adapter onto AWS (SmokeAws, model.ts): one SDK call per method, and every failure as an
 * {@link AwsCallError} with the AWS error's name, message and HTTP status as the service answered — what the report
 * prints, and what the statement lookup (statements.ts) keys on. Values are read only to be compared, never logged.
 */
import {
  type APIGatewayClient,
  DeleteApiKeyCommand,
  DeleteUsagePlanKeyCommand,
  GetApiKeyCommand,
  GetApiKeysCommand,
  GetUsagePlanKeyCommand,
  NotFoundException,
} from '@aws-sdk/client-api-gateway';
import { DeleteItemCommand, type DynamoDBClient, GetItemCommand } from '@aws-sdk/client-dynamodb';
import {
  DeleteSecretCommand,
  GetSecretValueCommand,
  InvalidRequestException,
  ResourceNotFoundException,
  type SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { GetQueueUrlCommand, SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { KeyRecord } from '../../customer-key/key-record.js';
import { AwsCallError, type SmokeAws } from './model.js';

export interface SmokeClients {
  sqs: SQSClient;
  apigw: APIGatewayClient;
  secrets: SecretsManagerClient;
  dynamodb: DynamoDBClient;
  /** With `--endpoint`: queue URLs are used at this origin (a local AWS answers GetQueueUrl with its own host name). */
  endpoint?: string;
}

/** Runs one call; any failure becomes an {@link AwsCallError} naming `operation`. */
async function call<T>(operation: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (!(error instanceof Error)) throw new AwsCallError(operation, 'Error', String(error), undefined);
    const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
    const code = (error as { code?: unknown }).code;
    const name = error.name === 'Error' && typeof code === 'string' ? code : error.name;
    throw new AwsCallError(operation, name, error.message, status, { cause: error });
  }
}

/** {@link SmokeAws} over the given SDK clients. */
export function smokeAws(clients: SmokeClients): SmokeAws {
  const { sqs, apigw, secrets, dynamodb } = clients;
  return {
    async queueUrl(queueName) {
      const { QueueUrl } = await call('GetQueueUrl', () => sqs.send(new GetQueueUrlCommand({ QueueName: queueName })));
      if (!QueueUrl) throw new AwsCallError('GetQueueUrl', 'NoQueueUrl', `no URL for queue ${queueName}`, undefined);
      if (!clients.endpoint) return QueueUrl;
      const url = new URL(QueueUrl);
      return `${clients.endpoint}${url.pathname}`;
    },

    async send(queueUrl, body) {
      const { MessageId } = await call('SendMessage', () => sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: body })));
      return MessageId ?? '';
    },

    async record(table, key) {
      const { Item } = await call('GetItem', () =>
        dynamodb.send(new GetItemCommand({ TableName: table, Key: { pk: { S: key } }, ConsistentRead: true })),
      );
      if (!Item?.record?.S) return undefined;
      try {
        return JSON.parse(Item.record.S) as KeyRecord;
      } catch {
        throw new AwsCallError('GetItem', 'UnreadableRecord', `record ${key} in ${table} is not JSON`, undefined);
      }
    },

    async apiKey(id) {
      try {
        const key = await apigw.send(new GetApiKeyCommand({ apiKey: id, includeValue: true }));
        return {
          id: key.id ?? id,
          name: key.name ?? '',
          enabled: key.enabled === true,
          customerId: key.customerId,
          tags: key.tags ?? {},
          value: key.value,
        };
      } catch (error) {
        if (error instanceof NotFoundException) return undefined;
        return call('GetApiKey', () => Promise.reject(error));
      }
    },

    async apiKeyIdsNamed(name) {
      const ids: string[] = [];
      let position: string | undefined;
      const seen = new Set<string>();
      do {
        const page = await call('GetApiKeys', () => apigw.send(new GetApiKeysCommand({ nameQuery: name, limit: 500, position })));
        for (const key of page.items ?? []) if (key.name === name && key.id) ids.push(key.id);
        position = page.position;
        if (position !== undefined && seen.has(position)) break;
        if (position !== undefined) seen.add(position);
      } while (position);
      return ids;
    },

    async inUsagePlan(usagePlanId, keyId) {
      try {
        await apigw.send(new GetUsagePlanKeyCommand({ usagePlanId, keyId }));
        return true;
      } catch (error) {
        if (error instanceof NotFoundException) return false;
        return call('GetUsagePlanKey', () => Promise.reject(error));
      }
    },

    async secret(name) {
      try {
        const { ARN, SecretString } = await secrets.send(new GetSecretValueCommand({ SecretId: name }));
        return { arn: ARN ?? '', secretString: SecretString ?? '' };
      } catch (error) {
        if (error instanceof ResourceNotFoundException) return undefined;
        // "You can't perform this operation on the secret because it was marked for deletion."
        if (error instanceof InvalidRequestException && /deletion/i.test(error.message)) return 'deleted';
        return call('GetSecretValue', () => Promise.reject(error));
      }
    },

    async removeFromUsagePlan(usagePlanId, keyId) {
      await call('DeleteUsagePlanKey', () => apigw.send(new DeleteUsagePlanKeyCommand({ usagePlanId, keyId })));
    },

    async deleteApiKey(id) {
      try {
        await apigw.send(new DeleteApiKeyCommand({ apiKey: id }));
      } catch (error) {
        if (error instanceof NotFoundException) return;
        await call('DeleteApiKey', () => Promise.reject(error));
      }
    },

    async deleteSecret(name) {
      try {
        await secrets.send(new DeleteSecretCommand({ SecretId: name, ForceDeleteWithoutRecovery: true }));
      } catch (error) {
        if (error instanceof ResourceNotFoundException) return;
        await call('DeleteSecret', () => Promise.reject(error));
      }
    },

    async deleteRecord(table, key) {
      await call('DeleteItem', () => dynamodb.send(new DeleteItemCommand({ TableName: table, Key: { pk: { S: key } } })));
    },
  };
}
