import { APIGatewayClient, GetApiKeysCommand } from '@aws-sdk/client-api-gateway';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { PurgeQueueCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { CompletionEvent } from '../../lib/completion.js';
import { loadConfig } from '../../lib/config.js';
import { createDeps } from '../../lib/deps.js';
import { runEventSourceMapping, type SqsHandler } from '../../lib/local/event-source-mapping.js';
import { resetMoto } from '../../lib/local/moto.js';
import { peekQueue, sendBodies } from '../../lib/local/queues.js';
import { ensureQueues, type QueueSettings } from '../../lib/local/resources.js';
import { type BatchDeps, createBatchHandler } from '../../lib/process-batch.js';
import { type FaultProxy, startFaultProxy } from './fault-proxy.js';

const purge = (sqs: SQSClient, url: string) => sqs.send(new PurgeQueueCommand({ QueueUrl: url }));

const QUEUES = { signups: 'it-signups', deadLetter: 'it-signups-dlq', completions: 'it-completions' };

/**
 * The real pipeline on the test run's moto server: the production handler, its SDK clients pointed (through a
 * fault-injecting proxy) at moto, real queues with a redrive policy, and the event-source-mapping runner.
 * One per test file: the handler reads its configuration once, when first imported.
 */
export async function startPipeline(
  settings: QueueSettings = { visibilityTimeoutSeconds: 2, maxReceiveCount: 2 },
  /** Runs on the fresh moto before the function loads; returns environment variables for the function (e.g. USAGE_PLANS). */
  setup?: (clients: { apigw: APIGatewayClient }) => Promise<Record<string, string>>,
) {
  const moto = process.env.MOTO_ENDPOINT;
  if (!moto) throw new Error('MOTO_ENDPOINT is not set: run the integration project (its global setup starts moto)');
  await resetMoto(moto);
  const proxy: FaultProxy = await startFaultProxy(moto);
  // Clients of the test itself read state straight from moto, never through the fault proxy.
  const sqs = new SQSClient({ endpoint: moto });
  const apigw = new APIGatewayClient({ endpoint: moto });
  const secrets = new SecretsManagerClient({ endpoint: moto });
  const queues = await ensureQueues(sqs, QUEUES, settings);
  Object.assign(process.env, await setup?.({ apigw }));

  // Every call of the function goes through the proxy; the SQS client sends to the queue URL's host, so the
  // completion queue's URL names the proxy too.
  process.env.AWS_ENDPOINT_URL = proxy.endpoint;
  process.env.COMPLETION_QUEUE_URL = queues.completionUrl.replace(moto, proxy.endpoint);
  const { handler } = (await import('../../functions/provision.js')) as { handler: SqsHandler };

  return {
    proxy,
    queues,
    sqs,
    apigw,
    secrets,
    /** Sends each body (objects as JSON) to the signup queue; returns the SQS message ids. */
    send: (...bodies: unknown[]) =>
      sendBodies(
        sqs,
        queues.signupUrl,
        bodies.map((b) => (typeof b === 'string' ? b : JSON.stringify(b))),
      ),
    /** The production batch handler with some of its production dependencies replaced (e.g. to crash after a step). */
    handlerWith: (override: (deps: BatchDeps) => BatchDeps): SqsHandler =>
      createBatchHandler(override(createDeps(loadConfig(process.env)))),
    /** Runs a handler (the function's, by default) as Lambda's event source mapping would, until the signup queue is empty. */
    async drain(
      options: { maxDurationMs?: number; maxInvocations?: number; handler?: SqsHandler; concurrency?: number; batchSize?: number } = {},
    ) {
      const handedBack = new Map<string, number>();
      const run = await runEventSourceMapping({
        sqs,
        queueUrl: queues.signupUrl,
        queueArn: queues.signupArn,
        handler: options.handler ?? handler,
        functionTimeoutMs: 20_000,
        maxDurationMs: options.maxDurationMs ?? 60_000,
        maxInvocations: options.maxInvocations,
        concurrency: options.concurrency,
        batchSize: options.batchSize,
        onBatch: (report) => {
          for (const id of report.handedBack) handedBack.set(id, (handedBack.get(id) ?? 0) + 1);
        },
      });
      return { ...run, handedBack };
    },
    /** Empties the completion queue (between scenarios of one file). */
    clearCompletions: () => purge(sqs, queues.completionUrl),
    completionEvents: async () => (await peekQueue(sqs, queues.completionUrl)).map((m) => JSON.parse(m.Body ?? '{}') as CompletionEvent),
    deadLetterIds: async () => (await peekQueue(sqs, queues.deadLetterUrl)).map((m) => m.MessageId ?? ''),
    /** Moves every message of the DLQ back to the signup queue (receive, send, then delete), as an operator's replay does. */
    async replayDeadLetters() {
      const messages = await peekQueue(sqs, queues.deadLetterUrl);
      await sendBodies(
        sqs,
        queues.signupUrl,
        messages.map((m) => m.Body ?? ''),
      );
      await purge(sqs, queues.deadLetterUrl);
      return messages.length;
    },
    /** Every API key in moto, with its value. */
    apiKeys: async () => (await apigw.send(new GetApiKeysCommand({ includeValues: true, limit: 500 }))).items ?? [],
    secretJson: async (secretId: string) =>
      JSON.parse((await secrets.send(new GetSecretValueCommand({ SecretId: secretId }))).SecretString ?? '{}') as Record<string, unknown>,
    close: () => proxy.close(),
  };
}

export type Pipeline = Awaited<ReturnType<typeof startPipeline>>;
