/**
 * The SQS calls of a message-by-message redrive: finding the queue pair, receiving from the DLQ, sending to the
 * source, deleting, and hiding or releasing held messages. Operator calls (the function never makes them), so they
 * live here and not in lib/aws/sqs.ts, whose calls are the function's.
 */
import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  ListDeadLetterSourceQueuesCommand,
  type Message,
  ReceiveMessageCommand,
  SendMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { attributesToSend, type DlqMessage } from './messages.js';

/** The queues of a redrive, by URL and ARN. */
export interface RedriveQueues {
  dlqUrl: string;
  dlqArn: string;
  sourceUrl: string;
  sourceArn: string;
}

async function arnOf(sqs: SQSClient, url: string): Promise<string> {
  const { Attributes } = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['QueueArn'] }));
  if (!Attributes?.QueueArn) throw new Error(`no QueueArn for ${url}`);
  return Attributes.QueueArn;
}

async function urlOf(sqs: SQSClient, arn: string): Promise<string> {
  // arn:aws:sqs:<region>:<account>:<name>
  const [, , , , account, name] = arn.split(':');
  if (!name) throw new Error(`not an SQS queue ARN: ${arn}`);
  const { QueueUrl } = await sqs.send(new GetQueueUrlCommand({ QueueName: name, QueueOwnerAWSAccountId: account }));
  if (!QueueUrl) throw new Error(`no URL for ${arn}`);
  return QueueUrl;
}

/**
 * Completes the queue pair from what is given: the DLQ by URL or ARN; the source by URL or ARN, else the one queue
 * whose RedrivePolicy names the DLQ (ListDeadLetterSourceQueues), else the one ARN of the DLQ's RedriveAllowPolicy.
 * Read-only. Throws when the source is ambiguous or unknown, and the SDK's errors.
 */
export async function resolveQueues(
  sqs: SQSClient,
  given: { dlqUrl?: string; dlqArn?: string; sourceUrl?: string; sourceArn?: string },
): Promise<RedriveQueues> {
  const dlqUrl = given.dlqUrl ?? (given.dlqArn ? await urlOf(sqs, given.dlqArn) : undefined);
  if (!dlqUrl) throw new Error('the dead-letter queue is required (--dlq-url or --dlq-arn)');
  const dlqArn = given.dlqArn ?? (await arnOf(sqs, dlqUrl));
  let sourceUrl = given.sourceUrl ?? (given.sourceArn ? await urlOf(sqs, given.sourceArn) : undefined);
  if (!sourceUrl) {
    const { queueUrls = [] } = await sqs.send(new ListDeadLetterSourceQueuesCommand({ QueueUrl: dlqUrl }));
    if (queueUrls.length === 1) sourceUrl = queueUrls[0];
    else {
      const { Attributes } = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: dlqUrl, AttributeNames: ['RedriveAllowPolicy'] }));
      const allow = JSON.parse(Attributes?.RedriveAllowPolicy ?? '{}') as { redrivePermission?: string; sourceQueueArns?: string[] };
      const [only, ...others] = allow.redrivePermission === 'byQueue' ? (allow.sourceQueueArns ?? []) : [];
      if (only && others.length === 0) sourceUrl = await urlOf(sqs, only);
      else {
        throw new Error(
          queueUrls.length > 1
            ? `${queueUrls.length} queues use this dead-letter queue (${queueUrls.join(', ')}): name one with --source-url`
            : 'no source queue found for this dead-letter queue: name it with --source-url',
        );
      }
    }
  }
  if (!sourceUrl) throw new Error('no source queue');
  return { dlqUrl, dlqArn, sourceUrl, sourceArn: given.sourceArn ?? (await arnOf(sqs, sourceUrl)) };
}

/** Receives up to `max` messages (≤ 10) with every system and message attribute, hidden for `visibilitySeconds`. */
export async function receiveMessages(
  sqs: SQSClient,
  queueUrl: string,
  options: { max: number; visibilitySeconds: number; waitTimeSeconds: number },
): Promise<Message[]> {
  const { Messages = [] } = await sqs.send(
    new ReceiveMessageCommand({
      QueueUrl: queueUrl,
      MaxNumberOfMessages: options.max,
      VisibilityTimeout: options.visibilitySeconds,
      WaitTimeSeconds: options.waitTimeSeconds,
      MessageSystemAttributeNames: ['All'],
      MessageAttributeNames: ['All'],
    }),
  );
  return Messages;
}

/**
 * Sends one DLQ message to the source queue: same body, same message attributes plus its first send time
 * ({@link attributesToSend}), and its group on FIFO. Returns the note of {@link attributesToSend}, if any. Throws
 * the SDK's error when SQS refuses the message (the caller leaves it in the DLQ).
 */
export async function sendToSource(sqs: SQSClient, sourceUrl: string, message: DlqMessage): Promise<string | undefined> {
  const fifo = sourceUrl.endsWith('.fifo');
  const { attributes, note } = attributesToSend(message);
  await sqs.send(
    new SendMessageCommand({
      QueueUrl: sourceUrl,
      MessageBody: message.body,
      MessageAttributes: Object.keys(attributes).length > 0 ? attributes : undefined,
      // The DLQ message id as deduplication id: a redrive repeated after a stop between send and delete is dropped.
      ...(fifo && { MessageGroupId: message.groupId ?? message.messageId, MessageDeduplicationId: message.messageId }),
    }),
  );
  return note;
}

/** Deletes one received message. Throws the SDK's error (the message is then still in the queue). */
export async function deleteMessage(sqs: SQSClient, queueUrl: string, receiptHandle: string): Promise<void> {
  await sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: receiptHandle }));
}

/** Sets how long received messages stay hidden (0: visible again at once), ten per call. Returns the ids it could not change. */
export async function setVisibility(
  sqs: SQSClient,
  queueUrl: string,
  messages: Array<Pick<DlqMessage, 'messageId' | 'receiptHandle'>>,
  seconds: number,
): Promise<string[]> {
  const failed: string[] = [];
  for (let i = 0; i < messages.length; i += 10) {
    const chunk = messages.slice(i, i + 10);
    try {
      const result = await sqs.send(
        new ChangeMessageVisibilityBatchCommand({
          QueueUrl: queueUrl,
          Entries: chunk.map((m, j) => ({ Id: String(j), ReceiptHandle: m.receiptHandle, VisibilityTimeout: seconds })),
        }),
      );
      for (const f of result.Failed ?? []) failed.push(chunk[Number(f.Id)]?.messageId ?? '');
    } catch {
      failed.push(...chunk.map((m) => m.messageId));
    }
  }
  return failed;
}
