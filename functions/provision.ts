import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import { apiGatewayAdapter, createApiGatewayClient } from '../lib/aws/api-gateway.js';
import { createSecretsManagerClient, secretsManagerAdapter } from '../lib/aws/secrets-manager.js';
import { createSqsClient, sqsAdapter } from '../lib/aws/sqs.js';
import { loadConfig } from '../lib/config.js';
import { logger } from '../lib/observability.js';
import { createBatchHandler } from '../lib/process-batch.js';

// Cold start: config is validated and clients are built once per instance.
const config = loadConfig(process.env);

const processBatch = createBatchHandler({
  config,
  apiKeys: apiGatewayAdapter(createApiGatewayClient(config.requestTimeoutMs)),
  secrets: secretsManagerAdapter(createSecretsManagerClient(config.requestTimeoutMs)),
  completions: sqsAdapter(createSqsClient(config.requestTimeoutMs), config.completionQueueUrl),
  logger,
});

export const handler = middy(processBatch).use(injectLambdaContext(logger, { resetKeys: true }));
