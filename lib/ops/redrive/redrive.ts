/**
 * Dead-letter queue redrive: moves messages from a DLQ back to its source queue, all of them with SQS's own move
 * task (move-task.ts), or a selection (by customer, failure reason, age, count) message by message (queues.ts).
 * Used by `npm run redrive` (cli.ts); nothing here prints.
 */
import type { SQSClient } from '@aws-sdk/client-sqs';
import { type DlqMessage, describeMessage, filterMismatch, hasFilter, type RedriveFilter } from './messages.js';
import { type MoveTaskReport, startMoveTask, waitForMoveTask } from './move-task.js';
import { createPacer } from './pacer.js';
import { deleteMessage, type RedriveQueues, receiveMessages, sendToSource, setVisibility } from './queues.js';

/** What became of one message. `would-move`: dry run. `skipped`: it does not match the filter (left in the DLQ, visible). */
export type MessageOutcome = 'moved' | 'would-move' | 'skipped' | 'failed';

export interface MessageReport {
  outcome: MessageOutcome;
  message: Omit<DlqMessage, 'body' | 'receiptHandle' | 'messageAttributes'>;
  /** The filter it failed (skipped), or the error (failed, or moved but not deleted from the DLQ), or a note. */
  detail?: string;
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

const publicPart = ({ body: _b, receiptHandle: _r, messageAttributes: _a, ...rest }: DlqMessage): MessageReport['message'] => rest;

const messageOf = (error: unknown) => (error instanceof Error ? `${error.name}: ${error.message}` : String(error));

/**
 * Moves messages from the DLQ to the source queue and reports each one.
 *
 * - Nothing filtered, no `max`, not a dry run: SQS's move task (StartMessageMoveTask) moves everything; when the
 *   endpoint does not implement it, the run falls back to the next mechanism.
 * - Otherwise: receive (hidden for `visibilityTimeoutSeconds`, renewed while held) → SendMessage to the source (same
 *   body and message attributes, plus the first send time in FIRST_SENT_AT_ATTRIBUTE, kept from an earlier
 *   redrive) → only then DeleteMessage from the DLQ, paced at `ratePerSecond`. Messages that do not match, and those
 *   whose send failed, are held until the scan ends — so each is looked at once — and then made visible again at
 *   once (ChangeMessageVisibility 0), also when the run stops early or throws.
 *
 * A message is never deleted from the DLQ before the source queue accepted it; a stop between the two leaves a copy
 * in each, which is harmless (provisioning is idempotent). Receiving counts as a receive: ApproximateReceiveCount of
 * messages left in the DLQ goes up by one. Throws the SDK's errors for receives and the move task.
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
    options.onMessage?.({ outcome, message: publicPart(message), ...(detail !== undefined && { detail }) });
  /** Received and still in the DLQ: released when the scan ends. */
  const held = new Map<string, { message: DlqMessage; hiddenAt: number }>();
  const hold = (message: DlqMessage) => held.set(message.messageId, { message, hiddenAt: now() });
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
      const received = await receiveMessages(sqs, options.dlqUrl, {
        // Dry runs list in tens; moves receive about a second's worth, so nothing waits long while hidden.
        max: options.dryRun ? 10 : Math.min(10, Math.max(1, Math.ceil(rate))),
        visibilitySeconds: visibility,
        waitTimeSeconds: options.waitTimeSeconds ?? 1,
      });
      if (received.length === 0) break;
      for (const one of received) {
        const message = describeMessage(one, now());
        if (sent.has(message.messageId)) {
          // Delivered again after we sent it (at-least-once receive): it is already in the source queue.
          await deleteMessage(sqs, options.dlqUrl, message.receiptHandle).catch(() => undefined);
          continue;
        }
        if (held.has(message.messageId) || full() || options.signal?.aborted) {
          // Already decided, or beyond --max: keep it hidden with its newest receipt handle until the release.
          hold(message);
          continue;
        }
        const mismatch = filterMismatch(message, filter);
        if (mismatch) {
          hold(message);
          summary.skipped++;
          report('skipped', message, `${mismatch} does not match`);
          continue;
        }
        selected++;
        if (options.dryRun) {
          hold(message);
          summary.wouldMove++;
          report('would-move', message);
          continue;
        }
        await pace();
        let note: string | undefined;
        try {
          note = await sendToSource(sqs, options.sourceUrl, message);
        } catch (error) {
          hold(message);
          summary.failed++;
          report('failed', message, `SendMessage failed: ${messageOf(error)}`);
          continue;
        }
        sent.add(message.messageId);
        summary.moved++;
        try {
          await deleteMessage(sqs, options.dlqUrl, message.receiptHandle);
          report('moved', message, note);
        } catch (error) {
          summary.notDeleted++;
          const notDeleted = `sent, but still in the DLQ (DeleteMessage failed: ${error instanceof Error ? error.message : String(error)})`;
          report('moved', message, note ? `${notDeleted}; ${note}` : notDeleted);
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
