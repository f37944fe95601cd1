import {
  type APIGatewayClient,
  type ApiKey,
  ConflictException,
  CreateApiKeyCommand,
  DeleteApiKeyCommand,
  GetApiKeyCommand,
  GetApiKeysCommand,
  LimitExceededException,
  NotFoundException,
  UpdateApiKeyCommand,
} from '@aws-sdk/client-api-gateway';
import { LimitExceededError, ThrottledError } from '../errors.js';
import type { CallRunner, CallTable } from '../quota/call-path.js';
import { nextPosition, PAGE_LIMIT, toDomainError } from './api-gateway-client.js';
import { retryableFromSdk } from './errors.js';

export interface NewApiKey {
  name: string;
  /** The key value, chosen by us: API Gateway refuses a second key with the same value (409), our idempotency guard. */
  value: string;
  description: string;
  customerId: string;
  tags: Record<string, string>;
  /** Default true. */
  enabled?: boolean;
}

/** Without a runner, each call is simply made. */
const direct: CallRunner = (_operation, call) => call();

/** API Gateway's API keys: the half of {@link ApiKeyStore} (lib/aws/api-gateway.ts) that makes, finds and deletes keys. */
export interface ApiKeys {
  /** Creates the key and returns its id, or undefined when a key with this value exists already (409 ConflictException). */
  createApiKey(key: NewApiKey): Promise<string | undefined>;
  /**
   * The id of the key with exactly this name and value, or undefined. Pages through GetApiKeys (nameQuery is a prefix
   * match), each page one call through `run` (its own rate-limiter slot and retries: {@link API_KEY_CALLS} passes the
   * call path's runner in); stops at a page position seen before. Throws domain errors.
   */
  findApiKey(name: string, value: string, run?: CallRunner): Promise<string | undefined>;
  /**
   * The value of the key with this name and id, or undefined (GetApiKeys by name with values: the same calls, paging
   * and permission as findApiKey).
   */
  valueOf(name: string, apiKeyId: string, run?: CallRunner): Promise<string | undefined>;
  /** Enables or disables the key (UpdateApiKey, replace /enabled). */
  setEnabled(apiKeyId: string, enabled: boolean): Promise<void>;
  /**
   * Every key whose name starts with `namePrefix`, with values (GetApiKeys, nameQuery, pages of 500 followed by
   * `position`). Read-only; for the operations tools (reconcile), not called by the function. The values are
   * sensitive: never log them. Throws domain errors like every method here.
   */
  listApiKeys(namePrefix: string): Promise<ListedApiKey[]>;
  /** The key with this id, without its value, or undefined when it does not exist (GetApiKey; 404 is undefined). Read-only. */
  getApiKey(apiKeyId: string): Promise<ListedApiKey | undefined>;
  /**
   * Deletes the key (DeleteApiKey), which frees its slot of the Region's 10,000. A key that does not exist is
   * success (404): a repeat after a crash finds it gone. Its own quota (5/s): call it through the rate limiter.
   */
  deleteApiKey(apiKeyId: string): Promise<void>;
  /**
   * How many API keys the Region holds, the pipeline's and everyone's (GetApiKeys without a name, no values, pages
   * of 500, each page one call through `run`: 20 calls for 10,000 keys, on the shared "Total operations" quota).
   */
  countApiKeys(run?: CallRunner): Promise<number>;
}

/** A key as GetApiKeys / GetApiKey describe it. `value` only from {@link ApiKeys.listApiKeys}: sensitive, never log it. */
export interface ListedApiKey {
  id: string;
  name: string;
  enabled: boolean;
  value?: string;
  customerId?: string;
  tags: Record<string, string>;
  createdDate?: Date;
  lastUpdatedDate?: Date;
}

/** The fields of a listed key; undefined for an item without id or name (API Gateway always sends both). */
function listedKey(item: ApiKey): ListedApiKey | undefined {
  if (!item.id || item.name === undefined) return undefined;
  return {
    id: item.id,
    name: item.name,
    enabled: item.enabled === true,
    value: item.value,
    customerId: item.customerId,
    tags: item.tags ?? {},
    createdDate: item.createdDate,
    lastUpdatedDate: item.lastUpdatedDate,
  };
}

/**
 * The API keys of API Gateway. `createApiKey` makes one CreateApiKey call with the key enabled (unless told), its value,
 * customerId and tags; no stage keys (deprecated: keys reach stages through usage plans). Throws domain errors:
 * {@link RejectedError} for BadRequest, EnvironmentError for Unauthorized/NotFound, ThrottledError/TransientError for
 * retryable ones. Error messages are the service's, which never echo the key value (checked in
 * tests/unit/secret-hygiene.test.ts).
 */
export function apiKeysAdapter(client: APIGatewayClient): ApiKeys {
  /**
   * Pages through the keys whose name starts with `name` (GetApiKeys' nameQuery) for one with exactly this name. Each
   * page is a call of its own through `run`: a long listing takes one rate-limiter slot per page, as API Gateway
   * counts them, and a page that fails is retried without starting over.
   */
  async function findKey(name: string, matches: (item: ApiKey) => boolean, run: CallRunner): Promise<ApiKey | undefined> {
    const seen = new Set<string>();
    let position: string | undefined;
    do {
      const page = await run('GetApiKeys', async () => {
        try {
          return await client.send(new GetApiKeysCommand({ nameQuery: name, includeValues: true, limit: PAGE_LIMIT, position }));
        } catch (error) {
          throw toDomainError('GetApiKeys', error);
        }
      });
      const match = page.items?.find((item) => item.name === name && matches(item));
      if (match) return match;
      position = nextPosition(page.position, seen);
    } while (position);
    return undefined;
  }

  return {
    async createApiKey(key) {
      try {
        const created = await client.send(
          new CreateApiKeyCommand({
            name: key.name,
            description: key.description,
            enabled: key.enabled ?? true,
            value: key.value,
            customerId: key.customerId,
            tags: key.tags,
          }),
        );
        if (!created.id) throw new Error('CreateApiKey answered without an id');
        return created.id;
      } catch (error) {
        if (error instanceof ConflictException) return undefined;
        // A 429 LimitExceededException: a throttle, or the Region's key quota (provision counts the keys to tell).
        const limited = error instanceof LimitExceededException && error.$metadata.httpStatusCode === 429;
        const throttled = limited ? retryableFromSdk('CreateApiKey', error) : undefined;
        if (throttled instanceof ThrottledError) throw new LimitExceededError(throttled.message, throttled.retryAfterMs, { cause: error });
        throw toDomainError('CreateApiKey', error);
      }
    },

    async setEnabled(apiKeyId, enabled) {
      try {
        await client.send(
          new UpdateApiKeyCommand({ apiKey: apiKeyId, patchOperations: [{ op: 'replace', path: '/enabled', value: String(enabled) }] }),
        );
      } catch (error) {
        throw toDomainError('UpdateApiKey', error);
      }
    },

    async findApiKey(name, value, run = direct) {
      return (await findKey(name, (item) => item.value === value, run))?.id;
    },

    async valueOf(name, apiKeyId, run = direct) {
      return (await findKey(name, (item) => item.id === apiKeyId, run))?.value;
    },

    async listApiKeys(namePrefix) {
      const keys: ListedApiKey[] = [];
      const seen = new Set<string>();
      let position: string | undefined;
      try {
        do {
          const page = await client.send(
            new GetApiKeysCommand({ nameQuery: namePrefix, includeValues: true, limit: PAGE_LIMIT, position }),
          );
          for (const item of page.items ?? []) {
            const key = listedKey(item);
            if (key?.name.startsWith(namePrefix)) keys.push(key);
          }
          position = nextPosition(page.position, seen);
        } while (position);
      } catch (error) {
        throw toDomainError('GetApiKeys', error);
      }
      return keys;
    },

    async deleteApiKey(apiKeyId) {
      try {
        await client.send(new DeleteApiKeyCommand({ apiKey: apiKeyId }));
      } catch (error) {
        if (error instanceof NotFoundException) return;
        throw toDomainError('DeleteApiKey', error);
      }
    },

    async countApiKeys(run = direct) {
      const seen = new Set<string>();
      let count = 0;
      let position: string | undefined;
      do {
        const page = await run('GetApiKeys', async () => {
          try {
            return await client.send(new GetApiKeysCommand({ includeValues: false, limit: PAGE_LIMIT, position }));
          } catch (error) {
            throw toDomainError('GetApiKeys', error);
          }
        });
        count += page.items?.length ?? 0;
        position = nextPosition(page.position, seen);
      } while (position);
      return count;
    },

    async getApiKey(apiKeyId) {
      try {
        return listedKey(await client.send(new GetApiKeyCommand({ apiKey: apiKeyId, includeValue: false })));
      } catch (error) {
        if (error instanceof NotFoundException) return undefined;
        throw toDomainError('GetApiKey', error);
      }
    },
  };
}

/**
 * The operation each method makes, for the call path (lib/quota/call-path.ts): the paged ones are given its runner,
 * so that each page takes its own limiter slot and is retried on its own. listApiKeys pages inside its one entry: it
 * is the operations tools', which call the adapter directly, with the SDK's own retries.
 */
export const API_KEY_CALLS: CallTable<ApiKeys> = {
  createApiKey: 'CreateApiKey',
  findApiKey: (keys, run) => (name, value) => keys.findApiKey(name, value, run),
  valueOf: (keys, run) => (name, apiKeyId) => keys.valueOf(name, apiKeyId, run),
  setEnabled: 'UpdateApiKey',
  listApiKeys: 'GetApiKeys',
  getApiKey: 'GetApiKey',
  deleteApiKey: 'DeleteApiKey',
  countApiKeys: (keys, run) => () => keys.countApiKeys(run),
};
