/**
 * The benchmark's queue traffic: the signups going in (kept shallow for moto) and the completion events coming out.
 */
import { DeleteMessageBatchCommand, GetQueueAttributesCommand, ReceiveMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { sendBodies } from '../../lib/local/queues.js';
import type { CompletionEvent } from '../../lib/pipeline/completion.js';

/** Signups kept in the SQS queue at a time. */
const FEED_DEPTH = 100;

export interface Feeder {
  /** Resolves once the first FEED_DEPTH signups are in the queue. */
  primed: Promise<void>;
  start(): void;
  stop(): Promise<void>;
}

/**
 * Holds the N signups and keeps about FEED_DEPTH of them in the SQS queue until all are sent. moto's ReceiveMessage
 * costs time in proportion to the queue's depth (measured: 32 ms at 100 messages, 1.2 s at 2,000), which would make
 * moto's SQS, not API Gateway's quota, the bottleneck. The signups still count as enqueued at the start of the run.
 */
export function startFeeder(sqs: SQSClient, queueUrl: string, bodies: string[]): Feeder {
  let next = 0;
  let running = false;
  let loop: Promise<void> = Promise.resolve();
  const send = async (n: number) => {
    const chunk = bodies.slice(next, next + n);
    next += chunk.length;
    if (chunk.length) await sendBodies(sqs, queueUrl, chunk);
  };
  const visible = async () =>
    Number(
      (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['ApproximateNumberOfMessages'] }))).Attributes
        ?.ApproximateNumberOfMessages ?? 0,
    );
  return {
    primed: send(FEED_DEPTH),
    start() {
      running = true;
      loop = (async () => {
        while (running && next < bodies.length) {
          const depth = await visible();
          if (depth < FEED_DEPTH) await send(FEED_DEPTH - depth);
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      })();
    },
    async stop() {
      running = false;
      await loop;
    },
  };
}

/** A completion event and when the function sent it (SQS SentTimestamp, ms since the epoch). */
export interface Collected {
  event: CompletionEvent;
  sentAt: number;
}

export interface Collector {
  stop(): Promise<Collected[]>;
}

/** Consumes the completion queue while the run goes on (keeping it shallow for moto, see startFeeder) and keeps every event. */
export function startCollector(sqs: SQSClient, queueUrl: string): Collector {
  const events: Collected[] = [];
  let running = true;
  const loop = (async () => {
    for (;;) {
      const { Messages = [] } = await sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: queueUrl,
          MaxNumberOfMessages: 10,
          // Once stopping, a short poll: the instances are done and their events already sent.
          WaitTimeSeconds: running ? 1 : 0,
          MessageSystemAttributeNames: ['SentTimestamp'],
        }),
      );
      if (Messages.length === 0 && !running) return;
      for (const m of Messages) {
        events.push({ event: JSON.parse(m.Body ?? '{}') as CompletionEvent, sentAt: Number(m.Attributes?.SentTimestamp ?? Date.now()) });
      }
      if (Messages.length > 0) {
        await sqs.send(
          new DeleteMessageBatchCommand({
            QueueUrl: queueUrl,
            Entries: Messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle })),
          }),
        );
      }
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return events;
    },
  };
}

/**
 * When each customer's key was first announced as provisioned: the send time of its completion event (the
 * event's own `occurredAt` is when its record's processing started).
 */
export function firstProvisioned(events: Collected[]): Map<string, number> {
  const first = new Map<string, number>();
  for (const { event, sentAt } of events) {
    if (event.type !== 'api-key.provisioned') continue;
    const seen = first.get(event.customerId);
    if (seen === undefined || sentAt < seen) first.set(event.customerId, sentAt);
  }
  return first;
}
