/**
 * What the benchmark compares ours with, and production does not carry: the SDK's own retry modes (the baselines),
 * and the instance pauses of limiter designs measured before ours was chosen (scenarios.ts LIMITER_DESIGNS).
 */
import { APIGatewayClient } from '@aws-sdk/client-api-gateway';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SQSClient } from '@aws-sdk/client-sqs';
import { apiGatewayAdapter } from '../../lib/aws/api-gateway.js';
import { sdkClientSettings } from '../../lib/aws/errors.js';
import { secretsManagerAdapter } from '../../lib/aws/secrets-manager.js';
import { sqsAdapter, sqsSourceAdapter } from '../../lib/aws/sqs.js';
import { loadConfig } from '../../lib/config.js';
import type { SqsHandler } from '../../lib/local/event-source-mapping.js';
import { createDeps } from '../../lib/pipeline/deps.js';
import { createBatchHandler } from '../../lib/pipeline/process-batch.js';
import type { RateLimiter } from '../../lib/quota/rate-limiter.js';

export type SdkRetryMode = 'standard' | 'adaptive';

/**
 * The batch handler with the SDK's own retries (its default 3 attempts, in `mode`) on the API Gateway, Secrets
 * Manager and SQS clients: a baseline. Its environment turns ours off (API_GATEWAY_RATE_PER_SECOND 0,
 * RETRY_MAX_ATTEMPTS 1: scenarios.ts), so the SDK is the only layer that retries. The record table's client keeps
 * production's single attempt, as it did when this was a setting of the function.
 */
export function sdkRetryHandler(mode: SdkRetryMode): SqsHandler {
  const config = loadConfig(process.env);
  const settings = { ...sdkClientSettings(config.requestTimeoutMs), maxAttempts: 3, retryMode: mode };
  const sqs = new SQSClient(settings);
  return createBatchHandler({
    ...createDeps(config),
    apiKeys: apiGatewayAdapter(new APIGatewayClient(settings)),
    secrets: secretsManagerAdapter(new SecretsManagerClient(settings)),
    completions: sqsAdapter(sqs, config.completionQueueUrl),
    signupQueue: sqsSourceAdapter(sqs),
  });
}

/**
 * Who waits a throttle's Retry-After besides the throttled call, in designs other than ours (which pauses the whole
 * instance only on the throttle that ends its fast probe): `instance`, the whole instance on every throttle; `call`,
 * no one else, ever.
 */
export type PauseOnThrottle = 'instance' | 'call';

/**
 * `limiter` (production's) with the pause of another design: it is never told a Retry-After, so it pauses nothing
 * itself; with `instance`, every throttle's Retry-After (at most `maxPauseMs`) holds every call of the instance.
 */
export function pausing(limiter: RateLimiter, pause: PauseOnThrottle, maxPauseMs: number, now = Date.now): RateLimiter {
  let pausedUntil = 0;
  const paused = () => Math.max(0, pausedUntil - now());
  return {
    delayMs: (operation) => Math.max(paused(), limiter.delayMs(operation)),
    take(operation) {
      const wait = paused();
      return wait > 0 ? Math.ceil(wait) : limiter.take(operation);
    },
    onThrottle(retryAfterMs, operation) {
      if (pause === 'instance' && retryAfterMs !== undefined && Number.isFinite(retryAfterMs) && retryAfterMs > 0)
        pausedUntil = Math.max(pausedUntil, now() + Math.min(retryAfterMs, maxPauseMs));
      limiter.onThrottle(undefined, operation);
    },
    onSuccess: (operation) => limiter.onSuccess(operation),
    onFailure: (operation) => limiter.onFailure(operation),
    redeliveryDelayMs: (operation) => limiter.redeliveryDelayMs?.(operation),
    setFleetSize: (size) => limiter.setFleetSize?.(size),
    idle: (maxWaitMs) => limiter.idle?.(maxWaitMs) ?? Promise.resolve(),
    get rate() {
      return limiter.rate;
    },
  };
}
