import type { SweepReport } from '../maintenance/sweep.js';
import type { CompletionEvent } from '../pipeline/completion.js';
import type { PipelineQueues } from './resources.js';

export type Outcome =
  | 'provisioned'
  | 'already-provisioned'
  | 'enabled'
  | 'revoked'
  | 'plan-changed'
  | 'subscribe-failed'
  | 'acknowledged'
  | 'ignored'
  | 'rejected'
  | 'in-dlq'
  | 'retried'
  | 'pending';

/** Outcomes after which nothing more will happen to a message. */
const FINAL: ReadonlySet<Outcome> = new Set([
  'provisioned',
  'already-provisioned',
  'enabled',
  'revoked',
  'plan-changed',
  'subscribe-failed',
  'acknowledged',
  'ignored',
  'rejected',
]);

export interface SentMessage {
  messageId: string;
  /** Where the body came from, e.g. `events/signup.json#1`. */
  origin: string;
}

export interface MessageRow {
  origin: string;
  messageId: string;
  outcome: Outcome;
  /** Times the handler handed the message back to SQS. */
  retries: number;
  customerId?: string;
  apiKeyId?: string;
  secretName?: string;
  reason?: string;
  /** Why a message was rejected: the failure event's sentence (sanitised: it quotes no key value, no whole body). */
  detail?: string;
}

export interface Summary {
  rows: MessageRow[];
  totals: Record<Outcome, number>;
  ok: boolean;
}

/**
 * A failure sentence with every run of 20 or more letters and digits masked: our sentences never quote a key value
 * (API Gateway takes 20 to 128 alphanumerics), and the summary does not take that on trust. Runs in `shown` stay:
 * identifiers read from the input the user sent (a 24-character Marketplace product code), which a key value never is.
 */
const redacted = (sentence: string, shown: ReadonlySet<string>) =>
  sentence.replace(/[A-Za-z0-9]{20,}/g, (run) => (shown.has(run) ? run : '[redacted]'));

/**
 * Joins what was sent with what came out: completion events (by the SQS message id they carry), the
 * dead-letter queue's message ids, and how often each message was handed back. `shown`: identifiers of the sent
 * input (product codes, customer ids) that failure sentences may quote unmasked. Pure.
 */
export function summarize(
  sent: SentMessage[],
  events: CompletionEvent[],
  deadLetterIds: ReadonlySet<string>,
  handedBack: ReadonlyMap<string, number>,
  shown: ReadonlySet<string> = new Set(),
): Summary {
  const byMessage = new Map(events.map((e) => [e.messageId, e]));
  const rows = sent.map(({ messageId, origin }): MessageRow => {
    const event = byMessage.get(messageId);
    const retries = handedBack.get(messageId) ?? 0;
    const row = { origin, messageId, retries };
    if (event?.type === 'api-key.provisioned') {
      // `?? 'provisioned'`: events written before `outcome` existed may still sit on a reused queue.
      return {
        ...row,
        outcome: event.outcome ?? 'provisioned',
        customerId: event.customerId,
        apiKeyId: event.apiKeyId,
        secretName: event.secretName,
      };
    }
    if (event?.type === 'api-key.provisioning-failed') {
      return {
        ...row,
        outcome: event.reason === 'subscribe-fail' ? 'subscribe-failed' : 'rejected',
        customerId: event.customerId,
        ...(event.apiKeyId && { apiKeyId: event.apiKeyId }),
        reason: event.reason,
        detail: redacted(event.message, shown),
      };
    }
    if (event?.type === 'api-key.enabled' || event?.type === 'api-key.revoked' || event?.type === 'api-key.plan-changed') {
      const outcome = ({ 'api-key.enabled': 'enabled', 'api-key.revoked': 'revoked', 'api-key.plan-changed': 'plan-changed' } as const)[
        event.type
      ];
      return { ...row, outcome, customerId: event.customerId, apiKeyId: event.apiKeyId, secretName: event.secretName };
    }
    if (event?.type === 'api-key.notification-acknowledged' || event?.type === 'api-key.notification-ignored') {
      const ignored = event.type === 'api-key.notification-ignored';
      return {
        ...row,
        outcome: ignored ? 'ignored' : 'acknowledged',
        customerId: event.customerId,
        reason: ignored ? `${event.action}: ${event.reason}` : event.action,
      };
    }
    if (deadLetterIds.has(messageId)) return { ...row, outcome: 'in-dlq' };
    return { ...row, outcome: retries > 0 ? 'retried' : 'pending' };
  });
  const totals: Record<Outcome, number> = {
    provisioned: 0,
    'already-provisioned': 0,
    enabled: 0,
    revoked: 0,
    'plan-changed': 0,
    'subscribe-failed': 0,
    acknowledged: 0,
    ignored: 0,
    rejected: 0,
    'in-dlq': 0,
    retried: 0,
    pending: 0,
  };
  for (const row of rows) totals[row.outcome]++;
  return { rows, totals, ok: rows.every((r) => FINAL.has(r.outcome)) };
}

/** The summary as a text table. Shows ids and names, never key values. */
export function formatSummary(summary: Summary, left: { deadLetter: number; completions: number }): string {
  const header = ['message', 'outcome', 'retries', 'customer', 'api key id', 'secret name / reason'];
  const cells = summary.rows.map((r) => [
    r.origin,
    r.outcome,
    String(r.retries),
    r.customerId ?? '-',
    r.apiKeyId ?? '-',
    r.secretName ?? r.reason ?? '-',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => (c[i] ?? '').length)));
  const line = (c: string[]) =>
    c
      .map((v, i) => v.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  const totals = Object.entries(summary.totals)
    .filter(([, n]) => n > 0)
    .map(([k, n]) => `${n} ${k}`)
    .join(', ');
  const details = summary.rows.filter((r) => r.outcome === 'rejected' && r.detail).map((r) => `  ${r.origin}: ${r.reason}: ${r.detail}`);
  return [
    line(header),
    line(widths.map((w) => '-'.repeat(w))),
    ...cells.map(line),
    ...(details.length > 0 ? ['', 'Rejected, and why:', ...details] : []),
    '',
    `Totals: ${summary.rows.length} messages: ${totals || 'none'}`,
    `Left on the queues: ${left.deadLetter} in the dead-letter queue, ${left.completions} completion event(s) on the completion queue`,
  ].join('\n');
}

/** Whether the sweep's run needs someone: a record it could not finish, or keys it could not count. */
export const sweepNeedsAttention = (report: SweepReport): boolean => report.failures.length > 0 || report.capacityError !== undefined;

/**
 * The maintenance sweep's run at the end of `npm start` as text, in the message summary's form: what is due, a row
 * per record the index listed with its outcome (roll overlaps first, as the sweep ends them first: `overlap-ended`,
 * `overlap-not-due`; then retirements), why each failure failed, totals, and the Region's API keys. Shows
 * record keys (`<product or _>/<customer>`) and counts, never a key value (the report holds none).
 */
export function formatSweep(report: SweepReport): string {
  const due = report.dueBefore
    ? `roll overlaps ended by then, and keys revoked at or before ${report.dueBefore}, are due`
    : 'roll overlaps ended by then are due, no retirement ever (RETIRE_AFTER_DAYS=0)';
  const lines = [`Maintenance sweep, as of ${report.asOf}${report.dryRun ? ' (dry run: nothing changed)' : ''}: ${due}`];
  const rows = [
    ...Object.entries(report.overlaps).map(([key, outcome]) => [key, outcome.startsWith('would-') ? outcome : `overlap-${outcome}`]),
    ...Object.entries(report.outcomes).map(([key, outcome]) => [key, outcome]),
    ...report.failures.map((f) => [f.key, 'failed']),
  ];
  if (rows.length > 0) {
    const header = ['record', 'outcome'];
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
    const line = (cells: string[]) =>
      cells
        .map((c, i) => c.padEnd(widths[i] ?? 0))
        .join('  ')
        .trimEnd();
    lines.push(line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line));
  }
  if (report.failures.length > 0)
    lines.push('', 'Failed, and why (still due: the next run tries again):', ...report.failures.map((f) => `  ${f.key}: ${f.error}`));
  const counts = new Map<string, number>();
  for (const [, outcome] of rows) counts.set(outcome ?? '', (counts.get(outcome ?? '') ?? 0) + 1);
  const totals = [...counts].map(([outcome, n]) => `${n} ${outcome}`).join(', ');
  const pages = `${report.pages} index page${report.pages === 1 ? '' : 's'} read`;
  lines.push(`Sweep totals: ${rows.length === 0 ? 'nothing due' : `${rows.length} record(s) listed: ${totals}`}; ${pages}`);
  if (report.capacity) {
    const share = ((100 * report.capacity.apiKeys) / report.capacity.quota).toFixed(1);
    lines.push(`API keys in the Region: ${report.capacity.apiKeys} of ${report.capacity.quota} (${share} %)`);
  }
  if (report.capacityError) lines.push(`API keys could not be counted: ${report.capacityError}`);
  return lines.join('\n');
}

/** What the next commands need: the endpoint, the queues, the prefix, and the commands themselves. */
export function nextSteps(endpoint: string, queues: PipelineQueues, stop: string | undefined, usagePlans: string | undefined): string {
  return [
    '',
    `Local AWS:         ${endpoint}${stop ? ` (stop it with: ${stop})` : ''}`,
    `Signup queue:      ${queues.signupUrl}`,
    `Dead-letter queue: ${queues.deadLetterUrl}`,
    `Completion queue:  ${queues.completionUrl}`,
    `Name prefix:       ${process.env.NAME_PREFIX}`,
    'Next:',
    `  npm run redrive -- --endpoint ${endpoint} --dlq-url ${queues.deadLetterUrl} --dry-run`,
    `  npm run reconcile -- --endpoint ${endpoint} --prefix ${process.env.NAME_PREFIX}${usagePlans ? ` --usage-plans '${usagePlans}'` : ''}`,
    `  ${usagePlans ? `USAGE_PLANS='${usagePlans}' ` : ''}npm run sweep -- --endpoint ${endpoint} --prefix ${process.env.NAME_PREFIX} --dry-run`,
    `  npm start -- --endpoint ${endpoint} FILE ...`,
  ].join('\n');
}
