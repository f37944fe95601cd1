import { APIGatewayClient, GetApiKeysCommand } from '@aws-sdk/client-api-gateway';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { PurgeQueueCommand, SQSClient } from '@aws-sdk/client-sqs';
import { loadConfig } from '../../lib/config.js';
import { runEventSourceMapping, type SqsHandler } from '../../lib/local/event-source-mapping.js';
import { resetMoto } from '../../lib/local/moto.js';
import { peekQueue, sendBodies } from '../../lib/local/queues.js';
import { ensureCoordinationTable, ensureQueues, type QueueSettings } from '../../lib/local/resources.js';
import type { CompletionEvent } from '../../lib/pipeline/completion.js';
import { createDeps } from '../../lib/pipeline/deps.js';
import { type BatchDeps, createBatchHandler } from '../../lib/pipeline/process-batch.js';
import { REALISTIC, type RealisticAws, type RealisticSettings, startRealisticAws } from '../realistic-aws/index.js';

const purge = (sqs: SQSClient, url: string) => sqs.send(new PurgeQueueCommand({ QueueUrl: url }));

const QUEUES = { signups: 'it-signups', deadLetter: 'it-signups-dlq', completions: 'it-completions' };

/**
 * The AWS the integration suites run against unless they say otherwise: the realistic layer's REALISTIC preset —
 * API Gateway throttling at 20 times the real quotas (fast suites, still a bucket), usage-plan writes one at a
 * time with 409 "concurrent modification" on overlap, 404 for an unknown plan, one plan per API stage for a key,
 * and GetApiKeys / ListSecrets that do not list what was created in the last 300 ms. Faults (chaos, denials,
 * partial batch failures) stay off: a suite turns them on where it tests them.
 */
export const PIPELINE_AWS: Readonly<RealisticSettings> = REALISTIC;

/**
 * The function's retry policy in these suites. tests/helpers/env.ts gives 1 ms backoff capped at 20 ms, made for a
 * moto that never conflicts nor throttles: against the layer every attempt of a CreateUsagePlanKey would fall inside
 * one 50 ms write of another record, and a 429's Retry-After (at least 1 s) would never be waited for. Production
 * defaults are 100 ms / 10 s (lib/config.ts); these keep the same proportions to the layer's timings, faster.
 */
export const FUNCTION_RETRY = {
  RETRY_BASE_DELAY_MS: '50',
  RETRY_MAX_DELAY_MS: '1500',
} as const;

/** The usage-plan write turns table, as serverless.yml gives the function one (lib/quota/usage-plan-turns.ts). */
export const COORDINATION_TABLE_NAME = 'keyprov-test-coordination';

/** SDK clients, all pointed at one endpoint. */
export interface AwsClients {
  sqs: SQSClient;
  apigw: APIGatewayClient;
  secrets: SecretsManagerClient;
}

const clientsFor = (endpoint: string): AwsClients => ({
  sqs: new SQSClient({ endpoint }),
  apigw: new APIGatewayClient({ endpoint }),
  secrets: new SecretsManagerClient({ endpoint }),
});

/**
 * The real pipeline on the test run's moto server: the production handler, its SDK clients pointed at moto through
 * the realistic-AWS layer (tests/realistic-aws: moto does the work, the layer answers as AWS would), real queues with
 * a redrive policy, and the event-source-mapping runner. One per test file: the handler reads its configuration
 * once, when first imported.
 *
 * The test's own clients (`sqs`, `apigw`, `secrets`) read and arrange state straight in moto, never through the
 * layer, so that an assertion sees what really is there; `viaLayer` holds clients through the layer, for the
 * operations tools under test (reconcile). `proxy` is the layer itself: `seen`, `inject`, `clear`, `injected` as the
 * old fault proxy had them, plus `configure` and `stats`.
 */
export async function startPipeline(
  settings: QueueSettings = { visibilityTimeoutSeconds: 2, maxReceiveCount: 2 },
  /** Runs on the fresh moto before the function loads; returns environment variables for the function (e.g. USAGE_PLANS). */
  setup?: (clients: { apigw: APIGatewayClient }) => Promise<Record<string, string>>,
  /** Switches of the layer, merged over {@link PIPELINE_AWS} (`undefined` turns one off). */
  aws: Partial<RealisticSettings> = {},
) {
  const moto = process.env.MOTO_ENDPOINT;
  if (!moto) throw new Error('MOTO_ENDPOINT is not set: run the integration project (its global setup starts moto)');
  await resetMoto(moto);
  const proxy: RealisticAws = await startRealisticAws(moto, { ...PIPELINE_AWS, ...aws });
  const { sqs, apigw, secrets } = clientsFor(moto);
  const viaLayer = clientsFor(proxy.endpoint);
  const queues = await ensureQueues(sqs, QUEUES, settings);
  await ensureCoordinationTable(new DynamoDBClient({ endpoint: moto }), COORDINATION_TABLE_NAME);
  Object.assign(process.env, FUNCTION_RETRY, { COORDINATION_TABLE: COORDINATION_TABLE_NAME }, await setup?.({ apigw }));

  // Every call of the function goes through the layer; the SQS client sends to the queue URL's host, so the
  // completion queue's URL names the layer too.
  process.env.AWS_ENDPOINT_URL = proxy.endpoint;
  process.env.COMPLETION_QUEUE_URL = queues.completionUrl.replace(moto, proxy.endpoint);
  const { handler } = (await import('../../functions/provision.js')) as { handler: SqsHandler };

  /**
   * Moves every message of the DLQ back to the signup queue (receive, send, then delete), as an operator's replay
   * does; returns, for each, its id in the DLQ and the id of its new copy.
   */
  async function redriveDeadLetters(): Promise<Array<{ deadLetterId: string; messageId: string }>> {
    const messages = await peekQueue(sqs, queues.deadLetterUrl);
    const ids = await sendBodies(
      sqs,
      queues.signupUrl,
      messages.map((m) => m.Body ?? ''),
    );
    await purge(sqs, queues.deadLetterUrl);
    return messages.map((m, i) => ({ deadLetterId: m.MessageId ?? '', messageId: ids[i] ?? '' }));
  }

  return {
    proxy,
    queues,
    sqs,
    apigw,
    secrets,
    viaLayer,
    /** Sends each body (objects as JSON) to the signup queue; returns the SQS message ids. */
    send: (...bodies: unknown[]) =>
      sendBodies(
        sqs,
        queues.signupUrl,
        bodies.map((b) => (typeof b === 'string' ? b : JSON.stringify(b))),
      ),
    /**
     * A new function instance (configuration, clients, caches of its own): the production batch handler, built from
     * the environment as it is now plus `env`, with some of its dependencies replaced by `override` (e.g. to crash
     * after a step). `env` is read once, here, as a cold start would: the process environment is left as it was.
     */
    handlerWith: (override: (deps: BatchDeps) => BatchDeps = (deps) => deps, env: Record<string, string> = {}): SqsHandler =>
      createBatchHandler(override(createDeps(loadConfig({ ...process.env, ...env })))),
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
    redriveDeadLetters,
    /** {@link redriveDeadLetters}, counting the messages moved. */
    replayDeadLetters: async () => (await redriveDeadLetters()).length,
    /** Every API key in moto, with its value. */
    apiKeys: async () => (await apigw.send(new GetApiKeysCommand({ includeValues: true, limit: 500 }))).items ?? [],
    secretJson: async (secretId: string) =>
      JSON.parse((await secrets.send(new GetSecretValueCommand({ SecretId: secretId }))).SecretString ?? '{}') as Record<string, unknown>,
    async close() {
      for (const clients of [{ sqs, apigw, secrets }, viaLayer]) for (const client of Object.values(clients)) client.destroy();
      await proxy.close();
    },
  };
}

export type Pipeline = Awaited<ReturnType<typeof startPipeline>>;
