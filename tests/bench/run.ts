/**
 * `npm run bench`: provisioning throughput at API Gateway's control-plane quotas, ours against the SDK's retry
 * modes, in named scenarios (or one custom scenario from flags). Prints a table per scenario with the issue's
 * targets checked for ours, writes an SVG of keys/s over time per scenario, and with `--out` the JSON.
 * Then the cold start of our bundle over an SDK-only one. Prints figures; asserts nothing (exit 0 unless it
 * could not run). docs/throughput.md explains the method and the figures.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parseCommandLine, positiveNumber, runCommand, UsageError } from '../../lib/command-line.js';
import { capacityOf, type RunSettings, runStrategy, type StrategyResult } from './measure.js';
import { json, type ScenarioResult, table, targets } from './report.js';
import { createApiKeyLimit, SCENARIOS, type Scenario, strategies } from './scenarios.js';
import { goodputSvg } from './svg.js';
import { COORDINATION_TABLE_NAME, startWorld } from './world.js';

// The orchestrator's own clients (and the instances, which inherit this environment) need a Region and credentials.
process.env.AWS_REGION ??= 'us-east-1';
process.env.AWS_ACCESS_KEY_ID ??= 'bench';
process.env.AWS_SECRET_ACCESS_KEY ??= 'bench';

/** Signups per scenario: enough for the start-up transient to weigh little, within the 12 (3) minutes of a run. */
const FULL_SIGNUPS = 400;
const QUICK_SIGNUPS = 60;

const USAGE = `Usage: npm run bench -- [options]

Runs every strategy in each scenario, each on a fresh moto behind the realistic AWS layer (tests/realistic-aws:
API Gateway throttled at --factor × its real quotas, usage-plan writes one at a time with 409s). Time runs
--factor times faster: the function's timeouts and retry timings are scaled down by it.

Scenarios (default: all): ${Object.entries(SCENARIOS)
  .map(([name, s]) => `\n  ${name.padEnd(14)} ${s.description}`)
  .join('')}

A custom scenario (named "custom") instead, from any of:
  --instances N        function instances that run (default 4)
  --concurrency M      the deployment's maximumConcurrency; each instance's rate settings are derived from it as
                       serverless.yml derives them (default 4)
  --neighbour SHARE    fraction 0–1 of the CreateApiKey and Total quotas a neighbour uses (default 0)
  --usage-plans        keys go into a usage plan (USAGE_PLANS set)

Options:
  --scenarios a,b      run only these named scenarios
  --signups N          signups per scenario (default ${FULL_SIGNUPS}; ${QUICK_SIGNUPS} with --quick)
  --strategies a,b     default ours,sdkStandard,sdkAdaptive; also design:<name>, the limiter designs measured
                       (tests/bench/scenarios.ts LIMITER_DESIGNS; a bad name lists them)
  --factor F           quota multiplier (default 3)
  --batch-size N       records per invocation (default 10)
  --quick              fewer signups and cold-start samples, and the signup queue's visibility timeout 4 times
                       shorter (the matrix in under 3 minutes; for development: read the targets from a full run)
  --no-cold-start      skip the cold-start figures
  --out FILE           write the JSON there, and the SVGs next to it (FILE-<scenario>.svg)
  --help               this text`;

async function main(): Promise<number> {
  const { values } = parseCommandLine(USAGE, {
    scenarios: { type: 'string' },
    instances: { type: 'string' },
    concurrency: { type: 'string' },
    neighbour: { type: 'string' },
    'usage-plans': { type: 'boolean' },
    signups: { type: 'string' },
    strategies: { type: 'string', default: 'ours,sdkStandard,sdkAdaptive' },
    factor: { type: 'string', default: '3' },
    'batch-size': { type: 'string', default: '10' },
    quick: { type: 'boolean', default: false },
    'no-cold-start': { type: 'boolean', default: false },
    out: { type: 'string' },
  });
  const factor = positiveNumber('factor', values.factor, false);
  const settings: RunSettings = {
    signups: values.signups !== undefined ? positiveNumber('signups', values.signups) : values.quick ? QUICK_SIGNUPS : FULL_SIGNUPS,
    batchSize: positiveNumber('batch-size', values['batch-size']),
    // serverless.yml: timeout 30 s, visibility 181 s; --quick shortens the visibility 4 times more, so that a record
    // handed back without a known wait does not make a short run wait a minute (its figures are for development).
    time: {
      factor,
      functionTimeoutMs: Math.round(30_000 / factor),
      visibilityTimeoutSeconds: Math.ceil(181 / factor / (values.quick ? 4 : 1)),
    },
  };
  const scenarios = chosenScenarios(values);
  const known = strategies((ms) => String(Math.round(ms / factor)), COORDINATION_TABLE_NAME);
  const names = (values.strategies ?? '').split(',').filter(Boolean);
  if (names.length === 0) throw new UsageError('--strategies names no strategy');
  for (const n of names) if (!known[n]) throw new UsageError(`unknown strategy ${n}; known: ${Object.keys(known).join(', ')}`);

  const limit = createApiKeyLimit(factor);
  console.log(
    `Bench: ${Object.keys(scenarios).join(', ')}; ${settings.signups} signups each; API Gateway quotas × ${factor} (CreateApiKey ${limit}/s)`,
  );
  const t0 = Date.now();
  const world = await startWorld(factor);
  const results: Record<string, ScenarioResult> = {};
  try {
    for (const [name, scenario] of Object.entries(scenarios)) {
      const capacity = capacityOf(scenario, factor);
      console.log(`\n■ ${name}: ${scenario.description} (capacity ${+capacity.toFixed(2)} keys/s)`);
      const byStrategy: Record<string, StrategyResult> = {};
      for (const n of names) {
        const r = await runStrategy(world, scenario, known[n] as (typeof known)[string], settings);
        byStrategy[n] = r;
        console.log(
          `  ${n}: ${r.keys} keys in ${r.durationSeconds} s, ${r.goodput} keys/s (${(r.goodputRatio * 100).toFixed(1)}% of capacity), ` +
            `${(r.throttledShare * 100).toFixed(1)}% throttled, ${r.dlqMessages} in the DLQ`,
        );
      }
      results[name] = { ...scenario, capacityPerSecond: capacity, strategies: byStrategy };
    }
  } finally {
    await world.close();
  }

  for (const [name, result] of Object.entries(results)) {
    console.log(`\n${name}: ${result.description}\n${table(result.strategies, result.capacityPerSecond)}`);
    for (const line of targets(result)) console.log(`  target ${line}`);
  }
  const out = values.out;
  const svgBase = out ? out.replace(/\.json$/, '') : join('bench-results', 'goodput');
  mkdirSync(dirname(svgBase), { recursive: true });
  for (const [name, result] of Object.entries(results)) {
    const series = Object.entries(result.strategies).map(([n, r]) => ({ name: n, perSecond: r.keysPerSecond }));
    writeFileSync(`${svgBase}-${name}.svg`, goodputSvg(series, result.capacityPerSecond, `${name}: ${result.description}`));
  }
  console.log(`\nKeys per second over time: ${svgBase}-<scenario>.svg`);
  console.log(`Matrix took ${((Date.now() - t0) / 1000).toFixed(0)} s`);

  let coldStart: unknown;
  if (!values['no-cold-start']) {
    console.log('');
    const { coldStartFigures } = await import('./cold-start.js');
    coldStart = await coldStartFigures({ samples: values.quick ? 6 : 20 });
  }
  if (out) {
    writeFileSync(out, `${JSON.stringify(json({ ...settings, limitPerSecond: limit, strategies: names }, results, coldStart), null, 2)}\n`);
    console.log(`Results: ${out}`);
  }
  console.log(`Bench took ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  return 0;
}

/** The named scenarios (all, or --scenarios), or one `custom` scenario when a scenario flag is given. */
function chosenScenarios(values: {
  scenarios?: string;
  instances?: string;
  concurrency?: string;
  neighbour?: string;
  'usage-plans'?: boolean;
}): Record<string, Scenario> {
  const custom =
    values.instances !== undefined || values.concurrency !== undefined || values.neighbour !== undefined || values['usage-plans'] === true;
  if (custom) {
    if (values.scenarios !== undefined) throw new UsageError('--scenarios cannot be combined with a custom scenario (--instances, …)');
    const neighbourShare = values.neighbour === undefined ? 0 : Number(values.neighbour);
    if (values.neighbour?.trim() === '' || !(neighbourShare >= 0 && neighbourShare < 1)) {
      throw new UsageError(`--neighbour must be a share from 0 to below 1, got ${JSON.stringify(values.neighbour)}`);
    }
    const instances = values.instances === undefined ? 4 : positiveNumber('instances', values.instances);
    const concurrency = values.concurrency === undefined ? 4 : positiveNumber('concurrency', values.concurrency);
    const usagePlans = values['usage-plans'] === true;
    const description = `${instances} of ${concurrency}, neighbour ${neighbourShare}${usagePlans ? ', usage plans' : ''}`;
    return { custom: { instances, concurrency, neighbourShare, usagePlans, description } };
  }
  if (values.scenarios === undefined) return SCENARIOS;
  const chosen: Record<string, Scenario> = {};
  for (const name of values.scenarios.split(',').filter(Boolean)) {
    const scenario = SCENARIOS[name];
    if (!scenario) throw new UsageError(`unknown scenario ${name}; known: ${Object.keys(SCENARIOS).join(', ')}`);
    chosen[name] = scenario;
  }
  if (Object.keys(chosen).length === 0) throw new UsageError('--scenarios names no scenario');
  return chosen;
}

runCommand('bench', main);
