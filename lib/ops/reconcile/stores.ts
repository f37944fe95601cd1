/**
 * What reconcile talks to: the function's own adapters (lib/aws/), so every AWS call maps its SDK errors to the
 * product's errors in one place and no rule about the services exists twice.
 */
import type { APIGatewayClient } from '@aws-sdk/client-api-gateway';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { type ApiKeyStore, apiGatewayAdapter } from '../../aws/api-gateway.js';
import { dynamoDbRecordStore } from '../../aws/dynamodb.js';
import { type SecretStore, secretsManagerAdapter } from '../../aws/secrets-manager.js';
import type { RecordStore } from '../../customer-key/record-store.js';

export interface ReconcileClients {
  apigw: APIGatewayClient;
  secrets: SecretsManagerClient;
  /** With the record table's name: the customers' records are read there (KEY_RECORDS_TABLE). */
  dynamodb?: { client: DynamoDBClient; recordsTable: string };
}

/** The adapter methods reconcile calls, and no others (a test's fake implements just these). */
export interface ReconcileStores {
  apiKeys: Pick<
    ApiKeyStore,
    | 'listApiKeys'
    | 'getApiKey'
    | 'usagePlanStages'
    | 'usagePlanKeyIds'
    | 'findApiKey'
    | 'setEnabled'
    | 'addToUsagePlan'
    | 'removeFromUsagePlan'
  >;
  secrets: Pick<SecretStore, 'listSecrets' | 'getSecret' | 'createSecret' | 'putSecretValue'>;
  /**
   * The record table. The record of a customer is there; a secret holds only the value, or — written before the
   * table existed — the whole record, which reconcile reports (`record-in-secret`) and `--fix` moves. Absent (a test
   * of the secrets alone): records are read from the secrets, as before the table.
   */
  records?: RecordStore;
}

/** The adapters over the given SDK clients (the CLI's, with the SDK's adaptive retry; a test's, pointed at moto). */
export function storesFor(clients: ReconcileClients): ReconcileStores {
  return {
    apiKeys: apiGatewayAdapter(clients.apigw),
    secrets: secretsManagerAdapter(clients.secrets),
    ...(clients.dynamodb && { records: dynamoDbRecordStore(clients.dynamodb.client, clients.dynamodb.recordsTable) }),
  };
}
