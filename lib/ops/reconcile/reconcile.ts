/**
 * Reconciliation: compares the API keys this deployment owns (every key named `<NAME_PREFIX><product>/<customer>`)
 * with their secrets and the subscription state those secrets record, and reports what disagrees. Used by
 * `npm run reconcile` (lib/cli/reconcile.ts); every function here prints nothing.
 *
 * Three steps, each usable on its own:
 * 1. {@link gatherState}: list the keys (GetApiKeys by name prefix, with values), the secrets (ListSecrets by name
 *    prefix, then GetSecretValue each) and the members of every configured usage plan (GetUsagePlanKeys).
 * 2. {@link compareState} → a list of {@link Finding}s (pure), then {@link confirmFindings}, which re-reads the few
 *    findings a concurrent provisioning could fake before an operator acts on them.
 * 3. {@link applyFixes}: repairs the findings that are safe to repair, each after re-reading what it is about.
 *
 * Key values never leave this module: the gathered state keeps them in maps (which `JSON.stringify` shows as `{}`),
 * findings and fix results carry ids and names only.
 */
import {
  type APIGatewayClient,
  GetApiKeyCommand,
  GetApiKeysCommand,
  GetUsagePlanKeysCommand,
  NotFoundException,
} from '@aws-sdk/client-api-gateway';
import { ListSecretsCommand, type SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import pLimit from 'p-limit';
import { apiGatewayAdapter } from '../../aws/api-gateway.js';
import { type StoredSecret, secretsManagerAdapter } from '../../aws/secrets-manager.js';
import { parseUsagePlans as parseConfiguredUsagePlans } from '../../config.js';
import { CUSTOMER_ID_PATTERN, NO_PRODUCT, PRODUCT_CODE_PATTERN } from '../../naming.js';
import { type KeyStatus, type SecretRecord, usagePlanFor } from '../../provision.js';

/** A pending record younger than this is a provisioning in progress, not an orphan. */
export const DEFAULT_PENDING_GRACE_MS = 15 * 60_000;
/** Longest page of GetApiKeys and GetUsagePlanKeys. */
const API_GATEWAY_PAGE = 500;
/** Longest page of ListSecrets. */
const SECRETS_PAGE = 100;
/** GetSecretValue calls in flight at once (the quota is 10,000/s; API Gateway calls are never run in parallel). */
const READ_CONCURRENCY = 8;
const SECRET_SUFFIX = '/api-key';

/** Same rule as NAME_PREFIX in lib/config.ts. */
export const NAME_PREFIX_PATTERN = /^[A-Za-z0-9/_+=.@-]{1,128}$/;

export interface ReconcileClients {
  apigw: APIGatewayClient;
  secrets: SecretsManagerClient;
}

export interface ReconcileSettings {
  /** NAME_PREFIX of the deployment: the keys and secrets it owns. */
  prefix: string;
  /** USAGE_PLANS of the deployment, parsed (`{}`: keys get no plan, plans are not checked). */
  usagePlans: Record<string, string>;
  /** KMS key of restored secrets (SECRET_KMS_KEY_ID); Secrets Manager's default key when absent. */
  kmsKeyId?: string;
  /** See {@link DEFAULT_PENDING_GRACE_MS}. */
  pendingGraceMs?: number;
  now?: () => Date;
}

/** Where a name of this deployment points: `<prefix><product or _>/<customer>`. */
export interface OwnedName {
  customerId: string;
  /** null for `_` (no product). */
  productCode: string | null;
  apiKeyName: string;
  secretName: string;
}

/** An API key named like one of this deployment's. Its value is in {@link ReconcileState.keyValues}, not here. */
export interface OwnedKey extends OwnedName {
  id: string;
  enabled: boolean;
  tags: Record<string, string>;
  createdDate?: Date;
  lastUpdatedDate?: Date;
}

/** The record of a secret without its value ({@link ReconcileState.secretValues} holds that). */
export type RecordWithoutValue = Omit<SecretRecord, 'value'>;

/** A secret named like one of this deployment's. */
export interface OwnedSecret extends OwnedName {
  arn: string;
  /** Set when the secret is scheduled for deletion (it is then not read). */
  deletedDate?: Date;
  record?: RecordWithoutValue;
  /** Why the secret could not be read as a record (never quotes its content). */
  unreadable?: string;
}

export interface ReconcileState {
  prefix: string;
  gatheredAt: Date;
  keys: OwnedKey[];
  secrets: OwnedSecret[];
  /** Key ids in each configured usage plan. */
  planMembers: Map<string, Set<string>>;
  /** key id → value. Sensitive: never print. */
  keyValues: Map<string, string>;
  /** secret name → the record's key value. Sensitive: never print. */
  secretValues: Map<string, string>;
  /** Names under the prefix that are not of this deployment's shape (left alone). */
  ignored: { apiKeys: string[]; secrets: string[] };
}

export type FindingKind =
  | 'key-without-secret'
  | 'secret-without-key'
  | 'enabled-key-for-revoked'
  | 'disabled-key-for-active'
  | 'missing-from-plan'
  | 'in-plan-while-revoked'
  | 'duplicate-keys'
  | 'unreadable-secret'
  | 'stalled-pending'
  | 'in-progress';

/** `fix`: `--fix` repairs it; `manual`: needs a human (the action says what to do); `none`: information only. */
export type Repair = 'fix' | 'manual' | 'none';

export interface Finding {
  kind: FindingKind;
  severity: 'error' | 'info';
  repair: Repair;
  customerId: string;
  productCode: string | null;
  apiKeyName: string;
  secretName: string;
  apiKeyId?: string;
  /** duplicate-keys: every key of the name. */
  apiKeyIds?: string[];
  usagePlanId?: string;
  /** The record's status (`pending`: no status and no key id yet). */
  status?: KeyStatus | 'pending';
  /** What is wrong. */
  problem: string;
  /** What `--fix` does, or what the operator can do. */
  action: string;
}

export interface FixResult {
  kind: FindingKind;
  customerId: string;
  productCode: string | null;
  secretName: string;
  apiKeyId?: string;
  usagePlanId?: string;
  /** `skipped`: the finding no longer held when re-read just before the repair. */
  outcome: 'fixed' | 'skipped' | 'failed';
  /** What was done, or why not. */
  detail: string;
}

/**
 * Reads a name of this deployment: `<prefix><product or _>/<customer>` for a key, the same plus `/api-key` for a
 * secret. Undefined for anything else under the prefix (e.g. another deployment whose prefix starts like this one).
 */
export function parseOwnedName(prefix: string, name: string, kind: 'apiKey' | 'secret'): OwnedName | undefined {
  if (!name.startsWith(prefix)) return undefined;
  let rest = name.slice(prefix.length);
  if (kind === 'secret') {
    if (!rest.endsWith(SECRET_SUFFIX)) return undefined;
    rest = rest.slice(0, -SECRET_SUFFIX.length);
  }
  const slash = rest.indexOf('/');
  if (slash < 0) return undefined;
  const product = rest.slice(0, slash);
  const customerId = rest.slice(slash + 1);
  if (!CUSTOMER_ID_PATTERN.test(customerId) || (product !== NO_PRODUCT && !PRODUCT_CODE_PATTERN.test(product))) return undefined;
  const apiKeyName = `${prefix}${rest}`;
  return { customerId, productCode: product === NO_PRODUCT ? null : product, apiKeyName, secretName: `${apiKeyName}${SECRET_SUFFIX}` };
}

/** Validates `--prefix` / NAME_PREFIX with the rule of lib/config.ts. Throws with a message naming the option. */
export function parsePrefix(raw: string | undefined): string {
  if (raw === undefined || raw === '') throw new Error('the name prefix is required: --prefix PREFIX, or NAME_PREFIX in the environment');
  if (!NAME_PREFIX_PATTERN.test(raw)) throw new Error('the name prefix must be 1 to 128 characters of A-Z a-z 0-9 / _ + = . @ -');
  return raw;
}

/** Parses `--usage-plans` / USAGE_PLANS with the function's own rules (lib/config.ts). */
export function parseUsagePlans(raw: string | undefined): Record<string, string> {
  try {
    return parseConfiguredUsagePlans(raw);
  } catch (error) {
    throw new Error(`the usage plans: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/** Runs `work` over `items` with at most `limit` in flight; results in input order. */
function mapLimit<T, R>(items: T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const slot = pLimit(limit);
  return Promise.all(items.map((item) => slot(() => work(item))));
}

const STATUSES = new Set<string>(['active', 'revoked', 'failed']);

/**
 * Reads a secret's JSON as a {@link SecretRecord}, or says why it cannot be (without quoting the content: V8's
 * JSON.parse messages quote the input, so they are not used). A pending record must hold a value.
 */
export function parseRecord(secretString: string): { record: SecretRecord } | { unreadable: string } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(secretString);
  } catch {
    return { unreadable: 'the secret is not JSON' };
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return { unreadable: 'the secret is not a JSON object' };
  const r = parsed as Record<string, unknown>;
  if (typeof r.customerId !== 'string') return { unreadable: 'the record has no customerId' };
  if (r.value !== undefined && typeof r.value !== 'string') return { unreadable: "the record's value is not a string" };
  if (r.apiKeyId !== undefined && typeof r.apiKeyId !== 'string') return { unreadable: "the record's apiKeyId is not a string" };
  if (r.status !== undefined && !(typeof r.status === 'string' && STATUSES.has(r.status)))
    return { unreadable: "the record's status is not active, revoked or failed" };
  if (r.status === undefined && r.apiKeyId === undefined && r.value === undefined)
    return { unreadable: 'the pending record holds no key value' };
  return { record: parsed as SecretRecord };
}

/** Every key whose name starts with the prefix, with values: GetApiKeys pages of 500 (`position`). */
async function listApiKeys(apigw: APIGatewayClient, prefix: string) {
  const items = [];
  let position: string | undefined;
  do {
    const page = await apigw.send(new GetApiKeysCommand({ nameQuery: prefix, includeValues: true, limit: API_GATEWAY_PAGE, position }));
    items.push(...(page.items ?? []));
    position = page.position && page.position !== position ? page.position : undefined;
  } while (position);
  return items;
}

/** Every secret whose name starts with the prefix, those scheduled for deletion included: ListSecrets pages of 100. */
async function listSecrets(secrets: SecretsManagerClient, prefix: string) {
  const list = [];
  let token: string | undefined;
  do {
    const page = await secrets.send(
      new ListSecretsCommand({
        Filters: [{ Key: 'name', Values: [prefix] }],
        IncludePlannedDeletion: true,
        MaxResults: SECRETS_PAGE,
        NextToken: token,
      }),
    );
    list.push(...(page.SecretList ?? []));
    token = page.NextToken;
  } while (token);
  return list;
}

/** The key ids of a usage plan: GetUsagePlanKeys pages of 500. Throws when the plan does not exist. */
async function listPlanMembers(apigw: APIGatewayClient, usagePlanId: string): Promise<Set<string>> {
  const ids = new Set<string>();
  let position: string | undefined;
  try {
    do {
      const page = await apigw.send(new GetUsagePlanKeysCommand({ usagePlanId, limit: API_GATEWAY_PAGE, position }));
      for (const item of page.items ?? []) if (item.id) ids.add(item.id);
      position = page.position && page.position !== position ? page.position : undefined;
    } while (position);
  } catch (error) {
    if (error instanceof NotFoundException) throw new Error(`usage plan ${usagePlanId} of the usage plans map does not exist`);
    throw error;
  }
  return ids;
}

/**
 * Reads what the deployment owns. Keys are listed first, then secrets: a key always has its secret before it exists
 * (lib/provision.ts), so a key listed earlier than the secrets cannot look orphaned because it is new.
 * API Gateway calls: one GetApiKeys per 500 keys, one GetUsagePlanKeys per plan and 500 members; Secrets Manager:
 * one ListSecrets per 100 secrets and one GetSecretValue per secret.
 */
export async function gatherState(clients: ReconcileClients, settings: ReconcileSettings): Promise<ReconcileState> {
  const { prefix } = settings;
  const gatheredAt = (settings.now ?? (() => new Date()))();
  const keyValues = new Map<string, string>();
  const secretValues = new Map<string, string>();
  const ignored = { apiKeys: [] as string[], secrets: [] as string[] };

  const keys: OwnedKey[] = [];
  for (const item of await listApiKeys(clients.apigw, prefix)) {
    const owned = item.id && item.name ? parseOwnedName(prefix, item.name, 'apiKey') : undefined;
    if (!owned || !item.id) {
      if (item.name?.startsWith(prefix)) ignored.apiKeys.push(item.name);
      continue;
    }
    if (item.value) keyValues.set(item.id, item.value);
    keys.push({
      ...owned,
      id: item.id,
      enabled: item.enabled === true,
      tags: item.tags ?? {},
      createdDate: item.createdDate,
      lastUpdatedDate: item.lastUpdatedDate,
    });
  }

  const planMembers = new Map<string, Set<string>>();
  for (const planId of new Set(Object.values(settings.usagePlans))) planMembers.set(planId, await listPlanMembers(clients.apigw, planId));

  const listed: Array<OwnedName & { arn: string; deletedDate?: Date }> = [];
  for (const entry of await listSecrets(clients.secrets, prefix)) {
    const owned = entry.Name ? parseOwnedName(prefix, entry.Name, 'secret') : undefined;
    if (!owned) {
      if (entry.Name?.startsWith(prefix)) ignored.secrets.push(entry.Name);
      continue;
    }
    listed.push({ ...owned, arn: entry.ARN ?? '', deletedDate: entry.DeletedDate });
  }
  const store = secretsManagerAdapter(clients.secrets);
  const read = await mapLimit(listed, READ_CONCURRENCY, async (entry): Promise<OwnedSecret | undefined> => {
    if (entry.deletedDate) return entry;
    let stored: StoredSecret | undefined;
    try {
      stored = await store.getSecret(entry.secretName);
    } catch (error) {
      // Service messages name the secret, never its value.
      return { ...entry, unreadable: `GetSecretValue failed: ${error instanceof Error ? error.message : String(error)}` };
    }
    if (!stored) return undefined; // deleted since it was listed
    const parsed = parseRecord(stored.secretString);
    if ('unreadable' in parsed) return { ...entry, unreadable: parsed.unreadable };
    const { value, ...record } = parsed.record;
    if (value !== undefined) secretValues.set(entry.secretName, value);
    return { ...entry, record };
  });
  const secrets = read.filter((s): s is OwnedSecret => s !== undefined);
  return { prefix, gatheredAt, keys, secrets, planMembers, keyValues, secretValues, ignored };
}

/** The record's state: `pending` until it has a key id (an id without a status is active, as lib/provision.ts reads it). */
export function recordStatus(record: RecordWithoutValue): KeyStatus | 'pending' {
  return record.status ?? (record.apiKeyId ? 'active' : 'pending');
}

/** The usage plan the record's product (and tier) should be in, or undefined (no map, no product, product outside the map). */
function expectedPlan(usagePlans: Record<string, string>, record: Pick<SecretRecord, 'productCode' | 'plan'>): string | undefined {
  try {
    return usagePlanFor(usagePlans, record.productCode ?? undefined, record.plan ?? undefined);
  } catch {
    return undefined;
  }
}

/** The configured plans the key is in. */
const plansOf = (state: ReconcileState, keyId: string) =>
  [...state.planMembers].filter(([, ids]) => ids.has(keyId)).map(([planId]) => planId);

/**
 * The record a secret restored from a key gets: the key's value and id; `active` for an enabled key, with no
 * `lastEventAt` (nothing is known about the order of past notifications, so every later one applies: an unsubscribe
 * revokes, a subscribe finds the key); `revoked` for a disabled one, with `lastEventAt` = the key's last update
 * (when it was disabled), so a stale subscribe replayed later cannot re-enable it but a newer one can. The tier is
 * unknown (`plan: null`); `usagePlanId` is the product's plan, else a configured plan the key is in.
 */
export function restoredRecord(state: ReconcileState, key: OwnedKey, settings: ReconcileSettings): RecordWithoutValue {
  const usagePlanId = expectedPlan(settings.usagePlans, { productCode: key.productCode, plan: null }) ?? plansOf(state, key.id)[0];
  return {
    customerId: key.customerId,
    productCode: key.productCode,
    plan: null,
    apiKeyName: key.apiKeyName,
    createdAt: (key.createdDate ?? state.gatheredAt).toISOString(),
    apiKeyId: key.id,
    ...(key.enabled && usagePlanId ? { usagePlanId } : {}),
    status: key.enabled ? 'active' : 'revoked',
    ...(key.enabled ? {} : { lastEventAt: (key.lastUpdatedDate ?? state.gatheredAt).toISOString() }),
  };
}

const minutes = (ms: number) => `${Math.round(ms / 60_000)} min`;

/** The checks of one record against its key and the plans (shared by real and to-be-restored records). */
function recordFindings(
  state: ReconcileState,
  settings: ReconcileSettings,
  name: OwnedName,
  record: RecordWithoutValue,
  restored: boolean,
): Finding[] {
  const findings: Finding[] = [];
  const status = recordStatus(record);
  const base = {
    customerId: name.customerId,
    productCode: name.productCode,
    apiKeyName: name.apiKeyName,
    secretName: name.secretName,
    status,
  };
  const keysById = new Map(state.keys.map((k) => [k.id, k]));
  const recordedValue = state.secretValues.get(name.secretName);
  const byValue = recordedValue === undefined ? undefined : state.keys.find((k) => state.keyValues.get(k.id) === recordedValue);
  const key = record.apiKeyId ? keysById.get(record.apiKeyId) : byValue;
  const after = restored ? ' (once the secret is restored)' : '';

  if (status === 'pending') {
    const ageMs = state.gatheredAt.getTime() - Date.parse(record.createdAt);
    const grace = settings.pendingGraceMs ?? DEFAULT_PENDING_GRACE_MS;
    if (!(ageMs >= grace)) {
      findings.push({
        ...base,
        kind: 'in-progress',
        severity: 'info',
        repair: 'none',
        apiKeyId: key?.id,
        problem: `pending for ${minutes(Math.max(0, ageMs))}: a provisioning in progress`,
        action: `none; reported as an orphan if still pending after ${minutes(grace)}`,
      });
    } else if (key) {
      findings.push({
        ...base,
        kind: 'stalled-pending',
        severity: 'error',
        repair: 'manual',
        apiKeyId: key.id,
        problem: `pending for ${minutes(ageMs)}: the key with the recorded value exists, but its id was never recorded (the delivery stopped after CreateApiKey and was not retried)`,
        action: "replay the customer's signup or subscribe-success: it finds the key by value, adds it to its plan and records it",
      });
    } else {
      findings.push({
        ...base,
        kind: 'secret-without-key',
        severity: 'error',
        repair: 'manual',
        problem: `pending for ${minutes(ageMs)} and no key has the recorded value: the provisioning gave up before CreateApiKey succeeded`,
        action: "replay the customer's signup or subscribe-success once the cause is fixed: it creates the key with the recorded value",
      });
    }
    return findings;
  }

  if (status === 'active') {
    if (!key) {
      findings.push({
        ...base,
        kind: 'secret-without-key',
        severity: 'error',
        repair: 'manual',
        apiKeyId: record.apiKeyId,
        problem: `the record is active but its key ${record.apiKeyId ?? ''} does not exist (deleted outside the pipeline?)`,
        action:
          'not re-created: the deletion may have been deliberate (a leaked key), and provisioning again makes a new key with a new value. ' +
          `To give the customer a new key: aws secretsmanager delete-secret --secret-id ${name.secretName} --force-delete-without-recovery, ` +
          "then replay the customer's signup or subscribe-success (the customer must fetch the new value)",
      });
      return findings;
    }
    if (!key.enabled) {
      findings.push({
        ...base,
        kind: 'disabled-key-for-active',
        severity: 'error',
        repair: 'manual',
        apiKeyId: key.id,
        problem: 'the subscription is active but its key is disabled',
        action:
          'ambiguous, so not fixed: the key may have been blocked on purpose, or an unsubscribe was lost. ' +
          `To restore access: aws apigateway update-api-key --api-key ${key.id} --patch-operations op=replace,path=/enabled,value=true; ` +
          'if the customer left: replay the unsubscribe-success notification',
      });
      return findings;
    }
    const planId = expectedPlan(settings.usagePlans, record);
    if (planId && !state.planMembers.get(planId)?.has(key.id)) {
      findings.push({
        ...base,
        kind: 'missing-from-plan',
        severity: 'error',
        repair: 'fix',
        apiKeyId: key.id,
        usagePlanId: planId,
        problem: `the key is active but not in usage plan ${planId} of its product: its calls are refused and not metered`,
        action: `--fix associates it (CreateUsagePlanKey)${after}`,
      });
    }
    return findings;
  }

  // revoked or failed
  if (!key) return findings; // a tombstone, or a revoked key deleted since: nothing can be used
  if (key.enabled) {
    findings.push({
      ...base,
      kind: 'enabled-key-for-revoked',
      severity: 'error',
      repair: 'fix',
      apiKeyId: key.id,
      problem: `the subscription is ${status} but its key is enabled`,
      action: `--fix disables it (UpdateApiKey enabled=false)${after}`,
    });
  }
  for (const planId of plansOf(state, key.id)) {
    findings.push({
      ...base,
      kind: 'in-plan-while-revoked',
      severity: 'error',
      repair: 'fix',
      apiKeyId: key.id,
      usagePlanId: planId,
      problem: `the subscription is ${status} but its key is still in usage plan ${planId}`,
      action: `--fix removes it from the plan (DeleteUsagePlanKey)${after}`,
    });
  }
  return findings;
}

/**
 * Compares the gathered state and returns what disagrees, sorted by secret name and kind. Pure: no AWS call.
 * Keys side: several keys with one name (`duplicate-keys`), a key whose name has no secret, or whose secret records
 * another key (`key-without-secret`). Secrets side: `unreadable-secret`, then each record against its key (by the
 * recorded id, else by value) and the plans. A key about to get its secret restored is checked as if it had it.
 */
export function compareState(state: ReconcileState, settings: ReconcileSettings): Finding[] {
  const findings: Finding[] = [];
  const secretsByName = new Map(state.secrets.map((s) => [s.secretName, s]));
  const groups = new Map<string, OwnedKey[]>();
  for (const key of state.keys) groups.set(key.apiKeyName, [...(groups.get(key.apiKeyName) ?? []), key]);

  for (const [, group] of groups) {
    const [first] = group as [OwnedKey, ...OwnedKey[]];
    const secret = secretsByName.get(first.secretName);
    const base = {
      customerId: first.customerId,
      productCode: first.productCode,
      apiKeyName: first.apiKeyName,
      secretName: first.secretName,
    };
    const recordedValue = secret ? state.secretValues.get(secret.secretName) : undefined;
    const isRecorded = (key: OwnedKey) =>
      secret?.record !== undefined &&
      (secret.record.apiKeyId
        ? secret.record.apiKeyId === key.id
        : recordedValue !== undefined && recordedValue === state.keyValues.get(key.id));

    if (group.length > 1) {
      const recorded = group.find(isRecorded);
      const ids = group.map((k) => k.id).sort();
      findings.push({
        ...base,
        kind: 'duplicate-keys',
        severity: 'error',
        repair: 'manual',
        apiKeyId: recorded?.id,
        apiKeyIds: ids,
        problem: `${group.length} keys are named ${first.apiKeyName}: ${ids.join(', ')}${recorded ? `; the secret records ${recorded.id}` : '; the secret records none of them'}`,
        action: recorded
          ? `check that the others are unused, then delete them (aws apigateway delete-api-key --api-key ID); keep ${recorded.id}`
          : 'find out which one the customer uses, delete the others, then run reconcile --fix to restore the secret from the one left',
      });
      continue;
    }

    if (!secret) {
      const restored = restoredRecord(state, first, settings);
      findings.push({
        ...base,
        kind: 'key-without-secret',
        severity: 'error',
        repair: 'fix',
        apiKeyId: first.id,
        status: recordStatus(restored),
        problem: `the key (${first.enabled ? 'enabled' : 'disabled'}) has no secret: its value is recorded nowhere, and a new signup would create a second key`,
        action: `--fix creates the secret from the key (status ${restored.status}${restored.usagePlanId ? `, plan ${restored.usagePlanId}` : ''})`,
      });
      findings.push(...recordFindings(state, settings, first, restored, true));
      continue;
    }
    if (secret.deletedDate) {
      findings.push({
        ...base,
        kind: 'key-without-secret',
        severity: 'error',
        repair: 'manual',
        apiKeyId: first.id,
        problem: `the key's secret is scheduled for deletion (${secret.deletedDate.toISOString()})`,
        action:
          `if the key stays: aws secretsmanager restore-secret --secret-id ${secret.secretName}; ` +
          `if the customer is gone: aws apigateway delete-api-key --api-key ${first.id}`,
      });
      continue;
    }
    if (!secret.record || isRecorded(first)) continue; // unreadable secrets are reported on the secrets side
    const other = secret.record.apiKeyId
      ? `key ${secret.record.apiKeyId}`
      : recordedValue !== undefined
        ? 'another key value'
        : 'no key (a tombstone)';
    findings.push({
      ...base,
      kind: 'key-without-secret',
      severity: 'error',
      repair: 'manual',
      apiKeyId: first.id,
      status: recordStatus(secret.record),
      problem: `the key (${first.enabled ? 'enabled' : 'disabled'}) is not the one its secret records (${other})`,
      action:
        `never overwrite the secret while the key it records may exist. If this key is unused: aws apigateway delete-api-key --api-key ${first.id}; ` +
        'if the customer uses it, the secret must be corrected by hand',
    });
  }

  for (const secret of state.secrets) {
    if (secret.deletedDate) continue;
    if (secret.unreadable !== undefined) {
      findings.push({
        kind: 'unreadable-secret',
        severity: 'error',
        repair: 'manual',
        customerId: secret.customerId,
        productCode: secret.productCode,
        apiKeyName: secret.apiKeyName,
        secretName: secret.secretName,
        problem: secret.unreadable,
        action:
          "the pipeline refuses this customer's messages (secret-unreadable) until the secret holds the JSON record of lib/provision.ts again: " +
          'restore an earlier version (aws secretsmanager list-secret-version-ids, then update-secret-version-stage) or write the record by hand',
      });
      continue;
    }
    if (secret.record) findings.push(...recordFindings(state, settings, secret, secret.record, false));
  }
  return findings.sort(
    (a, b) =>
      a.secretName.localeCompare(b.secretName) || a.kind.localeCompare(b.kind) || (a.usagePlanId ?? '').localeCompare(b.usagePlanId ?? ''),
  );
}

/**
 * Re-reads the findings that a provisioning running during the gathering could fake, and drops those that no
 * longer hold: `secret-without-key` (its action is destructive: a key created after the keys were listed must not
 * send an operator to delete its secret). One GetApiKey (active) or GetApiKeys by name (pending) per such finding.
 */
export async function confirmFindings(findings: Finding[], state: ReconcileState, clients: ReconcileClients): Promise<Finding[]> {
  const apiKeys = apiGatewayAdapter(clients.apigw);
  const kept: Finding[] = [];
  for (const finding of findings) {
    if (finding.kind === 'secret-without-key') {
      if (finding.apiKeyId) {
        try {
          await clients.apigw.send(new GetApiKeyCommand({ apiKey: finding.apiKeyId }));
          continue; // it exists after all
        } catch (error) {
          if (!(error instanceof NotFoundException)) throw error;
        }
      } else {
        const value = state.secretValues.get(finding.secretName);
        if (value !== undefined && (await apiKeys.findApiKey(finding.apiKeyName, value))) continue;
      }
    }
    kept.push(finding);
  }
  return kept;
}

/** Gathers, compares and confirms: the findings of one pass. */
export async function findOrphans(
  clients: ReconcileClients,
  settings: ReconcileSettings,
): Promise<{ state: ReconcileState; findings: Finding[] }> {
  const state = await gatherState(clients, settings);
  return { state, findings: await confirmFindings(compareState(state, settings), state, clients) };
}

/** Order of repair: secrets first (later repairs re-read them). */
const FIX_ORDER: FindingKind[] = ['key-without-secret', 'enabled-key-for-revoked', 'in-plan-while-revoked', 'missing-from-plan'];

/**
 * Repairs the findings marked `fix`, in {@link FIX_ORDER}, one at a time, and returns one result per repair.
 * Each repair first re-reads what it is about and is `skipped` when the finding no longer holds (the pipeline may
 * have changed it since the gathering). A failure is reported and the next repair goes on.
 * - key-without-secret: CreateSecret from the key ({@link restoredRecord}), the key's tags, the configured KMS key;
 *   a secret that appeared meanwhile is left as it is.
 * - enabled-key-for-revoked: UpdateApiKey enabled=false, if the record still says revoked / failed.
 * - in-plan-while-revoked: DeleteUsagePlanKey, if the record still says revoked / failed.
 * - missing-from-plan: CreateUsagePlanKey, if the record is still active with this key.
 * Races left: a re-subscription processed between the re-read and the repair of a revoked key can be undone by it
 * (the next reconcile reports it as disabled-key-for-active or missing-from-plan), and the other way round.
 */
export async function applyFixes(
  findings: Finding[],
  state: ReconcileState,
  clients: ReconcileClients,
  settings: ReconcileSettings,
): Promise<FixResult[]> {
  const apiKeys = apiGatewayAdapter(clients.apigw);
  const secrets = secretsManagerAdapter(clients.secrets);
  const results: FixResult[] = [];
  const fixable = findings.filter((f) => f.repair === 'fix').sort((a, b) => FIX_ORDER.indexOf(a.kind) - FIX_ORDER.indexOf(b.kind));

  /** The record as it is now, or why there is none to act on. */
  const currentRecord = async (secretName: string): Promise<SecretRecord | string> => {
    const stored = await secrets.getSecret(secretName);
    if (!stored) return 'the secret does not exist';
    const parsed = parseRecord(stored.secretString);
    return 'record' in parsed ? parsed.record : `the secret is unreadable now (${parsed.unreadable})`;
  };

  for (const finding of fixable) {
    const { kind, customerId, productCode, secretName, apiKeyId, usagePlanId } = finding;
    const result = (outcome: FixResult['outcome'], detail: string): FixResult => ({
      kind,
      customerId,
      productCode,
      secretName,
      apiKeyId,
      usagePlanId,
      outcome,
      detail,
    });
    try {
      if (kind === 'key-without-secret') {
        const key = state.keys.find((k) => k.id === apiKeyId);
        const value = apiKeyId ? state.keyValues.get(apiKeyId) : undefined;
        if (!key || value === undefined) {
          results.push(result('failed', "the key's value was not listed (GetApiKeys includeValues)"));
          continue;
        }
        try {
          await clients.apigw.send(new GetApiKeyCommand({ apiKey: key.id }));
        } catch (error) {
          if (error instanceof NotFoundException) {
            results.push(result('skipped', 'the key has been deleted since'));
            continue;
          }
          throw error;
        }
        const record: SecretRecord = { value, ...restoredRecord(state, key, settings) };
        const product = productCode ? ` for product ${productCode}` : '';
        const created = await secrets.createSecret({
          name: secretName,
          description: `API key of customer ${customerId}${product}, provisioned by api-key-provisioner (secret restored by reconcile)`,
          secretString: JSON.stringify(record),
          tags: key.tags,
          kmsKeyId: settings.kmsKeyId,
        });
        results.push(
          created
            ? result(
                'fixed',
                `created secret ${secretName} from key ${key.id} (status ${record.status}${record.usagePlanId ? `, plan ${record.usagePlanId}` : ''})`,
              )
            : result('skipped', `secret ${secretName} exists now: left as it is`),
        );
        continue;
      }

      const current = await currentRecord(secretName);
      if (typeof current === 'string' || !apiKeyId) {
        results.push(result('skipped', typeof current === 'string' ? current : 'no key id'));
        continue;
      }
      const status = recordStatus(current);
      const sameKey = current.apiKeyId === undefined || current.apiKeyId === apiKeyId;
      if (kind === 'enabled-key-for-revoked' || kind === 'in-plan-while-revoked') {
        if ((status !== 'revoked' && status !== 'failed') || !sameKey) {
          results.push(result('skipped', `the record is ${status} now`));
        } else if (kind === 'enabled-key-for-revoked') {
          await apiKeys.setEnabled(apiKeyId, false);
          results.push(result('fixed', `disabled key ${apiKeyId}`));
        } else if (usagePlanId) {
          await apiKeys.removeFromUsagePlan(usagePlanId, apiKeyId);
          results.push(result('fixed', `removed key ${apiKeyId} from usage plan ${usagePlanId}`));
        }
      } else if (kind === 'missing-from-plan' && usagePlanId) {
        if (status !== 'active' || current.apiKeyId !== apiKeyId) {
          results.push(result('skipped', `the record is ${status}${sameKey ? '' : ` with key ${current.apiKeyId}`} now`));
        } else {
          await apiKeys.addToUsagePlan(usagePlanId, apiKeyId);
          results.push(result('fixed', `added key ${apiKeyId} to usage plan ${usagePlanId}`));
        }
      }
    } catch (error) {
      // The adapters' and services' messages name resources, never key values.
      results.push(result('failed', error instanceof Error ? error.message : String(error)));
    }
  }
  return results;
}

export interface ReconcileReport {
  prefix: string;
  gatheredAt: string;
  checked: { apiKeys: number; secrets: number; usagePlans: number; ignoredApiKeys: number; ignoredSecrets: number };
  findings: Finding[];
  /** With fix: what was repaired. */
  fixes?: FixResult[];
  /** With fix: the findings of a second pass, after the repairs. */
  remaining?: Finding[];
}

/**
 * One reconciliation: find the orphans; with `fix`, repair what is safe and look again. Without `fix` it only reads
 * (GetApiKeys, GetUsagePlanKeys, GetApiKey, ListSecrets, GetSecretValue).
 */
export async function reconcile(clients: ReconcileClients, settings: ReconcileSettings & { fix?: boolean }): Promise<ReconcileReport> {
  const { state, findings } = await findOrphans(clients, settings);
  const report: ReconcileReport = {
    prefix: state.prefix,
    gatheredAt: state.gatheredAt.toISOString(),
    checked: {
      apiKeys: state.keys.length,
      secrets: state.secrets.length,
      usagePlans: state.planMembers.size,
      ignoredApiKeys: state.ignored.apiKeys.length,
      ignoredSecrets: state.ignored.secrets.length,
    },
    findings,
  };
  if (settings.fix) {
    report.fixes = await applyFixes(findings, state, clients, settings);
    report.remaining = (await findOrphans(clients, settings)).findings;
  }
  return report;
}

/** Findings that need someone: everything but information. */
export const needsAttention = (findings: Finding[]) => findings.filter((f) => f.severity !== 'info');

/** Exit code of a run: 0 nothing needs attention (after the repairs, with fix), 1 something does or a repair failed. */
export function exitCode(report: ReconcileReport): 0 | 1 {
  const left = report.remaining ?? report.findings;
  return needsAttention(left).length > 0 || (report.fixes ?? []).some((f) => f.outcome === 'failed') ? 1 : 0;
}

const subject = (f: { customerId: string; productCode: string | null }) => `${f.customerId} (${f.productCode ?? 'no product'})`;

/** Two lines per finding: what, where; then the problem and what to do. */
export function formatFinding(f: Finding): string {
  const label = f.repair === 'fix' ? 'fixable' : f.repair === 'manual' ? 'needs a human' : 'info';
  const key = f.apiKeyIds ? `keys ${f.apiKeyIds.join(',')}` : `key ${f.apiKeyId ?? '-'}`;
  return `${f.kind.padEnd(23)} ${subject(f)}  ${key}  ${f.secretName}  [${label}]\n    ${f.problem}\n    -> ${f.action}`;
}

export function formatFix(r: FixResult): string {
  return `${r.outcome.padEnd(7)} ${r.kind.padEnd(23)} ${subject(r)}: ${r.detail}`;
}

/** Counts by repair: "7 findings: 3 fixable with --fix, 3 need a human, 1 in progress". */
export function formatCounts(findings: Finding[]): string {
  const count = (repair: Repair) => findings.filter((f) => f.repair === repair).length;
  return `${findings.length} finding(s): ${count('fix')} fixable with --fix, ${count('manual')} need a human, ${count('none')} information`;
}

/** The text report of the CLI. */
export function formatReport(report: ReconcileReport): string {
  const { checked } = report;
  const lines = [
    `Reconciled ${report.prefix} at ${report.gatheredAt}: ${checked.apiKeys} API key(s), ${checked.secrets} secret(s), ${checked.usagePlans} usage plan(s)` +
      (checked.ignoredApiKeys + checked.ignoredSecrets > 0
        ? `; ${checked.ignoredApiKeys} key(s) and ${checked.ignoredSecrets} secret(s) under the prefix not named like this deployment's were left alone`
        : ''),
  ];
  lines.push(...report.findings.map(formatFinding));
  lines.push(formatCounts(report.findings));
  if (report.fixes) {
    lines.push('', report.fixes.length === 0 ? 'Nothing to fix.' : `Fixes (${report.fixes.length}):`, ...report.fixes.map(formatFix));
    const remaining = report.remaining ?? [];
    lines.push('', `After the fixes: ${formatCounts(remaining)}`, ...remaining.map(formatFinding));
  } else if (report.findings.some((f) => f.repair === 'fix')) {
    lines.push('Nothing was changed: run again with --fix to repair the fixable ones.');
  }
  return lines.join('\n');
}
