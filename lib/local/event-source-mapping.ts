import {
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  type Message,
  ReceiveMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { lambdaContext } from './lambda-context.js';

// biome-ignore lint/suspicious/noConfusingVoidType: a Lambda handler may return nothing (`async () => {}`), which TypeScript types as void.
export type SqsHandler = (event: SQSEvent, context: Context) => Promise<SQSBatchResponse | void | null | undefined>;

export interface BatchReport {
  records: SQSRecord[];
  /** Message ids left on the queue for a later delivery (all of them when the handler threw or answered badly). */
  handedBack: string[];
  error?: string;
  durationMs: number;
}

export interface EventSourceMappingOptions {
  sqs: SQSClient;
  queueUrl: string;
  queueArn: string;
  handler: SqsHandler;
  /** Records per invocation at most, as the mapping's BatchSize. Above 10, several receives fill one batch. */
  batchSize?: number;
  /** How long to keep filling a batch of more than 10 records, as the mapping's MaximumBatchingWindowInSeconds. */
  batchingWindowMs?: number;
  /** Long-poll wait per ReceiveMessage, seconds. */
  waitTimeSeconds?: number;
  /** The function timeout: the deadline each invocation's context counts down to. */
  functionTimeoutMs?: number;
  /** The function's name in each invocation's context (and its invokedFunctionArn); default the local one. */
  functionName?: string;
  /** Concurrent pollers, like concurrent function instances. */
  concurrency?: number;
  /** Stop even if the queue has not drained after this long. */
  maxDurationMs?: number;
  /** Stop after this many invocations (all pollers together). */
  maxInvocations?: number;
  onBatch?: (report: BatchReport) => void;
  region?: string;
}

export interface RunSummary {
  invocations: number;
  drained: boolean;
  durationMs: number;
}

function toRecord(message: Message, queueArn: string, region: string): SQSRecord {
  const a = message.Attributes ?? {};
  return {
    messageId: message.MessageId ?? '',
    receiptHandle: message.ReceiptHandle ?? '',
    body: message.Body ?? '',
    attributes: {
      ApproximateReceiveCount: a.ApproximateReceiveCount ?? '1',
      SentTimestamp: a.SentTimestamp ?? String(Date.now()),
      SenderId: a.SenderId ?? 'local',
      ApproximateFirstReceiveTimestamp: a.ApproximateFirstReceiveTimestamp ?? String(Date.now()),
    },
    messageAttributes: {},
    md5OfBody: message.MD5OfBody ?? '',
    eventSource: 'aws:sqs',
    eventSourceARN: queueArn,
    awsRegion: region,
  };
}

/**
 * Which records Lambda keeps on the queue after an invocation, by the ReportBatchItemFailures rules:
 * an empty or null response deletes all; a response that is not a valid list, or names an empty or unknown id, fails the whole batch.
 */
export function recordsToKeep(records: SQSRecord[], response: unknown): string[] {
  const all = records.map((r) => r.messageId);
  if (response === undefined || response === null) return [];
  if (typeof response !== 'object') return all;
  const failures = (response as { batchItemFailures?: unknown }).batchItemFailures;
  if (failures === undefined || failures === null) return [];
  if (!Array.isArray(failures)) return all;
  const ids = failures.map((f) => (typeof f === 'object' && f !== null ? (f as { itemIdentifier?: unknown }).itemIdentifier : undefined));
  if (ids.some((id) => typeof id !== 'string' || id === '' || !all.includes(id))) return all;
  return [...new Set(ids as string[])];
}

async function queueIsEmpty(sqs: SQSClient, queueUrl: string): Promise<boolean> {
  const { Attributes = {} } = await sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: queueUrl,
      AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible', 'ApproximateNumberOfMessagesDelayed'],
    }),
  );
  return ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible', 'ApproximateNumberOfMessagesDelayed'].every(
    (name) => Number(Attributes[name as keyof typeof Attributes] ?? 0) === 0,
  );
}

/**
 * Runs `handler` the way Lambda's SQS event source mapping with ReportBatchItemFailures does: long-poll a batch,
 * invoke with a context that has a real deadline, delete only the records not reported as failures, and leave the
 * others to reappear after the visibility timeout (and move to the DLQ after maxReceiveCount, which SQS does).
 * Returns when the queue is empty — nothing visible, in flight or delayed — or after `maxDurationMs` or `maxInvocations`.
 */
export async function runEventSourceMapping(options: EventSourceMappingOptions): Promise<RunSummary> {
  const { sqs, queueUrl, queueArn, handler, onBatch } = options;
  const batchSize = options.batchSize ?? 10;
  const functionTimeoutMs = options.functionTimeoutMs ?? 30_000;
  const region = options.region ?? process.env.AWS_REGION ?? 'us-east-1';
  const started = Date.now();
  const stopAt = started + (options.maxDurationMs ?? 10 * 60_000);
  let invocations = 0;
  let drained = false;

  /** One batch: a long poll, then (for a batch size above 10) more receives until full, empty, or the window closes. */
  async function receiveBatch(): Promise<Message[]> {
    const batch: Message[] = [];
    const windowEnds = Date.now() + (options.batchingWindowMs ?? 1000);
    do {
      const { Messages = [] } = await sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: queueUrl,
          MaxNumberOfMessages: Math.min(10, batchSize - batch.length),
          WaitTimeSeconds: batch.length === 0 ? (options.waitTimeSeconds ?? 1) : 0,
          MessageSystemAttributeNames: ['All'],
        }),
      );
      batch.push(...Messages);
      if (Messages.length === 0) break;
    } while (batchSize > 10 && batch.length < batchSize && Date.now() < windowEnds);
    return batch;
  }

  async function poller(): Promise<void> {
    while (!drained && Date.now() < stopAt && invocations < (options.maxInvocations ?? Number.POSITIVE_INFINITY)) {
      const Messages = await receiveBatch();
      if (Messages.length === 0) {
        if (await queueIsEmpty(sqs, queueUrl)) drained = true;
        // Messages in flight: wait for them to come back rather than spin (short polls answer at once).
        else await new Promise((resolve) => setTimeout(resolve, 100));
        continue;
      }
      invocations++;
      const records = Messages.map((m) => toRecord(m, queueArn, region));
      const began = Date.now();
      let handedBack: string[];
      let error: string | undefined;
      try {
        handedBack = recordsToKeep(records, await handler({ Records: records }, lambdaContext(functionTimeoutMs, options.functionName)));
      } catch (thrown) {
        handedBack = records.map((r) => r.messageId);
        error = thrown instanceof Error ? thrown.message : String(thrown);
      }
      const done = Messages.filter((m) => !handedBack.includes(m.MessageId ?? ''));
      for (let i = 0; i < done.length; i += 10) {
        await sqs.send(
          new DeleteMessageBatchCommand({
            QueueUrl: queueUrl,
            Entries: done.slice(i, i + 10).map((m, j) => ({ Id: String(j), ReceiptHandle: m.ReceiptHandle })),
          }),
        );
      }
      onBatch?.({ records, handedBack, error, durationMs: Date.now() - began });
    }
  }

  await Promise.all(Array.from({ length: options.concurrency ?? 1 }, poller));
  return { invocations, drained, durationMs: Date.now() - started };
}
