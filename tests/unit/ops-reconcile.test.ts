/**
 * reconcile's confirming and repairing steps against in-memory stores (no network): a listing that lags, a read that
 * fails, repairs whose effect does not show.
 */
import type { ListedApiKey } from '../../lib/aws/api-gateway.js';
import { UsageError } from '../../lib/command-line.js';
import { apiKeyName, secretName } from '../../lib/customer-key/naming.js';
import { confirmFindings } from '../../lib/ops/reconcile/confirm.js';
import { compareState } from '../../lib/ops/reconcile/findings.js';
import { applyFixes } from '../../lib/ops/reconcile/fixes.js';
import type { Finding, ReconcileSettings } from '../../lib/ops/reconcile/model.js';
import { checkAgainst, findOrphans, reconcile } from '../../lib/ops/reconcile/reconcile.js';
import { exitCode } from '../../lib/ops/reconcile/report.js';
import { gatherState } from '../../lib/ops/reconcile/state.js';
import type { ReconcileStores } from '../../lib/ops/reconcile/stores.js';

const PREFIX = 'keyprov/unit/';
const PRODUCT = 'prod1';
const PLAN = 'plan1';
const NOW = new Date('2026-01-01T12:00:00Z');
const settings: ReconcileSettings = { prefix: PREFIX, usagePlans: { [PRODUCT]: PLAN }, now: () => NOW };
const minutesBefore = (m: number) => new Date(NOW.getTime() - m * 60_000);

/** A deployment in memory, with switches for the failures under test. */
function world() {
  const keys = new Map<string, ListedApiKey & { value: string }>();
  const secrets = new Map<string, string>();
  const plan = new Set<string>();
  const faults = {
    /** Secret names ListSecrets does not show yet. */
    notListed: new Set<string>(),
    /** Secret names GetSecretValue fails on. */
    unreadable: new Set<string>(),
    /** Writes that answer success and change nothing. */
    lostWrites: false,
  };
  const stores: ReconcileStores = {
    apiKeys: {
      listApiKeys: async (prefix) => [...keys.values()].filter((k) => k.name.startsWith(prefix)).map((k) => ({ ...k })),
      getApiKey: async (id) => {
        const key = keys.get(id);
        return key && { ...key, value: undefined };
      },
      usagePlanStages: async (planId) => (planId === PLAN ? ['api1/prod'] : undefined),
      usagePlanKeyIds: async (planId, nameQuery) =>
        planId === PLAN ? new Set([...plan].filter((id) => !nameQuery || keys.get(id)?.name.startsWith(nameQuery))) : undefined,
      findApiKey: async (name, value) => [...keys.values()].find((k) => k.name === name && k.value === value)?.id,
      setEnabled: async (id, enabled) => {
        const key = keys.get(id);
        if (key && !faults.lostWrites) key.enabled = enabled;
      },
      addToUsagePlan: async (_planId, id) => {
        if (!faults.lostWrites) plan.add(id);
      },
      removeFromUsagePlan: async (_planId, id) => {
        if (!faults.lostWrites) plan.delete(id);
      },
    },
    secrets: {
      listSecrets: async (prefix) =>
        [...secrets.keys()]
          .filter((name) => name.startsWith(prefix) && !faults.notListed.has(name))
          .map((name) => ({ name, arn: `arn:${name}` })),
      getSecret: async (name) => {
        if (faults.unreadable.has(name)) throw new Error(`GetSecretValue was refused: AccessDeniedException: ${name}`);
        const secretString = secrets.get(name);
        return secretString === undefined ? undefined : { arn: `arn:${name}`, name, secretString };
      },
      createSecret: async (secret) => {
        if (secrets.has(secret.name)) return undefined;
        if (!faults.lostWrites) secrets.set(secret.name, secret.secretString);
        return { arn: `arn:${secret.name}`, name: secret.name, secretString: secret.secretString };
      },
      putSecretValue: async (name, secretString) => {
        if (!faults.lostWrites) secrets.set(name, secretString);
      },
    },
  };

  /** A key, in the plan when enabled, and (with `status`) its secret recording it. */
  const customer = (id: string, options: { createdMinutesAgo: number; enabled?: boolean; status?: 'active' | 'revoked' }) => {
    const name = apiKeyName(PREFIX, id, PRODUCT);
    const value = `value-of-${id}-0123456789abcdef`;
    const enabled = options.enabled ?? true;
    keys.set(`k-${id}`, { id: `k-${id}`, name, value, enabled, tags: {}, createdDate: minutesBefore(options.createdMinutesAgo) });
    if (enabled) plan.add(`k-${id}`);
    if (options.status) {
      const record = { value, customerId: id, productCode: PRODUCT, plan: null, apiKeyName: name, createdAt: NOW.toISOString() };
      secrets.set(
        secretName(PREFIX, id, PRODUCT),
        JSON.stringify({ ...record, apiKeyId: `k-${id}`, usagePlanId: PLAN, status: options.status }),
      );
    }
    return secretName(PREFIX, id, PRODUCT);
  };
  return { stores, faults, keys, secrets, plan, customer };
}

const summary = (findings: Array<Pick<Finding, 'kind' | 'customerId' | 'severity' | 'repair'>>) =>
  findings.map((f) => `${f.kind} ${f.customerId} ${f.severity} ${f.repair}`);

describe('a key whose secret is not listed', () => {
  test('younger than the grace: information only, never a repair', async () => {
    const w = world();
    w.customer('young', { createdMinutesAgo: 2 });
    const { findings } = await findOrphans(w.stores, settings);
    expect(summary(findings)).toEqual(['in-progress young info none']);
    expect(await applyFixes(findings, await gatherState(w.stores, settings), w.stores, settings)).toEqual([]);
    expect(w.secrets.size).toBe(0);
  });

  test('ListSecrets lags: GetSecretValue finds it, so the customer is judged by the real record', async () => {
    const w = world();
    // Old enough to be an orphan, if the listing were right; the record says revoked, the key is enabled.
    w.faults.notListed.add(w.customer('lagging', { createdMinutesAgo: 60, status: 'revoked' }));
    const state = await gatherState(w.stores, settings);
    expect(summary(compareState(state, settings))).toEqual(['key-without-secret lagging error fix']);

    const confirmed = await confirmFindings(compareState(state, settings), state, w.stores, settings);
    expect(summary(confirmed)).toEqual(['enabled-key-for-revoked lagging error fix', 'in-plan-while-revoked lagging error fix']);
    // The restore is never attempted; the confirmed repairs are.
    const fixes = await applyFixes(confirmed, state, w.stores, settings);
    expect(fixes.map((f) => `${f.kind} ${f.outcome}`)).toEqual(['enabled-key-for-revoked fixed', 'in-plan-while-revoked fixed']);
  });

  test('a young key whose secret GetSecretValue finds: nothing is reported', async () => {
    const w = world();
    w.faults.notListed.add(w.customer('just-made', { createdMinutesAgo: 1, status: 'active' }));
    expect((await findOrphans(w.stores, settings)).findings).toEqual([]);
  });

  test('GetSecretValue fails: the secret may exist, so it is unreadable (a human looks), never restored', async () => {
    const w = world();
    const name = w.customer('denied', { createdMinutesAgo: 60, status: 'active' });
    w.faults.notListed.add(name);
    w.faults.unreadable.add(name);
    const { findings } = await findOrphans(w.stores, settings);
    expect(summary(findings)).toEqual(['unreadable-secret denied error manual']);
    expect(findings[0]?.problem).toMatch(/^GetSecretValue failed: .*AccessDeniedException/);
  });

  test('not found by name either, and old: key-without-secret, restored and read back', async () => {
    const w = world();
    w.customer('orphan', { createdMinutesAgo: 60 });
    const report = await reconcile(w.stores, { ...settings, fix: true });
    expect(summary(report.findings)).toEqual(['key-without-secret orphan error fix']);
    expect(report.fixes?.map((f) => f.outcome)).toEqual(['fixed']);
    expect(report.remaining).toEqual([]);
    expect(exitCode(report)).toBe(0);
  });
});

describe('a repair whose effect does not show is not fixed', () => {
  test.each([
    [
      'a restored secret',
      (w: ReturnType<typeof world>) => w.customer('orphan', { createdMinutesAgo: 60 }),
      /does not hold the key's value, or the record not the key/,
    ],
    [
      'a disabled key',
      (w: ReturnType<typeof world>) => {
        w.customer('revoked', { createdMinutesAgo: 60, status: 'revoked' });
        w.plan.clear();
      },
      /still reads enabled/,
    ],
    [
      'a key put in its plan',
      (w: ReturnType<typeof world>) => {
        w.customer('active', { createdMinutesAgo: 60, status: 'active' });
        w.plan.clear();
      },
      /is not listed in usage plan plan1/,
    ],
  ])('%s: not-confirmed, still remaining, exit code 1', async (_, arrange, detail) => {
    const w = world();
    arrange(w);
    w.faults.lostWrites = true;
    const report = await reconcile(w.stores, { ...settings, fix: true });

    expect(report.fixes).toEqual([expect.objectContaining({ outcome: 'not-confirmed', detail: expect.stringMatching(detail) })]);
    expect(summary(report.remaining ?? [])).toEqual(summary(report.findings));
    expect(exitCode(report)).toBe(1);
  });

  test('the second pass overrules a fix it still finds', () => {
    const finding = {
      kind: 'missing-from-plan',
      customerId: 'c',
      productCode: PRODUCT,
      secretName: 's',
      apiKeyId: 'k',
      usagePlanId: PLAN,
    } as const;
    const fixed = { ...finding, outcome: 'fixed' as const, detail: 'added key k to usage plan plan1' };
    const other = { ...fixed, apiKeyId: 'k2' };
    const remaining = [{ ...finding, apiKeyName: 'n', severity: 'error', repair: 'fix', problem: '', action: '' } as Finding];

    expect(checkAgainst([fixed, other], remaining)).toEqual([
      { ...fixed, outcome: 'not-confirmed', detail: expect.stringMatching(/second pass still finds it/) },
      other,
    ]);
  });
});

describe('a usage plan the map names that does not exist', () => {
  test('--fix stops before any repair, naming the plan (GetUsagePlan first: moto lists an unknown plan as empty)', async () => {
    const w = world();
    w.customer('acme', { createdMinutesAgo: 60, status: 'active' });
    const added: string[] = [];
    const stores: ReconcileStores = {
      ...w.stores,
      apiKeys: {
        ...w.stores.apiKeys,
        // moto's answer for an unknown plan: an empty list, not a 404.
        usagePlanKeyIds: async () => new Set<string>(),
        addToUsagePlan: async (planId, id) => {
          added.push(`${planId}/${id}`);
        },
      },
    };
    const run = reconcile(stores, { ...settings, usagePlans: { [PRODUCT]: 'nosuchplan' }, fix: true });
    await expect(run).rejects.toThrow(UsageError);
    await expect(run).rejects.toThrow(/usage plan nosuchplan .*does not exist/);
    expect(added).toEqual([]);
  });
});
