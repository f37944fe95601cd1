/**
 * What the benchmark runs: named scenarios (how many instances of a deployment sized for how many, a neighbour on
 * the quota, usage plans) and strategies (ours, the SDK's retry modes, and the limiter designs that were measured
 * before ours was chosen), and the environment each function instance gets.
 */
import type { SharingRateLimiterOptions } from '../../lib/quota/rate-limiter.js';
import { API_GATEWAY_QUOTAS } from '../realistic-aws/index.js';
import type { PauseOnThrottle, SdkRetryMode } from './designs.js';

export interface Scenario {
  /** How many function instances run. */
  instances: number;
  /** The deployment's `maximumConcurrency`: each instance's share of the quota is derived from it. */
  concurrency: number;
  /** The fraction (0–1) of API Gateway's quotas a neighbour of the same account uses. */
  neighbourShare: number;
  usagePlans: boolean;
  description: string;
  /**
   * The quota multiplier (and time compression) the scenario is judged at; `--factor` overrides it for every
   * scenario. Default {@link DEFAULT_FACTOR}.
   */
  factor?: number;
  /** Only these strategies run in it (of those `--strategies` names); default every one. */
  onlyStrategies?: readonly string[];
  /**
   * Maintenance sharing the quotas with provisioning: leavers' keys revoked longer than RETIRE_AFTER_DAYS, seeded
   * before the run (`retirementsPerSignup` × the signups), retired by the sweep (its own process, the scheduled
   * function's code) running every `sweepEverySeconds` (scaled by the factor) while the signups arrive; and a roll
   * storm: `rollsPerSignup` × the signups customers provisioned before the run, whose roll requests (grace
   * `rollGraceSeconds`, scaled) arrive as one block among the signups, their overlaps ended by the sweep.
   */
  maintenance?: { retirementsPerSignup: number; sweepEverySeconds: number; rollsPerSignup?: number; rollGraceSeconds?: number };
}

/** The quota multiplier of a scenario that names none (and of a custom one): time runs 3 times faster. */
export const DEFAULT_FACTOR = 3;

export const SCENARIOS: Record<string, Scenario> = {
  steady: { instances: 4, concurrency: 4, neighbourShare: 0, usagePlans: false, description: '4 instances of a deployment sized for 4' },
  'one-instance': {
    instances: 1,
    concurrency: 4,
    neighbourShare: 0,
    usagePlans: false,
    description: '1 instance of a deployment sized for 4',
  },
  'two-instances': {
    instances: 2,
    concurrency: 4,
    neighbourShare: 0,
    usagePlans: false,
    description: '2 instances of a deployment sized for 4',
  },
  neighbour: {
    instances: 4,
    concurrency: 4,
    neighbourShare: 0.3,
    usagePlans: false,
    description: '4 of 4 while a neighbour uses 30 % of the CreateApiKey and of the Total quota',
  },
  'usage-plans': {
    instances: 4,
    concurrency: 4,
    neighbourShare: 0,
    usagePlans: true,
    // Judged at the real quotas (issue 21): at 3 × them the one-at-a-time slot, held by moto's latency that the
    // factor does not compress, is what bounds it (docs/throughput.md).
    factor: 1,
    description: '4 of 4, every key added to a usage plan (writes one at a time, 409 on overlap), at the real quotas',
  },
  maintenance: {
    instances: 4,
    concurrency: 4,
    neighbourShare: 0,
    usagePlans: true,
    factor: 1,
    // The sweep is ours whatever the provisioning strategy; only ours is judged here.
    onlyStrategies: ['ours'],
    maintenance: { retirementsPerSignup: 0.15, sweepEverySeconds: 20, rollsPerSignup: 0.1, rollGraceSeconds: 20 },
    description:
      "4 of 4 with usage plans while the sweep retires leavers' keys (0.15 per signup) and a roll storm (0.1 per signup, at once; grace 20 s) rolls keys whose overlaps the sweep ends, on the same quotas, at the real quotas",
  },
};

export interface Strategy {
  label: string;
  /** Environment of the function (lib/config.ts) on top of the deployment's. */
  env: Record<string, string>;
  /**
   * A limiter design measured against ours ({@link LIMITER_DESIGNS}): the production handler with its API Gateway
   * limiter built by this design (tests/bench/instance.ts). Absent: the production handler exactly as deployed.
   */
  design?: string;
}

/** Production's limiter options, and another design's instance pause (designs.ts pausing; ours: the first throttle). */
type Options = SharingRateLimiterOptions & { pauseOnThrottle?: PauseOnThrottle };

/**
 * The limiter designs measured before ours was chosen (docs/throughput.md), each from the options production
 * derives from the configuration (lib/pipeline/deps.ts apiGatewayLimiterOptions).
 */
export const LIMITER_DESIGNS: Record<string, { label: string; options: (production: Options) => Options; turns?: false; table?: string }> =
  {
    'table-missing': {
      label: 'ours, its coordination table missing (ResourceNotFoundException on every call): the fallback',
      options: (p) => p,
      table: 'bench-no-such-table',
    },
    'total-burst-1s': {
      label: 'ours, told its fair share, with one second of its Total rate as burst (not four: the quota allows 40 ÷ 10)',
      options: (p) => ({ ...p, totalBurstSeconds: 1 }),
    },
    'no-turns': {
      label: 'ours without the usage-plan write turns table: each instance writes one at a time on its own (before the turns)',
      options: (p) => ({ ...p, serialiseUsagePlanWrites: true }),
      turns: false,
    },
    static: {
      label: 'static share (quota ÷ maximumConcurrency), AIMD below it, instance paused for Retry-After (before #13)',
      options: (p) => ({ ...p, ceilingPerSecond: p.sharePerSecond, decreaseFactor: 0.5, pauseOnThrottle: 'instance' }),
    },
    'share-floor': {
      label: 'AIMD probing up to the account quota, the static share as floor',
      options: (p) => ({ ...p, floorPerSecond: p.sharePerSecond }),
    },
    'pause-instance': {
      label: 'ours, but every throttle pauses the whole instance for its Retry-After',
      options: (p) => ({ ...p, pauseOnThrottle: 'instance' }),
    },
    'pause-call': {
      label: 'ours, but no throttle pauses the instance: only the throttled call waits its Retry-After',
      options: (p) => ({ ...p, pauseOnThrottle: 'call' }),
    },
    'first-cut-0.4': {
      label: 'ours, with the first cut (end of the fast probe) to 0.4 × the rate instead of 0.5',
      options: (p) => ({ ...p, firstDecreaseFactor: 0.4 }),
    },
    'burst-2': {
      label: 'ours, with the earlier fixed burst of 2 CreateApiKey calls (not one second of its rate, at least 1)',
      options: (p) => ({ ...p, burst: 2 }),
    },
    'writes-unserialised': {
      label: 'ours, but usage-plan writes neither serialised per instance nor spaced after a 409',
      options: (p) => ({ ...p, serialiseUsagePlanWrites: false, usagePlanWriteBackoffMs: 0 }),
    },
    'writes-gap-short': {
      label: 'ours, with a 3 × shorter gap after a failed usage-plan write (the retry base delay, not 3 ×)',
      options: (p) => ({ ...p, usagePlanWriteBackoffMs: (p.usagePlanWriteBackoffMs ?? 300) / 3 }),
    },
    'slow-probe-0.004': {
      label: 'ours, with a slower slow probe (share × 0.004 per success instead of 0.006)',
      options: (p) => ({ ...p, increasePerSuccess: p.sharePerSecond * 0.004 }),
    },
    'cut-0.7': {
      label: 'ours, with shallower cuts after the first (× 0.7 instead of 0.6)',
      options: (p) => ({ ...p, decreaseFactor: 0.7 }),
    },
    'fast-probe-x2': {
      label: 'ours, with a fast probe twice as fast (share × 0.5 per success)',
      options: (p) => ({ ...p, fastIncreasePerSuccess: p.sharePerSecond * 0.5 }),
    },
    'no-fast-probe': {
      label: 'ours without the fast probe (slow additive increase from the start)',
      options: (p) => ({ ...p, fastIncreasePerSuccess: p.sharePerSecond * 0.006 }),
    },
  };

/** The three strategies every scenario compares, and the designs measured on the way (`--strategies design:…`). */
export function strategies(scaled: (ms: number) => string, turnsTable: string): Record<string, Strategy> {
  const ownRetries = {
    RETRY_MAX_ATTEMPTS: '6',
    RETRY_BASE_DELAY_MS: scaled(100),
    RETRY_MAX_DELAY_MS: scaled(10_000),
  };
  // serverless.yml gives the function the turns table; the baselines are the handler without our coordination.
  const ours = { ...ownRetries, COORDINATION_TABLE: turnsTable };
  // The handler with the SDK's retries instead of ours (designs.ts sdkRetryHandler).
  const sdk = (mode: SdkRetryMode) => ({ API_GATEWAY_RATE_PER_SECOND: '0', BENCH_SDK_RETRY_MODE: mode, RETRY_MAX_ATTEMPTS: '1' });
  const designs = Object.entries(LIMITER_DESIGNS).map(([name, d]): [string, Strategy] => [
    `design:${name}`,
    {
      label: `design: ${d.label}`,
      env: d.turns === false ? ownRetries : { ...ours, ...(d.table ? { COORDINATION_TABLE: d.table } : {}) },
      design: name,
    },
  ]);
  return {
    ours: { label: 'ours: sharing limiter (share → probe to the account quota), usage-plan write turns, own retries', env: ours },
    sdkStandard: { label: 'SDK standard retry, no limiter', env: sdk('standard') },
    sdkAdaptive: { label: 'SDK adaptive retry (client-side CUBIC limiter)', env: sdk('adaptive') },
    ...Object.fromEntries(designs),
  };
}

/** The account's emulated CreateApiKey quota: AWS's 5/s × the time factor. */
export const createApiKeyLimit = (factor: number) => API_GATEWAY_QUOTAS.createApiKeyPerSecond * factor;

/**
 * The rate settings of one instance of a deployment with `maximumConcurrency` = `concurrency`, derived as
 * serverless.yml derives them: API_GATEWAY_RATE_PER_SECOND = the account's CreateApiKey quota ÷ maximumConcurrency
 * (custom.apiGatewayRatePerInstance), API_GATEWAY_ACCOUNT_RATE_PER_SECOND = the quota (custom.apiGatewayAccountRate),
 * both × the time factor.
 */
export function deploymentEnv(concurrency: number, factor: number): Record<string, string> {
  const quota = createApiKeyLimit(factor);
  return { API_GATEWAY_RATE_PER_SECOND: String(quota / concurrency), API_GATEWAY_ACCOUNT_RATE_PER_SECOND: String(quota) };
}
