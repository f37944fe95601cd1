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
import { DEFAULT_FACTOR, SCENARIOS, type Scenario, strategies } from './scenarios.js';
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
API Gateway throttled at a factor × its real quotas, usage-plan writes one at a time with 409s). Time runs that
factor times faster: the function's timeouts and retry timings are scaled down by it. Each scenario has its factor
(${DEFAULT_FACTOR} unless it names one: usage-plans and maintenance run at the real quotas, 1); --factor sets it for all.

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
                       (tests/bench/scenarios.ts LIMITER_DESIGNS; a bad name lists them). A scenario that runs
                       only some strategies (maintenance: ours) runs those of them
  --factor F           quota multiplier for every scenario (default: each scenario's own, else ${DEFAULT_FACTOR})
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
    factor: { type: 'string' },
    'batch-size': { type: 'string', default: '10' },
    quick: { type: 'boolean', default: false },
    'no-cold-start': { type: 'boolean', default: false },
    out: { type: 'string' },
  });
  const factorFlag = values.factor === undefined ? undefined : positiveNumber('factor', values.factor, false);
  const factorOf = (scenario: Scenario) => factorFlag ?? scenario.factor ?? DEFAULT_FACTOR;
  const signups = values.signups !== undefined ? positiveNumber('signups', values.signups) : values.quick ? QUICK_SIGNUPS : FULL_SIGNUPS;
  const settingsAt = (factor: number): RunSettings => ({
    signups,
    batchSize: positiveNumber('batch-size', values['batch-size']),
    // serverless.yml: timeout 30 s, visibility 181 s; --quick shortens the visibility 4 times more, so that a record
    // handed back without a known wait does not make a short run wait a minute (its figures are for development).
    time: {
      factor,
      functionTimeoutMs: Math.round(30_000 / factor),
      visibilityTimeoutSeconds: Math.ceil(181 / factor / (values.quick ? 4 : 1)),
    },
  });
  const scenarios = chosenScenarios(values);
  const strategiesAt = (factor: number) => strategies((ms) => String(Math.round(ms / factor)), COORDINATION_TABLE_NAME);
  const names = (values.strategies ?? '').split(',').filter(Boolean);
  if (names.length === 0) throw new UsageError('--strategies names no strategy');
  const known = strategiesAt(DEFAULT_FACTOR);
  for (const n of names) if (!known[n]) throw new UsageError(`unknown strategy ${n}; known: ${Object.keys(known).join(', ')}`);

  const factors = Object.entries(scenarios).map(([name, scenario]) => `${name} × ${factorOf(scenario)}`);
  console.log(`Bench: ${signups} signups per scenario; API Gateway quotas × factor (CreateApiKey 5/s × factor): ${factors.join(', ')}`);
  const t0 = Date.now();
  const world = await startWorld(DEFAULT_FACTOR);
  const results: Record<string, ScenarioResult> = {};
  try {
    for (const [name, scenario] of Object.entries(scenarios)) {
      const factor = factorOf(scenario);
      const settings = settingsAt(factor);
      const capacity = capacityOf(scenario, factor);
      const chosen = names.filter((n) => !scenario.onlyStrategies || scenario.onlyStrategies.includes(n));
      if (chosen.length === 0) {
        console.log(`\n■ ${name}: skipped (it runs only ${scenario.onlyStrategies?.join(', ')})`);
        continue;
      }
      console.log(`\n■ ${name}: ${scenario.description} (quotas × ${factor}, capacity ${+capacity.toFixed(2)} keys/s)`);
      const byFactor = strategiesAt(factor);
      const byStrategy: Record<string, StrategyResult> = {};
      for (const n of chosen) {
        const r = await runStrategy(world, scenario, byFactor[n] as (typeof byFactor)[string], settings);
        byStrategy[n] = r;
        console.log(
          `  ${n}: ${r.keys} keys in ${r.durationSeconds} s, ${r.goodput} keys/s (${(r.goodputRatio * 100).toFixed(1)}% of the capacity left, ${+r.capacityPerSecond.toFixed(2)}/s), ` +
            `${(r.throttledShare * 100).toFixed(1)}% throttled, ${r.dlqMessages} in the DLQ` +
            (r.maintenance ? `, ${r.maintenance.retired} of ${r.maintenance.due} retirements done` : ''),
        );
      }
      results[name] = { ...scenario, factor, capacityPerSecond: capacity, strategies: byStrategy };
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
    const settings = {
      signups,
      batchSize: positiveNumber('batch-size', values['batch-size']),
      quick: values.quick,
      factor: factorFlag ?? 'per scenario',
      strategies: names,
    };
    writeFileSync(out, `${JSON.stringify(json(settings, results, coldStart), null, 2)}\n`);
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
