/**
 * Baseline entry of tests/bench/cold-start.ts: the four SDK clients the function uses, built at module
 * scope as lib/pipeline/deps.ts builds them at cold start, and nothing else (no Middy, Powertools, zod or lib/).
 * Kept in the repo, not generated, so `tsc --noEmit` checks it against the installed SDK versions.
 */
import { APIGatewayClient } from '@aws-sdk/client-api-gateway';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SQSClient } from '@aws-sdk/client-sqs';

const clients = [new APIGatewayClient({}), new SecretsManagerClient({}), new SQSClient({}), new DynamoDBClient({})];

/** A trivial handler, so the bundle has the function's shape (and uses the clients, so nothing is dropped). */
export const handler = async (): Promise<number> => clients.length;
