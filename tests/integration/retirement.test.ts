import { CreateApiKeyCommand, CreateUsagePlanKeyCommand, GetApiKeyCommand, NotFoundException } from '@aws-sdk/client-api-gateway';
import { DynamoDBClient, GetItemCommand } from '@aws-sdk/client-dynamodb';
import { DeleteSecretCommand } from '@aws-sdk/client-secrets-manager';
import { TURNS_ITEM_KEY } from '../../lib/aws/dynamodb.js';
import { loadSweepConfig } from '../../lib/maintenance/config.js';
import { createSweepInstance } from '../../lib/maintenance/deps.js';
import { type SweepDeps, type SweepOptions, sweep } from '../../lib/maintenance/sweep.js';
import type { CompletionEvent } from '../../lib/pipeline/completion.js';
import { marketplaceNotification, snsEnvelope } from '../helpers/events.js';
import { PRINCIPALS } from '../helpers/iam.js';
import { COORDINATION_TABLE_NAME, type Pipeline, startPipeline } from '../helpers/pipeline.js';
import { runTool } from '../helpers/run-command.js';
import { createApiStage, createUsagePlan, usagePlanKeyIds } from '../helpers/usage-plans.js';
import { actingAs } from '../realistic-aws/index.js';

/*
 * The maintenance sweep's retirement through the realistic layer, as the sweep's own role (SweepRole, IAM switch on):
 * a key revoked longer than RETIRE_AFTER_DAYS leaves its plan, is deleted and its record marked retired; a younger
 * one stays; what a retired record's customer sends afterwards; a sweep that stops between steps; its calls.
 */

const PRODUCT = 'prod4k2j9x8l7';
const DAY_MS = 86_400_000;
let pipeline: Pipeline;
let planId: string;

beforeAll(async () => {
  pipeline = await startPipeline(undefined, async ({ apigw }) => {
    planId = await createUsagePlan(apigw, 'gold', [await createApiStage(apigw, 'retirement-api')]);
    return { USAGE_PLANS: JSON.stringify({ [PRODUCT]: planId }) };
  });
});
afterAll(() => pipeline.close());

/** A sweep instance as functions/sweep.ts builds one, from the environment the function has (plus `env`). */
const sweepInstance = (env: Record<string, string> = {}) =>
  createSweepInstance(loadSweepConfig({ ...process.env, RETIRE_AFTER_DAYS: '30', SWEEP_RATE_PER_SECOND: '5', ...env }));

/** One sweep run as the sweep's role, with `override` replacing some of its dependencies (a crash after a step). */
function runSweep(options: SweepOptions, override: (deps: SweepDeps) => SweepDeps = (deps) => deps) {
  const deps = override(sweepInstance().forRun(() => 60_000));
  return actingAs(PRINCIPALS.sweep, () => sweep(deps, options))();
}

/** A Marketplace notification in its SNS envelope, at a given time. */
const notification = (action: string, customer: string, at: string) => ({
  ...snsEnvelope(marketplaceNotification(action, customer, PRODUCT)),
  Timestamp: at,
});

async function deliver(...bodies: unknown[]): Promise<CompletionEvent[]> {
  await pipeline.clearCompletions();
  for (const body of bodies) {
    await pipeline.send(body);
    await pipeline.drain();
  }
  return pipeline.completionEvents();
}

const secretName = (customer: string) => `keyprov/test/${PRODUCT}/${customer}/api-key`;
const recordOf = async (customer: string) => (await pipeline.record(secretName(customer))) ?? {};

/** Whether the key exists in moto (read straight from moto, not through the layer). */
async function keyExists(apiKeyId: string): Promise<boolean> {
  try {
    await pipeline.apigw.send(new GetApiKeyCommand({ apiKey: apiKeyId }));
    return true;
  } catch (error) {
    if (error instanceof NotFoundException) return false;
    throw error;
  }
}

/** Subscribes then unsubscribes `customer` (each drained); returns the key id and when the deployment revoked it. */
async function revokedCustomer(customer: string, minute: number): Promise<{ apiKeyId: string; revokedAt: string }> {
  const at = (m: number) => `2026-11-26T10:${String(m).padStart(2, '0')}:00.000Z`;
  await deliver(notification('subscribe-success', customer, at(minute)), notification('unsubscribe-success', customer, at(minute + 1)));
  const record = await recordOf(customer);
  expect(record).toMatchObject({ status: 'revoked', apiKeyId: expect.any(String), revokedAt: expect.any(String) });
  return { apiKeyId: String(record.apiKeyId), revokedAt: String(record.revokedAt) };
}

/** A sweep as of 30 days from now: whatever was revoked before is retired (earlier tests' records out of the way). */
async function sweepEverythingDueNow(): Promise<void> {
  const report = await runSweep({ asOf: new Date(Date.now() + 30 * DAY_MS) });
  expect(report.failures).toEqual([]);
}

/** The time at which a key revoked at `revokedAt` is just due (RETIRE_AFTER_DAYS=30: at or before as-of − 30 days). */
const dueAt = (revokedAt: string) => new Date(Date.parse(revokedAt) + 30 * DAY_MS);

describe('retirement of a key revoked longer than RETIRE_AFTER_DAYS', () => {
  let old: { apiKeyId: string; revokedAt: string };
  let young: { apiKeyId: string; revokedAt: string };

  beforeAll(async () => {
    old = await revokedCustomer('retire-old', 0);
    young = await revokedCustomer('retire-young', 10);
    // Revoked in a later delivery: strictly later, so as of the old one's due time the young one is not due.
    expect(young.revokedAt > old.revokedAt).toBe(true);
  });

  test('a dry run lists the due key and changes nothing', async () => {
    const report = await runSweep({ asOf: dueAt(old.revokedAt), dryRun: true });

    expect(report.outcomes).toEqual({ [`${PRODUCT}/retire-old`]: 'would-retire' });
    expect(await keyExists(old.apiKeyId)).toBe(true);
    expect(await recordOf('retire-old')).toMatchObject({ apiKeyId: old.apiKeyId, status: 'revoked' });
  });

  test('the older key leaves its plan, is deleted and its record is marked retired; the younger one is left alone', async () => {
    // A revoked key is out of its plan already; put it back, as a stale grant's interrupted delivery could leave it.
    await pipeline.apigw.send(new CreateUsagePlanKeyCommand({ usagePlanId: planId, keyId: old.apiKeyId, keyType: 'API_KEY' }));
    expect(await usagePlanKeyIds(pipeline.apigw, planId)).toContain(old.apiKeyId);

    const report = await runSweep({ asOf: dueAt(old.revokedAt) });

    expect(report.failures).toEqual([]);
    expect(report.outcomes).toEqual({ [`${PRODUCT}/retire-old`]: 'retired' });
    expect(await keyExists(old.apiKeyId)).toBe(false);
    expect(await usagePlanKeyIds(pipeline.apigw, planId)).not.toContain(old.apiKeyId);
    const record = await recordOf('retire-old');
    expect(record).toMatchObject({
      status: 'revoked',
      retiredKeyId: old.apiKeyId,
      retiredAt: expect.any(String),
      revokedAt: old.revokedAt,
    });
    expect(record.apiKeyId).toBeUndefined();
    expect(await keyExists(young.apiKeyId)).toBe(true);
    expect(await recordOf('retire-young')).toMatchObject({ apiKeyId: young.apiKeyId, status: 'revoked' });
  });

  test('a second sweep at the same time finds nothing due: the retired record left the index', async () => {
    const report = await runSweep({ asOf: dueAt(old.revokedAt) });
    expect(report.outcomes).toEqual({});
    // One page of each partition of the index: old keys of rolls, then revoked keys.
    expect(report.pages).toBe(2);
  });

  test('the stale grant replayed after retirement creates nothing', async () => {
    const before = (await pipeline.apiKeys()).length;
    const events = await deliver(notification('subscribe-success', 'retire-old', '2026-11-26T10:00:00.000Z'));

    expect(events).toEqual([expect.objectContaining({ type: 'api-key.notification-ignored', reason: 'stale', customerId: 'retire-old' })]);
    expect((await pipeline.apiKeys()).length).toBe(before);
    expect((await pipeline.apiKeys()).filter((k) => k.customerId === 'retire-old')).toEqual([]);
    expect(await recordOf('retire-old')).toMatchObject({ status: 'revoked', retiredKeyId: old.apiKeyId });
  });

  test('a revoke of the retired record changes nothing but its bookkeeping', async () => {
    const events = await deliver(notification('unsubscribe-success', 'retire-old', '2026-11-26T10:30:00.000Z'));

    expect(events).toEqual([expect.objectContaining({ type: 'api-key.revoked', customerId: 'retire-old' })]);
    expect((await pipeline.apiKeys()).filter((k) => k.customerId === 'retire-old')).toEqual([]);
    const record = await recordOf('retire-old');
    expect(record).toMatchObject({ status: 'revoked', retiredKeyId: old.apiKeyId, lastEventAt: '2026-11-26T10:30:00.000Z' });
    expect(record.apiKeyId).toBeUndefined();
  });

  test('a real re-subscription gets a new key with a new value, enabled and in its plan', async () => {
    const events = await deliver(notification('subscribe-success', 'retire-old', '2026-11-26T11:00:00.000Z'));

    expect(events).toEqual([expect.objectContaining({ type: 'api-key.provisioned', outcome: 'provisioned', customerId: 'retire-old' })]);
    const keys = (await pipeline.apiKeys()).filter((k) => k.customerId === 'retire-old');
    expect(keys).toHaveLength(1);
    const [key] = keys;
    expect(key?.id).not.toBe(old.apiKeyId);
    expect(key?.enabled).toBe(true);
    expect(await usagePlanKeyIds(pipeline.apigw, planId)).toContain(key?.id);
    const stored = await pipeline.secretJson(secretName('retire-old'));
    expect(stored).toMatchObject({ status: 'active', apiKeyId: key?.id, value: key?.value, retiredKeyId: old.apiKeyId });
  });
});

describe('re-subscriptions after retirement delivered together', () => {
  test('duplicates of one re-subscription processed at once: one new key, whose value is the one in the secret', async () => {
    await sweepEverythingDueNow();
    const revoked = await revokedCustomer('retire-twice', 55);
    await runSweep({ asOf: dueAt(revoked.revokedAt) });
    expect(await recordOf('retire-twice')).toMatchObject({ retiredKeyId: revoked.apiKeyId, retiredAt: expect.any(String) });

    const again = notification('subscribe-success', 'retire-twice', '2026-11-26T11:30:00.000Z');
    await pipeline.clearCompletions();
    await pipeline.send(again, again, again);
    await pipeline.drain();

    const keys = (await pipeline.apiKeys()).filter((k) => k.customerId === 'retire-twice');
    expect(keys).toHaveLength(1);
    const stored = await pipeline.secretJson(secretName('retire-twice'));
    expect(stored).toMatchObject({ status: 'active', apiKeyId: keys[0]?.id, value: keys[0]?.value });
  });

  test('a re-subscription after retirement whose secret was deleted meanwhile creates the secret again', async () => {
    await sweepEverythingDueNow();
    const revoked = await revokedCustomer('retire-no-secret', 57);
    await runSweep({ asOf: dueAt(revoked.revokedAt) });
    await pipeline.secrets.send(new DeleteSecretCommand({ SecretId: secretName('retire-no-secret'), ForceDeleteWithoutRecovery: true }));

    await deliver(notification('subscribe-success', 'retire-no-secret', '2026-11-26T11:30:00.000Z'));

    const keys = (await pipeline.apiKeys()).filter((k) => k.customerId === 'retire-no-secret');
    expect(keys).toHaveLength(1);
    expect(keys[0]?.id).not.toBe(revoked.apiKeyId);
    expect(await pipeline.secretJson(secretName('retire-no-secret'))).toMatchObject({ status: 'active', value: keys[0]?.value });
  });
});

describe('a sweep that stops between steps: the next run converges', () => {
  test.each([
    ['the claim (PutItem)', 'records', 'put'],
    ['DeleteUsagePlanKey', 'apiKeys', 'removeFromUsagePlan'],
    ['DeleteApiKey', 'apiKeys', 'deleteApiKey'],
  ] as const)('stopped after %s', async (step, port, method) => {
    const customer = `retire-crash-${method.toLowerCase()}`;
    await sweepEverythingDueNow();
    const revoked = await revokedCustomer(customer, 20);
    const asOf = dueAt(revoked.revokedAt);
    // The step is done, then the run stops there, for this customer's record or key only.
    const crashAfter = (deps: SweepDeps): SweepDeps => {
      const original = deps[port] as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
      const wrapped = {
        ...original,
        [method]: async (...args: unknown[]) => {
          const result = await original[method]?.(...args);
          if (args.includes(revoked.apiKeyId) || args[0] === `${PRODUCT}/${customer}`) throw new Error(`injected crash after ${step}`);
          return result;
        },
      };
      return { ...deps, [port]: wrapped };
    };

    const first = await runSweep({ asOf }, crashAfter);
    expect(first.failures).toEqual([{ key: `${PRODUCT}/${customer}`, error: `Error: injected crash after ${step}` }]);
    // Claimed (the key is no longer the record's), not yet recorded deleted: still in the index.
    expect(await recordOf(customer)).toMatchObject({ retiredKeyId: revoked.apiKeyId });
    expect((await recordOf(customer)).retiredAt).toBeUndefined();

    const second = await runSweep({ asOf });
    expect(second.failures).toEqual([]);
    expect(second.outcomes[`${PRODUCT}/${customer}`]).toBe('finished');
    expect(await keyExists(revoked.apiKeyId)).toBe(false);
    expect(await recordOf(customer)).toMatchObject({ status: 'revoked', retiredKeyId: revoked.apiKeyId, retiredAt: expect.any(String) });
    const third = await runSweep({ asOf });
    expect(third.outcomes[`${PRODUCT}/${customer}`]).toBeUndefined();
  });

  test('a re-subscription between the claim and the deletion: the new key is kept, the claimed one deleted by the next run', async () => {
    const customer = 'retire-race';
    await sweepEverythingDueNow();
    const revoked = await revokedCustomer(customer, 30);
    const asOf = dueAt(revoked.revokedAt);
    const crashAfterClaim = (deps: SweepDeps): SweepDeps => ({
      ...deps,
      records: {
        ...deps.records,
        put: async (...args) => {
          await deps.records.put(...args);
          throw new Error('injected crash after the claim');
        },
      },
    });
    await runSweep({ asOf }, crashAfterClaim);
    await deliver(notification('subscribe-success', customer, '2026-11-26T11:00:00.000Z'));
    const fresh = (await recordOf(customer)).apiKeyId;
    expect(fresh).toEqual(expect.any(String));
    expect(fresh).not.toBe(revoked.apiKeyId);

    const next = await runSweep({ asOf });

    expect(next.outcomes[`${PRODUCT}/${customer}`]).toBe('finished');
    expect(await keyExists(revoked.apiKeyId)).toBe(false);
    expect(await keyExists(String(fresh))).toBe(true);
    expect(await recordOf(customer)).toMatchObject({
      status: 'active',
      apiKeyId: fresh,
      retiredKeyId: revoked.apiKeyId,
      retiredAt: expect.any(String),
    });
  });
});

describe('what one sweep costs: proportional to the work due, not to the number of keys', () => {
  test('N keys in the Region, 3 of them due: the calls by service', async () => {
    // Keys of others (no record, as for another tool of the account): only the capacity count sees them.
    const others = 600;
    for (let i = 0; i < others; i++) await pipeline.apigw.send(new CreateApiKeyCommand({ name: `someone-else-${i}`, enabled: true }));
    await sweepEverythingDueNow();
    const due = await Promise.all(['cost-a', 'cost-b', 'cost-c'].map((c, i) => revokedCustomer(c, 40 + 2 * i)));
    const asOf = dueAt(
      due
        .map((d) => d.revokedAt)
        .sort()
        .at(-1) ?? '',
    );
    pipeline.proxy.seen.length = 0;

    const report = await runSweep({ asOf });

    const byService: Record<string, Record<string, number>> = {};
    for (const seen of pipeline.proxy.seen) {
      const service = seen.startsWith('DynamoDB_') ? 'dynamodb' : seen.startsWith('secretsmanager.') ? 'secretsmanager' : 'apigateway';
      const name = seen.replace(/^DynamoDB_20120810\.|^secretsmanager\./, '').replace(/(apikeys|usageplans|keys)\/[^/?]+/g, '$1/{id}');
      byService[service] = { ...byService[service], [name]: (byService[service]?.[name] ?? 0) + 1 };
    }
    console.log(
      `sweep calls, ${report.capacity?.apiKeys} keys in the Region, ${Object.keys(report.outcomes).length} due: ${JSON.stringify(byService)}`,
    );
    expect(report.outcomes).toEqual({
      [`${PRODUCT}/cost-a`]: 'retired',
      [`${PRODUCT}/cost-b`]: 'retired',
      [`${PRODUCT}/cost-c`]: 'retired',
    });
    const retiredHere = 3;
    expect(report.capacity?.apiKeys).toBeGreaterThanOrEqual(others);
    expect(byService.secretsmanager).toBeUndefined();
    // One Query per partition of the index (old keys of rolls, revoked keys), whatever the number of keys.
    // And the coordination table (UpdateItem): a turn per usage-plan write (one more when its first claim, not knowing
    // the timeline yet, lost to the item as it was).
    expect(byService.dynamodb).toMatchObject({ Query: 2, GetItem: retiredHere, PutItem: 2 * retiredHere });
    expect(byService.dynamodb?.UpdateItem).toBeGreaterThanOrEqual(retiredHere);
    expect(byService.dynamodb?.UpdateItem).toBeLessThanOrEqual(retiredHere + 1);
    expect(byService.apigateway?.['DELETE /apikeys/{id}']).toBe(retiredHere);
    expect(byService.apigateway?.['DELETE /usageplans/{id}/keys/{id}']).toBe(retiredHere);
  });
});

describe('the sweep on the quotas provisioning shares (COORDINATION_TABLE, as serverless.yml gives it)', () => {
  const moto = new DynamoDBClient({ endpoint: process.env.MOTO_ENDPOINT });
  const turnsClaimed = async () =>
    Number(
      (await moto.send(new GetItemCommand({ TableName: COORDINATION_TABLE_NAME, Key: { pk: { S: TURNS_ITEM_KEY } } }))).Item?.turnSeq?.N ??
        0,
    );

  test('its usage-plan writes take the instances’ turns', async () => {
    await sweepEverythingDueNow();
    const due = await Promise.all(['turns-a', 'turns-b'].map((c, i) => revokedCustomer(c, 50 + 2 * i)));
    const before = await turnsClaimed();
    pipeline.proxy.resetStats();

    const report = await runSweep({
      asOf: dueAt(
        due
          .map((d) => d.revokedAt)
          .sort()
          .at(-1) ?? '',
      ),
    });

    expect(report.outcomes).toMatchObject({ [`${PRODUCT}/turns-a`]: 'retired', [`${PRODUCT}/turns-b`]: 'retired' });
    const writes = pipeline.proxy.stats().requests.DeleteUsagePlanKey ?? 0;
    expect(writes).toBeGreaterThanOrEqual(2);
    // A claimed turn per write: the timeline moved on at least as many turns as the sweep wrote.
    expect((await turnsClaimed()) - before).toBeGreaterThanOrEqual(writes);
  });
});

/** Runs `npm run sweep`'s entry as a child process (tsx), signed as the sweep's role, through the layer. */
const sweepCli = (args: string[]) => runTool('lib/ops/sweep/cli.ts', PRINCIPALS.sweep, args);

describe('npm run sweep', () => {
  test('--dry-run --json lists what is due and changes nothing; a run then retires it (exit 0)', async () => {
    await sweepEverythingDueNow();
    const revoked = await revokedCustomer('retire-cli', 50);
    const asOf = dueAt(revoked.revokedAt).toISOString();

    const dry = await sweepCli(['--endpoint', pipeline.proxy.endpoint, '--as-of', asOf, '--dry-run', '--json']);
    expect(dry.stderr).toBe('');
    expect(dry.code).toBe(0);
    expect(JSON.parse(dry.stdout)).toMatchObject({ dryRun: true, outcomes: { [`${PRODUCT}/retire-cli`]: 'would-retire' }, failures: [] });
    expect(await keyExists(revoked.apiKeyId)).toBe(true);

    const real = await sweepCli(['--endpoint', pipeline.proxy.endpoint, '--as-of', asOf]);
    expect(real.stderr).toBe('');
    expect(real.code).toBe(0);
    expect(real.stdout).toContain(`retired      ${PRODUCT}/retire-cli`);
    expect(real.stdout).toMatch(/API keys in the Region: \d+ of 10000/);
    expect(await keyExists(revoked.apiKeyId)).toBe(false);
  });

  test('--help prints the usage on stdout and exits 0', async () => {
    const run = await sweepCli(['--help']);
    expect(run).toMatchObject({ code: 0, stderr: '' });
    expect(run.stdout).toMatch(/^Usage: npm run sweep -- /);
  });

  test.each([
    ['an unknown flag', ['--bogus'], '--bogus'],
    ['a bad time', ['--as-of', 'yesterday'], '--as-of'],
    ['a bad endpoint', ['--endpoint', '127.0.0.1:1'], '--endpoint'],
  ])('%s: one line on stderr naming it, exit 2', async (_, args, named) => {
    const run = await sweepCli(args);
    expect(run.code).toBe(2);
    expect(run.stdout).toBe('');
    expect(run.stderr.trim().split('\n')).toHaveLength(1);
    expect(run.stderr).toMatch(/^sweep: /);
    expect(run.stderr).toContain(named);
  });
});
