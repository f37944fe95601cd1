/** Reporting: the exit code of a run and its text form. Pure. */
import type { Finding, FixResult, ReconcileReport, Repair } from './model.js';

/** Findings that need someone: everything but information. */
export const needsAttention = (findings: Finding[]) => findings.filter((f) => f.severity !== 'info');

/**
 * Exit code of a run: 0 nothing needs attention (after the repairs, with fix), 1 something does, or a repair failed
 * or could not be confirmed.
 */
export function exitCode(report: ReconcileReport): 0 | 1 {
  const left = report.remaining ?? report.findings;
  const unrepaired = (report.fixes ?? []).some((f) => f.outcome === 'failed' || f.outcome === 'not-confirmed');
  return needsAttention(left).length > 0 || unrepaired ? 1 : 0;
}

const subject = (f: { customerId: string; productCode: string | null }) => `${f.customerId} (${f.productCode ?? 'no product'})`;

/** Two lines per finding: what, where; then the problem and what to do. */
export function formatFinding(f: Finding): string {
  const label = f.repair === 'fix' ? 'fixable' : f.repair === 'manual' ? 'needs a human' : 'info';
  const key = f.apiKeyIds ? `keys ${f.apiKeyIds.join(',')}` : `key ${f.apiKeyId ?? '-'}`;
  return `${f.kind.padEnd(23)} ${subject(f)}  ${key}  ${f.secretName}  [${label}]\n    ${f.problem}\n    -> ${f.action}`;
}

/** One line per repair: outcome, kind, customer, what was done or why not. */
export function formatFix(r: FixResult): string {
  return `${r.outcome.padEnd(13)} ${r.kind.padEnd(23)} ${subject(r)}: ${r.detail}`;
}

/** Counts by repair: "7 finding(s): 3 fixable with --fix, 3 need a human, 1 information". */
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
