import {
  CreateSecretCommand,
  InvalidParameterException,
  InvalidRequestException,
  ResourceExistsException,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { RejectedError, type RejectionReason } from '../errors.js';
import { retryableFromSdk } from './errors.js';

export interface NewSecret {
  name: string;
  description: string;
  /** JSON holding the key value: never logged. */
  secretString: string;
  tags: Record<string, string>;
  kmsKeyId?: string;
}

export interface StoredSecret {
  arn: string;
  name: string;
}

export interface SecretStore {
  createSecret(secret: NewSecret): Promise<StoredSecret>;
}

export function createSecretsManagerClient(requestTimeoutMs: number): SecretsManagerClient {
  return new SecretsManagerClient({ maxAttempts: 1, requestHandler: { requestTimeout: requestTimeoutMs } });
}

const PERMANENT: Array<[new (...args: never[]) => Error, RejectionReason]> = [
  [ResourceExistsException, 'secret-exists'],
  [InvalidParameterException, 'bad-request'],
  [InvalidRequestException, 'bad-request'],
];

/**
 * Secrets Manager adapter. `createSecret` makes one CreateSecret call and throws domain errors:
 * {@link RejectedError} (`secret-exists`, `bad-request`, `unauthorized`), ThrottledError/TransientError otherwise.
 * Error messages are the service's, which name the secret but never hold its value.
 */
export function secretsManagerAdapter(client: SecretsManagerClient): SecretStore {
  return {
    async createSecret(secret) {
      try {
        const created = await client.send(
          new CreateSecretCommand({
            Name: secret.name,
            Description: secret.description,
            SecretString: secret.secretString,
            KmsKeyId: secret.kmsKeyId,
            Tags: Object.entries(secret.tags).map(([Key, Value]) => ({ Key, Value })),
          }),
        );
        if (!created.ARN) throw new Error('CreateSecret answered without an ARN');
        return { arn: created.ARN, name: created.Name ?? secret.name };
      } catch (error) {
        const retryable = retryableFromSdk('CreateSecret', error);
        if (retryable) throw retryable;
        if (error instanceof Error) {
          // AccessDeniedException comes from IAM, not the service model: there is no class to test against.
          const reason = PERMANENT.find(([type]) => error instanceof type)?.[1] ?? (error.name === 'AccessDeniedException' ? 'unauthorized' : undefined);
          if (reason) throw new RejectedError(reason, `CreateSecret was refused: ${error.name}: ${error.message}`, { cause: error });
        }
        throw error;
      }
    },
  };
}
