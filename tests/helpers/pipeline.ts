import { APIGatewayClient, GetApiKeysCommand } from '@aws-sdk/client-api-gateway';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SQSClient } from '@aws-sdk/client-sqs';
import type { CompletionEvent } from '../../lib/completion.js';
import { runEventSourceMapping, type SqsHandler } from '../../lib/local/event-source-mapping.js';
import { resetMoto } from '../../lib/local/moto.js';
import { peekQueue, sendBodies } from '../../lib/local/queues.js';
import { ensureQueues, type QueueSettings } from '../../lib/local/resources.js';
import { type FaultProxy, startFaultProxy } from './fault-proxy.js';

const QUEUES = { signups: 'it-signups', deadLetter: 'it-signups-dlq', completions: 'it-completions' };

/**
 * The real pipeline on the test run's moto server: the production handler, its SDK clients pointed (through a
 * fault-injecting proxy) at moto, real queues with a redrive policy, and the event-source-mapping runner.
 * One per test file: the handler reads its configuration once, when first imported.
 */
export async function startPipeline(settings: QueueSettings = { visibilityTimeoutSeconds: 1, maxReceiveCount: 2 }) {
  const moto = process.env.MOTO_ENDPOINT;
  if (!moto) throw new Error('MOTO_ENDPOINT is not set: run the integration project (its global setup starts moto)');
  await resetMoto(moto);
  const proxy: FaultProxy = await startFaultProxy(moto);
  // Clients of the test itself read state straight from moto, never through the fault proxy.
  const sqs = new SQSClient({ endpoint: moto });
  const apigw = new APIGatewayClient({ endpoint: moto });
  const secrets = new SecretsManagerClient({ endpoint: moto });
  const queues = await ensureQueues(sqs, QUEUES, settings);

  process.env.AWS_ENDPOINT_URL = proxy.endpoint;
  // Queue URLs name moto's host, and the SQS client sends to the queue URL's host: SQS goes straight to moto.
  process.env.AWS_ENDPOINT_URL_SQS = moto;
  process.env.COMPLETION_QUEUE_URL = queues.completionUrl;
  const { handler } = (await import('../../functions/provision.js')) as { handler: SqsHandler };

  return {
    proxy,
    queues,
    sqs,
    apigw,
    secrets,
    /** Sends each body (objects as JSON) to the signup queue; returns the SQS message ids. */
    send: (...bodies: unknown[]) => sendBodies(sqs, queues.signupUrl, bodies.map((b) => (typeof b === 'string' ? b : JSON.stringify(b)))),
    /** Runs the handler as Lambda's event source mapping would, until the signup queue is empty. Returns hand-backs per message id. */
    async drain(maxDurationMs = 60_000) {
      const handedBack = new Map<string, number>();
      const run = await runEventSourceMapping({
        sqs,
        queueUrl: queues.signupUrl,
        queueArn: queues.signupArn,
        handler,
        functionTimeoutMs: 20_000,
        maxDurationMs,
        onBatch: (report) => {
          for (const id of report.handedBack) handedBack.set(id, (handedBack.get(id) ?? 0) + 1);
        },
      });
      return { ...run, handedBack };
    },
    completionEvents: async () => (await peekQueue(sqs, queues.completionUrl)).map((m) => JSON.parse(m.Body ?? '{}') as CompletionEvent),
    deadLetterIds: async () => (await peekQueue(sqs, queues.deadLetterUrl)).map((m) => m.MessageId ?? ''),
    /** Every API key in moto, with its value. */
    apiKeys: async () => (await apigw.send(new GetApiKeysCommand({ includeValues: true, limit: 500 }))).items ?? [],
    secretJson: async (secretId: string) =>
      JSON.parse((await secrets.send(new GetSecretValueCommand({ SecretId: secretId }))).SecretString ?? '{}') as Record<string, unknown>,
    close: () => proxy.close(),
  };
}

export type Pipeline = Awaited<ReturnType<typeof startPipeline>>;
