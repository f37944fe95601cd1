import { apiGatewayAdapter, createApiGatewayClient } from './aws/api-gateway.js';
import { createSecretsManagerClient, secretsManagerAdapter } from './aws/secrets-manager.js';
import { createSqsClient, sqsAdapter, sqsSourceAdapter } from './aws/sqs.js';
import type { Config } from './config.js';
import { logger, metrics } from './observability.js';
import type { BatchDeps } from './process-batch.js';
import { createRateLimiter } from './rate-limiter.js';

/** The production dependencies of the batch handler: one SDK client per service, built once per function instance. */
export function createDeps(config: Config): BatchDeps {
  const { requestTimeoutMs, sdkRetryMode } = config;
  const sqs = createSqsClient(requestTimeoutMs, sdkRetryMode);
  return {
    config,
    apiKeys: apiGatewayAdapter(createApiGatewayClient(requestTimeoutMs, sdkRetryMode)),
    secrets: secretsManagerAdapter(createSecretsManagerClient(requestTimeoutMs, sdkRetryMode)),
    completions: sqsAdapter(sqs, config.completionQueueUrl),
    signupQueue: sqsSourceAdapter(sqs),
    // One limiter per instance, shared by every record of every invocation: API Gateway's quota is per account.
    apiGatewayLimiter:
      config.apiGatewayRatePerSecond > 0 ? createRateLimiter({ ratePerSecond: config.apiGatewayRatePerSecond }) : undefined,
    logger,
    metrics,
  };
}
