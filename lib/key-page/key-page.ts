import { randomUUID } from 'node:crypto';
import type { Logger } from '@aws-lambda-powertools/logger';
import type { APIGatewayProxyEventV2, Context } from 'aws-lambda';
import type { SecretStore } from '../aws/secrets-manager.js';
import type { MessageSink } from '../aws/sqs.js';
import { printable, secretName } from '../customer-key/naming.js';
import { type RecordStore, recordKey } from '../customer-key/record-store.js';
import { EnvironmentError, RetryableError, TransientError } from '../errors.js';
import { type RetryOptions, type RetryPolicy, withRetry } from '../quota/retry.js';
import type { SigningKeyProvider } from '../registration/signing-key.js';
import type { KeyPageConfig } from './config.js';
import type { KeyMarkers } from './markers.js';
import {
  alreadyShownPage,
  creatingPage,
  endedPage,
  errorPage,
  failedPage,
  linkExpiredPage,
  notFoundPage,
  type PageContext,
  type PageResponse,
  readyPage,
  seeThePage,
  shownPage,
  tryAgainPage,
} from './pages.js';
import { type PageRequest, parsePageRequest, RequestProblem } from './request.js';
import { rollMessage } from './roll.js';
import {
  checkReference,
  clearedSessionCookie,
  csrfToken,
  csrfValid,
  newSession,
  type Session,
  sessionCookie,
  signSession,
  verifySession,
} from './session.js';
import { type KeyState, markerKey, markerState, ROLL_PATIENCE_MS, recordState } from './state.js';

/** What the key page works with: read-only records and secrets, its own markers, the signup queue for roll requests. */
export interface KeyPageDeps {
  config: KeyPageConfig;
  records: Pick<RecordStore, 'get'>;
  secrets: Pick<SecretStore, 'getSecret'>;
  markers: KeyMarkers;
  /** The signup queue: roll requests only. */
  signups: MessageSink;
  signingKey: SigningKeyProvider;
  logger: Logger;
  now?: () => Date;
  retry?: Pick<RetryOptions, 'sleep' | 'random'>;
}

export type KeyPageHandler = (event: APIGatewayProxyEventV2, context: Context) => Promise<PageResponse>;

/** A person is waiting: a few quick retries, and the whole request stops retrying after {@link BUDGET_MS}. */
const POLICY: RetryPolicy = { maxAttempts: 4, baseDelayMs: 50, maxDelayMs: 500, safetyMarginMs: 250 };
const BUDGET_MS = 3_000;

/** A value as the provision function stores it: 20 to 128 letters and digits (API Gateway's rule; 40 are generated). */
const KEY_VALUE = /^[A-Za-z0-9]{20,128}$/;

/** The value in a customer's secret, checked to be this buyer's (a secret of another customer would be a bug, never shown). */
function keyValueIn(secretString: string, session: Session): string {
  let content: Record<string, unknown> = {};
  try {
    content = JSON.parse(secretString) as Record<string, unknown>;
  } catch {
    // below
  }
  const { value, customerId, productCode } = content;
  if (customerId !== session.customerId || (productCode ?? undefined) !== session.productCode)
    throw new EnvironmentError('the customer secret names another customer or product');
  if (typeof value !== 'string' || !KEY_VALUE.test(value)) throw new EnvironmentError('the customer secret holds no key value');
  return value;
}

/**
 * The key page (docs/key-page.md): `GET /` shows the buyer's state (after exchanging a `?ref=` once for a session
 * cookie), `POST /show` reveals the key's value once, `POST /roll` asks the provision function for a new key. A request
 * that is not one of these, or without a valid session, reference or CSRF token, gets a plain 4xx page before any call
 * to Secrets Manager. Never throws; never logs a key value, a reference, a cookie or a token.
 */
export function createKeyPageHandler(deps: KeyPageDeps): KeyPageHandler {
  const { config, logger } = deps;
  const now = deps.now ?? (() => new Date());

  return async (event, context) => {
    const ctx: PageContext = { branding: config.branding, marketplaceUrl: config.marketplaceUrl, requestId: context.awsRequestId };
    let request: PageRequest;
    try {
      request = parsePageRequest(event);
    } catch (error) {
      if (!(error instanceof RequestProblem)) return errorPage(ctx);
      logger.warn('not a request of the key page', { reason: error.reason, problem: error.message });
      if (error.reason === 'not-found' || error.reason === 'method-not-allowed') return notFoundPage(ctx, error.allow);
      return linkExpiredPage(ctx, error.reason === 'cross-site' ? 403 : 400);
    }
    const deadline = Date.now() + BUDGET_MS;
    const retry: RetryOptions = {
      ...deps.retry,
      policy: POLICY,
      remainingTimeMs: () => Math.min(context.getRemainingTimeInMillis(), deadline - Date.now()),
      onRetry: ({ operation, attempt, delayMs, error }) => logger.info('retrying', { operation, attempt, delayMs, error: error.name }),
    };
    const call = <T>(operation: string, fn: () => Promise<T>) => withRetry(operation, fn, retry);
    try {
      const key = await call('GetSecretValue', () => deps.signingKey.get());
      const at = now();
      const session = request.sessions.map((value) => verifySession(value, key, at)).find((s) => s !== undefined);
      if (request.route === 'page' && request.ref !== undefined) return await exchange(request.ref, session, key, at);
      if (!session) {
        logger.info('no valid session', { route: request.route, cookies: request.sessions.length });
        // A stale or forged cookie is removed, so the next visit through AWS Marketplace starts clean.
        return linkExpiredPage(
          ctx,
          request.sessions.length > 0 ? 410 : 403,
          request.sessions.length > 0 ? [clearedSessionCookie()] : undefined,
        );
      }
      if (request.route === 'page') return await statePage(session, key, at);
      if (!csrfValid(request.csrf, session, request.route, key)) {
        logger.warn('a form without its CSRF token', { route: request.route });
        return linkExpiredPage(ctx, 403);
      }
      return request.route === 'show' ? await reveal(session, at) : await roll(session, at);
    } catch (error) {
      return failurePage(error);
    }

    /** The one-time exchange of a reference for a session cookie, then a 303 to the page without the reference. */
    async function exchange(ref: string, current: Session | undefined, key: string, at: Date): Promise<PageResponse> {
      const checked = checkReference(ref, key, at);
      if (!checked.ok) {
        logger.warn('a reference that does not verify', { reason: checked.reason });
        return linkExpiredPage(ctx, checked.reason === 'expired' ? 410 : 400);
      }
      const { buyer } = checked;
      // The browser that already exchanged a reference of this buyer (back button, a second visit): no claim needed.
      if (current && current.customerId === buyer.customerId && current.productCode === buyer.productCode) return seeThePage();
      if (!(await call('UpdateItem', () => deps.markers.claimReference(checked.claimId, checked.expiresAt)))) {
        logger.warn('a reference used a second time (refused)', { customerId: buyer.customerId, productCode: buyer.productCode });
        return linkExpiredPage(ctx, 410);
      }
      const session = newSession(buyer, at, config.sessionTtlSeconds);
      logger.info('reference exchanged for a session', { customerId: buyer.customerId, productCode: buyer.productCode });
      return seeThePage([sessionCookie(signSession(session, key), config.sessionTtlSeconds)]);
    }

    /** The buyer's state: the record, and the current key's marker. */
    async function stateOf(session: Session, at: Date): Promise<{ state: KeyState; record: string }> {
      const record = recordKey(session.customerId, session.productCode ?? null);
      const found = await call('GetItem', () => deps.records.get(record));
      const fromRecord = recordState(found?.record);
      if (fromRecord.kind !== 'revealable') return { state: fromRecord, record };
      const marker = await call('GetItem', () => deps.markers.marker(markerKey(record, fromRecord.apiKeyId)));
      return { state: markerState(fromRecord.apiKeyId, marker, at), record };
    }

    async function statePage(session: Session, key: string, at: Date): Promise<PageResponse> {
      const { state } = await stateOf(session, at);
      switch (state.kind) {
        case 'creating':
          return creatingPage(ctx);
        case 'ready':
          return readyPage(ctx, csrfToken(session, 'show', key));
        case 'already-shown':
          return alreadyShownPage(ctx, csrfToken(session, 'roll', key));
        case 'ended':
          return endedPage(ctx);
        case 'failed':
          return failedPage(ctx);
      }
    }

    /** Reveals the value once: the conditional claim decides which request shows it; only that one reads the secret. */
    async function reveal(session: Session, at: Date): Promise<PageResponse> {
      const { state, record } = await stateOf(session, at);
      // Anything but ready (shown meanwhile, a roll under way, ended): the page says what is true now.
      if (state.kind !== 'ready') return seeThePage();
      const marker = markerKey(record, state.apiKeyId);
      const claim = randomUUID();
      if (!(await call('UpdateItem', () => deps.markers.claimReveal(marker, claim, at)))) {
        logger.info('reveal lost to another request (already shown)', { customerId: session.customerId, apiKeyId: state.apiKeyId });
        return seeThePage();
      }
      let value: string;
      try {
        const name = secretName(config.namePrefix, session.customerId, session.productCode);
        // AWSCURRENT named, not implied: the roll moves it (and moto's default read does not follow the move).
        const secret = await call('GetSecretValue', () => deps.secrets.getSecret(name, undefined, 'AWSCURRENT'));
        if (!secret) throw new EnvironmentError('the customer secret of an active key does not exist');
        value = keyValueIn(secret.secretString, session);
        // The record again: a roll that started meanwhile may have made the secret's current value another key's.
        const again = recordState((await call('GetItem', () => deps.records.get(record)))?.record);
        if (again.kind !== 'revealable' || again.apiKeyId !== state.apiKeyId)
          throw new TransientError('the key changed while it was being shown');
      } catch (error) {
        await call('UpdateItem', () => deps.markers.releaseReveal(marker, claim)).catch((released: unknown) =>
          logger.error('a failed reveal could not be given back: the buyer has to get a new key', {
            error: released instanceof Error ? released.name : typeof released,
          }),
        );
        throw error;
      }
      logger.info('key shown', { customerId: session.customerId, productCode: session.productCode, apiKeyId: state.apiKeyId });
      return shownPage(ctx, value);
    }

    /** Sends one roll request for a key that was shown; the page then says *creating* until the new key is there. */
    async function roll(session: Session, at: Date): Promise<PageResponse> {
      const { state, record } = await stateOf(session, at);
      if (state.kind !== 'already-shown') return seeThePage();
      const marker = markerKey(record, state.apiKeyId);
      if (!(await call('UpdateItem', () => deps.markers.claimRoll(marker, at, new Date(at.getTime() - ROLL_PATIENCE_MS)))))
        return seeThePage();
      const message = rollMessage(session, record, state.apiKeyId, at);
      try {
        await call('SendMessageBatch', async () => {
          const { failedIds } = await deps.signups.sendBatch([message]);
          if (failedIds.length > 0) throw new TransientError('SendMessageBatch: SQS did not accept the roll request');
        });
      } catch (error) {
        await call('UpdateItem', () => deps.markers.releaseRoll(marker, at)).catch(() => undefined);
        throw error;
      }
      logger.info('roll requested', { customerId: session.customerId, apiKeyId: state.apiKeyId, eventId: message.deduplicationId });
      return seeThePage();
    }

    function failurePage(error: unknown): PageResponse {
      const described = error instanceof Error ? { name: error.name, message: printable(error.message, 300) } : { name: typeof error };
      if (error instanceof EnvironmentError) {
        logger.error('key page failed on our side: fix the deployment (the buyer was shown a 500 page)', { error: described });
        return errorPage(ctx);
      }
      if (error instanceof RetryableError) {
        logger.warn('key page gave up within its retry budget (the buyer was asked to try again)', { error: described });
        return tryAgainPage(ctx);
      }
      logger.error('key page failed (the buyer was shown a 500 page)', { error: described });
      return errorPage(ctx);
    }
  };
}
