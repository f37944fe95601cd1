/**
 * The smoke test's run (lib/ops/smoke/smoke.ts) against an in-memory stage (no network): where it says the pipeline
 * stopped for each state the function can leave, the checks that catch a wrong key or secret, and that no key value
 * reaches the report. tests/integration/smoke.test.ts runs the command itself against moto through the layer.
 */
import type { KeyRecord } from '../../lib/customer-key/key-record.js';
import type { FoundKey, SmokeAws, SmokeReport, SmokeSettings } from '../../lib/ops/smoke/model.js';
import { formatStep } from '../../lib/ops/smoke/report.js';
import { runSmoke } from '../../lib/ops/smoke/smoke.js';
import { smokeCustomerId, stackNames } from '../../lib/ops/smoke/stack.js';

const CUSTOMER = smokeCustomerId(new Date('2026-12-06T13:21:24.123Z'), 'a1b2c3');
const PRODUCT = 'prod1';
const PLAN = 'plan1';
const VALUE = 'A'.repeat(20) + 'b'.repeat(20);
const names = stackNames('unit', 'eu-west-1');
const SECRET = `keyprov/unit/${PRODUCT}/${CUSTOMER}/api-key`;
const KEY_NAME = `keyprov/unit/${PRODUCT}/${CUSTOMER}`;
const settings: SmokeSettings = { names, customerId: CUSTOMER, productCode: PRODUCT, usagePlanId: PLAN, timeoutMs: 3000, pollMs: 1000 };

/** What the function does with each message in this stage (the test's script of it). */
type Pipeline = (stage: Stage, body: Record<string, unknown>) => void;

interface Stage {
  record?: KeyRecord;
  keys: Map<string, FoundKey>;
  plan: Set<string>;
  secret?: { arn: string; secretString: string };
  sent: Array<Record<string, unknown>>;
}

function stageWith(pipeline: Pipeline) {
  const stage: Stage = { keys: new Map(), plan: new Set(), sent: [] };
  const aws: SmokeAws = {
    queueUrl: async (name) => `https://sqs.eu-west-1.amazonaws.com/123456789012/${name}`,
    send: async (_url, body) => {
      const parsed = JSON.parse(body) as Record<string, unknown>;
      stage.sent.push(parsed);
      pipeline(stage, parsed);
      return `m-${stage.sent.length}`;
    },
    record: async () => stage.record,
    apiKey: async (id) => stage.keys.get(id),
    apiKeyIdsNamed: async (name) => [...stage.keys.values()].filter((k) => k.name === name).map((k) => k.id),
    inUsagePlan: async (_plan, id) => stage.plan.has(id),
    secret: async () => stage.secret,
    removeFromUsagePlan: async (_plan, id) => {
      stage.plan.delete(id);
    },
    deleteApiKey: async (id) => {
      stage.keys.delete(id);
    },
    deleteSecret: async () => {
      stage.secret = undefined;
    },
    deleteRecord: async () => {
      stage.record = undefined;
    },
  };
  let clock = 0;
  const run = () =>
    runSmoke(aws, settings, {
      now: () => clock,
      sleep: async (ms) => {
        clock += ms;
      },
    });
  return { stage, run };
}

const secretArn = `arn:aws:secretsmanager:eu-west-1:123456789012:secret:${SECRET}-AbCdEf`;
const base: KeyRecord = { customerId: CUSTOMER, productCode: PRODUCT, plan: null, apiKeyName: KEY_NAME, createdAt: '2026-12-06T13:21:25Z' };
const key = (overrides: Partial<FoundKey> = {}): FoundKey => ({
  id: 'k1',
  name: KEY_NAME,
  enabled: true,
  customerId: CUSTOMER,
  tags: { 'keyprov:owner': 'keyprov/unit/', 'keyprov:smoke': CUSTOMER },
  value: VALUE,
  ...overrides,
});

/** The function as it should be: a signup makes the secret, the key in its plan and the active record; an unsubscribe revokes. */
const working: Pipeline = (stage, body) => {
  if (body.customerId) {
    stage.secret = { arn: secretArn, secretString: JSON.stringify({ value: VALUE, customerId: CUSTOMER }) };
    stage.keys.set('k1', key());
    stage.plan.add('k1');
    stage.record = { ...base, secretArn, apiKeyId: 'k1', usagePlanId: PLAN, status: 'active' };
  } else if (body.action === 'unsubscribe-success' && stage.record) {
    stage.keys.set('k1', key({ enabled: false }));
    stage.plan.delete('k1');
    stage.record = { ...stage.record, usagePlanId: undefined, status: 'revoked' };
  }
};

const lines = (report: SmokeReport) => report.steps.map((s) => `${s.ok ? 'PASS' : 'FAIL'} ${s.name}`);
const nothingLeft = (stage: Stage) => expect({ keys: stage.keys.size, secret: stage.secret, record: stage.record }).toEqual({ keys: 0 });

test('a working stage: every step passes, what it sent is a signup and an unsubscribe of the reserved customer, nothing is left', async () => {
  const { stage, run } = stageWith(working);
  const report = await run();
  expect(lines(report)).toEqual([
    'PASS send signup',
    'PASS provisioned',
    'PASS API key',
    'PASS usage plan',
    'PASS secret',
    'PASS record',
    'PASS send revoke',
    'PASS revoked',
    'PASS clean up',
  ]);
  expect(report.passed).toBe(true);
  expect(CUSTOMER).toBe('smoke-20261206T132124Z-a1b2c3');
  expect(stage.sent).toEqual([
    { customerId: CUSTOMER, eventId: `${CUSTOMER}.signup`, productCode: PRODUCT, tags: { 'keyprov:smoke': CUSTOMER } },
    { action: 'unsubscribe-success', 'customer-identifier': CUSTOMER, 'product-code': PRODUCT },
  ]);
  expect(JSON.stringify(report)).not.toContain(VALUE);
  expect(report.steps.map(formatStep).join('\n')).not.toContain(VALUE);
  nothingLeft(stage);
});

test('a secret that holds another value than the key: the secret step fails without printing either', async () => {
  const other = 'Z'.repeat(40);
  const { stage, run } = stageWith((s, body) => {
    working(s, body);
    if (body.customerId) s.secret = { arn: secretArn, secretString: JSON.stringify({ value: other }) };
  });
  const report = await run();
  expect(report.steps.find((s) => s.name === 'secret')).toMatchObject({
    ok: false,
    detail: `secret ${SECRET} holds a 40-character value that is not the key's (SHA-256 digests differ)`,
  });
  expect(lines(report).at(-1)).toBe('PASS clean up');
  expect(JSON.stringify(report)).not.toContain(VALUE);
  expect(JSON.stringify(report)).not.toContain(other);
  nothingLeft(stage);
});

test('a key that is disabled, misnamed and without the ownership tag: one failed step naming each problem', async () => {
  const { run } = stageWith((s, body) => {
    working(s, body);
    if (body.customerId) s.keys.set('k1', key({ enabled: false, name: 'other', tags: {} }));
  });
  const step = (await run()).steps.find((s) => s.name === 'API key');
  expect(step?.detail).toBe(
    'API key k1: it is disabled; its name is "other", not keyprov/unit/prod1/smoke-20261206T132124Z-a1b2c3; its keyprov:owner tag is undefined, not keyprov/unit/; its keyprov:smoke tag (the signup\'s own) is missing',
  );
});

describe('where the pipeline stopped, from what it left', () => {
  const stopped = async (pipeline: Pipeline) => {
    const { stage, run } = stageWith(pipeline);
    const report = await run();
    const step = report.steps.find((s) => !s.ok);
    return { step, sids: step?.lookAt?.map((s) => s.sid), stage, report };
  };

  test('the secret but no record: the first record write (PutItem)', async () => {
    const { step, sids, stage } = await stopped((s) => {
      s.secret = { arn: secretArn, secretString: JSON.stringify({ value: VALUE }) };
    });
    expect(step?.detail).toBe(
      `no provisioned record within 3.0 s: the secret ${SECRET} exists, the record does not: the record's first write (PutItem) did not happen`,
    );
    expect(sids).toEqual(['ReadAndWriteCustomerRecords']);
    expect(step?.notes?.join('\n')).toContain(`--log-group-name /aws/lambda/api-key-provisioner-unit-provision`);
    nothingLeft(stage);
  });

  test('a key that exists while the record is pending: CreateUsagePlanKey or the write after it', async () => {
    const { step, sids, stage } = await stopped((s) => {
      s.secret = { arn: secretArn, secretString: JSON.stringify({ value: VALUE }) };
      s.keys.set('k9', key({ id: 'k9' }));
      s.record = { ...base, secretArn };
    });
    expect(step?.detail).toContain(
      'API key k9 exists, but the record does not name it yet: CreateUsagePlanKey, or the record write after it,',
    );
    expect(sids).toEqual(['AddKeysToUsagePlans', 'ReadAndWriteCustomerRecords']);
    nothingLeft(stage);
  });

  test('a revoke that disabled the key but left it in its plan: DeleteUsagePlanKey', async () => {
    const { step, sids, stage } = await stopped((s, body) => {
      if (body.action) s.keys.set('k1', key({ enabled: false }));
      else working(s, body);
    });
    expect(step?.name).toBe('revoked');
    expect(step?.detail).toBe(
      `no revoked record within 3.0 s: key k1 is disabled but still in usage plan ${PLAN}: DeleteUsagePlanKey did not happen`,
    );
    expect(sids).toEqual(['RemoveKeysFromUsagePlans']);
    nothingLeft(stage);
  });

  test('a record that another message revoked first: said so, no statement blamed', async () => {
    const { step, sids } = await stopped((s) => {
      s.record = { ...base, status: 'revoked' };
    });
    expect(step?.detail).toBe(`the record is revoked, not active: another message for ${CUSTOMER} came first`);
    expect(sids).toBeUndefined();
  });
});
