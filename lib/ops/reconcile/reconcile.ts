/**
 * Reconciliation: compares the API keys this deployment owns (every key named `<NAME_PREFIX><product>/<customer>`)
 * with their secrets and the subscription state those secrets record, and reports what disagrees. Used by
 * `npm run reconcile` (cli.ts); nothing here prints.
 *
 * The steps, each usable on its own: gather (state.ts) → compare (findings.ts, rules.ts: pure) → confirm what a
 * lagging listing or a concurrent provisioning could fake (confirm.ts) → with fix, repair (fixes.ts) and look again.
 * Key values never leave the state (model.ts).
 */
import { confirmFindings } from './confirm.js';
import { compareState } from './findings.js';
import { applyFixes } from './fixes.js';
import type { Finding, FixResult, ReconcileReport, ReconcileSettings, ReconcileState } from './model.js';
import { gatherState } from './state.js';
import type { ReconcileStores } from './stores.js';

/** Gathers, compares and confirms: the findings of one pass. Read-only. */
export async function findOrphans(
  stores: ReconcileStores,
  settings: ReconcileSettings,
): Promise<{ state: ReconcileState; findings: Finding[] }> {
  const state = await gatherState(stores, settings);
  return { state, findings: await confirmFindings(compareState(state, settings), state, stores, settings) };
}

const sameFinding = (fix: FixResult, f: Finding) =>
  f.kind === fix.kind && f.secretName === fix.secretName && f.apiKeyId === fix.apiKeyId && f.usagePlanId === fix.usagePlanId;

/**
 * The fixes as the second pass sees them: a repair reported `fixed` whose finding the second pass still finds did
 * not take (or was undone at once), so it is `not-confirmed`, never `fixed`.
 */
export function checkAgainst(fixes: FixResult[], remaining: Finding[]): FixResult[] {
  return fixes.map((fix) =>
    fix.outcome === 'fixed' && remaining.some((f) => sameFinding(fix, f))
      ? { ...fix, outcome: 'not-confirmed', detail: `${fix.detail}, but the second pass still finds it: not counted as fixed` }
      : fix,
  );
}

/**
 * One reconciliation: find the orphans; with `fix`, repair what is safe (each repair read back), then look again
 * with a whole second pass, whose findings are `remaining`. Without `fix` it only reads (GetApiKeys,
 * GetUsagePlanKeys, GetApiKey, ListSecrets, GetSecretValue). Throws the adapters' errors when it cannot read.
 */
export async function reconcile(stores: ReconcileStores, settings: ReconcileSettings & { fix?: boolean }): Promise<ReconcileReport> {
  const { state, findings } = await findOrphans(stores, settings);
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
    const fixes = await applyFixes(findings, state, stores, settings);
    report.remaining = (await findOrphans(stores, settings)).findings;
    report.fixes = checkAgainst(fixes, report.remaining);
  }
  return report;
}
