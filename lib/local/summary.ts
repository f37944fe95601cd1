import type { CompletionEvent } from '../pipeline/completion.js';

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
