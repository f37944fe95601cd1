/**
 * Gathering: what a deployment owns, read through the adapters — the keys (GetApiKeys by name prefix, with values),
 * the members of every configured usage plan (GetUsagePlanKeys), the secrets (ListSecrets by name prefix, then
 * GetSecretValue each).
 */
import pLimit from 'p-limit';
import type { SecretStore } from '../../aws/secrets-manager.js';
import { UsageError } from '../../command-line.js';
import { isLegacyRecord } from '../../customer-key/key-record.js';
import { type RecordStore, recordKey } from '../../customer-key/record-store.js';
import type { OwnedKey, OwnedName, OwnedSecret, ReconcileSettings, ReconcileState } from './model.js';
import { parseOwnedName, parseRecord } from './records.js';
import type { ReconcileStores } from './stores.js';

/** GetSecretValue calls in flight at once (the quota is 10,000/s; API Gateway calls are never run in parallel). */
const READ_CONCURRENCY = 8;

/**
 * Reads one secret of the deployment: its record (the value goes into `secretValues`), or why it is unreadable — a
 * failed GetSecretValue included, whose service message names the secret, never its value. Undefined when no
 * secret has the name (deleted since it was listed, or never there). Never throws for one secret's sake.
 */
export async function readSecret(
  secrets: Pick<SecretStore, 'getSecret'>,
  entry: OwnedName & { arn?: string },
  secretValues: Map<string, string>,
  records?: RecordStore,
): Promise<OwnedSecret | undefined> {
  let stored: Awaited<ReturnType<SecretStore['getSecret']>>;
  try {
    stored = await secrets.getSecret(entry.secretName);
  } catch (error) {
    return {
      ...entry,
      arn: entry.arn ?? '',
      unreadable: `GetSecretValue failed: ${error instanceof Error ? error.message : String(error)}`,
    };
  }
  if (!stored) return undefined;
  const owned = { ...entry, arn: entry.arn ?? stored.arn };
  const parsed = parseRecord(stored.secretString);
  if ('unreadable' in parsed) return { ...owned, unreadable: parsed.unreadable };
  const { value, ...inSecret } = parsed.record;
  if (value !== undefined) secretValues.set(entry.secretName, value);
  if (!records) return { ...owned, record: inSecret };
  // The record is the table's; a secret without one there holds a record of the time before the table (moved on the
  // customer's next message, or by --fix), or only the value of a grant that stopped before its pending record.
  let found: Awaited<ReturnType<RecordStore['get']>>;
  try {
    found = await records.get(recordKey(entry.customerId, entry.productCode));
  } catch (error) {
    return { ...owned, unreadable: `its record could not be read (GetItem): ${error instanceof Error ? error.message : String(error)}` };
  }
  if (found) return { ...owned, record: found.record, recordIn: 'table' };
  return { ...owned, record: inSecret, recordIn: isLegacyRecord(parsed.record) ? 'secret' : undefined };
}

/**
 * The key ids of each configured plan. Throws {@link UsageError} when a plan of the map does not exist (the map is
 * wrong): checked with GetUsagePlan first, as the function does, because GetUsagePlanKeys of an unknown plan is not a
 * 404 everywhere (moto lists it as empty), and `--fix` would then "add" keys to a plan that is not there.
 */
async function listPlanMembers(stores: ReconcileStores, usagePlans: Record<string, string>): Promise<Map<string, Set<string>>> {
  const members = new Map<string, Set<string>>();
  for (const planId of new Set(Object.values(usagePlans))) {
    const missing = () =>
      new UsageError(`usage plan ${planId} of the usage plans map (--usage-plans or USAGE_PLANS) does not exist (GetUsagePlan: not found)`);
    if ((await stores.apiKeys.usagePlanStages(planId)) === undefined) throw missing();
    const ids = await stores.apiKeys.usagePlanKeyIds(planId);
    if (!ids) throw missing();
    members.set(planId, ids);
  }
  return members;
}

/**
 * Reads what the deployment owns. Keys are listed first, then secrets: a provisioning writes the secret before the
 * key (lib/customer-key/provision.ts), so a key created during the gathering has its secret by the time secrets are listed —
 * but ListSecrets lags by up to five minutes, so a key without a listed secret is confirmed by name before it is
 * reported (confirm.ts). API Gateway calls: one GetApiKeys per 500 keys, one GetUsagePlanKeys per plan and 500
 * members; Secrets Manager: one ListSecrets per 100 secrets and one GetSecretValue per secret. Read-only; throws the
 * adapters' errors (a secret that cannot be read is recorded as unreadable instead).
 */
export async function gatherState(stores: ReconcileStores, settings: ReconcileSettings): Promise<ReconcileState> {
  const { prefix } = settings;
  const gatheredAt = (settings.now ?? (() => new Date()))();
  const keyValues = new Map<string, string>();
  const secretValues = new Map<string, string>();
  const ignored = { apiKeys: [] as string[], secrets: [] as string[] };

  const keys: OwnedKey[] = [];
  for (const item of await stores.apiKeys.listApiKeys(prefix)) {
    const owned = parseOwnedName(prefix, item.name, 'apiKey');
    if (!owned) {
      ignored.apiKeys.push(item.name);
      continue;
    }
    if (item.value) keyValues.set(item.id, item.value);
    keys.push({
      ...owned,
      id: item.id,
      enabled: item.enabled,
      tags: item.tags,
      createdDate: item.createdDate,
      lastUpdatedDate: item.lastUpdatedDate,
    });
  }

  const planMembers = await listPlanMembers(stores, settings.usagePlans);

  const listed: Array<OwnedName & { arn: string; deletedDate?: Date }> = [];
  for (const entry of await stores.secrets.listSecrets(prefix)) {
    const owned = parseOwnedName(prefix, entry.name, 'secret');
    if (owned) listed.push({ ...owned, arn: entry.arn, deletedDate: entry.deletedDate });
    else ignored.secrets.push(entry.name);
  }
  const slot = pLimit(READ_CONCURRENCY);
  const read = await Promise.all(
    listed.map((entry) => slot(async () => (entry.deletedDate ? entry : readSecret(stores.secrets, entry, secretValues, stores.records)))),
  );
  const secrets = read.filter((s): s is OwnedSecret => s !== undefined);
  return { prefix, gatheredAt, keys, secrets, planMembers, keyValues, secretValues, ignored };
}
