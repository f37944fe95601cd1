/** The smoke test's output: one block per step as it ends, then the verdict; or the whole report as JSON. */
import type { SmokeReport, SmokeStep } from './model.js';

const INDENT = '      ';

/** A step as printed: `PASS  name  detail`, then for a failure the AWS error, the statements to look at and the notes. */
export function formatStep(step: SmokeStep): string {
  const lines = [`${step.ok ? 'PASS' : 'FAIL'}  ${step.name.padEnd(12)}  ${step.detail}`];
  if (step.error) {
    const { operation, name, httpStatus, message } = step.error;
    lines.push(`${INDENT}AWS error: ${operation}: ${name}${httpStatus ? ` (HTTP ${httpStatus})` : ''}: ${message}`);
  }
  if (step.lookAt && step.lookAt.length > 0) {
    lines.push(`${INDENT}look at:`);
    for (const s of step.lookAt) lines.push(`${INDENT}  ${s.holder}, statement ${s.sid}: ${s.grants}`);
  }
  for (const note of step.notes ?? []) lines.push(`${INDENT}${note}`);
  return lines.join('\n');
}

/** The first lines: what is tested, with which reserved customer id. */
export function formatHeading(stage: string, region: string, customerId: string): string {
  return `Smoke test of stage ${stage} in ${region}: customer ${customerId} (smoke-* customer ids are reserved for it)`;
}

/** The last line. */
export function formatVerdict(report: SmokeReport): string {
  const failed = report.steps.filter((s) => !s.ok);
  return failed.length === 0
    ? `Smoke test passed: ${report.steps.length} of ${report.steps.length} steps`
    : `Smoke test FAILED: ${failed.map((s) => s.name).join(', ')} (${report.steps.length - failed.length} of ${report.steps.length} steps passed)`;
}
