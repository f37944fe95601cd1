import { SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import { retryableFromSdk } from './errors.js';

export interface OutgoingMessage {
  /** Unique within one send; reported back in `failedIds`. */
  id: string;
  body: string;
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

/** SQS adapter for one queue. Throws ThrottledError/TransientError for retryable failures of the whole call. */
export function sqsAdapter(client: SQSClient, queueUrl: string): MessageSink {
  return {
    async sendBatch(messages) {
      try {
        const result = await client.send(
          new SendMessageBatchCommand({
            QueueUrl: queueUrl,
            Entries: messages.map((m) => ({ Id: m.id, MessageBody: m.body })),
          }),
        );
        return { failedIds: (result.Failed ?? []).map((f) => f.Id ?? '') };
      } catch (error) {
        throw retryableFromSdk('SendMessageBatch', error) ?? error;
      }
    },
  };
}
