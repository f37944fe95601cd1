/** The benchmark's output: a table per scenario, the targets checked for ours, and the JSON of `--out`. */
import type { StrategyResult } from './measure.js';
import type { Scenario } from './scenarios.js';

export interface ScenarioResult extends Scenario {
  /** The quota multiplier it ran at. */
  factor: number;
  /** keys/s the pipeline may reach: the CreateApiKey limit × (1 − neighbour share). */
  capacityPerSecond: number;
  strategies: Record<string, StrategyResult>;
}

const percent = (n: number) => `${(n * 100).toFixed(1)}%`;

/** One table: a row per figure, a column per strategy. */
export function table(results: Record<string, StrategyResult>, capacity: number): string {
  const maintained = Object.values(results).some((r) => r.maintenance);
  const rows: Array<[string, (r: StrategyResult) => string]> = [
    ['keys provisioned', (r) => String(r.keys)],
    ['time to drain (s)', (r) => String(r.durationSeconds)],
    ['goodput (keys/s)', (r) => String(r.goodput)],
    ...(maintained
      ? ([
          ['capacity left by the sweep (keys/s)', (r) => String(+r.capacityPerSecond.toFixed(3))],
          ['goodput ÷ capacity left', (r) => r.goodputRatio.toFixed(3)],
        ] as Array<[string, (r: StrategyResult) => string]>)
      : ([[`goodput ÷ capacity (${+capacity.toFixed(2)}/s)`, (r) => r.goodputRatio.toFixed(3)]] as Array<
          [string, (r: StrategyResult) => string]
        >)),
    ['throttled share of API Gateway calls', (r) => percent(r.throttledShare)],
    ['throttled calls', (r) => String(r.throttledCalls)],
    ['usage-plan write 409s', (r) => String(r.usagePlanConflicts)],
    ['usage-plan slot held p50 / p90 (ms)', (r) => `${r.usagePlanSlotP50Ms} / ${r.usagePlanSlotP90Ms}`],
    ['usage-plan slot busy share', (r) => percent(r.usagePlanSlotBusyShare)],
    ['messages in the DLQ', (r) => String(r.dlqMessages)],
    ['not finished', (r) => String(r.notFinished)],
    ['  left on the signup queue (visible or handed back)', (r) => String(r.leftOnQueue)],
    ['duplicate keys', (r) => String(r.duplicateKeys)],
    ['keys provisioned outside their plan', (r) => String(r.keysOutsidePlan)],
    ['  not finished, not in their plan yet', (r) => String(r.keysNotYetInPlan)],
    ['API Gateway calls per key', (r) => String(r.apigwCallsPerKey)],
    ...[...new Set(Object.values(results).flatMap((r) => Object.keys(r.callsPerKey)))]
      .sort()
      .map((op): [string, (r: StrategyResult) => string] => [`  ${op} per key`, (r) => String(r.callsPerKey[op] ?? 0)]),
    ['enqueue → completion p50 (s)', (r) => String(r.p50Seconds)],
    ['enqueue → completion p95 (s)', (r) => String(r.p95Seconds)],
    ['enqueue → completion p99 (s)', (r) => String(r.p99Seconds)],
    ['peak RSS of an instance (MiB)', (r) => String(r.peakRssMb)],
    ...(maintained
      ? ([
          ['retirements due / done', (r) => `${r.maintenance?.due} / ${r.maintenance?.retired}`],
          ["leavers' keys left, records still due", (r) => `${r.maintenance?.leaverKeysLeft}, ${r.maintenance?.dueLeft}`],
          ['roll requests / rolls done', (r) => `${r.maintenance?.rolls} / ${r.maintenance?.rolled}`],
          [
            '  their completion events',
            (r) =>
              Object.entries(r.maintenance?.rollEvents ?? {})
                .map(([k, n]) => `${n} ${k}`)
                .join(', '),
          ],
          [
            'overlaps ended; left, old keys left',
            (r) => `${r.maintenance?.overlapsEnded}; ${r.maintenance?.overlapsLeft}, ${r.maintenance?.rollerKeysExtra}`,
          ],
          ['sweep runs, failures', (r) => `${r.maintenance?.runs}, ${r.maintenance?.failures.length}`],
          [
            'sweep API Gateway calls (throttled, 409s)',
            (r) => `${r.maintenance?.apiGatewayCalls} (${r.maintenance?.throttled}, ${r.maintenance?.conflicts})`,
          ],
          ['  of them while provisioning ran', (r) => String(r.maintenance?.callsWhileProvisioning)],
          [
            '  sweep running then (s), its calls/s meanwhile',
            (r) => `${r.maintenance?.secondsRunningWhileProvisioning}, ${r.maintenance?.callsPerSecondRunning}`,
          ],
          ['sweep DynamoDB calls', (r) => String(r.maintenance?.dynamoDbCalls)],
        ] as Array<[string, (r: StrategyResult) => string]>)
      : []),
  ];
  const names = Object.keys(results);
  const cells = [['', ...names], ...rows.map(([label, get]) => [label, ...names.map((n) => get(results[n] as StrategyResult))])];
  const widths = cells[0]?.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length))) ?? [];
  return cells.map((r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ')).join('\n');
}

const BASELINES = ['sdkStandard', 'sdkAdaptive'];

/** The targets for ours in one scenario: each line says met or missed, with the figure. */
export function targets(result: ScenarioResult): string[] {
  const ours = result.strategies.ours;
  if (!ours) return [];
  const best = Math.max(0, ...BASELINES.map((b) => result.strategies[b]?.goodputRatio ?? 0));
  const check = (ok: boolean, text: string) => `${ok ? 'met   ' : 'MISSED'} ${text}`;
  const lines = [
    check(ours.goodputRatio >= 0.95, `goodputRatio ${ours.goodputRatio} ≥ 0.95`),
    check(ours.throttledShare <= 0.05, `throttledShare ${ours.throttledShare} ≤ 0.05`),
    check(ours.dlqMessages === 0, `${ours.dlqMessages} in the DLQ`),
    check(ours.duplicateKeys === 0, `${ours.duplicateKeys} duplicate keys`),
    check(ours.keysOutsidePlan === 0, `${ours.keysOutsidePlan} keys outside their plan`),
    check(ours.notFinished === 0, `${ours.notFinished} signups not finished`),
  ];
  const m = ours.maintenance;
  if (m) {
    const done = m.leaverKeysLeft === 0 && m.dueLeft === 0 && m.retired === m.due;
    lines.push(
      check(done, `every due retirement done: ${m.retired} of ${m.due} retired, ${m.leaverKeysLeft} keys and ${m.dueLeft} records left`),
    );
    if (m.rolls > 0) {
      const ended = m.rolled === m.rolls && m.overlapsLeft === 0 && m.rollerKeysExtra === 0;
      lines.push(
        check(
          ended,
          `every roll done and its overlap ended: ${m.rolled} of ${m.rolls} rolled, ${m.overlapsLeft} overlaps and ${m.rollerKeysExtra} old keys left`,
        ),
      );
    }
  }
  if (best > 0)
    lines.splice(1, 0, check(ours.goodputRatio >= 0.97 * best, `goodputRatio ${ours.goodputRatio} ≥ 0.97 × best baseline ${best}`));
  return lines;
}

/** The JSON of `--out`: `{ settings, scenarios: { <name>: { instances, concurrency, neighbourShare, usagePlans, strategies } }, coldStart }`. */
export function json(settings: object, scenarios: Record<string, ScenarioResult>, coldStart: unknown): object {
  return {
    settings,
    scenarios: Object.fromEntries(
      Object.entries(scenarios).map(([name, s]) => [
        name,
        {
          factor: s.factor,
          instances: s.instances,
          concurrency: s.concurrency,
          neighbourShare: s.neighbourShare,
          usagePlans: s.usagePlans,
          ...(s.maintenance && { maintenance: s.maintenance }),
          capacityPerSecond: s.capacityPerSecond,
          strategies: Object.fromEntries(Object.entries(s.strategies).map(([n, r]) => [n, r])),
        },
      ]),
    ),
    coldStart,
  };
}
