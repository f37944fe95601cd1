/**
 * `npm run iam:statements [-- SUITE…] [--only Holder:Sid,…]`: proof that every IAM statement is needed. For each statement of each role,
 * of the operator's policy and of the resource policies (tests/helpers/iam.ts names them), the integration suites
 * run once with that statement left out (REALISTIC_IAM_OMIT=Holder:Sid, read by tests/helpers/iam.ts) and the
 * first failing test is reported; "FAILS NOTHING" marks a statement no test needs — to remove, or to explain.
 * Slow (one Jest run per statement, up to about two minutes each with the default suites): a documented command,
 * not CI. The suites must pass with every statement first (the baseline), or every statement would look needed.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stackIamWorld } from '../helpers/iam.js';
import { SECRETS_KEY_ID } from '../helpers/pipeline.js';

const ROOT = process.cwd();
const DEFAULT_SUITES = [
  'tests/integration/iam.test.ts',
  'tests/integration/registration.test.ts',
  'tests/integration/key-page.test.ts',
  'tests/integration/pipeline.test.ts',
  'tests/integration/lifecycle.test.ts',
  'tests/integration/lifecycle-policies.test.ts',
  'tests/integration/secret-hygiene.test.ts',
  'tests/integration/reconcile.test.ts',
  'tests/integration/roll.test.ts',
  'tests/integration/rotation-schedule.test.ts',
  'tests/integration/smoke.test.ts',
];

interface JestJson {
  testResults: Array<{ name: string; message: string; assertionResults: Array<{ status: string; fullName: string }> }>;
}

/** The first failure of a Jest run: the test's name, or the suite's (a suite that failed to run). */
function firstFailure(report: JestJson): string | undefined {
  for (const suite of report.testResults) {
    const test = suite.assertionResults.find((a) => a.status === 'failed');
    if (test) return `${suite.name.replace(`${ROOT}/`, '')}: ${test.fullName}`;
    if (suite.message) return `${suite.name.replace(`${ROOT}/`, '')}: ${suite.message.split('\n').find((l) => l.trim()) ?? 'failed'}`;
  }
  return undefined;
}

function main(): void {
  // `--only Holder:Sid,…` checks those statements only (a statement just added, against the suite that needs it).
  const args = process.argv.slice(2);
  const onlyAt = args.indexOf('--only');
  const only = onlyAt >= 0 ? new Set((args[onlyAt + 1] ?? '').split(',').filter(Boolean)) : undefined;
  const named = onlyAt >= 0 ? [...args.slice(0, onlyAt), ...args.slice(onlyAt + 2)] : args;
  const suites = named.length > 0 ? named : DEFAULT_SUITES;
  // With a usage plan and a rotation schedule configured, so that UsagePlanKeysPolicy (Condition HasUsagePlans) and
  // ScheduleRotationPolicy (HasRotationSchedule) are in the stack.
  const all = stackIamWorld({
    secretsKeyId: SECRETS_KEY_ID,
    usagePlanIds: ['plan'],
    rotationSchedule: 'rate(90 days)',
    omit: [],
  }).statements();
  const statements = only ? all.filter(({ holder, sid }) => only.has(`${holder}:${sid}`)) : all;
  if (only && statements.length !== only.size)
    throw new Error(
      `--only names statements the stack does not have: ${[...only].filter((n) => !all.some((s) => `${s.holder}:${s.sid}` === n)).join(', ')}`,
    );
  const scratch = mkdtempSync(join(tmpdir(), 'iam-statements-'));
  /** The first failure of the suites with REALISTIC_IAM_OMIT set so, or FAILS NOTHING. */
  const run = (omit: string, name: string): string => {
    const outputFile = join(scratch, `${name}.json`);
    const jest = spawnSync(
      join(ROOT, 'node_modules', '.bin', 'jest'),
      ['--runInBand', '--bail', '--json', '--outputFile', outputFile, ...suites],
      {
        cwd: ROOT,
        env: { ...process.env, JEST_PROJECT: 'integration', REALISTIC_IAM_OMIT: omit },
        encoding: 'utf8',
        maxBuffer: 64 * 1024 * 1024,
      },
    );
    try {
      const failure = firstFailure(JSON.parse(readFileSync(outputFile, 'utf8')) as JestJson);
      return failure ?? (jest.status === 0 ? 'FAILS NOTHING' : `exit ${jest.status}`);
    } catch {
      // --bail ends Jest before it writes its report: the first failure's heading on stderr (`  ● suite › test`).
      const heading = jest.stderr.split('\n').find((line) => line.startsWith('  ● '));
      const suite = /^FAIL \S+ (\S+)/m.exec(jest.stderr)?.[1];
      return heading ? `${suite ?? '?'}: ${heading.slice(4)}` : `exit ${jest.status}, no report`;
    }
  };
  const rows: Array<[string, string]> = [];
  try {
    const baseline = run('', 'baseline');
    if (baseline !== 'FAILS NOTHING') throw new Error(`the suites fail with every statement in place; fix that first: ${baseline}`);
    console.log(`baseline: ${suites.join(' ')} pass with every statement`);
    for (const [i, { holder, sid }] of statements.entries()) {
      const started = Date.now();
      const verdict = run(`${holder}:${sid}`, String(i));
      rows.push([`${holder}:${sid}`, verdict]);
      console.log(`${holder}:${sid}\t${Math.round((Date.now() - started) / 1000)}s\t${verdict}`);
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  const unneeded = rows.filter(([, verdict]) => verdict === 'FAILS NOTHING');
  console.log(`\n${rows.length} statements, ${rows.length - unneeded.length} needed by a test, ${unneeded.length} failing nothing:`);
  for (const [statement] of unneeded) console.log(`  ${statement}`);
}

main();
