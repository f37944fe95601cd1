import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { type AddressInfo, createServer } from 'node:net';
import { join, resolve } from 'node:path';
import {
  CreateApiKeyCommand,
  CreateUsagePlanKeyCommand,
  DeleteApiKeyCommand,
  DeleteUsagePlanKeyCommand,
  GetApiKeyCommand,
  GetUsagePlanKeysCommand,
  UpdateApiKeyCommand,
} from '@aws-sdk/client-api-gateway';
import { DynamoDBClient, PutItemCommand } from '@aws-sdk/client-dynamodb';
import {
  CreateSecretCommand,
  DeleteSecretCommand,
  DescribeSecretCommand,
  GetSecretValueCommand,
  ListSecretsCommand,
  PutSecretValueCommand,
} from '@aws-sdk/client-secrets-manager';
import { apiKeyName, secretName } from '../../lib/customer-key/naming.js';
import { confirmFindings } from '../../lib/ops/reconcile/confirm.js';
import { compareState } from '../../lib/ops/reconcile/findings.js';
import { applyFixes } from '../../lib/ops/reconcile/fixes.js';
import type { Finding, FixResult, ReconcileReport, ReconcileSettings } from '../../lib/ops/reconcile/model.js';
import { parsePrefix, parseUsagePlans } from '../../lib/ops/reconcile/options.js';
import { findOrphans, reconcile } from '../../lib/ops/reconcile/reconcile.js';
import { parseOwnedName, parseRecord } from '../../lib/ops/reconcile/records.js';
import { exitCode, formatReport } from '../../lib/ops/reconcile/report.js';
import { gatherState } from '../../lib/ops/reconcile/state.js';
import { type ReconcileStores, storesFor } from '../../lib/ops/reconcile/stores.js';
import { marketplaceNotification, signup, snsEnvelope } from '../helpers/events.js';
import { KEY_RECORDS_TABLE_NAME, type Pipeline, startPipeline } from '../helpers/pipeline.js';
import { createApiStage, createUsagePlan } from '../helpers/usage-plans.js';

const ROOT = resolve(__dirname, '../..');
// The project's testTimeout does not reach here (Jest reads it globally): the pipeline and the CLI take seconds.
jest.setTimeout(60_000);

const PREFIX = 'keyprov/test/';
/**
 * The fixture's keys are seconds old, and a key younger than the pending grace (15 minutes) without a secret is only
 * in progress. The in-process runs therefore reconcile as if 20 minutes later; the CLI runs now (see atRealTime).
 */
const LATER_MS = 20 * 60_000;
const later = () => new Date(Date.now() + LATER_MS);
const PRODUCT = 'prod4k2j9x8l7';
let pipeline: Pipeline;
let planId: string;
let settings: ReconcileSettings;
/** Reconcile under test talks to the realistic layer; the assertions read moto directly (pipeline.apigw, .secrets). */
/** Reconcile's calls as an operator's, under docs/operator-policy.json (the layer's IAM switch). */
/**
 * Reconcile's stores. As the operator (default): under docs/operator-policy.json, through the layer's IAM switch,
 * which names stage `test`'s resources. As the harness: not evaluated, for the describes that act as other
 * deployments (other prefixes), which the test stage's operator policy rightly refuses.
 */
const clients = (as: 'operator' | 'harness' = 'operator'): ReconcileStores =>
  storesFor({
    ...(as === 'operator' ? pipeline.operator : pipeline.viaLayer),
    dynamodb: {
      client: new DynamoDBClient({ endpoint: pipeline.proxy.endpoint, credentials: { accessKeyId: as, secretAccessKey: 'testing' } }),
      recordsTable: KEY_RECORDS_TABLE_NAME,
    },
  });

const secretOf = (customerId: string, product: string | undefined = PRODUCT) => secretName(PREFIX, customerId, product);
const keyNameOf = (customerId: string, product: string | undefined = PRODUCT) => apiKeyName(PREFIX, customerId, product);
/** A key value of our shape (40 alphanumerics). */
const newValue = () =>
  randomBytes(40)
    .toString('base64')
    .replace(/[^A-Za-z0-9]/g, '')
    .padEnd(40, 'x')
    .slice(0, 40);
const minutesAgo = (m: number) => new Date(Date.now() - m * 60_000).toISOString();

/** A Marketplace notification in its SNS envelope, at a given time. */
const notification = (action: string, customer: string, at: string) => ({
  ...snsEnvelope(marketplaceNotification(action, customer, PRODUCT)),
  Timestamp: at,
});

/** The id of the customer's key (the one the pipeline created: the first, by creation). */
async function keyIdOf(customerId: string): Promise<string> {
  const [key] = (await pipeline.apiKeys()).filter((k) => k.customerId === customerId);
  if (!key?.id) throw new Error(`no key for ${customerId}`);
  return key.id;
}

const planKeyIds = async () =>
  ((await pipeline.apigw.send(new GetUsagePlanKeysCommand({ usagePlanId: planId }))).items ?? []).map((k) => k.id ?? '').sort();

/** Everything reconcile could change, read straight from moto. */
async function snapshot() {
  const keys = (await pipeline.apiKeys()).map((k) => ({
    id: k.id,
    name: k.name,
    enabled: k.enabled,
    value: k.value,
    customerId: k.customerId,
  }));
  const { SecretList = [] } = await pipeline.secrets.send(new ListSecretsCommand({ MaxResults: 100, IncludePlannedDeletion: true }));
  const secrets = [];
  for (const s of SecretList) {
    const current = s.DeletedDate ? undefined : await pipeline.secrets.send(new GetSecretValueCommand({ SecretId: s.Name }));
    secrets.push({ name: s.Name, deleted: s.DeletedDate !== undefined, version: current?.VersionId, value: current?.SecretString });
  }
  const byName = (a: { name?: string; id?: string }, b: { name?: string; id?: string }) =>
    `${a.name}${a.id}`.localeCompare(`${b.name}${b.id}`);
  return { keys: keys.sort(byName), secrets: secrets.sort(byName), plan: await planKeyIds() };
}

/** Every key value in moto and every value a record holds: none of them may appear in any output. */
async function allValues(): Promise<string[]> {
  const values = (await pipeline.apiKeys()).map((k) => k.value ?? '');
  const { SecretList = [] } = await pipeline.secrets.send(new ListSecretsCommand({ MaxResults: 100 }));
  for (const s of SecretList) {
    const parsed = parseRecord((await pipeline.secrets.send(new GetSecretValueCommand({ SecretId: s.Name }))).SecretString ?? '');
    if ('record' in parsed && parsed.record.value) values.push(parsed.record.value);
  }
  return values.filter((v) => v.length >= 20);
}

const expectNoValueIn = (text: string, values: string[]) => {
  for (const value of values) expect(text.includes(value)).toBe(false);
};

/** One line per finding / fix: what the assertions compare. */
const line = (f: Pick<Finding, 'kind' | 'customerId' | 'apiKeyId' | 'usagePlanId'> & { repair?: string; outcome?: string }) =>
  [f.kind, f.customerId, f.apiKeyId ?? '-', f.repair ?? f.outcome, f.usagePlanId ?? '-'].join(' ');
const lines = (items: Array<Finding | FixResult>) => items.map(line).sort();

/**
 * A pending record, written the way lib/customer-key/provision.ts writes it before the key exists: the value in the
 * secret, then the record (no key id) in the record table.
 */
async function createPendingSecret(customerId: string, createdAt: string, value = newValue()) {
  const names = { customerId, productCode: PRODUCT, apiKeyName: keyNameOf(customerId) };
  const created = await pipeline.secrets.send(
    new CreateSecretCommand({ Name: secretOf(customerId), SecretString: JSON.stringify({ value, ...names }) }),
  );
  const record = { ...names, plan: null, createdAt, lastEventAt: createdAt, secretArn: created.ARN };
  await new DynamoDBClient({ endpoint: process.env.MOTO_ENDPOINT }).send(
    new PutItemCommand({
      TableName: KEY_RECORDS_TABLE_NAME,
      Item: { pk: { S: `${PRODUCT}/${customerId}` }, version: { N: '1' }, status: { S: 'pending' }, record: { S: JSON.stringify(record) } },
    }),
  );
  return value;
}

const ids: Record<string, string> = {};
let twinId: string;
let expectedFindings: string[];
let atRealTime: string[];

beforeAll(async () => {
  pipeline = await startPipeline(undefined, async ({ apigw }) => {
    planId = await createUsagePlan(apigw, 'gold', [await createApiStage(apigw, 'reconcile-api')]);
    return { USAGE_PLANS: JSON.stringify({ [PRODUCT]: planId }) };
  });
  settings = { prefix: PREFIX, usagePlans: { [PRODUCT]: planId }, now: later };

  // The state, built by the real pipeline: active customers, revoked ones, one without a product.
  const active = ['ok-active', 'lost-secret', 'lost-key', 'out-of-plan', 'disabled', 'twin', 'garbage', 'scheduled'];
  const revoked = ['ok-revoked', 'lost-secret-revoked', 're-enabled', 'in-plan-revoked'];
  await pipeline.send(...[...active, ...revoked].map((c) => notification('subscribe-success', c, minutesAgo(10))), signup('no-product'));
  await pipeline.drain();
  await pipeline.send(...revoked.map((c) => notification('unsubscribe-success', c, minutesAgo(5))));
  await pipeline.drain();
  for (const c of [...active, ...revoked, 'no-product']) ids[c] = await keyIdOf(c);
  expect(await reconcile(clients(), settings)).toMatchObject({ findings: [] });

  // ... then broken behind its back.
  const { apigw, secrets } = pipeline;
  await secrets.send(new DeleteSecretCommand({ SecretId: secretOf('lost-secret'), ForceDeleteWithoutRecovery: true }));
  await secrets.send(new DeleteSecretCommand({ SecretId: secretOf('lost-secret-revoked'), ForceDeleteWithoutRecovery: true }));
  await secrets.send(new DeleteSecretCommand({ SecretId: secretOf('scheduled'), RecoveryWindowInDays: 7 }));
  await apigw.send(new DeleteApiKeyCommand({ apiKey: ids['lost-key'] }));
  await apigw.send(
    new UpdateApiKeyCommand({ apiKey: ids['re-enabled'], patchOperations: [{ op: 'replace', path: '/enabled', value: 'true' }] }),
  );
  await apigw.send(new CreateUsagePlanKeyCommand({ usagePlanId: planId, keyId: ids['in-plan-revoked'], keyType: 'API_KEY' }));
  await apigw.send(new DeleteUsagePlanKeyCommand({ usagePlanId: planId, keyId: ids['out-of-plan'] }));
  await apigw.send(
    new UpdateApiKeyCommand({ apiKey: ids.disabled, patchOperations: [{ op: 'replace', path: '/enabled', value: 'false' }] }),
  );
  twinId =
    (await apigw.send(new CreateApiKeyCommand({ name: keyNameOf('twin'), value: newValue(), enabled: true, customerId: 'twin' }))).id ?? '';
  await secrets.send(new PutSecretValueCommand({ SecretId: secretOf('garbage'), SecretString: 'garbage {"customerId": not json' }));
  // Pending for a moment at the in-process runs' time (20 minutes from now), and not yet at the CLI's.
  await createPendingSecret('pending-new', later().toISOString());
  await createPendingSecret('pending-old', minutesAgo(60));
  const stalledValue = await createPendingSecret('stalled', minutesAgo(60));
  ids.stalled =
    (await apigw.send(new CreateApiKeyCommand({ name: keyNameOf('stalled'), value: stalledValue, enabled: true, customerId: 'stalled' })))
      .id ?? '';
  // Names that are not this deployment's: another prefix, and a name under ours of another shape. Left alone.
  await apigw.send(new CreateApiKeyCommand({ name: `keyprov/other/${PRODUCT}/foreign`, value: newValue(), enabled: true }));
  await apigw.send(new CreateApiKeyCommand({ name: `${PREFIX}not-a-customer-key`, value: newValue(), enabled: true }));

  expectedFindings = [
    `key-without-secret lost-secret ${ids['lost-secret']} fix -`,
    `key-without-secret lost-secret-revoked ${ids['lost-secret-revoked']} fix -`,
    `key-without-secret scheduled ${ids.scheduled} manual -`,
    `secret-without-key lost-key ${ids['lost-key']} manual -`,
    `enabled-key-for-revoked re-enabled ${ids['re-enabled']} fix -`,
    `in-plan-while-revoked in-plan-revoked ${ids['in-plan-revoked']} fix ${planId}`,
    `missing-from-plan out-of-plan ${ids['out-of-plan']} fix ${planId}`,
    `disabled-key-for-active disabled ${ids.disabled} manual -`,
    `duplicate-keys twin ${ids.twin} manual -`,
    'unreadable-secret garbage - manual -',
    'in-progress pending-new - none -',
    'secret-without-key pending-old - manual -',
    `stalled-pending stalled ${ids.stalled} manual -`,
  ].sort();
  // At the real time the keys whose secrets were deleted are seconds old: in progress, information only.
  atRealTime = expectedFindings
    .map((f) => f.replace(/^key-without-secret (lost-secret(?:-revoked)?) (\S+) fix -$/, 'in-progress $1 $2 none -'))
    .sort();
}, 120_000);
afterAll(() => pipeline.close());

describe('pure parts', () => {
  test("names: only <prefix><product or _>/<customer> (and /api-key for secrets) are the deployment's", () => {
    expect(parseOwnedName(PREFIX, `${PREFIX}${PRODUCT}/acme`, 'apiKey')).toEqual({
      customerId: 'acme',
      productCode: PRODUCT,
      apiKeyName: `${PREFIX}${PRODUCT}/acme`,
      secretName: `${PREFIX}${PRODUCT}/acme/api-key`,
    });
    expect(parseOwnedName(PREFIX, `${PREFIX}_/acme/api-key`, 'secret')).toMatchObject({ customerId: 'acme', productCode: null });
    for (const name of [
      `${PREFIX}acme`,
      `${PREFIX}${PRODUCT}/acme/x`,
      `keyprov/other/${PRODUCT}/acme`,
      `${PREFIX}-bad/acme`,
      `${PREFIX}${PRODUCT}/`,
    ]) {
      expect(parseOwnedName(PREFIX, name, 'apiKey')).toBeUndefined();
    }
    expect(parseOwnedName(PREFIX, `${PREFIX}${PRODUCT}/acme`, 'secret')).toBeUndefined();
  });

  test('records: unreadable ones are named without quoting their content', () => {
    const secret = 'Zq8TOPSECRETvalue0123456789abcdefghijklm';
    for (const text of [
      secret,
      `{"value": "${secret}"`,
      `["${secret}"]`,
      `{"value": "${secret}"}`,
      `{"customerId": "c", "value": 7}`,
      '{"customerId": "c"}',
      '{"customerId": "c", "value": "x", "status": "gone"}',
    ]) {
      const parsed = parseRecord(text);
      expect(parsed).toEqual({ unreadable: expect.any(String) });
      expect(JSON.stringify(parsed)).not.toContain(secret);
    }
    expect(parseRecord('{"customerId":"c","status":"revoked"}')).toEqual({ record: { customerId: 'c', status: 'revoked' } });
  });

  test('options: the prefix is required and checked; the usage plans map is checked like USAGE_PLANS', () => {
    expect(() => parsePrefix(undefined)).toThrow(/required/);
    expect(() => parsePrefix('bad prefix')).toThrow(/1 to 128/);
    expect(parsePrefix(PREFIX)).toBe(PREFIX);
    expect(parseUsagePlans(undefined)).toEqual({});
    expect(parseUsagePlans('{"prod1:gold": "abc123"}')).toEqual({ 'prod1:gold': 'abc123' });
    for (const bad of ['{', '[]', '{"prod1": 5}', '{"-x": "abc"}', '{"prod1": "Not-An-Id"}'])
      expect(() => parseUsagePlans(bad)).toThrow(/usage plans/);
  });
});

describe('without --fix', () => {
  test('reports every orphan exactly once, and changes nothing', async () => {
    const before = await snapshot();
    const report = await reconcile(clients(), settings);

    expect(lines(report.findings)).toEqual(expectedFindings);
    expect(report.checked).toEqual({ apiKeys: 14, secrets: 14, usagePlans: 1, ignoredApiKeys: 1, ignoredSecrets: 0 });
    expect(report.fixes).toBeUndefined();
    expect(await snapshot()).toEqual(before);

    const byKind = (kind: string, customerId: string) => report.findings.find((f) => f.kind === kind && f.customerId === customerId);
    expect(byKind('duplicate-keys', 'twin')).toMatchObject({
      apiKeyIds: [ids.twin, twinId].sort(),
      secretName: secretOf('twin'),
      apiKeyName: keyNameOf('twin'),
    });
    expect(byKind('key-without-secret', 'lost-secret')).toMatchObject({
      productCode: PRODUCT,
      status: 'active',
      secretName: secretOf('lost-secret'),
      severity: 'error',
    });
    expect(byKind('key-without-secret', 'lost-secret-revoked')).toMatchObject({ status: 'revoked' });
    expect(byKind('unreadable-secret', 'garbage')).toMatchObject({ problem: 'the secret is not JSON' });
    expect(byKind('secret-without-key', 'lost-key')?.action).toMatch(/delete-secret .*replay/);
    expect(byKind('in-progress', 'pending-new')).toMatchObject({ severity: 'info', status: 'pending' });

    const values = await allValues();
    expectNoValueIn(JSON.stringify(report), values);
    expectNoValueIn(formatReport(report), values);
    // The gathered state keeps values in maps, which serialise as {}.
    expectNoValueIn(JSON.stringify(await gatherState(clients(), settings)), values);
  });

  test('without a usage plans map, plans are not checked', async () => {
    const state = await gatherState(clients(), { ...settings, usagePlans: {} });
    const kinds = compareState(state, { ...settings, usagePlans: {} }).map((f) => f.kind);
    expect(kinds).not.toContain('missing-from-plan');
    expect(kinds).not.toContain('in-plan-while-revoked');
    expect(kinds).toContain('enabled-key-for-revoked');
  });
});

describe('a provisioning running during the gathering', () => {
  test('a key listed too late does not make its secret an orphan: confirmFindings re-reads it', async () => {
    const state = await gatherState(clients(), settings);
    // As if ok-active and stalled had got their keys after GetApiKeys ran.
    const late = { ...state, keys: state.keys.filter((k) => k.id !== ids['ok-active'] && k.id !== ids.stalled) };
    const found = compareState(late, settings);
    expect(lines(found)).toEqual(
      expect.arrayContaining([`secret-without-key ok-active ${ids['ok-active']} manual -`, 'secret-without-key stalled - manual -']),
    );

    expect(lines(await confirmFindings(found, late, clients(), settings))).toEqual(
      expectedFindings.filter((f) => !f.includes(' stalled ')),
    );
  });

  test('a repair re-reads the record first: a re-subscription processed since is not undone', async () => {
    await pipeline.apigw.send(
      new UpdateApiKeyCommand({ apiKey: ids['ok-revoked'], patchOperations: [{ op: 'replace', path: '/enabled', value: 'true' }] }),
    );
    const { state, findings } = await findOrphans(clients(), settings);
    const finding = findings.find((f) => f.kind === 'enabled-key-for-revoked' && f.customerId === 'ok-revoked');
    expect(finding).toBeDefined();
    // The customer subscribes again while the operator looks at the report.
    await pipeline.send(notification('subscribe-success', 'ok-revoked', new Date().toISOString()));
    await pipeline.drain();

    expect(await applyFixes([finding as Finding], state, clients(), settings)).toEqual([
      expect.objectContaining({ kind: 'enabled-key-for-revoked', outcome: 'skipped', detail: 'the record is active now' }),
    ]);
    expect((await pipeline.apigw.send(new GetApiKeyCommand({ apiKey: ids['ok-revoked'] }))).enabled).toBe(true);
    expect(lines((await findOrphans(clients(), settings)).findings)).toEqual(expectedFindings);
  });
});

/** Runs the CLI as a child process (tsx, as `npm run reconcile` does), with only the endpoint it is given. */
function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const { AWS_ENDPOINT_URL: _proxy, ...rest } = process.env;
  // Signed as the operator (the layer's IAM switch takes the principal from the access key id).
  const env = { ...rest, AWS_ACCESS_KEY_ID: 'operator' };
  return new Promise((done) => {
    execFile(
      join(ROOT, 'node_modules', '.bin', 'tsx'),
      ['lib/ops/reconcile/cli.ts', ...args],
      { cwd: ROOT, env, timeout: 50_000 },
      (error, stdout, stderr) => done({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

/** A loopback port nothing listens on (bound, then closed). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((ready) => server.listen(0, '127.0.0.1', ready));
  const { port } = server.address() as AddressInfo;
  await new Promise((closed) => server.close(closed));
  return port;
}

const stackLines = (text: string) => text.split('\n').filter((l) => /^\s+at /.test(l));

describe('the CLI', () => {
  test('--json (prefix and usage plans from the environment): the same findings, exit code 1, no key value, nothing changed', async () => {
    const before = await snapshot();
    const values = await allValues();
    const run = await cli(['--endpoint', pipeline.proxy.endpoint, '--json']);

    expect(run.stderr).toBe('');
    expect(run.code).toBe(1);
    const report = JSON.parse(run.stdout) as ReconcileReport;
    expect(report.prefix).toBe(PREFIX);
    // Run now, not 20 minutes later: the two keys whose secrets were deleted seconds ago are only in progress.
    expect(lines(report.findings)).toEqual(atRealTime);
    expect(report.findings.find((f) => f.customerId === 'lost-secret')).toMatchObject({ severity: 'info', repair: 'none' });
    expectNoValueIn(run.stdout + run.stderr, values);
    expect(await snapshot()).toEqual(before);
  });

  test('--help prints the usage on stdout and exits 0', async () => {
    const run = await cli(['--help']);
    expect(run).toMatchObject({ code: 0, stderr: '' });
    expect(run.stdout).toMatch(/^Usage: npm run reconcile -- /);
    expect(run.stdout).toContain('npm run -s reconcile -- --json | jq');
    expect(run.stdout).toContain('npm start -- --keep');
  });

  test.each([
    ['an unknown flag', ['--bogus'], '--bogus'],
    ['a bad value', ['--usage-plans', '{"prod1": 5}'], '--usage-plans'],
    ['a bad prefix', ['--prefix', 'bad prefix'], '--prefix'],
  ])('%s: one line on stderr naming it, no stack trace, exit 2', async (_, args, named) => {
    const run = await cli(args);
    expect(run.code).toBe(2);
    expect(run.stdout).toBe('');
    expect(run.stderr.trim().split('\n')).toHaveLength(1);
    expect(run.stderr).toMatch(/^reconcile: /);
    expect(run.stderr).toContain(named);
    expect(stackLines(run.stderr)).toEqual([]);
  });

  test('--fix with a usage plan that does not exist (moto lists its keys as empty): refused, naming the plan; nothing changed', async () => {
    const before = await snapshot();
    // Straight to moto, not through the layer (whose GetUsagePlanKeys answers 404 as AWS does).
    const run = await cli([
      '--endpoint',
      process.env.MOTO_ENDPOINT ?? '',
      '--prefix',
      PREFIX,
      '--usage-plans',
      '{"prod4k2j9x8l7":"nosuchplan"}',
      '--fix',
    ]);
    expect(run.code).toBe(2);
    expect(run.stdout).toBe('');
    expect(run.stderr.trim().split('\n')).toHaveLength(1);
    expect(run.stderr).toMatch(/^reconcile: usage plan nosuchplan of the usage plans map .*does not exist/);
    expect(await snapshot()).toEqual(before);
  });

  test('an endpoint that refuses connections: "reconcile failed: <cause>", exit 2, no stack trace', async () => {
    const run = await cli(['--endpoint', `http://127.0.0.1:${await closedPort()}`, '--prefix', PREFIX]);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/^reconcile failed: .*ECONNREFUSED/);
    expect(run.stderr.trim().split('\n')).toHaveLength(1);
    expect(stackLines(run.stderr)).toEqual([]);
  });
});

describe('with --fix', () => {
  test('repairs what is safe, prints each repair, and a second pass reports only what needs a human', async () => {
    const keysBefore = await pipeline.apiKeys();
    const report = await reconcile(clients(), { ...settings, fix: true });

    expect(lines(report.fixes ?? [])).toEqual(
      [
        `key-without-secret lost-secret ${ids['lost-secret']} fixed -`,
        `key-without-secret lost-secret-revoked ${ids['lost-secret-revoked']} fixed -`,
        `enabled-key-for-revoked re-enabled ${ids['re-enabled']} fixed -`,
        `in-plan-while-revoked in-plan-revoked ${ids['in-plan-revoked']} fixed ${planId}`,
        `missing-from-plan out-of-plan ${ids['out-of-plan']} fixed ${planId}`,
      ].sort(),
    );
    const left = expectedFindings.filter((f) => !/ fix /.test(f));
    expect(lines(report.remaining ?? [])).toEqual(left);
    expect(formatReport(report)).toMatch(
      /fixed\s+key-without-secret\s+lost-secret \(prod4k2j9x8l7\): created secret keyprov\/test\/prod4k2j9x8l7\/lost-secret\/api-key/,
    );

    // The repairs, read back from moto.
    const key = keysBefore.find((k) => k.id === ids['lost-secret']);
    // The secret is restored with the key's value; the customer's record, in the record table, was never lost.
    expect(
      JSON.parse((await pipeline.secrets.send(new GetSecretValueCommand({ SecretId: secretOf('lost-secret') }))).SecretString ?? '{}'),
    ).toEqual({ value: key?.value, customerId: 'lost-secret', productCode: PRODUCT, apiKeyName: keyNameOf('lost-secret') });
    expect(await pipeline.record(secretOf('lost-secret'))).toMatchObject({
      customerId: 'lost-secret',
      apiKeyId: ids['lost-secret'],
      usagePlanId: planId,
      status: 'active',
    });
    const tags = (await pipeline.secrets.send(new DescribeSecretCommand({ SecretId: secretOf('lost-secret') }))).Tags ?? [];
    expect(Object.fromEntries(tags.map((t) => [t.Key, t.Value]))).toEqual(key?.tags);
    const revokedKey = keysBefore.find((k) => k.id === ids['lost-secret-revoked']);
    expect(await pipeline.secretJson(secretOf('lost-secret-revoked'))).toMatchObject({
      value: revokedKey?.value,
      apiKeyId: ids['lost-secret-revoked'],
      status: 'revoked',
    });
    expect((await pipeline.apigw.send(new GetApiKeyCommand({ apiKey: ids['re-enabled'] }))).enabled).toBe(false);
    const plan = await planKeyIds();
    expect(plan).toContain(ids['out-of-plan']);
    expect(plan).not.toContain(ids['in-plan-revoked']);
    // Nothing that needs a human was touched.
    expect((await pipeline.apigw.send(new GetApiKeyCommand({ apiKey: ids.disabled }))).enabled).toBe(false);
    expect((await pipeline.apiKeys()).filter((k) => k.name === keyNameOf('twin'))).toHaveLength(2);

    // A second, separate reconcile agrees; nothing fixable is left.
    const again = await findOrphans(clients(), settings);
    expect(lines(again.findings)).toEqual(left);
    expect(again.findings.filter((f) => f.repair === 'fix')).toEqual([]);
    expectNoValueIn(JSON.stringify(report) + formatReport(report), await allValues());
  });

  test('the restored secrets work with the pipeline: a repeat finds the key, a stale subscribe leaves the revoked key disabled', async () => {
    await pipeline.clearCompletions();
    await pipeline.send(
      notification('subscribe-success', 'lost-secret', new Date().toISOString()),
      notification('subscribe-success', 'lost-secret-revoked', minutesAgo(10)),
    );
    await pipeline.drain();

    const events = await pipeline.completionEvents();
    expect(events).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          type: 'api-key.provisioned',
          outcome: 'already-provisioned',
          customerId: 'lost-secret',
          apiKeyId: ids['lost-secret'],
        }),
        expect.objectContaining({ type: 'api-key.notification-ignored', reason: 'stale', customerId: 'lost-secret-revoked' }),
      ]),
    );
    expect((await pipeline.apiKeys()).filter((k) => k.customerId === 'lost-secret' || k.customerId === 'lost-secret-revoked')).toHaveLength(
      2,
    );
    expect((await pipeline.apigw.send(new GetApiKeyCommand({ apiKey: ids['lost-secret-revoked'] }))).enabled).toBe(false);
  });
});

/** A key and, with `status`, its secret holding the record lib/customer-key/provision.ts writes once the key exists. */
async function handMade(prefix: string, customerId: string, key: { enabled: boolean; status?: 'active' | 'revoked' }): Promise<string> {
  const value = newValue();
  const name = apiKeyName(prefix, customerId, PRODUCT);
  const id = (await pipeline.apigw.send(new CreateApiKeyCommand({ name, value, enabled: key.enabled, customerId }))).id ?? '';
  if (key.status) {
    // As the pipeline keeps it: the value in the secret, the record in the record table.
    const names = { customerId, productCode: PRODUCT, apiKeyName: name };
    await pipeline.secrets.send(
      new CreateSecretCommand({ Name: secretName(prefix, customerId, PRODUCT), SecretString: JSON.stringify({ value, ...names }) }),
    );
    const record = { ...names, plan: null, createdAt: new Date().toISOString(), apiKeyId: id, status: key.status };
    await new DynamoDBClient({ endpoint: process.env.MOTO_ENDPOINT }).send(
      new PutItemCommand({
        TableName: KEY_RECORDS_TABLE_NAME,
        Item: {
          pk: { S: `${PRODUCT}/${customerId}` },
          version: { N: '1' },
          status: { S: key.status },
          record: { S: JSON.stringify(record) },
        },
      }),
    );
  }
  return id;
}

describe('a listing that lags (ListSecrets: "might not reflect changes from the last five minutes") and young keys', () => {
  const LAG = 'keyprov/lag/';
  const lagSettings: ReconcileSettings = { prefix: LAG, usagePlans: {} };
  const lagIds: Record<string, string> = {};
  const hidden = secretName(LAG, 'listed-late', PRODUCT);
  /** The real stores, except that ListSecrets does not show these secrets yet. */
  const lagging = (...notListed: string[]): ReconcileStores => {
    const real = clients('harness');
    return {
      ...real,
      secrets: {
        ...real.secrets,
        listSecrets: async (prefix) => (await real.secrets.listSecrets(prefix)).filter((s) => !notListed.includes(s.name)),
      },
    };
  };

  beforeAll(async () => {
    lagIds.late = await handMade(LAG, 'listed-late', { enabled: true, status: 'active' });
    lagIds.young = await handMade(LAG, 'young-orphan', { enabled: true });
  });

  test('young keys without a listed secret: read by name; found, nothing is reported; not found, information only; never fixed', async () => {
    const before = await snapshot();
    const report = await reconcile(lagging(hidden), { ...lagSettings, fix: true });

    expect(lines(report.findings)).toEqual([`in-progress young-orphan ${lagIds.young} none -`]);
    expect(report.findings[0]).toMatchObject({ severity: 'info', problem: expect.stringMatching(/not readable yet/) });
    expect(report.fixes).toEqual([]);
    expect(lines(report.remaining ?? [])).toEqual([`in-progress young-orphan ${lagIds.young} none -`]);
    expect(exitCode(report)).toBe(0);
    expect(await snapshot()).toEqual(before);
  });

  test('as if 20 minutes later: the lag alone would fake an orphan, GetSecretValue clears it, only the real orphan is restored', async () => {
    const old: ReconcileSettings = { ...lagSettings, now: later };
    const state = await gatherState(lagging(hidden), old);
    const compared = compareState(state, old);
    expect(lines(compared)).toEqual([
      `key-without-secret listed-late ${lagIds.late} fix -`,
      `key-without-secret young-orphan ${lagIds.young} fix -`,
    ]);
    expect(lines(await confirmFindings(compared, state, lagging(hidden), old))).toEqual([
      `key-without-secret young-orphan ${lagIds.young} fix -`,
    ]);

    const lateBefore = await pipeline.secretJson(hidden);
    const report = await reconcile(lagging(hidden), { ...old, fix: true });
    expect(lines(report.fixes ?? [])).toEqual([`key-without-secret young-orphan ${lagIds.young} fixed -`]);
    expect(report.remaining).toEqual([]);
    expect(exitCode(report)).toBe(0);
    expect(await pipeline.secretJson(hidden)).toEqual(lateBefore);
    expect(await pipeline.secretJson(secretName(LAG, 'young-orphan', PRODUCT))).toMatchObject({ apiKeyId: lagIds.young, status: 'active' });
  });
});

describe('a repair that does not take is never reported as fixed', () => {
  const STUCK = 'keyprov/stuck/';
  const stuckSettings: ReconcileSettings = { prefix: STUCK, usagePlans: {} };
  let stuckId: string;
  const enabled = async (id: string) => (await pipeline.apigw.send(new GetApiKeyCommand({ apiKey: id }))).enabled;
  /** The real stores, except that UpdateApiKey is accepted and ignored; with `lying`, GetApiKey also says it took. */
  const ignoringUpdates = (lying = false): ReconcileStores => {
    const real = clients('harness');
    const claimDisabled = async (id: string) => {
      const key = await real.apiKeys.getApiKey(id);
      return key && { ...key, enabled: false };
    };
    return { ...real, apiKeys: { ...real.apiKeys, setEnabled: async () => undefined, ...(lying && { getApiKey: claimDisabled }) } };
  };

  beforeAll(async () => {
    stuckId = await handMade(STUCK, 'stuck-enabled', { enabled: true, status: 'revoked' });
  });

  test('each repair is read back: a change that does not show is not-confirmed', async () => {
    const { state, findings } = await findOrphans(clients('harness'), stuckSettings);
    expect(lines(findings)).toEqual([`enabled-key-for-revoked stuck-enabled ${stuckId} fix -`]);

    expect(await applyFixes(findings, state, ignoringUpdates(), stuckSettings)).toEqual([
      expect.objectContaining({ outcome: 'not-confirmed', detail: expect.stringMatching(/still reads enabled/) }),
    ]);
    expect(await enabled(stuckId)).toBe(true);
  });

  test('the second pass overrules a read-back that says done: not-confirmed, still remaining, exit code 1', async () => {
    const report = await reconcile(ignoringUpdates(true), { ...stuckSettings, fix: true });

    expect(lines(report.fixes ?? [])).toEqual([`enabled-key-for-revoked stuck-enabled ${stuckId} not-confirmed -`]);
    expect(report.fixes?.[0]?.detail).toMatch(/second pass still finds it/);
    expect(lines(report.remaining ?? [])).toEqual([`enabled-key-for-revoked stuck-enabled ${stuckId} fix -`]);
    expect(exitCode(report)).toBe(1);
    expect(formatReport(report)).toMatch(/^not-confirmed\s+enabled-key-for-revoked\s+stuck-enabled/m);
  });

  test('with the real stores the same repair is fixed, read back and gone on the second pass', async () => {
    const report = await reconcile(clients('harness'), { ...stuckSettings, fix: true });

    expect(lines(report.fixes ?? [])).toEqual([`enabled-key-for-revoked stuck-enabled ${stuckId} fixed -`]);
    expect(report.remaining).toEqual([]);
    expect(exitCode(report)).toBe(0);
    expect(await enabled(stuckId)).toBe(false);
  });
});
