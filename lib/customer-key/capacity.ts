import type { NewApiKey } from '../aws/api-gateway.js';
import { CapacityExhaustedError, LimitExceededError } from '../errors.js';
import type { ProvisionDeps } from './key-record.js';

/** API Gateway's quota of API keys per account and Region when API_KEY_QUOTA does not say (not adjustable). */
const DEFAULT_API_KEY_QUOTA = 10_000;

/**
 * How long a record waits before SQS brings it back when the Region is full: capacity comes back only when keys are
 * deleted (the sweep runs every 5 minutes), so trying sooner only spends calls of the shared quota.
 */
export const CAPACITY_RETRY_MS = 5 * 60_000;

/**
 * CreateApiKey; when its retries end on a 429 LimitExceededException — the shape both of a rate limit and, most
 * plausibly, of the Region's 10,000-key wall (AWS does not document the latter) — the keys are counted (GetApiKeys,
 * pages of 500 through the limiter): at the quota, the Region is full, {@link CapacityExhaustedError}
 * (`capacity-exhausted`); below it, the throttle is thrown as it was, and retried as one.
 */
export async function createApiKeyOrCapacity(deps: ProvisionDeps, key: NewApiKey): Promise<string | undefined> {
  try {
    return await deps.apiKeys.createApiKey(key);
  } catch (error) {
    if (!(error instanceof LimitExceededError)) throw error;
    const quota = deps.config.apiKeyQuota ?? DEFAULT_API_KEY_QUOTA;
    const keys = await deps.apiKeys.countApiKeys();
    if (keys < quota) throw error;
    throw new CapacityExhaustedError(
      `capacity-exhausted: the Region holds ${keys} API keys, its quota is ${quota}; CreateApiKey for ${key.name} waits for keys to be deleted`,
      { cause: error, retryAfterMs: CAPACITY_RETRY_MS },
    );
  }
}
