import type { Context } from 'aws-lambda';
import { readSecretContent } from '../customer-key/key-record.js';
import { ROLL_STEPS, type RollStep, rollKey } from '../customer-key/roll.js';
import { RejectedError, TransientError } from '../errors.js';
import type { RollRequest } from '../messages/index.js';
import { withRetry } from '../quota/retry.js';
import { completionEvent } from './completion.js';
import type { BatchDeps } from './deps.js';
import { messageGroupId } from './process-batch.js';
import { createUseCaseDeps } from './process-record.js';

/** What Secrets Manager sends a rotation function: one call per step (rotation protocol). */
export interface RotationEvent {
  Step: string;
  SecretId: string;
  ClientRequestToken: string;
}

/** Whether the function's event is a rotation step rather than a batch of SQS records. */
export const isRotationEvent = (event: unknown): event is RotationEvent =>
  typeof event === 'object' &&
  event !== null &&
  ['Step', 'SecretId', 'ClientRequestToken'].every((field) => typeof (event as Record<string, unknown>)[field] === 'string');

/**
 * Secrets Manager rotation of a customer's secret (a seller's `aws secretsmanager rotate-secret`, or a schedule): each
 * step is a step of the one roll path (lib/customer-key/roll.ts), the version token is Secrets Manager's
 * ClientRequestToken, which is also the roll's id, and the grace is ROLL_GRACE_SECONDS. Whose key it is, the secret
 * says (its name under NAME_PREFIX, its content's customer and product). A step that fails throws: Secrets Manager
 * marks the rotation failed and tries again at its next one; the roll claimed in the record is finished by any later
 * roll of the customer. The last step announces the new key with the same completion event as a roll request.
 */
export function createRotationHandler(deps: BatchDeps) {
  const now = deps.now ?? (() => new Date());
  const useCaseDeps = createUseCaseDeps(deps, now);
  return async function rotate(event: RotationEvent, context: Context): Promise<undefined> {
    const token = event.ClientRequestToken;
    const log = deps.logger.createChild({ persistentKeys: { correlationId: token, rotationStep: event.Step } });
    const step = ROLL_STEPS.find((known) => known === event.Step) as RollStep | undefined;
    if (!step)
      throw new RejectedError(
        'bad-request',
        `rotation step ${JSON.stringify(event.Step.slice(0, 40))} is not one of ${ROLL_STEPS.join(', ')}`,
      );
    const useCase = useCaseDeps(log, context);
    const secret = await useCase.secrets.getSecret(event.SecretId);
    if (!secret?.name.startsWith(deps.config.namePrefix))
      throw new RejectedError('no-key', `secret ${event.SecretId.slice(0, 300)} is not a customer's secret of this deployment`);
    const content = readSecretContent(secret);
    const request: RollRequest = {
      kind: 'roll',
      source: 'rotation',
      customerId: content.customerId,
      ...(content.productCode && { productCode: content.productCode }),
      rollId: token,
      eventId: token,
      eventTime: now().toISOString(),
      clock: 'queue',
    };
    log.info('Rotation step', { customerId: request.customerId, productCode: request.productCode });
    // testSecret starts nothing: called alone (RotateSecret with RotateImmediately false tests the configuration with
    // a version of Secrets Manager's own, then removes it), it answers without a roll under way and writes nothing.
    const result = await rollKey(request, useCase, { through: step, token, claim: step !== 'testSecret' });
    log.info('Rotation step done', { outcome: result.outcome, apiKeyId: result.apiKeyId, previousApiKeyId: result.previousApiKeyId });
    // A repeat of finishSecret (Secrets Manager retries a step that failed, e.g. when this send did) announces the
    // roll again, `already-rolled`, with the same eventId: the event is never lost to a failed send.
    if (step !== 'finishSecret' || (result.outcome !== 'rolled' && result.outcome !== 'already-rolled')) return;
    const done = completionEvent(request, result, {
      occurredAt: now().toISOString(),
      correlationId: token,
      messageId: `rotation:${token}`,
    });
    // Under the retry policy; an entry SQS did not take fails the step, and Secrets Manager's retry announces it.
    const message = { id: '0', body: JSON.stringify(done), deduplicationId: done.eventId, groupId: messageGroupId(done) };
    await withRetry(
      'SendMessageBatch',
      async () => {
        const { failedIds } = await deps.completions.sendBatch([message]);
        if (failedIds.length > 0) throw new TransientError('SendMessageBatch: SQS did not take the rolled event');
      },
      { policy: deps.config.retry, remainingTimeMs: () => context.getRemainingTimeInMillis() },
    );
  };
}
