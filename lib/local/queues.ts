import {
  ChangeMessageVisibilityBatchCommand,
  type Message,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';

const chunks = <T>(items: T[], size = 10): T[][] =>
  Array.from({ length: Math.ceil(items.length / size) }, (_, i) => items.slice(i * size, i * size + size));

/** Sends each body as one message; returns the SQS message ids in the order of `bodies`. */
export async function sendBodies(sqs: SQSClient, queueUrl: string, bodies: string[]): Promise<string[]> {
  const ids: string[] = [];
  for (const chunk of chunks(bodies)) {
    const result = await sqs.send(
      new SendMessageBatchCommand({ QueueUrl: queueUrl, Entries: chunk.map((body, i) => ({ Id: String(i), MessageBody: body })) }),
    );
    if (result.Failed?.length) throw new Error(`SQS refused ${result.Failed.length} message(s): ${result.Failed[0]?.Message ?? ''}`);
    const byEntry = new Map((result.Successful ?? []).map((s) => [s.Id, s.MessageId ?? '']));
    ids.push(...chunk.map((_, i) => byEntry.get(String(i)) ?? ''));
  }
  return ids;
}

/**
 * Reads every message on a queue without consuming it: receives until nothing is left (hiding what it read),
 * then makes them all visible again. Receive counts go up by one, as with any look at a queue.
 */
export async function peekQueue(sqs: SQSClient, queueUrl: string): Promise<Message[]> {
  const seen = new Map<string, Message>();
  for (;;) {
    const { Messages = [] } = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: queueUrl,
        MaxNumberOfMessages: 10,
        VisibilityTimeout: 60,
        WaitTimeSeconds: 0,
        MessageSystemAttributeNames: ['All'],
      }),
    );
    if (Messages.length === 0) break;
    for (const m of Messages) seen.set(m.MessageId ?? '', m);
  }
  const messages = [...seen.values()];
  for (const chunk of chunks(messages)) {
    await sqs.send(
      new ChangeMessageVisibilityBatchCommand({
        QueueUrl: queueUrl,
        Entries: chunk.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: 0 })),
      }),
    );
  }
  return messages;
}
