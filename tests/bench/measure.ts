/**
 * One strategy in one scenario: a fresh moto state, the signups fed in, the instances draining the queue through
 * the event-source-mapping runner, then the figures (from the layer's statistics, the completion events and moto).
 */
import { SQSClient } from '@aws-sdk/client-sqs';
import { startFleet } from './fleet.js';
import {
  capacityLeft,
  leftToRetire,
  provisionRollers,
  retirementsOf,
  rollsDone,
  rollsOf,
  type Sweeper,
  seedLeavers,
  startSweeper,
  sweeperEnv,
  withoutSweep,
  withRollStorm,
} from './maintenance.js';
import { createApiKeyLimit, deploymentEnv, type Scenario, type Strategy } from './scenarios.js';
import type { SweeperReport } from './sweeper.js';
import { firstProvisioned, startCollector, startFeeder } from './traffic.js';
import {
  apiGatewayCalls,
  KEY_RECORDS_TABLE_NAME,
  NAME_PREFIX,
  outcome,
  PRODUCT_CODE,
  prepare,
  type TimeScale,
  type World,
} from './world.js';

export interface StrategyResult {
  label: string;
  /** Signups whose key was reported provisioned (a completion event). */
  keys: number;
  durationSeconds: number;
  goodput: number;
  /** keys/s ÷ {@link capacityPerSecond}. */
  goodputRatio: number;
  /**
   * The capacity left to the pipeline, keys/s: the emulated CreateApiKey limit × (1 − neighbour share); with the
   * sweep running alongside, less what its calls took of "Total operations" while provisioning ran.
   */
  capacityPerSecond: number;
  /** The `maintenance` scenario's sweep: what was due, what it did and what it cost. */
  maintenance?: MaintenanceResult;
  /** Throttled API Gateway calls ÷ all API Gateway calls. */
  throttledShare: number;
  throttledCalls: number;
  /** 409s of usage-plan writes that overlapped another one. */
  usagePlanConflicts: number;
  /** How long the usage-plan writes that got the one-at-a-time slot held it (ms; 0 without writes). */
  usagePlanSlotP50Ms: number;
  usagePlanSlotP90Ms: number;
  /** The share of the run during which the slot was held: how much of its capacity the writes used. */
  usagePlanSlotBusyShare: number;
  dlqMessages: number;
  /** Signups neither provisioned nor dead-lettered when the instances stopped. */
  notFinished: number;
  /** Messages still on the signup queue (visible or in flight: handed back) when the instances stopped. */
  leftOnQueue: number;
  duplicateKeys: number;
  /** Keys reported provisioned that are not in their usage plan. */
  keysOutsidePlan: number;
  /** Keys of signups not finished when the run stopped that are not in their plan yet. */
  keysNotYetInPlan: number;
  apigwCallsPerKey: number;
  callsPerKey: Record<string, number>;
  p50Seconds: number;
  p95Seconds: number;
  p99Seconds: number;
  peakRssMb: number;
  /** New keys per second since the start (for the SVG). */
  keysPerSecond: number[];
  /** Throttled API Gateway calls per second since the start. */
  throttledPerSecond: number[];
}

export interface MaintenanceResult {
  /** Leavers' keys seeded due for retirement. */
  due: number;
  /** Records the sweep retired (outcomes `retired` and `finished`). */
  retired: number;
  /** After the run, read from moto: the leavers' keys not deleted, and records the index still lists as due. */
  leaverKeysLeft: number;
  dueLeft: number;
  /** Roll requests of the storm, and the rolls done (`api-key.rolled`, `rolled`). */
  rolls: number;
  rolled: number;
  /** Completion events about the rollers, by type and outcome or reason. */
  rollEvents: Record<string, number>;
  /** Overlaps the sweep ended; after the run, records with an overlap over but not ended, and rollers' keys beyond one. */
  overlapsEnded: number;
  overlapsLeft: number;
  rollerKeysExtra: number;
  runs: number;
  failures: string[];
  /** API Gateway calls of the sweep (attempts), of them throttled, and answered while provisioning ran. */
  apiGatewayCalls: number;
  throttled: number;
  /** The sweep's usage-plan writes answered 409 "concurrent modification" (the pipeline's are `usagePlanConflicts`). */
  conflicts: number;
  callsWhileProvisioning: number;
  /**
   * Seconds the sweep ran while provisioning ran, and its API Gateway calls per second then (its limiter allows
   * SWEEP_RATE_PER_SECOND × 2 Total calls a second).
   */
  secondsRunningWhileProvisioning: number;
  callsPerSecondRunning: number;
  dynamoDbCalls: number;
}

export interface RunSettings {
  signups: number;
  time: TimeScale;
  batchSize: number;
}

const percentile = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN;
export const round = (n: number, digits = 3) => Math.round(n * 10 ** digits) / 10 ** digits;

/** The capacity left to the pipeline, keys/s: the CreateApiKey limit less the neighbour's share. */
export const capacityOf = (scenario: Scenario, factor: number) => createApiKeyLimit(factor) * (1 - scenario.neighbourShare);

export async function runStrategy(world: World, scenario: Scenario, strategy: Strategy, settings: RunSettings): Promise<StrategyResult> {
  const { signups, time } = settings;
  const scaled = (ms: number) => String(Math.round(ms / time.factor));
  const prepared = await prepare(world, scenario, time);
  const retirements = retirementsOf(scenario, signups);
  if (retirements > 0) await seedLeavers(world, prepared, retirements);
  const sqs = new SQSClient({ endpoint: world.moto.endpoint });
  const signupBodies = Array.from({ length: signups }, (_, i) =>
    JSON.stringify({ customerId: `bench-${String(i).padStart(5, '0')}`, ...(scenario.usagePlans ? { productCode: PRODUCT_CODE } : {}) }),
  );
  const capacity = capacityOf(scenario, time.factor);
  const viaLayer = (url: string) => url.replace(world.moto.endpoint, world.aws.endpoint);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    ...deploymentEnv(scenario.concurrency, time.factor),
    ...strategy.env,
    AWS_ENDPOINT_URL: world.aws.endpoint,
    COMPLETION_QUEUE_URL: viaLayer(prepared.completionUrl),
    NAME_PREFIX,
    KEY_RECORDS_TABLE: KEY_RECORDS_TABLE_NAME,
    USAGE_PLANS: prepared.usagePlanId ? JSON.stringify({ [PRODUCT_CODE]: prepared.usagePlanId }) : '',
    POWERTOOLS_LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'ERROR',
    DEADLINE_SAFETY_MARGIN_MS: scaled(3_000),
    MOTO_ENDPOINT: world.moto.endpoint,
    BENCH_QUEUE_URL: prepared.signupUrl,
    BENCH_QUEUE_ARN: prepared.signupArn,
    BENCH_FUNCTION_TIMEOUT_MS: String(time.functionTimeoutMs),
    BENCH_BATCH_SIZE: String(settings.batchSize),
    // Twice the time at full capacity, and 10 s more: a run that takes longer stops polling, and what it did not
    // finish counts as not finished (goodput is over the keys it made).
    BENCH_MAX_DURATION_MS: String(Math.round((2 * signups * 1000) / capacity + 10_000)),
    BENCH_DESIGN: strategy.design ?? '',
  };
  const rolls = rollsOf(scenario, signups);
  if (rolls > 0) await provisionRollers(world, prepared, env, rolls);
  const graceSeconds = Math.round((scenario.maintenance?.rollGraceSeconds ?? 20) / time.factor);
  const bodies = rolls > 0 ? withRollStorm(signupBodies, rolls, graceSeconds) : signupBodies;
  const feeder = startFeeder(sqs, prepared.signupUrl, bodies);
  await feeder.primed;
  const fleet = await startFleet(scenario.instances, env);
  let sweeper: Sweeper | undefined;
  if (scenario.maintenance) {
    sweeper = startSweeper({ ...env, ...sweeperEnv(scenario, time.factor, scaled) });
    await sweeper.ready;
  }
  world.aws.resetStats();
  const started = Date.now();
  feeder.start();
  const collector = startCollector(sqs, prepared.completionUrl);
  for (const instance of fleet) instance.go();
  sweeper?.go();
  const throttledPerSecond: number[] = [];
  let throttledSoFar = 0;
  const sampler = setInterval(() => {
    const now = apiGatewayCalls(world.aws.stats()).throttled;
    throttledPerSecond.push(now - throttledSoFar);
    throttledSoFar = now;
  }, 1000);
  const reports = await Promise.all(fleet.map((i) => i.done)).finally(() => clearInterval(sampler));
  await feeder.stop();
  const events = await collector.stop();
  const rolled = rollsDone(events);
  // The sweep finishes what is due after provisioning: one more run once the last overlap is over (its calls then take
  // nothing from provisioning).
  const swept = await sweeper?.finish(rolled.lastOverlapEnd && rolled.lastOverlapEnd + 1_000);
  const stats = withoutSweep(world.aws.stats(), swept);
  const provisioned = firstProvisioned(events);
  const found = await outcome(world, prepared, new Set(provisioned.keys()));

  const done = [...provisioned.values()];
  const keys = done.length;
  // Every signup counts as enqueued when the run started (see startFeeder).
  const latencies = done.map((at) => (at - started) / 1000).sort((a, b) => a - b);
  const durationSeconds = (Math.max(started, ...done) - started) / 1000;
  const goodput = durationSeconds > 0 ? keys / durationSeconds : 0;
  const lastKeyAt = Math.max(started, ...done);
  const capacityPerSecond = capacityLeft(
    scenario,
    time.factor,
    swept && {
      sweepCalls: swept.apiGatewayCalls,
      rolls: rolled.done.filter((r) => r.sentAt <= lastKeyAt).length,
      from: started,
      until: lastKeyAt,
    },
  );
  const left = swept ? await leftToRetire(world) : undefined;
  const api = apiGatewayCalls(stats);
  const perKey = (n: number) => (keys ? round(n / keys) : 0);
  const holds = [...stats.usagePlanSlotMs].sort((a, b) => a - b);
  const held = holds.reduce((sum, ms) => sum + ms, 0);
  return {
    label: strategy.label,
    keys,
    durationSeconds: round(durationSeconds, 1),
    goodput: round(goodput, 2),
    goodputRatio: round(goodput / capacityPerSecond),
    capacityPerSecond: round(capacityPerSecond),
    throttledShare: api.calls ? round(api.throttled / api.calls) : 0,
    throttledCalls: api.throttled,
    usagePlanConflicts: api.conflicts,
    usagePlanSlotP50Ms: holds.length ? round(percentile(holds, 50), 1) : 0,
    usagePlanSlotP90Ms: holds.length ? round(percentile(holds, 90), 1) : 0,
    usagePlanSlotBusyShare: durationSeconds > 0 ? round(held / (durationSeconds * 1000)) : 0,
    dlqMessages: found.dlqMessages,
    notFinished: Math.max(0, signups - keys - found.dlqMessages),
    leftOnQueue: found.leftOnQueue,
    duplicateKeys: found.duplicateKeys,
    keysOutsidePlan: found.keysOutsidePlan,
    keysNotYetInPlan: found.keysNotYetInPlan,
    apigwCallsPerKey: perKey(api.calls),
    callsPerKey: Object.fromEntries(
      Object.entries(stats.requests).map(([op, n]) => [op.replace(/^(secretsmanager|AmazonSQS)\./, ''), perKey(n)]),
    ),
    p50Seconds: round(percentile(latencies, 50), 2),
    p95Seconds: round(percentile(latencies, 95), 2),
    p99Seconds: round(percentile(latencies, 99), 2),
    peakRssMb: round(Math.max(...reports.map((r) => r.maxRssKb)) / 1024, 1),
    keysPerSecond: stats.createdPerSecond,
    throttledPerSecond,
    ...(swept &&
      left && {
        maintenance: {
          due: retirements,
          retired: (swept.outcomes.retired ?? 0) + (swept.outcomes.finished ?? 0),
          leaverKeysLeft: left.leaverKeys,
          dueLeft: left.due,
          rolls,
          rolled: rolled.done.length,
          rollEvents: rolled.outcomes,
          overlapsEnded: swept.outcomes['overlap-ended'] ?? 0,
          overlapsLeft: left.overlapsDue,
          rollerKeysExtra: left.rollerKeysExtra,
          runs: swept.runs,
          failures: swept.failures,
          apiGatewayCalls: swept.apiGatewayCalls.length,
          throttled: swept.apiGatewayCalls.filter((c) => c.throttled).length,
          conflicts: swept.apiGatewayCalls.filter((c) => c.conflict).length,
          callsWhileProvisioning: swept.apiGatewayCalls.filter((c) => c.at <= lastKeyAt).length,
          ...sweepPace(swept, started, lastKeyAt),
          dynamoDbCalls: Object.values(swept.dynamoDbCalls).reduce((a, b) => a + b, 0),
        },
      }),
  };
}

/** The sweep's time running between `from` and `until` (ms), and its API Gateway calls per second in that time. */
function sweepPace(swept: SweeperReport, from: number, until: number) {
  let ms = 0;
  let calls = 0;
  for (const { start, end } of swept.runTimes) {
    const a = Math.max(start, from);
    const b = Math.min(end, until);
    if (b <= a) continue;
    ms += b - a;
    calls += swept.apiGatewayCalls.filter((c) => c.at >= a && c.at <= b).length;
  }
  return { secondsRunningWhileProvisioning: round(ms / 1000, 1), callsPerSecondRunning: ms > 0 ? round(calls / (ms / 1000), 2) : 0 };
}
