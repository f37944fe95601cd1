import { apiGatewayAdapter, createApiGatewayClient } from './aws/api-gateway.js';
import { createSecretsManagerClient, secretsManagerAdapter } from './aws/secrets-manager.js';
import { createSqsClient, sqsAdapter } from './aws/sqs.js';
import type { Config } from './config.js';
import { logger } from './observability.js';
import type { BatchDeps } from './process-batch.js';

/** The production dependencies of the batch handler: one SDK client per service, built once per function instance. */
export function createDeps(config: Config): BatchDeps {
  return {
    config,
    apiKeys: apiGatewayAdapter(createApiGatewayClient(config.requestTimeoutMs)),
    secrets: secretsManagerAdapter(createSecretsManagerClient(config.requestTimeoutMs)),
    completions: sqsAdapter(createSqsClient(config.requestTimeoutMs), config.completionQueueUrl),
    logger,
  };
}
