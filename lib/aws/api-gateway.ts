import {
  APIGatewayClient,
  BadRequestException,
  ConflictException,
  CreateApiKeyCommand,
  NotFoundException,
  UnauthorizedException,
} from '@aws-sdk/client-api-gateway';
import { RejectedError, type RejectionReason } from '../errors.js';
import { retryableFromSdk } from './errors.js';

export interface NewApiKey {
  name: string;
  description: string;
  customerId: string;
  tags: Record<string, string>;
}

export interface CreatedApiKey {
  id: string;
  /** The key value: handed to the secret store and nowhere else. */
  value: string;
}

export interface ApiKeyStore {
  createApiKey(key: NewApiKey): Promise<CreatedApiKey>;
}

/** Only our retry layer retries (see lib/retry.ts), so the SDK makes one attempt per call. */
export function createApiGatewayClient(requestTimeoutMs: number): APIGatewayClient {
  return new APIGatewayClient({ maxAttempts: 1, requestHandler: { requestTimeout: requestTimeoutMs } });
}

const PERMANENT: Array<[new (...args: never[]) => Error, RejectionReason]> = [
  [BadRequestException, 'bad-request'],
  [UnauthorizedException, 'unauthorized'],
  [NotFoundException, 'not-found'],
  [ConflictException, 'conflict'],
];

function toDomainError(operation: string, error: unknown): unknown {
  const retryable = retryableFromSdk(operation, error);
  if (retryable) return retryable;
  for (const [type, reason] of PERMANENT) {
    if (error instanceof type) {
      return new RejectedError(reason, `${operation} was refused: ${error.name}: ${error.message}`, { cause: error });
    }
  }
  return error;
}

/**
 * API Gateway adapter. `createApiKey` makes one CreateApiKey call with the key enabled, its customerId
 * and tags; no stage keys (deprecated: keys reach stages through usage plans). Throws domain errors:
 * {@link RejectedError} for BadRequest/Unauthorized/NotFound/Conflict, ThrottledError/TransientError for retryable ones.
 */
export function apiGatewayAdapter(client: APIGatewayClient): ApiKeyStore {
  return {
    async createApiKey(key) {
      try {
        const created = await client.send(
          new CreateApiKeyCommand({
            name: key.name,
            description: key.description,
            enabled: true,
            customerId: key.customerId,
            tags: key.tags,
          }),
        );
        if (!created.id || !created.value) throw new Error('CreateApiKey answered without an id or a value');
        return { id: created.id, value: created.value };
      } catch (error) {
        throw toDomainError('CreateApiKey', error);
      }
    },
  };
}
