import { ChangeMessageVisibilityBatchCommand, GetQueueUrlCommand, SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import { retryableFromSdk, sdkClientSettings } from './errors.js';

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

export interface VisibilityChange {
  receiptHandle: string;
  /** Seconds until the message is visible again, 0–43200. */
  visibilityTimeoutSeconds: number;
}

export interface MessageSource {
  /** Sets when each message received from the queue `queueArn` comes back (one call for ≤ 10). */
  changeVisibility(queueArn: string, changes: VisibilityChange[]): Promise<void>;
}

/** SendMessageBatch takes at most 10 entries. */
export const SQS_BATCH_LIMIT = 10;

export function createSqsClient(requestTimeoutMs: number): SQSClient {
  return new SQSClient(sdkClientSettings(requestTimeoutMs));
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

/**
 * SQS adapter for the queues the function reads. A record names its queue by ARN: the URL is asked once per queue
 * (GetQueueUrl, then cached), so no setting has to repeat what the event source mapping already says.
 * Throws ThrottledError/TransientError for retryable failures.
 */
export function sqsSourceAdapter(client: SQSClient): MessageSource {
  const urls = new Map<string, Promise<string>>();
  const urlOf = (queueArn: string): Promise<string> => {
    let url = urls.get(queueArn);
    if (!url) {
      // arn:aws:sqs:<region>:<account>:<name>
      const [, , , , account, name] = queueArn.split(':');
      url = client.send(new GetQueueUrlCommand({ QueueName: name, QueueOwnerAWSAccountId: account })).then(({ QueueUrl }) => {
        if (!QueueUrl) throw new Error(`GetQueueUrl answered no URL for ${queueArn}`);
        return QueueUrl;
      });
      url.catch(() => urls.delete(queueArn));
      urls.set(queueArn, url);
    }
    return url;
  };
  return {
    async changeVisibility(queueArn, changes) {
      try {
        const queueUrl = await urlOf(queueArn);
        await client.send(
          new ChangeMessageVisibilityBatchCommand({
            QueueUrl: queueUrl,
            Entries: changes.map((c, i) => ({
              Id: String(i),
              ReceiptHandle: c.receiptHandle,
              VisibilityTimeout: c.visibilityTimeoutSeconds,
            })),
          }),
        );
      } catch (error) {
        throw retryableFromSdk('ChangeMessageVisibilityBatch', error) ?? error;
      }
    },
  };
}
