import {
  type APIGatewayClient,
  BadRequestException,
  ConflictException,
  CreateUsagePlanKeyCommand,
  DeleteUsagePlanKeyCommand,
  GetUsagePlanCommand,
  GetUsagePlanKeyCommand,
  GetUsagePlanKeysCommand,
  NotFoundException,
} from '@aws-sdk/client-api-gateway';
import { printable } from '../customer-key/naming.js';
import { TransientError, UsagePlanStageConflictError } from '../errors.js';
import type { CallTable } from '../quota/call-path.js';
import { nextPosition, PAGE_LIMIT, toDomainError } from './api-gateway-client.js';

/** API Gateway's usage plans as keys meet them: the half of {@link ApiKeyStore} (lib/aws/api-gateway.ts) that puts keys in plans. */
export interface UsagePlanKeys {
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
   * The ids of the keys in the usage plan, only those whose name starts with `nameQuery` when given (GetUsagePlanKeys,
   * pages of 500), or undefined when there is no plan with this id (404). Read-only.
   */
  usagePlanKeyIds(usagePlanId: string, nameQuery?: string): Promise<Set<string> | undefined>;
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

/** A write refused because another one was running: nothing was written, the plan is as it was; retried. */
const notWritten = (operation: string, error: Error) =>
  new TransientError(`${operation} answered 409 (${printable(error.message)}): nothing written, retried`, { cause: error });

/** An answer of the service's side (HTTP 5xx). */
const serverError = (error: unknown): boolean =>
  ((error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode ?? 0) >= 500;

/** Usage-plan keys of API Gateway. Throws domain errors, as lib/aws/api-gateway-keys.ts does. */
export function usagePlanKeysAdapter(client: APIGatewayClient): UsagePlanKeys {
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

/**
 * The operation each method makes, for the call path (lib/quota/call-path.ts). A write's 409 look (GetUsagePlanKey)
 * is part of its attempt; usagePlanKeyIds pages inside its one entry: it is the operations tools'.
 */
export const USAGE_PLAN_KEY_CALLS: CallTable<UsagePlanKeys> = {
  addToUsagePlan: 'CreateUsagePlanKey',
  removeFromUsagePlan: 'DeleteUsagePlanKey',
  isInUsagePlan: 'GetUsagePlanKey',
  usagePlanStages: 'GetUsagePlan',
  usagePlanKeyIds: 'GetUsagePlanKeys',
};
