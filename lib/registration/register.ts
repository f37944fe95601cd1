import type { Logger } from '@aws-lambda-powertools/logger';
import type { APIGatewayProxyEventV2, Context } from 'aws-lambda';
import type { CustomerResolver } from '../aws/metering.js';
import type { MessageSink, OutgoingMessage } from '../aws/sqs.js';
import { printable } from '../customer-key/naming.js';
import { EnvironmentError, RetryableError, TransientError } from '../errors.js';
import { type RetryOptions, type RetryPolicy, withRetry } from '../quota/retry.js';
import { buyerOf, signupMessage } from './buyer.js';
import type { RegistrationConfig } from './config.js';
import { FormError, TokenRejectedError } from './errors.js';
import { parseRegistrationForm, type RegistrationForm } from './form.js';
import { formProblemPage, type HttpResponse, redirectTo, sellerProblemPage, tokenRejectedPage, tryAgainPage } from './pages.js';
import { redactToken, scrubToken } from './redaction.js';
import { signReference } from './reference.js';
import type { SigningKeyProvider } from './signing-key.js';

/** What the registration hook works with. */
export interface RegistrationDeps {
  config: RegistrationConfig;
  metering: CustomerResolver;
  /** The signup queue. */
  signups: MessageSink;
  signingKey: SigningKeyProvider;
  logger: Logger;
  now?: () => Date;
  /** The waits between retries and their jitter (tests make them instant). */
  retry?: Pick<RetryOptions, 'sleep' | 'random'>;
}

export type RegistrationHandler = (event: APIGatewayProxyEventV2, context: Context) => Promise<HttpResponse>;

/**
 * The hook's retries: a few quick ones, since a person is waiting. ThrottlingException backs off from 500 ms
 * (lib/quota/retry.ts: 5 × base); the whole registration stops retrying at `retryBudgetMs` and shows a 503 page.
 */
const POLICY: Omit<RetryPolicy, 'safetyMarginMs'> = { maxAttempts: 5, baseDelayMs: 100, maxDelayMs: 1_500 };
const SAFETY_MARGIN_MS = 250;

async function enqueue(signups: MessageSink, message: OutgoingMessage): Promise<void> {
  const { failedIds } = await signups.sendBatch([message]);
  // SendMessageBatch answers 200 with per-entry failures: the entry was not sent, a retry may send it.
  if (failedIds.length > 0) throw new TransientError('SendMessageBatch: SQS did not accept the signup message');
}

/** The page for a failure, and its log line: nothing here may quote the token (messages are scrubbed anyway). */
function failurePage(error: unknown, log: Logger, requestId: string, token: string): HttpResponse {
  const described =
    error instanceof Error ? { name: error.name, message: scrubToken(printable(error.message, 300), token) } : { name: typeof error };
  if (error instanceof TokenRejectedError) {
    log.warn('registration token refused by AWS Marketplace: the buyer has to start again from Marketplace', {
      reason: error.reason,
      error: described,
    });
    return tokenRejectedPage(requestId);
  }
  // Before RetryableError: an EnvironmentError is one, but waits for a fix on our side (DisabledApi, IAM, the key).
  if (error instanceof EnvironmentError) {
    log.error('registration failed on our side: fix the deployment (the buyer was shown a 500 page)', { error: described });
    return sellerProblemPage(requestId);
  }
  if (error instanceof RetryableError) {
    log.warn('registration gave up within its retry budget (the buyer was asked to try again)', { error: described });
    return tryAgainPage(requestId);
  }
  log.error('registration failed (the buyer was shown a 500 page)', { error: described });
  return sellerProblemPage(requestId);
}

/**
 * The fulfillment-URL hook. For Marketplace's form POST it reads the token, redeems it at once (ResolveCustomer,
 * retried with backoff within the budget), sends ONE signup message for the buyer to the signup queue (the same
 * provisioning pipeline, and the same key, as the buyer's SNS or EventBridge notification), and redirects (303) to the
 * registration page with a signed reference to the buyer. Answers: 400 for a form without a token and for a refused
 * token, 503 when AWS stayed unavailable, 500 for problems on the seller's side. Never throws; never logs the token.
 * A repeat of the form sends the same signup again (same eventId): provisioning is idempotent per buyer and product.
 */
export function createRegistrationHandler(deps: RegistrationDeps): RegistrationHandler {
  const { config, logger } = deps;
  const now = deps.now ?? (() => new Date());
  return async (event, context) => {
    const requestId = context.awsRequestId;
    let form: RegistrationForm;
    try {
      form = parseRegistrationForm(event);
    } catch (error) {
      if (error instanceof FormError) {
        logger.warn('not a registration form', { reason: error.reason, problem: error.message });
        return formProblemPage(error.reason, requestId);
      }
      // Never the raw 502 of a thrown error: the buyer gets a page, the seller a log line.
      return failurePage(error, logger, requestId, '');
    }
    const log = logger.createChild({ persistentKeys: { token: redactToken(form.token) } });
    const deadline = Date.now() + config.retryBudgetMs;
    const retry: RetryOptions = {
      ...deps.retry,
      policy: { ...POLICY, safetyMarginMs: SAFETY_MARGIN_MS },
      remainingTimeMs: () => Math.min(context.getRemainingTimeInMillis(), deadline - Date.now()),
      onRetry: ({ operation, attempt, delayMs, error }) => log.info('retrying', { operation, attempt, delayMs, error: error.name }),
    };
    try {
      // The key first: when it cannot be read, the token is left unredeemed for the buyer's next try. A failed read
      // is not kept (signing-key.ts), so a retry reads again.
      const key = await withRetry('GetSecretValue', () => deps.signingKey.get(), retry);
      const resolved = await withRetry('ResolveCustomer', () => deps.metering.resolveCustomer(form.token), retry);
      const buyer = buyerOf(resolved);
      log.info('registration token redeemed', { ...buyer, freeTrial: form.freeTrial, offerType: form.offerType });
      const at = now();
      const message = signupMessage(buyer, { now: at, freeTrial: form.freeTrial });
      await withRetry('SendMessageBatch', () => enqueue(deps.signups, message), retry);
      log.info('signup enqueued', { eventId: message.deduplicationId, customerId: buyer.customerId, productCode: buyer.productCode });
      const expiresAt = new Date(at.getTime() + config.referenceTtlSeconds * 1000);
      const page = new URL(config.registrationPageUrl);
      page.searchParams.set('ref', signReference(buyer, key, expiresAt));
      return redirectTo(page.toString());
    } catch (error) {
      return failurePage(error, log, requestId, form.token);
    }
  };
}
