import {
  APIGatewayClient,
  type ApiKey,
  BadRequestException,
  ConflictException,
  CreateApiKeyCommand,
  CreateUsagePlanKeyCommand,
  DeleteApiKeyCommand,
  DeleteUsagePlanKeyCommand,
  GetApiKeyCommand,
  GetApiKeysCommand,
  GetUsagePlanCommand,
  GetUsagePlanKeyCommand,
  GetUsagePlanKeysCommand,
  LimitExceededException,
  NotFoundException,
  UnauthorizedException,
  UpdateApiKeyCommand,
} from '@aws-sdk/client-api-gateway';
import { printable } from '../customer-key/naming.js';
import { LimitExceededError, RejectedError, ThrottledError, TransientError, UsagePlanStageConflictError } from '../errors.js';
import { domainErrorFromSdk, retryableFromSdk, type SdkRetryMode, type ServiceErrors, sdkClientSettings } from './errors.js';

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

/**
 * Runs one AWS call of `operation` (the use cases' retry policy and rate limiter: lib/quota/retry.ts), for methods
 * that make several calls, each of which must take its own slot and be retried on its own.
 */
export type CallRunner = <T>(operation: string, call: () => Promise<T>) => Promise<T>;

/** Without a runner, each call is simply made. */
const direct: CallRunner = (_operation, call) => call();

export interface ApiKeyStore {
  /** Creates the key and returns its id, or undefined when a key with this value exists already (409 ConflictException). */
  createApiKey(key: NewApiKey): Promise<string | undefined>;
  /**
   * The id of the key with exactly this name and value, or undefined. Pages through GetApiKeys (nameQuery is a prefix
   * match), each page one call through `run` (its own rate-limiter slot and retries: call this method unwrapped);
   * stops at a page position seen before. Throws domain errors.
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
   * Associates the key with the usage plan. A 409 is success only when GetUsagePlanKey then finds the key in the
   * plan: API Gateway also answers 409 to a usage-plan write that overlapped another one (they run one at a time per
   * Region), which is a {@link TransientError}, retried. A key in another plan with one of this plan's stages is a
   * {@link UsagePlanStageConflictError} (400, nothing written).
   */
  addToUsagePlan(usagePlanId: string, apiKeyId: string): Promise<void>;
  /** Removes the key from the usage plan; an association that does not exist is success (404; a 409 is checked likewise). */
  removeFromUsagePlan(usagePlanId: string, apiKeyId: string): Promise<void>;
  /** Whether the key is in the usage plan (GetUsagePlanKey; 404 is false). */
  isInUsagePlan(usagePlanId: string, apiKeyId: string): Promise<boolean>;
  /** The API stages (`<apiId>/<stage>`) of the usage plan, or undefined when there is no plan with this id (GetUsagePlan). */
  usagePlanStages(usagePlanId: string): Promise<string[] | undefined>;
  /**
   * Every key whose name starts with `namePrefix`, with values (GetApiKeys, nameQuery, pages of 500 followed by
   * `position`). Read-only; for the operations tools (reconcile), not called by the function. The values are
   * sensitive: never log them. Throws domain errors like every method here.
   */
  listApiKeys(namePrefix: string): Promise<ListedApiKey[]>;
  /** The key with this id, without its value, or undefined when it does not exist (GetApiKey; 404 is undefined). Read-only. */
  getApiKey(apiKeyId: string): Promise<ListedApiKey | undefined>;
  /**
   * The ids of the keys in the usage plan, only those whose name starts with `nameQuery` when given (GetUsagePlanKeys,
   * pages of 500), or undefined when there is no plan with this id (404). Read-only.
   */
  usagePlanKeyIds(usagePlanId: string, nameQuery?: string): Promise<Set<string> | undefined>;
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

/** A key as GetApiKeys / GetApiKey describe it. `value` only from {@link ApiKeyStore.listApiKeys}: sensitive, never log it. */
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

/** Only our retry layer retries (see lib/quota/retry.ts), so the SDK makes one attempt per call. */
export function createApiGatewayClient(requestTimeoutMs: number, retryMode: SdkRetryMode = 'off'): APIGatewayClient {
  return new APIGatewayClient(sdkClientSettings(requestTimeoutMs, retryMode));
}

/** BadRequest: the request is malformed. Unauthorized (credentials) and NotFound (a plan or key gone): our side. */
const ERRORS: ServiceErrors = {
  permanent: [[BadRequestException, 'bad-request']],
  environment: [UnauthorizedException, NotFoundException],
};

const toDomainError = (operation: string, error: unknown) => domainErrorFromSdk(operation, error, ERRORS);

/** Longest page GetApiKeys returns. */
const PAGE_LIMIT = 500;

/**
 * The position of the next page, or undefined to stop: at the end, and at a position already asked for (a service
 * that hands one back again, or pages in a cycle, would otherwise be paged forever, a call and a slot each time).
 */
function nextPosition(position: string | undefined, seen: Set<string>): string | undefined {
  if (!position || seen.has(position)) return undefined;
  seen.add(position);
  return position;
}

/**
 * The 409 of a usage-plan write that overlapped another: "Unable to complete operation due to concurrent
 * modification. Please try again later." (AWS Support, quoted in serverless/serverless#12065). It wrote nothing, so
 * it needs no look at the plan; a 409 worded otherwise (a key already in the plan) does.
 */
const CONCURRENT_MODIFICATION = /concurrent modification/i;

/**
 * The 400 of CreateUsagePlanKey for a key already in another plan with one of the plan's stages: "… cannot reference
 * multiple Usage Plans with the same API Stage: <api>:<stage>" (the text AWS users report; tests/realistic-aws). A
 * BadRequestException like any malformed request, so only its text tells it apart.
 */
const SAME_API_STAGE = /multiple usage plans with the same api stage/i;

/**
 * API Gateway adapter. `createApiKey` makes one CreateApiKey call with the key enabled (unless told), its value, customerId
 * and tags; no stage keys (deprecated: keys reach stages through usage plans). Throws domain errors:
 * {@link RejectedError} for BadRequest/Unauthorized/NotFound, ThrottledError/TransientError for retryable ones.
 * Error messages are the service's, which never echo the key value (checked in tests/unit/secret-hygiene.test.ts).
 */
export function apiGatewayAdapter(client: APIGatewayClient): ApiKeyStore {
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

  /** A write refused because another one was running: nothing was written, the plan is as it was; retried. */
  const notWritten = (operation: string, error: Error) =>
    new TransientError(`${operation} answered 409 (${printable(error.message)}): nothing written, retried`, { cause: error });

  /** An answer of the service's side (HTTP 5xx). */
  const serverError = (error: unknown): boolean =>
    ((error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode ?? 0) >= 500;

  async function isInUsagePlan(usagePlanId: string, apiKeyId: string): Promise<boolean> {
    try {
      await client.send(new GetUsagePlanKeyCommand({ usagePlanId, keyId: apiKeyId }));
      return true;
    } catch (error) {
      if (error instanceof NotFoundException) return false;
      throw toDomainError('GetUsagePlanKey', error);
    }
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

    async addToUsagePlan(usagePlanId, apiKeyId) {
      try {
        await client.send(new CreateUsagePlanKeyCommand({ usagePlanId, keyId: apiKeyId, keyType: 'API_KEY' }));
      } catch (error) {
        if (error instanceof BadRequestException && SAME_API_STAGE.test(error.message)) {
          throw new UsagePlanStageConflictError(
            `CreateUsagePlanKey refused: key ${apiKeyId} is in another plan with a stage of ${usagePlanId} (${printable(error.message, 200)})`,
            { cause: error },
          );
        }
        if (!(error instanceof ConflictException)) throw toDomainError('CreateUsagePlanKey', error);
        if (CONCURRENT_MODIFICATION.test(error.message)) throw notWritten('CreateUsagePlanKey', error);
        // Any other 409 may be "already associated": only a look tells.
        if (await isInUsagePlan(usagePlanId, apiKeyId)) return;
        throw new TransientError(
          `CreateUsagePlanKey answered 409 (${printable(error.message)}) and key ${apiKeyId} is not in plan ${usagePlanId}`,
          {
            cause: error,
          },
        );
      }
    },

    async removeFromUsagePlan(usagePlanId, apiKeyId) {
      try {
        await client.send(new DeleteUsagePlanKeyCommand({ usagePlanId, keyId: apiKeyId }));
      } catch (error) {
        if (error instanceof NotFoundException) return;
        // A 5xx says nothing of the state: the delete may have been done, or there was nothing to delete (moto answers
        // a key that is not in the plan with an HTML 500 where AWS answers 404). Not in the plan is the goal: done.
        if (serverError(error) && !(await isInUsagePlan(usagePlanId, apiKeyId))) return;
        if (!(error instanceof ConflictException)) throw toDomainError('DeleteUsagePlanKey', error);
        if (CONCURRENT_MODIFICATION.test(error.message)) throw notWritten('DeleteUsagePlanKey', error);
        if (!(await isInUsagePlan(usagePlanId, apiKeyId))) return;
        throw new TransientError(
          `DeleteUsagePlanKey answered 409 (${printable(error.message)}) and key ${apiKeyId} is still in plan ${usagePlanId}`,
          {
            cause: error,
          },
        );
      }
    },

    isInUsagePlan,

    async usagePlanStages(usagePlanId) {
      try {
        const plan = await client.send(new GetUsagePlanCommand({ usagePlanId }));
        return (plan.apiStages ?? []).map((stage) => `${stage.apiId}/${stage.stage}`);
      } catch (error) {
        if (error instanceof NotFoundException) return undefined;
        throw toDomainError('GetUsagePlan', error);
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

    async usagePlanKeyIds(usagePlanId, nameQuery) {
      const ids = new Set<string>();
      const seen = new Set<string>();
      let position: string | undefined;
      try {
        do {
          const page = await client.send(new GetUsagePlanKeysCommand({ usagePlanId, nameQuery, limit: PAGE_LIMIT, position }));
          for (const item of page.items ?? []) if (item.id) ids.add(item.id);
          position = nextPosition(page.position, seen);
        } while (position);
      } catch (error) {
        if (error instanceof NotFoundException) return undefined;
        throw toDomainError('GetUsagePlanKeys', error);
      }
      return ids;
    },
  };
}
