/** Reporting a redrive: one line per message and the closing line(s). Pure. */
import { formatDuration } from './messages.js';
import type { MessageOutcome, MessageReport, RedriveSummary } from './redrive.js';

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
