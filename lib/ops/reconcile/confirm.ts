/**
 * Confirming: the few findings a listing that lags, or a provisioning running during the gathering, could fake are
 * re-read one by one before an operator (or `--fix`) acts on them.
 */
import { compareState, findingOrder } from './findings.js';
import type { Finding, FindingKind, OwnedSecret, ReconcileSettings, ReconcileState } from './model.js';
import { readSecret } from './state.js';
import type { ReconcileStores } from './stores.js';

/** The findings a key raises when no secret of its name is listed (a young key's `in-progress` among them). */
const KEY_SIDE = new Set<FindingKind>(['key-without-secret', 'in-progress', 'duplicate-keys']);

/**
 * Reads by name (GetSecretValue) every secret the listing did not show although a key of its name exists: a
 * key-side finding ({@link KEY_SIDE}) with no listed secret. ListSecrets "might not reflect changes from the last
 * five minutes" (Secrets Manager API reference); a read by name does not depend on the listing. Returns the state
 * with the secrets found added (the input is not changed) and the names they were found under.
 */
async function readUnlisted(
  findings: Finding[],
  state: ReconcileState,
  stores: ReconcileStores,
): Promise<{ state: ReconcileState; found: Set<string> }> {
  const listed = new Set(state.secrets.map((s) => s.secretName));
  const unlisted = new Map<string, Finding>();
  for (const f of findings) if (KEY_SIDE.has(f.kind) && !listed.has(f.secretName)) unlisted.set(f.secretName, f);
  if (unlisted.size === 0) return { state, found: new Set() };

  const secretValues = new Map(state.secretValues);
  const added: OwnedSecret[] = [];
  for (const { customerId, productCode, apiKeyName, secretName } of unlisted.values()) {
    const secret = await readSecret(stores.secrets, { customerId, productCode, apiKeyName, secretName }, secretValues, stores.records);
    if (secret) added.push(secret);
  }
  return { state: { ...state, secrets: [...state.secrets, ...added], secretValues }, found: new Set(added.map((s) => s.secretName)) };
}

/**
 * Re-reads the findings that may not hold, and returns those that do (sorted like {@link compareState}'s):
 * - a key whose secret was not listed: GetSecretValue by name. Found, the customer's findings are those of the real
 *   record (none, usually); so a key is never called an orphan, nor its secret restored, because ListSecrets lags.
 *   A key younger than the grace whose secret is not found either stays `in-progress` (information only).
 * - `secret-without-key` (its action is destructive: a key created after the keys were listed must not send an
 *   operator to delete its secret): GetApiKey by the recorded id, or, for a pending record, GetApiKeys by name and
 *   value. Found, the finding is dropped.
 * Read-only. Throws the adapters' errors for the key reads; a secret that cannot be read is reported unreadable.
 */
export async function confirmFindings(
  findings: Finding[],
  state: ReconcileState,
  stores: ReconcileStores,
  settings: ReconcileSettings,
): Promise<Finding[]> {
  const { state: seen, found } = await readUnlisted(findings, state, stores);
  const current =
    found.size === 0
      ? findings
      : [...findings.filter((f) => !found.has(f.secretName)), ...compareState(seen, settings).filter((f) => found.has(f.secretName))].sort(
          findingOrder,
        );

  const kept: Finding[] = [];
  for (const finding of current) {
    if (finding.kind === 'secret-without-key') {
      if (finding.apiKeyId) {
        if (await stores.apiKeys.getApiKey(finding.apiKeyId)) continue; // it exists after all
      } else {
        const value = seen.secretValues.get(finding.secretName);
        if (value !== undefined && (await stores.apiKeys.findApiKey(finding.apiKeyName, value))) continue;
      }
    }
    kept.push(finding);
  }
  return kept;
}
