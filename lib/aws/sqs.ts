import { SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import { retryableFromSdk } from './errors.js';

export interface OutgoingMessage {
  /** Unique within one send; reported back in `failedIds`. */
  id: string;
  body: string;
  /** FIFO queues only: the deduplication id (the event's deterministic `eventId`). */
  deduplicationId: string;
  /** FIFO queues only: events of one group are delivered in order. */
  groupId: string;
}

export interface MessageSink {
  /** Sends one batch request (≤ 10 messages). Returns the ids SQS did not accept. */
  sendBatch(messages: OutgoingMessage[]): Promise<{ failedIds: string[] }>;
}

/** SendMessageBatch takes at most 10 entries. */
export const SQS_BATCH_LIMIT = 10;

export function createSqsClient(requestTimeoutMs: number): SQSClient {
  return new SQSClient({ maxAttempts: 1, requestHandler: { requestTimeout: requestTimeoutMs } });
}

/**
 * SQS adapter for one queue. On a FIFO queue (`.fifo`) each message carries its deduplication and group id,
 * so SQS drops a repeat of the same event within its 5-minute window. Throws ThrottledError/TransientError
 * for retryable failures of the whole call.
 */
export function sqsAdapter(client: SQSClient, queueUrl: string): MessageSink {
  const fifo = queueUrl.endsWith('.fifo');
  return {
    async sendBatch(messages) {
      try {
        const result = await client.send(
          new SendMessageBatchCommand({
            QueueUrl: queueUrl,
            Entries: messages.map((m) => ({
              Id: m.id,
              MessageBody: m.body,
              ...(fifo && { MessageDeduplicationId: m.deduplicationId, MessageGroupId: m.groupId }),
            })),
          }),
        );
        return { failedIds: (result.Failed ?? []).map((f) => f.Id ?? '') };
      } catch (error) {
        throw retryableFromSdk('SendMessageBatch', error) ?? error;
      }
    },
  };
}
