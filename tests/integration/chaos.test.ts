import type { ApiKey } from '@aws-sdk/client-api-gateway';
import { ListSecretsCommand, type SecretListEntry } from '@aws-sdk/client-secrets-manager';
import { apiKeyName, secretName } from '../../lib/customer-key/naming.js';
import type { CompletionEvent } from '../../lib/pipeline/completion.js';
import { licenseEvent as marketplaceLicenseEvent, marketplaceNotification, signup, snsEnvelope } from '../helpers/events.js';
import { type Pipeline, startPipeline } from '../helpers/pipeline.js';
import { createApiStage, createUsagePlan, usagePlanKeyIds } from '../helpers/usage-plans.js';
import type { RealisticStats } from '../realistic-aws/index.js';
import { SeededRandom } from '../realistic-aws/random.js';

// A few hundred mixed messages through the realistic layer with chaos on — every AWS call of the function at a few
// percent of 5xx, timeouts, connection resets (before moto saw the call, and after it did the work) and 409s on
// usage-plan writes — on top of the realistic settings (throttling, usage-plan writes one at a time, unknown plans,
// one plan per stage, listing lag). Then the invariants, read from moto directly.
jest.setTimeout(120_000);

const PREFIX = 'keyprov/test/';
const PRODUCT_A = 'prodchaosa1';
const PRODUCT_B = 'prodchaosb2';
/** The run's seed (messages and faults); CHAOS_SEED=n replays another run. */
const SEED = Number(process.env.CHAOS_SEED ?? 20261126);
const CHAOS_RATE = 0.03;
const T0 = '2026-11-26T12:00:00.000Z';
const T1 = '2026-11-26T12:30:00.000Z';

/** A customer (and product) of the run, and where its messages must leave it. */
interface Subject {
  customerId: string;
  productCode?: string;
  expected: 'active' | 'revoked';
  /** The usage plan its key must be in when active. */
  plan?: string;
  /** A buyer of concurrent agreements: the state each of its licenses must end in. */
  licenses?: Record<string, 'active' | 'deprovisioned'>;
  /**
   * Rolled (a roll request among its messages, grace 0): it may have an old key besides the record's, which must be
   * disabled and in no plan; a roll that came before the signup was rejected (no-key) and made nothing.
   */
  rolls?: true;
}

/** One message of the run: its body and the subject it is about (none for a malformed one). */
interface Sent {
  kind: string;
  body: unknown;
  subject?: Subject;
}

let pipeline: Pipeline;
const plans: Record<string, string> = {};

/** A Marketplace License event (EventBridge, source aws.agreement-marketplace) for a buyer account. */
const licenseEvent = (kind: 'Updated' | 'Deprovisioned', accountId: string, time: string) =>
  marketplaceLicenseEvent(kind, { productCode: PRODUCT_A, accountId, time });

/** A License event of one of a buyer's concurrent agreements: the license named (detail.license.arn). */
const licenseOf = (accountId: string, n: number) => `arn:aws:license-manager::386209384616:license:l-${accountId}-${n}`;
const agreementEvent = (kind: 'Updated' | 'Deprovisioned', accountId: string, n: number, time: string) =>
  marketplaceLicenseEvent(kind, { productCode: PRODUCT_A, accountId, time, licenseArn: licenseOf(accountId, n) });

const sns = (action: string, customer: string, product: string, at: string) => ({
  ...snsEnvelope(marketplaceNotification(action, customer, product)),
  Timestamp: at,
});

/** The messages of the run, in a seeded shuffle, with some sent twice. */
function scenario(random: SeededRandom): Sent[] {
  const sent: Sent[] = [];
  const subject = (customerId: string, expected: Subject['expected'], productCode?: string): Subject => ({
    customerId,
    productCode,
    expected,
    plan: productCode ? plans[productCode] : undefined,
  });
  const times = (n: number, f: (i: number) => void) => Array.from({ length: n }, (_, i) => f(i));

  times(50, (i) => {
    const s = subject(`chaos-signup-${i}`, 'active');
    sent.push({ kind: 'signup', body: signup(s.customerId, i % 2 ? { eventId: `evt-chaos-${i}` } : {}), subject: s });
  });
  times(30, (i) => {
    const s = subject(`chaos-signup-plan-${i}`, 'active', i % 3 ? PRODUCT_A : PRODUCT_B);
    sent.push({ kind: 'signup with USAGE_PLANS product', body: signup(s.customerId, { productCode: s.productCode }), subject: s });
  });
  times(30, (i) => {
    const s = subject(`ChaosSns${i}`, 'active', PRODUCT_A);
    sent.push({ kind: 'subscribe-success (SNS)', body: sns('subscribe-success', s.customerId, PRODUCT_A, T0), subject: s });
  });
  times(20, (i) => {
    const s = subject(`ChaosRaw${i}`, 'active', PRODUCT_B);
    sent.push({ kind: 'subscribe-success (raw)', body: marketplaceNotification('subscribe-success', s.customerId, PRODUCT_B), subject: s });
  });
  times(20, (i) => {
    const s = subject(`ChaosSnsLeaver${i}`, 'revoked', PRODUCT_A);
    sent.push({ kind: 'subscribe-success (SNS)', body: sns('subscribe-success', s.customerId, PRODUCT_A, T0), subject: s });
    sent.push({ kind: 'unsubscribe-success (SNS)', body: sns('unsubscribe-success', s.customerId, PRODUCT_A, T1), subject: s });
  });
  times(15, (i) => {
    const s = subject(`ChaosRawLeaver${i}`, 'revoked', PRODUCT_B);
    sent.push({ kind: 'subscribe-success (raw)', body: marketplaceNotification('subscribe-success', s.customerId, PRODUCT_B), subject: s });
    sent.push({
      kind: 'unsubscribe-success (raw)',
      body: marketplaceNotification('unsubscribe-success', s.customerId, PRODUCT_B),
      subject: s,
    });
  });
  times(20, (i) => {
    const s = subject(`7000000001${String(i).padStart(2, '0')}`, 'active', PRODUCT_A);
    sent.push({ kind: 'License Updated (EventBridge)', body: licenseEvent('Updated', s.customerId, T0), subject: s });
  });
  times(15, (i) => {
    const s = subject(`7000000002${String(i).padStart(2, '0')}`, 'revoked', PRODUCT_A);
    sent.push({ kind: 'License Updated (EventBridge)', body: licenseEvent('Updated', s.customerId, T0), subject: s });
    sent.push({ kind: 'License Deprovisioned (EventBridge)', body: licenseEvent('Deprovisioned', s.customerId, T1), subject: s });
  });
  // Buyers of concurrent agreements: the events of their two licenses arrive together, in any order, to any instance.
  const agreements: Array<[number, Array<['Updated' | 'Deprovisioned', number, string]>, Subject['expected'], Subject['licenses']]> = [
    [
      8,
      [
        ['Updated', 1, T0],
        ['Updated', 2, T0],
      ],
      'active',
      { 1: 'active', 2: 'active' },
    ],
    [
      8,
      [
        ['Updated', 1, T0],
        ['Updated', 2, T0],
        ['Deprovisioned', 1, T1],
      ],
      'active',
      { 1: 'deprovisioned', 2: 'active' },
    ],
    [
      6,
      [
        ['Updated', 1, T0],
        ['Updated', 2, T0],
        ['Deprovisioned', 1, T1],
        ['Deprovisioned', 2, T1],
      ],
      'revoked',
      { 1: 'deprovisioned', 2: 'deprovisioned' },
    ],
  ];
  for (const [g, [count, steps, expected, licenses]] of agreements.entries()) {
    times(count, (i) => {
      const accountId = `70000000${g + 3}0${String(i).padStart(2, '0')}`;
      const byArn = Object.fromEntries(Object.entries(licenses ?? {}).map(([n, state]) => [licenseOf(accountId, Number(n)), state]));
      const s = { ...subject(accountId, expected, PRODUCT_A), licenses: byArn };
      for (const [kind, n, at] of steps)
        sent.push({ kind: `License ${kind} of two (EventBridge)`, body: agreementEvent(kind, accountId, n, at), subject: s });
    });
  }
  // Rolls: with grace 0, so that the end state is checkable (the old key disabled and out of its plan at once); a
  // leaver's roll never gives a key back; a roll during a revoke, a roll racing the signup, both in any order.
  const roll = (customerId: string, productCode: string, n: number) => ({
    action: 'roll',
    customerId,
    productCode,
    graceSeconds: 0,
    eventId: `roll-${customerId}-${n}`,
  });
  times(10, (i) => {
    const s = { ...subject(`chaos-roll-${i}`, 'active', PRODUCT_A), rolls: true as const };
    sent.push({ kind: 'signup with USAGE_PLANS product', body: signup(s.customerId, { productCode: PRODUCT_A }), subject: s });
    sent.push({ kind: 'roll request', body: roll(s.customerId, PRODUCT_A, 1), subject: s });
  });
  times(6, (i) => {
    const s = { ...subject(`ChaosRollLeaver${i}`, 'revoked', PRODUCT_A), rolls: true as const };
    sent.push({ kind: 'subscribe-success (SNS)', body: sns('subscribe-success', s.customerId, PRODUCT_A, T0), subject: s });
    sent.push({ kind: 'roll request', body: roll(s.customerId, PRODUCT_A, 1), subject: s });
    sent.push({ kind: 'unsubscribe-success (SNS)', body: sns('unsubscribe-success', s.customerId, PRODUCT_A, T1), subject: s });
  });
  for (const body of [
    'not json at all',
    { hello: 'world' },
    signup('bad id with spaces'),
    signup('chaos-bad-tags', { tags: { 'aws:x': 'y' } }),
  ]) {
    sent.push({ kind: 'malformed', body });
  }

  const duplicates = sent.filter(() => random.next() < 0.15).map((m) => ({ ...m, kind: `${m.kind}, duplicate` }));
  return [...sent, ...duplicates]
    .map((m) => ({ m, order: random.next() }))
    .sort((a, b) => a.order - b.order)
    .map(({ m }) => m);
}

/** Every secret in moto (ListSecrets straight to moto: no lag), page by page. */
async function allSecrets(): Promise<SecretListEntry[]> {
  const secrets: SecretListEntry[] = [];
  let NextToken: string | undefined;
  do {
    const page = await pipeline.secrets.send(new ListSecretsCommand({ MaxResults: 100, NextToken }));
    secrets.push(...(page.SecretList ?? []));
    NextToken = page.NextToken;
  } while (NextToken);
  return secrets;
}

const countBy = <T>(items: T[], key: (item: T) => string) => {
  const counts: Record<string, number> = {};
  for (const item of items) counts[key(item)] = (counts[key(item)] ?? 0) + 1;
  return counts;
};
const sum = (table: Record<string, number>) => Object.values(table).reduce((a, b) => a + b, 0);

// What the run did, gathered once in beforeAll and checked by the tests below.
let messages: Sent[] = [];
let ids: string[] = [];
let subjects: Subject[] = [];
let injected: RealisticStats;
let eventsBeforeReplay: CompletionEvent[] = [];
let deadLettered: string[] = [];
/** How many times the first drain handed each message back. */
let handedBack = new Map<string, number>();
let replayed: Array<{ deadLetterId: string; messageId: string }> = [];
let events: CompletionEvent[] = [];
let deadLetteredAfterReplay: string[] = [];
let keys: ApiKey[] = [];
let secrets: SecretListEntry[] = [];
const members: Record<string, Set<string>> = {};
const figures: Record<string, unknown> = {};
/** What the invariant checks looked at (printed at the end). */
let verified: Record<string, number> | undefined;

beforeAll(async () => {
  const started = Date.now();
  // maxReceiveCount 6: a message meets a fault on a few percent of its calls and was handed back at most 3 times in
  // the runs measured, so transient faults alone do not dead-letter it. A request the layer holds fails after 1 s
  // (AWS_REQUEST_TIMEOUT_MS).
  pipeline = await startPipeline(
    { visibilityTimeoutSeconds: 4, maxReceiveCount: 6 },
    async ({ apigw }) => {
      plans[PRODUCT_A] = await createUsagePlan(apigw, 'chaos-a', [await createApiStage(apigw, 'chaos-api-a')]);
      plans[PRODUCT_B] = await createUsagePlan(apigw, 'chaos-b', [await createApiStage(apigw, 'chaos-api-b')]);
      return { USAGE_PLANS: JSON.stringify(plans), AWS_REQUEST_TIMEOUT_MS: '1000' };
    },
    // API Gateway at 4 times the real quotas (REALISTIC's 20 would never throttle this run).
    { throttle: { factor: 4 } },
  );
  messages = scenario(new SeededRandom(SEED));
  subjects = [...new Set(messages.flatMap((m) => (m.subject ? [m.subject] : [])))];
  ids = await pipeline.send(...messages.map((m) => m.body));

  pipeline.proxy.configure({ chaos: { rate: CHAOS_RATE, seed: SEED } });
  // Two instances: the function as deployed (turns and heartbeats in the coordination table), and one that writes to
  // the usage plans outside the turns (an instance of a version without the table, as during a deployment), so
  // that the writes still overlap and meet API Gateway's 409s.
  const [coordinated, outside] = await Promise.all([
    pipeline.drain({ concurrency: 2, maxDurationMs: 100_000 }),
    pipeline.drain({ handler: pipeline.handlerWith(undefined, { COORDINATION_TABLE: '' }), maxDurationMs: 100_000 }),
  ]);
  const run = {
    drained: coordinated.drained && outside.drained,
    invocations: coordinated.invocations + outside.invocations,
    handedBack: new Map(
      [...coordinated.handedBack, ...outside.handedBack].map(([id]) => [
        id,
        (coordinated.handedBack.get(id) ?? 0) + (outside.handedBack.get(id) ?? 0),
      ]),
    ),
  };
  handedBack = run.handedBack;
  pipeline.proxy.configure({ chaos: undefined });
  injected = pipeline.proxy.stats();
  eventsBeforeReplay = await pipeline.completionEvents();
  deadLettered = await pipeline.deadLetterIds();

  replayed = await pipeline.redriveDeadLetters();
  const replay = await pipeline.drain({ concurrency: 3 });
  events = await pipeline.completionEvents();
  deadLetteredAfterReplay = await pipeline.deadLetterIds();

  keys = await pipeline.apiKeys();
  secrets = await allSecrets();
  for (const plan of Object.values(plans)) members[plan] = new Set(await usagePlanKeyIds(pipeline.apigw, plan));
  Object.assign(figures, {
    drained: [run.drained, replay.drained],
    invocations: run.invocations + replay.invocations,
    handedBack: sum(Object.fromEntries(run.handedBack)) + sum(Object.fromEntries(replay.handedBack)),
    mostHandedBack: Math.max(0, ...run.handedBack.values()),
    seconds: Math.round((Date.now() - started) / 1000),
  });
}, 200_000);
afterAll(async () => {
  const byKind = countBy(messages, (m) => m.kind.replace(', duplicate', ''));
  const summary = {
    sent: {
      messages: messages.length,
      duplicates: messages.filter((m) => m.kind.endsWith('duplicate')).length,
      subjects: subjects.length,
      byKind,
    },
    injected: {
      awsCalls: sum(injected.requests),
      chaos: injected.chaos,
      usagePlanWriteConflicts: injected.conflicts,
      throttled: injected.throttled,
      listingHidden: injected.listingHidden,
      planStageConflicts: injected.planStageConflicts,
    },
    run: {
      ...figures,
      deadLettered: deadLettered.map((id) => {
        const m = messages[ids.indexOf(id)];
        return `${m?.kind} ${m?.subject?.customerId ?? ''}`.trim();
      }),
      replayed: replayed.length,
      deadLetteredAfterReplay: deadLetteredAfterReplay.length,
    },
    verified,
  };
  console.log(
    `chaos run (seed ${SEED}, rate ${CHAOS_RATE}):\n${Object.entries(summary)
      .map(([k, v]) => `${k}: ${JSON.stringify(v)}`)
      .join('\n')}`,
  );
  await pipeline.close();
});

test('the layer injected every kind of fault, the hard ones (after moto did the work) included, and the run drained', () => {
  const total = (match: (kind: string) => boolean) => sum(Object.fromEntries(Object.entries(injected.chaos).filter(([k]) => match(k))));
  for (const kind of ['5xx-', 'reset-', 'timeout-', '-after']) expect(total((k) => k.includes(kind))).toBeGreaterThan(0);
  expect(sum(injected.conflicts)).toBeGreaterThan(0);
  expect(figures.drained).toEqual([true, true]);
});

test('nothing lost: every message has a completion event or was in the DLQ; after the replay, every one has an outcome', () => {
  const announced = new Set(eventsBeforeReplay.map((e) => e.messageId));
  const inDlq = new Set(deadLettered);
  const lost = ids.flatMap((id, i) =>
    announced.has(id) || inDlq.has(id)
      ? []
      : [{ id, kind: messages[i]?.kind, customerId: messages[i]?.subject?.customerId, handedBack: handedBack.get(id) }],
  );
  expect(lost).toEqual([]);

  const finalIds = new Set(events.map((e) => e.messageId));
  expect(deadLetteredAfterReplay).toEqual([]);
  expect(replayed.map((r) => r.deadLetterId).sort()).toEqual([...inDlq].sort());
  expect(replayed.filter((r) => !finalIds.has(r.messageId))).toEqual([]);
  const malformed = ids.filter((_, i) => messages[i]?.kind.startsWith('malformed'));
  expect(events.filter((e) => malformed.includes(e.messageId)).every((e) => e.type === 'api-key.provisioning-failed')).toBe(true);
});

test('one key and at most one secret per customer and product (one whenever there is a key), and nothing else', () => {
  const keysByName = countBy(keys, (k) => k.name ?? '');
  const secretsByName = countBy(secrets, (s) => s.Name ?? '');
  const problems = subjects.flatMap((s) => {
    const keyCount = keysByName[apiKeyName(PREFIX, s.customerId, s.productCode)] ?? 0;
    const secretCount = secretsByName[secretName(PREFIX, s.customerId, s.productCode)] ?? 0;
    // A rolled customer may also have its old key (disabled: checked below), until the sweep deletes it.
    const most = s.rolls ? 2 : 1;
    const keysOk = s.expected === 'active' ? keyCount >= 1 && keyCount <= most : keyCount <= most;
    // A key's value is in its secret; a revoke before any key leaves a record and no secret (there is no value).
    const secretsOk = secretCount === 1 || (s.expected === 'revoked' && keyCount === 0 && secretCount === 0);
    return keysOk && secretsOk ? [] : [{ customerId: s.customerId, expected: s.expected, keyCount, secretCount }];
  });
  expect(problems).toEqual([]);
  const keyNames = new Set(subjects.map((s) => apiKeyName(PREFIX, s.customerId, s.productCode)));
  const secretNames = new Set(subjects.map((s) => secretName(PREFIX, s.customerId, s.productCode)));
  expect(keys.filter((k) => !keyNames.has(k.name ?? '')).map((k) => k.name)).toEqual([]);
  expect(secrets.filter((s) => !secretNames.has(s.Name ?? '')).map((s) => s.Name)).toEqual([]);
});

test('every active record: its key enabled, in its plan only; every revoked record: its key disabled and in no plan', async () => {
  const problems: unknown[] = [];
  const plansOf = (id: string) => Object.entries(members).flatMap(([plan, set]) => (set.has(id) ? [plan] : []));
  let active = 0;
  let revoked = 0;
  for (const s of subjects) {
    const record = await pipeline.secretJson(secretName(PREFIX, s.customerId, s.productCode));
    const named = keys.filter((k) => k.name === apiKeyName(PREFIX, s.customerId, s.productCode));
    // A rolled customer's key is the record's; its old one must be out of service (grace 0).
    const key = s.rolls ? (named.find((k) => k.id === record.apiKeyId) ?? named[0]) : named[0];
    for (const old of s.rolls ? named.filter((k) => k !== key) : [])
      if (old.enabled || (old.id && plansOf(old.id).length > 0))
        problems.push({ customerId: s.customerId, oldKey: old.id, enabled: old.enabled, inPlans: old.id ? plansOf(old.id) : [] });
    const enabled = key?.enabled;
    const inPlans = key?.id ? plansOf(key.id) : [];
    const state = { customerId: s.customerId, status: record.status, enabled, inPlans, recordKey: record.apiKeyId === key?.id };
    if (s.expected === 'active') {
      active++;
      const ok =
        record.status === 'active' &&
        enabled === true &&
        record.apiKeyId === key?.id &&
        record.value === key?.value &&
        JSON.stringify(inPlans) === JSON.stringify(s.plan ? [s.plan] : []) &&
        record.usagePlanId === s.plan;
      if (!ok) problems.push({ expected: 'active', plan: s.plan, ...state });
    } else {
      revoked++;
      const ok = record.status === 'revoked' && enabled !== true && inPlans.length === 0;
      if (!ok) problems.push({ expected: 'revoked', ...state });
    }
    // Every license of a buyer of concurrent agreements recorded as it ended: none forgotten by a concurrent write,
    // and the key enabled exactly while one of them is active.
    if (s.licenses) {
      const recorded = Object.fromEntries(
        Object.entries((record.licenses ?? {}) as Record<string, { status: string }>).map(([arn, l]) => [arn, l.status]),
      );
      const anyActive = Object.values(s.licenses).includes('active');
      if (
        JSON.stringify(recorded, Object.keys(recorded).sort()) !== JSON.stringify(s.licenses, Object.keys(s.licenses).sort()) ||
        (enabled === true) !== anyActive
      )
        problems.push({
          expected: s.licenses,
          recorded,
          ...state,
          // What each delivery announced, in order, to tell which change went missing.
          announced: events
            .filter((e) => 'customerId' in e && e.customerId === s.customerId)
            .map((e) =>
              [e.type, 'outcome' in e ? e.outcome : undefined, 'licenseArn' in e ? e.licenseArn?.slice(-2) : undefined].join(' '),
            ),
        });
    }
  }
  verified = {
    activeRecords: active,
    revokedRecords: revoked,
    keys: keys.length,
    secrets: secrets.length,
    keysInPlans: sum(Object.fromEntries(Object.entries(members).map(([plan, set]) => [plan, set.size]))),
    problems: problems.length,
  };
  expect(problems).toEqual([]);
});
