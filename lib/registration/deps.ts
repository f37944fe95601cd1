import { createMeteringClient, meteringAdapter } from '../aws/metering.js';
import { createSecretsManagerClient, secretsManagerAdapter } from '../aws/secrets-manager.js';
import { createSqsClient, sqsAdapter } from '../aws/sqs.js';
import { logger } from '../pipeline/observability.js';
import type { RegistrationConfig } from './config.js';
import type { RegistrationDeps } from './register.js';
import { signingKeyProvider } from './signing-key.js';

/**
 * The production dependencies of the registration hook: one SDK client per service, built once per instance. The
 * SDK makes one attempt per call (lib/quota/retry.ts retries). A signing key in Secrets Manager is read here, at cold
 * start, without waiting: a failure is logged and read again by the first request.
 */
export function createRegistrationDeps(config: RegistrationConfig): RegistrationDeps {
  const { requestTimeoutMs } = config;
  const secrets = 'secretId' in config.signingKey ? secretsManagerAdapter(createSecretsManagerClient(requestTimeoutMs)) : undefined;
  const signingKey = signingKeyProvider(config.signingKey, secrets);
  signingKey.get().catch((error: unknown) =>
    logger.warn('the registration signing key could not be read at cold start; the first request reads it again', {
      error: error instanceof Error ? error.name : typeof error,
    }),
  );
  return {
    config,
    metering: meteringAdapter(createMeteringClient(requestTimeoutMs)),
    signups: sqsAdapter(createSqsClient(requestTimeoutMs), config.signupQueueUrl),
    signingKey,
    logger,
  };
}
