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
import { UsageError } from '../../command-line.js';
import { attributesToSend, type DlqMessage } from './messages.js';

/** The queues of a redrive, by URL and ARN. */
export interface RedriveQueues {
  dlqUrl: string;
  dlqArn: string;
  sourceUrl: string;
  sourceArn: string;
}

async function attributesOf(sqs: SQSClient, url: string): Promise<Record<string, string>> {
  // 'All' rather than names: moto refuses a name it does not know (RedriveAllowPolicy: "Unknown Attribute").
  const { Attributes } = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['All'] }));
  if (!Attributes?.QueueArn) throw new Error(`no QueueArn for ${url}`);
  return Attributes;
}

async function arnOf(sqs: SQSClient, url: string): Promise<string> {
  return (await attributesOf(sqs, url)).QueueArn ?? '';
}

async function urlOf(sqs: SQSClient, arn: string): Promise<string> {
  // arn:aws:sqs:<region>:<account>:<name>
  const [, , , , account, name] = arn.split(':');
  if (!name) throw new UsageError(`not an SQS queue ARN: ${arn}`);
  const { QueueUrl } = await sqs.send(new GetQueueUrlCommand({ QueueName: name, QueueOwnerAWSAccountId: account }));
  if (!QueueUrl) throw new Error(`no URL for ${arn}`);
  return QueueUrl;
}

/**
 * The queue a `--<role>-url` / `--<role>-arn` pair names: either one, or both when they name the same queue. Throws
 * {@link UsageError} when they name two queues (a dry run would use one and the move task the other).
 */
async function oneQueue(sqs: SQSClient, role: 'dlq' | 'source', url: string | undefined, arn: string | undefined) {
  if (url === undefined || arn === undefined) return { url: url ?? (arn === undefined ? undefined : await urlOf(sqs, arn)), arn };
  const actual = await arnOf(sqs, url);
  if (actual !== arn)
    throw new UsageError(`--${role}-url and --${role}-arn name two different queues (${url} is ${actual}, not ${arn}): give one of them`);
  return { url, arn };
}

/**
 * Completes the queue pair from what is given: the DLQ by URL or ARN (both: they must agree); the source by URL or
 * ARN, else the one queue whose RedrivePolicy names the DLQ (ListDeadLetterSourceQueues), else the one ARN of the
 * DLQ's RedriveAllowPolicy. Read-only. Throws {@link UsageError} when the flags disagree, when the "DLQ" is a queue
 * with a dead-letter queue of its own and no source (the source queue given by mistake), and when the source is
 * ambiguous or unknown; the SDK's errors otherwise.
 */
export async function resolveQueues(
  sqs: SQSClient,
  given: { dlqUrl?: string; dlqArn?: string; sourceUrl?: string; sourceArn?: string },
): Promise<RedriveQueues> {
  const dlq = await oneQueue(sqs, 'dlq', given.dlqUrl, given.dlqArn);
  if (!dlq.url) throw new UsageError('the dead-letter queue is required: --dlq-url URL or --dlq-arn ARN');
  const dlqUrl = dlq.url;
  const attributes = await attributesOf(sqs, dlqUrl);
  const dlqArn = attributes.QueueArn ?? '';
  const source = await oneQueue(sqs, 'source', given.sourceUrl, given.sourceArn);
  let sourceUrl = source.url;
  if (!sourceUrl) {
    const { queueUrls = [] } = await sqs.send(new ListDeadLetterSourceQueuesCommand({ QueueUrl: dlqUrl }));
    if (queueUrls.length === 1) sourceUrl = queueUrls[0];
    else {
      const allow = JSON.parse(attributes.RedriveAllowPolicy ?? '{}') as { redrivePermission?: string; sourceQueueArns?: string[] };
      const [only, ...others] = allow.redrivePermission === 'byQueue' ? (allow.sourceQueueArns ?? []) : [];
      if (only && others.length === 0) sourceUrl = await urlOf(sqs, only);
      else if (queueUrls.length > 1)
        throw new UsageError(`${queueUrls.length} queues use this dead-letter queue (${queueUrls.join(', ')}): name one with --source-url`);
      else {
        const ownDlq = (JSON.parse(attributes.RedrivePolicy ?? '{}') as { deadLetterTargetArn?: string }).deadLetterTargetArn;
        throw new UsageError(
          ownDlq
            ? `${dlqUrl} is not a dead-letter queue: no queue sends its failures there, and its own go to ${ownDlq}: give that one (--dlq-arn ${ownDlq})`
            : `no source queue found for the dead-letter queue ${dlqUrl} (no queue's RedrivePolicy names it): name it with --source-url`,
        );
      }
    }
  }
  if (!sourceUrl) throw new Error('no source queue');
  return { dlqUrl, dlqArn, sourceUrl, sourceArn: source.arn ?? (await arnOf(sqs, sourceUrl)) };
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
