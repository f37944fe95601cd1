import { createDynamoDbClient, dynamoDbRecordStore } from '../aws/dynamodb.js';
import { dynamoDbKeyMarkers } from '../aws/dynamodb-reveals.js';
import { createSecretsManagerClient, secretsManagerAdapter } from '../aws/secrets-manager.js';
import { createSqsClient, sqsAdapter } from '../aws/sqs.js';
import { signingKeyProvider } from '../registration/signing-key.js';
import type { KeyPageConfig } from './config.js';
import type { KeyPageDeps } from './key-page.js';
import { logger } from './logger.js';

/**
 * The production dependencies of the key page: one SDK client per service, built once per instance (one attempt per
 * call: lib/quota/retry.ts retries). A signing key in Secrets Manager is read here, at cold start, without waiting.
 */
export function createKeyPageDeps(config: KeyPageConfig): KeyPageDeps {
  const { requestTimeoutMs } = config;
  const dynamodb = createDynamoDbClient(requestTimeoutMs);
  const secrets = secretsManagerAdapter(createSecretsManagerClient(requestTimeoutMs));
  const signingKey = signingKeyProvider(config.signingKey, secrets);
  signingKey.get().catch((error: unknown) =>
    logger.warn('the signing key could not be read at cold start; the first request reads it again', {
      error: error instanceof Error ? error.name : typeof error,
    }),
  );
  return {
    config,
    records: dynamoDbRecordStore(dynamodb, config.keyRecordsTable),
    secrets,
    markers: dynamoDbKeyMarkers(dynamodb, config.revealsTable),
    signups: sqsAdapter(createSqsClient(requestTimeoutMs), config.signupQueueUrl),
    signingKey,
    logger,
  };
}
