import {
  formatSummary,
  formatSweep,
  type Outcome,
  type SentMessage,
  type Summary,
  summarize,
  sweepNeedsAttention,
} from '../../lib/local/summary.js';
import type { SweepReport } from '../../lib/maintenance/sweep.js';
import type { CompletionEvent, FailedEvent, NotificationEvent, ProvisionedEvent } from '../../lib/pipeline/completion.js';

const KEY_VALUE = 'k3yV4lu3ThatMustNeverLeak0123456789abcd';

const base = (messageId: string) => ({
  eventId: `evt-${messageId}`,
  occurredAt: '2026-01-01T00:00:00.000Z',
  correlationId: `corr-${messageId}`,
  messageId,
});

const provisioned = (messageId: string, customerId: string, extra: Partial<ProvisionedEvent> = {}): ProvisionedEvent => ({
  ...base(messageId),
  type: 'api-key.provisioned',
  outcome: 'provisioned',
  source: 'signup',
  customerId,
  apiKeyId: `key-${customerId}`,
  apiKeyName: `keyprov/test/${customerId}`,
  secretArn: `arn:aws:secretsmanager:us-east-1:123456789012:secret:keyprov/test/${customerId}-AbCdEf`,
  secretName: `keyprov/test/${customerId}`,
  ...extra,
});

const failed = (messageId: string, reason: FailedEvent['reason'], extra: Partial<FailedEvent> = {}): FailedEvent => ({
  ...base(messageId),
  type: 'api-key.provisioning-failed',
  reason,
  message: `rejected: ${reason}`,
  ...extra,
});

const skipped = (messageId: string, customerId: string, action: string): NotificationEvent => ({
  ...base(messageId),
  type: 'api-key.notification-acknowledged',
  eventTime: '2026-11-26T10:00:00.000Z',
  source: 'marketplace',
  action,
  customerId,
  productCode: 'prod4k2j9x8l7',
});

const sent = (...ids: string[]): SentMessage[] => ids.map((messageId, i) => ({ messageId, origin: `events/batch.json#${i + 1}` }));

const ZERO: Record<Outcome, number> = {
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

describe('summarize', () => {
  test('each outcome from completion events, the dead-letter queue and hand-backs', () => {
    const summary = summarize(
      sent('m-prov', 'm-rej', 'm-skip', 'm-dlq', 'm-retry', 'm-pend'),
      [provisioned('m-prov', 'acme-corp'), failed('m-rej', 'invalid-json'), skipped('m-skip', 'cust-42', 'unsubscribe-pending')],
      new Set(['m-dlq']),
      new Map([
        ['m-dlq', 3],
        ['m-retry', 1],
      ]),
    );

    expect(summary.rows).toEqual([
      {
        origin: 'events/batch.json#1',
        messageId: 'm-prov',
        outcome: 'provisioned',
        retries: 0,
        customerId: 'acme-corp',
        apiKeyId: 'key-acme-corp',
        secretName: 'keyprov/test/acme-corp',
      },
      {
        origin: 'events/batch.json#2',
        messageId: 'm-rej',
        outcome: 'rejected',
        retries: 0,
        customerId: undefined,
        reason: 'invalid-json',
        detail: 'rejected: invalid-json',
      },
      {
        origin: 'events/batch.json#3',
        messageId: 'm-skip',
        outcome: 'acknowledged',
        retries: 0,
        customerId: 'cust-42',
        reason: 'unsubscribe-pending',
      },
      { origin: 'events/batch.json#4', messageId: 'm-dlq', outcome: 'in-dlq', retries: 3 },
      { origin: 'events/batch.json#5', messageId: 'm-retry', outcome: 'retried', retries: 1 },
      { origin: 'events/batch.json#6', messageId: 'm-pend', outcome: 'pending', retries: 0 },
    ]);
    expect(summary.totals).toEqual({ ...ZERO, provisioned: 1, rejected: 1, acknowledged: 1, 'in-dlq': 1, retried: 1, pending: 1 });
    expect(summary.ok).toBe(false);
  });

  test('a provisioned event for work an earlier delivery did is already-provisioned, and final', () => {
    const summary = summarize(
      sent('first', 'again'),
      [provisioned('first', 'acme-corp'), provisioned('again', 'globex', { outcome: 'already-provisioned' })],
      new Set(),
      new Map([['again', 1]]),
    );
    expect(summary.rows[1]).toEqual({
      origin: 'events/batch.json#2',
      messageId: 'again',
      outcome: 'already-provisioned',
      retries: 1,
      customerId: 'globex',
      apiKeyId: 'key-globex',
      secretName: 'keyprov/test/globex',
    });
    expect(summary.totals).toEqual({ ...ZERO, provisioned: 1, 'already-provisioned': 1 });
    expect(summary.ok).toBe(true);
  });

  test('a rejection carries its customer when the event names one', () => {
    const { rows } = summarize(sent('m1'), [failed('m1', 'invalid-tags', { customerId: 'acme-corp' })], new Set(), new Map());
    expect(rows[0]).toMatchObject({ outcome: 'rejected', customerId: 'acme-corp', reason: 'invalid-tags' });
  });

  test('a message provisioned after hand-backs keeps its retry count', () => {
    const { rows, ok } = summarize(sent('m1'), [provisioned('m1', 'acme-corp')], new Set(), new Map([['m1', 2]]));
    expect(rows[0]).toMatchObject({ outcome: 'provisioned', retries: 2 });
    expect(ok).toBe(true);
  });

  test('a message in the dead-letter queue never handed back still counts as in-dlq', () => {
    const { rows, totals } = summarize(sent('m1'), [], new Set(['m1']), new Map());
    expect(rows[0]).toMatchObject({ outcome: 'in-dlq', retries: 0 });
    expect(totals['in-dlq']).toBe(1);
  });

  test('rows follow the sent order; events and dead letters of other messages are ignored', () => {
    const summary = summarize(
      sent('m2', 'm1'),
      [provisioned('m1', 'one'), provisioned('other', 'stranger'), provisioned('m2', 'two')],
      new Set(['unrelated']),
      new Map([['unrelated', 4]]),
    );
    expect(summary.rows.map((r) => [r.messageId, r.customerId])).toEqual([
      ['m2', 'two'],
      ['m1', 'one'],
    ]);
    expect(summary.totals).toEqual({ ...ZERO, provisioned: 2 });
    expect(summary.ok).toBe(true);
  });

  test('totals add up to the number of messages', () => {
    const ids = ['a', 'b', 'c', 'd', 'e'];
    const { totals } = summarize(
      sent(...ids),
      [provisioned('a', 'ca'), provisioned('b', 'cb'), failed('c', 'invalid-customer-id')],
      new Set(),
      new Map([['d', 1]]),
    );
    expect(totals).toEqual({ ...ZERO, provisioned: 2, rejected: 1, retried: 1, pending: 1 });
    expect(Object.values(totals).reduce((a, b) => a + b, 0)).toBe(ids.length);
  });

  test('ok when every message is provisioned, rejected or skipped', () => {
    const summary = summarize(
      sent('p', 'r', 's'),
      [provisioned('p', 'cp'), failed('r', 'invalid-tags'), skipped('s', 'cs', 'entitlement-updated')],
      new Set(),
      new Map([['p', 1]]),
    );
    expect(summary.rows.map((r) => r.outcome)).toEqual(['provisioned', 'rejected', 'acknowledged']);
    expect(summary.ok).toBe(true);
  });

  test.each<[Outcome, ReadonlySet<string>, ReadonlyMap<string, number>]>([
    ['in-dlq', new Set(['x']), new Map([['x', 2]])],
    ['retried', new Set(), new Map([['x', 1]])],
    ['pending', new Set(), new Map()],
  ])('not ok when one message is %s', (outcome, deadLetters, handedBack) => {
    const summary = summarize(sent('p', 'x'), [provisioned('p', 'cp')], deadLetters, handedBack);
    expect(summary.rows[1]?.outcome).toBe(outcome);
    expect(summary.ok).toBe(false);
  });
});

describe('formatSummary', () => {
  const fixture = () =>
    summarize(
      sent('m-prov', 'm-rej', 'm-skip', 'm-dlq', 'm-retry', 'm-pend'),
      [provisioned('m-prov', 'acme-corp'), failed('m-rej', 'invalid-json'), skipped('m-skip', 'cust-42', 'unsubscribe-pending')],
      new Set(['m-dlq']),
      new Map([
        ['m-dlq', 3],
        ['m-retry', 1],
      ]),
    );

  /** The table's body lines: between the separator line and the blank line before the totals. */
  const tableRows = (text: string) => {
    const lines = text.split('\n');
    const blank = lines.indexOf('');
    expect(lines[1]).toMatch(/^[- ]+$/);
    return lines.slice(2, blank);
  };

  test('prints a header and one row per message with its cells', () => {
    const text = formatSummary(fixture(), { deadLetter: 1, completions: 3 });
    const lines = text.split('\n');

    expect(lines[0]?.split(/\s{2,}/)).toEqual(['message', 'outcome', 'retries', 'customer', 'api key id', 'secret name / reason']);
    expect(tableRows(text).map((line) => line.split(/\s{2,}/))).toEqual([
      ['events/batch.json#1', 'provisioned', '0', 'acme-corp', 'key-acme-corp', 'keyprov/test/acme-corp'],
      ['events/batch.json#2', 'rejected', '0', '-', '-', 'invalid-json'],
      ['events/batch.json#3', 'acknowledged', '0', 'cust-42', '-', 'unsubscribe-pending'],
      ['events/batch.json#4', 'in-dlq', '3', '-', '-', '-'],
      ['events/batch.json#5', 'retried', '1', '-', '-', '-'],
      ['events/batch.json#6', 'pending', '0', '-', '-', '-'],
    ]);
  });

  test('columns line up with the header', () => {
    const text = formatSummary(fixture(), { deadLetter: 1, completions: 3 });
    const header = text.split('\n')[0] ?? '';
    const starts = ['outcome', 'retries', 'customer', 'api key id', 'secret name / reason'].map((h) => header.indexOf(h));
    for (const line of tableRows(text)) {
      for (const start of starts) {
        expect(line[start - 1]).toBe(' ');
        expect(line[start]).not.toBe(' ');
      }
    }
  });

  test('prints the totals (non-zero outcomes) and the queue counts', () => {
    const text = formatSummary(fixture(), { deadLetter: 1, completions: 3 });
    const lines = text.split('\n');
    expect(lines).toContain('Totals: 6 messages: 1 provisioned, 1 acknowledged, 1 rejected, 1 in-dlq, 1 retried, 1 pending');
    expect(lines.at(-1)).toBe('Left on the queues: 1 in the dead-letter queue, 3 completion event(s) on the completion queue');
  });

  test('prints already-provisioned rows and totals', () => {
    const summary = summarize(
      sent('a', 'b'),
      [provisioned('a', 'ca'), provisioned('b', 'cb', { outcome: 'already-provisioned' })],
      new Set(),
      new Map(),
    );
    const text = formatSummary(summary, { deadLetter: 0, completions: 2 });
    expect(tableRows(text).map((line) => line.split(/\s{2,}/))).toEqual([
      ['events/batch.json#1', 'provisioned', '0', 'ca', 'key-ca', 'keyprov/test/ca'],
      ['events/batch.json#2', 'already-provisioned', '0', 'cb', 'key-cb', 'keyprov/test/cb'],
    ]);
    expect(text).toContain('Totals: 2 messages: 1 provisioned, 1 already-provisioned\n');
  });

  test('totals leave out outcomes nobody had', () => {
    const summary = summarize(sent('a', 'b'), [provisioned('a', 'ca'), provisioned('b', 'cb')], new Set(), new Map());
    const text = formatSummary(summary, { deadLetter: 0, completions: 2 });
    expect(text).toContain('Totals: 2 messages: 2 provisioned\n');
    expect(text).not.toMatch(/\b0 (rejected|pending|retried|in-dlq|acknowledged|already-provisioned)\b/);
    expect(text).toContain('Left on the queues: 0 in the dead-letter queue, 2 completion event(s) on the completion queue');
  });

  test('an empty run prints no rows and "none"', () => {
    const empty: Summary = summarize([], [], new Set(), new Map());
    const text = formatSummary(empty, { deadLetter: 0, completions: 0 });
    expect(tableRows(text)).toEqual([]);
    expect(text).toContain('Totals: 0 messages: none');
  });

  test('never prints a key value or any field outside the rows', () => {
    // The key value in fields a completion event has (and in some it should not have): none of them is a row field.
    const events = [
      provisioned('m1', 'acme-corp', {
        apiKeyName: `name-${KEY_VALUE}`,
        secretArn: `arn:aws:secretsmanager:us-east-1:123456789012:secret:${KEY_VALUE}`,
        correlationId: KEY_VALUE,
        eventId: KEY_VALUE,
        plan: KEY_VALUE,
        productCode: KEY_VALUE,
        ...({ apiKeyValue: KEY_VALUE, value: KEY_VALUE } as object),
      }),
      failed('m2', 'bad-request', { message: `CreateApiKey said: ${KEY_VALUE}`, productCode: KEY_VALUE }),
      { ...skipped('m3', 'cust-3', 'subscribe-fail'), productCode: KEY_VALUE, occurredAt: KEY_VALUE },
    ] as CompletionEvent[];
    const summary = summarize(sent('m1', 'm2', 'm3'), events, new Set(), new Map());

    expect(JSON.stringify(summary)).not.toContain(KEY_VALUE);
    const text = formatSummary(summary, { deadLetter: 0, completions: 3 });
    expect(text).not.toContain(KEY_VALUE);
    // The sentence is shown, with anything shaped like a key value masked.
    expect(text).toContain('CreateApiKey said: [redacted]');
    // The rows are still there: the check above is not passing on an empty table.
    expect(text).toContain('key-acme-corp');
    expect(text).toContain('bad-request');
    expect(text).toContain('subscribe-fail');
  });
});

describe('identifiers the user sent stay readable in failure sentences', () => {
  test('a 24-character product code of the input is shown; any other long run is still masked', () => {
    const code = 'n0123EXAMPLEXXXXXXXXXXXX';
    const events = [
      failed('m1', 'unknown-product', { message: `product ${code} has no usage plan`, productCode: code }),
      failed('m2', 'bad-request', { message: `CreateApiKey said: ${KEY_VALUE}` }),
    ] as CompletionEvent[];
    const masked = formatSummary(summarize(sent('m1', 'm2'), events, new Set(), new Map()), { deadLetter: 0, completions: 2 });
    expect(masked).toContain('product [redacted] has no usage plan');
    const text = formatSummary(summarize(sent('m1', 'm2'), events, new Set(), new Map(), new Set([code])), {
      deadLetter: 0,
      completions: 2,
    });
    expect(text).toContain(`product ${code} has no usage plan`);
    expect(text).toContain('CreateApiKey said: [redacted]');
    expect(text).not.toContain(KEY_VALUE);
  });
});

describe('formatSweep (the maintenance sweep at the end of npm start)', () => {
  const report = (extra: Partial<SweepReport> = {}): SweepReport => ({
    asOf: '2026-12-06T12:00:00.000Z',
    dueBefore: '2026-11-06T12:00:00.000Z',
    dryRun: false,
    pages: 1,
    outcomes: {},
    overlaps: {},
    failures: [],
    capacity: { apiKeys: 8, quota: 10_000 },
    ...extra,
  });

  test("nothing due: what is due, the totals and the Region's keys", () => {
    expect(formatSweep(report()).split('\n')).toEqual([
      'Maintenance sweep, as of 2026-12-06T12:00:00.000Z: roll overlaps ended by then, and keys revoked at or before 2026-11-06T12:00:00.000Z, are due',
      'Sweep totals: nothing due; 1 index page read',
      'API keys in the Region: 8 of 10000 (0.1 %)',
    ]);
    expect(sweepNeedsAttention(report())).toBe(false);
  });

  test('a row per record listed, failures last with why, totals by outcome', () => {
    const text = formatSweep(
      report({
        pages: 2,
        overlaps: { 'prod4k2j9x8l7/roller': 'ended' },
        outcomes: { 'prod4k2j9x8l7/leaver-a': 'retired', '_/leaver-b': 'finished', 'prod4k2j9x8l7/back': 'not-due' },
        failures: [{ key: 'prod4k2j9x8l7/broken', error: 'EnvironmentError: record is not a record of this product' }],
      }),
    );
    expect(text.split('\n')).toEqual([
      'Maintenance sweep, as of 2026-12-06T12:00:00.000Z: roll overlaps ended by then, and keys revoked at or before 2026-11-06T12:00:00.000Z, are due',
      'record                  outcome',
      '----------------------  -------------',
      'prod4k2j9x8l7/roller    overlap-ended',
      'prod4k2j9x8l7/leaver-a  retired',
      '_/leaver-b              finished',
      'prod4k2j9x8l7/back      not-due',
      'prod4k2j9x8l7/broken    failed',
      '',
      'Failed, and why (still due: the next run tries again):',
      '  prod4k2j9x8l7/broken: EnvironmentError: record is not a record of this product',
      'Sweep totals: 5 record(s) listed: 1 overlap-ended, 1 retired, 1 finished, 1 not-due, 1 failed; 2 index pages read',
      'API keys in the Region: 8 of 10000 (0.1 %)',
    ]);
  });

  test('needs attention when a retirement failed or the keys could not be counted', () => {
    expect(sweepNeedsAttention(report({ failures: [{ key: 'p/c', error: 'x' }] }))).toBe(true);
    const uncounted = report({ capacity: undefined, capacityError: 'RetryableError: GetApiKeys throttled' });
    expect(sweepNeedsAttention(uncounted)).toBe(true);
    expect(formatSweep(uncounted)).toContain('API keys could not be counted: RetryableError: GetApiKeys throttled');
  });

  test('RETIRE_AFTER_DAYS=0 and a dry run say so', () => {
    const text = formatSweep(report({ dueBefore: undefined, dryRun: true }));
    expect(text.split('\n')[0]).toBe(
      'Maintenance sweep, as of 2026-12-06T12:00:00.000Z (dry run: nothing changed): roll overlaps ended by then are due, no retirement ever (RETIRE_AFTER_DAYS=0)',
    );
  });
});
