/**
 * Dead-letter queue redrive: moves messages from a DLQ back to its source queue, all of them with SQS's own move
 * task, or a selection (by customer, failure reason, age, count) message by message. Used by `npm run redrive`
 * (lib/cli/redrive.ts); every function here is usable on its own and prints nothing.
 */
import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  ListDeadLetterSourceQueuesCommand,
  ListMessageMoveTasksCommand,
  type Message,
  type MessageAttributeValue,
  ReceiveMessageCommand,
  SendMessageCommand,
  type SQSClient,
  StartMessageMoveTaskCommand,
} from '@aws-sdk/client-sqs';
import { RejectedError, type RejectionReason } from '../../errors.js';
import { parseMessageBody } from '../../messages.js';

/** Why a message is in the DLQ: the rejection reason of a body the function cannot read, else `retries-exhausted`. */
export type DlqReason = RejectionReason | 'retries-exhausted';

/** The customer shown for a body the function cannot read. */
export const UNREADABLE = 'unreadable';

/** A message received from the DLQ, with what the listing and the filters need. */
export interface DlqMessage {
  messageId: string;
  receiptHandle: string;
  body: string;
  messageAttributes: Record<string, MessageAttributeValue>;
  /** When the message was first sent (SentTimestamp, kept when SQS moves a message to the DLQ), epoch ms. */
  sentAt: number;
  ageMs: number;
  /** ApproximateReceiveCount as SQS reports it, this receive included. */
  receiveCount: number;
  /** The body's customerId (signup, EventBridge, Marketplace), else {@link UNREADABLE}. */
  customer: string;
  reason: DlqReason;
  /** FIFO queues: the message group. */
  groupId?: string;
}

/**
 * Reads what the listing shows about a message: age, receive count, and — by parsing the body as the function
 * does — its customer and why it failed (`retries-exhausted` when the body itself is fine).
 */
export function describeMessage(message: Message, now: number): DlqMessage {
  const attributes = message.Attributes ?? {};
  const body = message.Body ?? '';
  const sentAt = Number(attributes.SentTimestamp ?? now);
  let customer = UNREADABLE;
  let reason: DlqReason = 'retries-exhausted';
  try {
    customer = parseMessageBody(body).customerId;
  } catch (error) {
    if (!(error instanceof RejectedError)) throw error;
    reason = error.reason;
  }
  return {
    messageId: message.MessageId ?? '',
    receiptHandle: message.ReceiptHandle ?? '',
    body,
    messageAttributes: message.MessageAttributes ?? {},
    sentAt,
    ageMs: Math.max(0, now - sentAt),
    receiveCount: Number(attributes.ApproximateReceiveCount ?? 0),
    customer,
    reason,
    groupId: attributes.MessageGroupId,
  };
}

/** Which messages to move. Every given criterion must hold. */
export interface RedriveFilter {
  /** The body's customerId (or `unreadable`). */
  customer?: string;
  reason?: string;
  /** Only messages sent at least this long ago. */
  olderThanMs?: number;
  /** Only messages sent less than this long ago. */
  newerThanMs?: number;
}

/** True when the filter selects a subset (a move task cannot do that: it moves everything). */
export const hasFilter = (filter: RedriveFilter): boolean => Object.values(filter).some((value) => value !== undefined);

/** The first criterion a message fails (`customer`, `reason`, `older-than`, `newer-than`), or undefined when it matches. */
export function filterMismatch(message: Pick<DlqMessage, 'customer' | 'reason' | 'ageMs'>, filter: RedriveFilter): string | undefined {
  if (filter.customer !== undefined && message.customer !== filter.customer) return 'customer';
  if (filter.reason !== undefined && message.reason !== filter.reason) return 'reason';
  if (filter.olderThanMs !== undefined && message.ageMs < filter.olderThanMs) return 'older-than';
  if (filter.newerThanMs !== undefined && message.ageMs >= filter.newerThanMs) return 'newer-than';
  return undefined;
}

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** Parses a duration such as `500ms`, `45s`, `30m`, `2h`, `7d`, `1w` (or combined: `1h30m`) into milliseconds. Throws on anything else. */
export function parseDuration(text: string): number {
  const parts = [...text.trim().matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d|w)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== text.trim()) {
    throw new Error(`not a duration: ${JSON.stringify(text)} (use e.g. 90s, 30m, 2h, 7d, 1h30m)`);
  }
  return parts.reduce((sum, [, amount, unit]) => sum + Number(amount) * (UNIT_MS[unit ?? ''] ?? 0), 0);
}

/** A short human duration: `12s`, `3m 20s`, `2h 5m`, `7d 3h`. */
export function formatDuration(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86_400)}d ${Math.floor((s % 86_400) / 3600)}h`;
}

/**
 * A pacer: each call resolves no earlier than `1 / ratePerSecond` after the previous one's slot, so a loop that
 * awaits it before each send keeps to the rate.
 */
export function createPacer(
  ratePerSecond: number,
  clock: { now?: () => number; sleep?: (ms: number) => Promise<void> } = {},
): () => Promise<void> {
  if (!(ratePerSecond > 0)) throw new Error(`rate must be above 0, got ${ratePerSecond}`);
  const now = clock.now ?? Date.now;
  const sleep = clock.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const interval = 1000 / ratePerSecond;
  let next = 0;
  return async () => {
    const at = Math.max(next, now());
    next = at + interval;
    const wait = at - now();
    if (wait > 0) await sleep(wait);
  };
}

/**
 * True when an error says the endpoint does not implement the call (moto answers HTTP 500 to StartMessageMoveTask),
 * as opposed to a refusal (access denied, a task already running, not a DLQ) that must be reported.
 */
export function isUnsupportedOperation(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
  if (status === 500 || status === 501) return true;
  return /UnsupportedOperation|InvalidAction|UnknownOperation|NotImplemented|not (yet )?implemented/i.test(
    `${error.name} ${error.message}`,
  );
}

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
 * Throws when the source is ambiguous or unknown.
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

/** What became of one message. `would-move`: dry run. `skipped`: it does not match the filter (left in the DLQ, visible). */
export type MessageOutcome = 'moved' | 'would-move' | 'skipped' | 'failed';

export interface MessageReport {
  outcome: MessageOutcome;
  message: Omit<DlqMessage, 'body' | 'receiptHandle' | 'messageAttributes'>;
  /** The filter it failed (skipped), or the error (failed, or moved but not deleted from the DLQ). */
  detail?: string;
}

/** The result of a move task (StartMessageMoveTask), as ListMessageMoveTasks reports it. */
export interface MoveTaskReport {
  taskHandle: string;
  status: string;
  moved: number;
  toMove?: number;
  failureReason?: string;
}

export interface RedriveSummary {
  mechanism: 'move-task' | 'receive-send-delete';
  moved: number;
  wouldMove: number;
  skipped: number;
  /** Sends that failed: those messages are still in the DLQ. */
  failed: number;
  /** Sent to the source, but DeleteMessage failed: a copy is still in the DLQ (a later replay of it is harmless). */
  notDeleted: number;
  /** Held messages whose release failed (their receipt handle expired, say): visible again when their timeout ends. */
  notReleased: number;
  /** Why the move task was not used, when it was tried. */
  fallbackReason?: string;
  task?: MoveTaskReport;
}

export interface RedriveOptions extends RedriveQueues {
  /** List what would move; move nothing. */
  dryRun?: boolean;
  filter?: RedriveFilter;
  /** Move (or, dry, list as moving) at most this many messages. */
  max?: number;
  /** Messages per second, default 10. */
  ratePerSecond?: number;
  /** How long received messages stay hidden (renewed while the run holds them), seconds; default 60. */
  visibilityTimeoutSeconds?: number;
  /** Try StartMessageMoveTask when nothing is filtered (default true). */
  useMoveTask?: boolean;
  /** Long-poll wait of each ReceiveMessage, seconds; default 1 (one empty long poll ends the run). */
  waitTimeSeconds?: number;
  /** How often to poll a move task, ms; default 2000. */
  taskPollMs?: number;
  /** Stops the run (the messages it holds are made visible again). */
  signal?: AbortSignal;
  onMessage?: (report: MessageReport) => void;
  onTaskProgress?: (task: MoveTaskReport) => void;
  /** Called when the move task was tried and is not available, before the message-by-message run starts. */
  onFallback?: (reason: string) => void;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

/** The MessageAttributes to send again: the values, without the reserved list members. */
function copyAttributes(attributes: Record<string, MessageAttributeValue>): Record<string, MessageAttributeValue> | undefined {
  const entries = Object.entries(attributes).map(([name, a]): [string, MessageAttributeValue] => [
    name,
    {
      DataType: a.DataType,
      ...(a.StringValue !== undefined && { StringValue: a.StringValue }),
      ...(a.BinaryValue !== undefined && { BinaryValue: a.BinaryValue }),
    },
  ]);
  return entries.length > 0 ? Object.fromEntries(entries) : undefined;
}

/** Sends one DLQ message to the source queue: same body, same message attributes (and its group, on FIFO). */
export async function sendToSource(sqs: SQSClient, sourceUrl: string, message: DlqMessage): Promise<void> {
  const fifo = sourceUrl.endsWith('.fifo');
  await sqs.send(
    new SendMessageCommand({
      QueueUrl: sourceUrl,
      MessageBody: message.body,
      MessageAttributes: copyAttributes(message.messageAttributes),
      // The DLQ message id as deduplication id: a redrive repeated after a stop between send and delete is dropped.
      ...(fifo && { MessageGroupId: message.groupId ?? message.messageId, MessageDeduplicationId: message.messageId }),
    }),
  );
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

/**
 * Starts SQS's own move task from the DLQ to the source queue. Returns its handle, or `unsupported` (with the
 * error) when the endpoint does not implement it; throws any other refusal.
 */
export async function startMoveTask(
  sqs: SQSClient,
  queues: Pick<RedriveQueues, 'dlqArn' | 'sourceArn'>,
  ratePerSecond: number,
): Promise<{ taskHandle: string } | { unsupported: string }> {
  try {
    const { TaskHandle } = await sqs.send(
      new StartMessageMoveTaskCommand({
        SourceArn: queues.dlqArn,
        DestinationArn: queues.sourceArn,
        // SQS accepts 1 to 500.
        MaxNumberOfMessagesPerSecond: Math.min(500, Math.max(1, Math.round(ratePerSecond))),
      }),
    );
    if (!TaskHandle) throw new Error('StartMessageMoveTask answered no TaskHandle');
    return { taskHandle: TaskHandle };
  } catch (error) {
    if (!isUnsupportedOperation(error)) throw error;
    const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
    return { unsupported: `StartMessageMoveTask is not available on this endpoint (${status ? `HTTP ${status}` : (error as Error).name})` };
  }
}

/** Polls ListMessageMoveTasks until the task is no longer running; returns its final state. */
export async function waitForMoveTask(
  sqs: SQSClient,
  dlqArn: string,
  taskHandle: string,
  options: {
    pollMs?: number;
    sleep?: (ms: number) => Promise<void>;
    onProgress?: (task: MoveTaskReport) => void;
    signal?: AbortSignal;
  } = {},
): Promise<MoveTaskReport> {
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  for (;;) {
    const { Results = [] } = await sqs.send(new ListMessageMoveTasksCommand({ SourceArn: dlqArn, MaxResults: 10 }));
    const task = Results.find((t) => t.TaskHandle === taskHandle) ?? Results[0];
    const report: MoveTaskReport = {
      taskHandle,
      status: task?.Status ?? 'UNKNOWN',
      moved: task?.ApproximateNumberOfMessagesMoved ?? 0,
      toMove: task?.ApproximateNumberOfMessagesToMove,
      failureReason: task?.FailureReason,
    };
    options.onProgress?.(report);
    if (report.status !== 'RUNNING' || options.signal?.aborted) return report;
    await sleep(options.pollMs ?? 2000);
  }
}

const publicPart = ({ body: _b, receiptHandle: _r, messageAttributes: _a, ...rest }: DlqMessage): MessageReport['message'] => rest;

/**
 * Moves messages from the DLQ to the source queue and reports each one.
 *
 * - Nothing filtered, no `max`, not a dry run: SQS's move task (StartMessageMoveTask) moves everything; when the
 *   endpoint does not implement it, the run falls back to the next mechanism.
 * - Otherwise: receive (hidden for `visibilityTimeoutSeconds`, renewed while held) → SendMessage to the source (same
 *   body and message attributes) → only then DeleteMessage from the DLQ, paced at `ratePerSecond`. Messages that do
 *   not match, and those whose send failed, are held until the scan ends — so each is looked at once — and then made
 *   visible again at once (ChangeMessageVisibility 0), also when the run stops early or throws.
 *
 * Receiving counts as a receive: ApproximateReceiveCount of messages left in the DLQ goes up by one.
 */
export async function redrive(sqs: SQSClient, options: RedriveOptions): Promise<RedriveSummary> {
  const filter = options.filter ?? {};
  const rate = options.ratePerSecond ?? 10;
  const now = options.now ?? Date.now;
  const summary: RedriveSummary = {
    mechanism: 'receive-send-delete',
    moved: 0,
    wouldMove: 0,
    skipped: 0,
    failed: 0,
    notDeleted: 0,
    notReleased: 0,
  };

  if ((options.useMoveTask ?? true) && !options.dryRun && !hasFilter(filter) && options.max === undefined) {
    const started = await startMoveTask(sqs, options, rate);
    if ('taskHandle' in started) {
      const task = await waitForMoveTask(sqs, options.dlqArn, started.taskHandle, {
        pollMs: options.taskPollMs,
        sleep: options.sleep,
        onProgress: options.onTaskProgress,
        signal: options.signal,
      });
      return { ...summary, mechanism: 'move-task', moved: task.moved, failed: task.status === 'FAILED' ? 1 : 0, task };
    }
    summary.fallbackReason = started.unsupported;
    options.onFallback?.(started.unsupported);
  }

  const visibility = options.visibilityTimeoutSeconds ?? 60;
  const pace = createPacer(rate, { now, sleep: options.sleep });
  const report = (outcome: MessageOutcome, message: DlqMessage, detail?: string) =>
    options.onMessage?.({ outcome, message: publicPart(message), detail });
  /** Received and still in the DLQ: released when the scan ends. */
  const held = new Map<string, { message: DlqMessage; hiddenAt: number }>();
  /** Sent to the source: a repeat delivery of one of them is only deleted. */
  const sent = new Set<string>();
  let selected = 0;
  const full = () => options.max !== undefined && selected >= options.max;

  try {
    while (!options.signal?.aborted && !full()) {
      // Renew the hiding of held messages before it runs out.
      const stale = [...held.values()].filter((h) => now() - h.hiddenAt > (visibility * 1000) / 2);
      if (stale.length > 0) {
        await setVisibility(
          sqs,
          options.dlqUrl,
          stale.map((h) => h.message),
          visibility,
        );
        for (const h of stale) h.hiddenAt = now();
      }
      const { Messages = [] } = await sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: options.dlqUrl,
          // Dry runs list in tens; moves receive about a second's worth, so nothing waits long while hidden.
          MaxNumberOfMessages: options.dryRun ? 10 : Math.min(10, Math.max(1, Math.ceil(rate))),
          VisibilityTimeout: visibility,
          WaitTimeSeconds: options.waitTimeSeconds ?? 1,
          MessageSystemAttributeNames: ['All'],
          MessageAttributeNames: ['All'],
        }),
      );
      if (Messages.length === 0) break;
      for (const received of Messages) {
        const message = describeMessage(received, now());
        if (sent.has(message.messageId)) {
          // Delivered again after we sent it (at-least-once receive): it is already in the source queue.
          await sqs
            .send(new DeleteMessageCommand({ QueueUrl: options.dlqUrl, ReceiptHandle: message.receiptHandle }))
            .catch(() => undefined);
          continue;
        }
        const seenBefore = held.get(message.messageId);
        if (seenBefore || full() || options.signal?.aborted) {
          // Already decided, or beyond --max: keep it hidden with its newest receipt handle until the release.
          held.set(message.messageId, { message, hiddenAt: now() });
          continue;
        }
        const mismatch = filterMismatch(message, filter);
        if (mismatch) {
          held.set(message.messageId, { message, hiddenAt: now() });
          summary.skipped++;
          report('skipped', message, `${mismatch} does not match`);
          continue;
        }
        selected++;
        if (options.dryRun) {
          held.set(message.messageId, { message, hiddenAt: now() });
          summary.wouldMove++;
          report('would-move', message);
          continue;
        }
        await pace();
        try {
          await sendToSource(sqs, options.sourceUrl, message);
        } catch (error) {
          held.set(message.messageId, { message, hiddenAt: now() });
          summary.failed++;
          report('failed', message, `SendMessage failed: ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`);
          continue;
        }
        sent.add(message.messageId);
        try {
          await sqs.send(new DeleteMessageCommand({ QueueUrl: options.dlqUrl, ReceiptHandle: message.receiptHandle }));
          summary.moved++;
          report('moved', message);
        } catch (error) {
          summary.moved++;
          summary.notDeleted++;
          report(
            'moved',
            message,
            `sent, but still in the DLQ (DeleteMessage failed: ${error instanceof Error ? error.message : String(error)})`,
          );
        }
      }
    }
  } finally {
    summary.notReleased = (
      await setVisibility(
        sqs,
        options.dlqUrl,
        [...held.values()].map((h) => h.message),
        0,
      )
    ).length;
  }
  return summary;
}

const OUTCOME_LABEL: Record<MessageOutcome, string> = { moved: 'moved', 'would-move': 'would move', skipped: 'skipped', failed: 'FAILED' };

/** One line per message: outcome, message id, age, receive count, customer, reason (and the detail). */
export function formatReport({ outcome, message, detail }: MessageReport): string {
  const columns = [
    OUTCOME_LABEL[outcome].padEnd(10),
    message.messageId.padEnd(36),
    `age ${formatDuration(message.ageMs)}`.padEnd(12),
    `receives ${message.receiveCount}`.padEnd(11),
    `customer ${message.customer}`.padEnd(28),
    `reason ${message.reason}`,
  ];
  return `${columns.join('  ')}${detail ? `  (${detail})` : ''}`;
}

/** The closing line(s) of a run. */
export function formatSummary(summary: RedriveSummary, dryRun = false): string {
  if (summary.mechanism === 'move-task' && summary.task) {
    const { task } = summary;
    return `Move task ${task.taskHandle}: ${task.status}, ${task.moved} moved${task.failureReason ? ` (${task.failureReason})` : ''}`;
  }
  const notReleased = summary.notReleased
    ? `\n${summary.notReleased} held message(s) could not be made visible at once: they reappear when their visibility timeout ends`
    : '';
  if (dryRun) return `Dry run: ${summary.wouldMove} would move, ${summary.skipped} skipped; nothing was moved${notReleased}`;
  const notDeleted = summary.notDeleted ? ` (${summary.notDeleted} of them also still in the DLQ: DeleteMessage failed)` : '';
  return `Summary: ${summary.moved} moved${notDeleted}, ${summary.skipped} skipped, ${summary.failed} failed${notReleased}`;
}
