/**
 * The maintenance sweep of the benchmark's `maintenance` scenario, in its own process (its own limiter and SDK
 * clients, as its own Lambda function has): the scheduled function's code (lib/maintenance: config, instance, sweep)
 * run every BENCH_SWEEP_EVERY_MS while the provisioning instances work, through the realistic layer, so that both
 * share API Gateway's quotas. Says `ready`; starts on `go` (stdin); on `finish [MS]` it completes the run under way,
 * runs once more at MS (ms since the epoch: when the last roll's overlap ends) or at once, and exits, printing one JSON line: its runs,
 * their outcomes and failures, and each API Gateway call it made (operation, time, whether it was throttled).
 */
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { ThrottledError } from '../../lib/errors.js';
import { loadSweepConfig } from '../../lib/maintenance/config.js';
import { createSweepInstance } from '../../lib/maintenance/deps.js';
import { sweep } from '../../lib/maintenance/sweep.js';
import type { CallRunner } from '../../lib/quota/call-path.js';

export interface SweeperCall {
  operation: string;
  /** ms since the epoch, when the call was answered. */
  at: number;
  throttled: boolean;
  /** A usage-plan write that overlapped another one: 409 "concurrent modification" (it wrote nothing). */
  conflict: boolean;
}

export interface SweeperReport {
  runs: number;
  /** When each run began and ended (ms since the epoch). */
  runTimes: Array<{ start: number; end: number }>;
  /** Outcome → records, over every run (a roll's overlap: `overlap-ended`, `overlap-not-due`). */
  outcomes: Record<string, number>;
  failures: string[];
  apiGatewayCalls: SweeperCall[];
  /** Operation → attempts. */
  dynamoDbCalls: Record<string, number>;
}

/** serverless.yml functions.sweep.timeout, scaled like the rest of the bench's times. */
const timeoutMs = Number(process.env.BENCH_SWEEP_TIMEOUT_MS ?? 120_000);
const everyMs = Number(process.env.BENCH_SWEEP_EVERY_MS ?? 20_000);

const instance = createSweepInstance(loadSweepConfig(process.env));
const report: SweeperReport = { runs: 0, runTimes: [], outcomes: {}, failures: [], apiGatewayCalls: [], dynamoDbCalls: {} };

/** Each attempt of each call (the retry runner calls `call` once per attempt), noted as it is answered. */
const counted =
  (runner: CallRunner, note: (operation: string, failed?: unknown) => void): CallRunner =>
  (operation, call) =>
    runner(operation, async () => {
      try {
        const answer = await call();
        note(operation);
        return answer;
      } catch (error) {
        note(operation, error);
        throw error;
      }
    });

/** The adapter's error for a 409 "concurrent modification" (lib/aws/api-gateway.ts: its cause is the SDK's ConflictException). */
const isConflict = (error: unknown): boolean =>
  error instanceof Error &&
  error.cause instanceof Error &&
  error.cause.name === 'ConflictException' &&
  /concurrent modification/i.test(error.cause.message);

async function runOnce(): Promise<void> {
  const started = Date.now();
  const deps = instance.forRun(
    () => timeoutMs - (Date.now() - started),
    undefined,
    (service, runner) =>
      service === 'apiGateway'
        ? counted(runner, (operation, error) =>
            report.apiGatewayCalls.push({
              operation,
              at: Date.now(),
              throttled: error instanceof ThrottledError,
              conflict: isConflict(error),
            }),
          )
        : counted(runner, (operation) => {
            report.dynamoDbCalls[operation] = (report.dynamoDbCalls[operation] ?? 0) + 1;
          }),
  );
  const result = await sweep(deps, { asOf: new Date() });
  report.runs++;
  report.runTimes.push({ start: started, end: Date.now() });
  for (const outcome of Object.values(result.outcomes)) report.outcomes[outcome] = (report.outcomes[outcome] ?? 0) + 1;
  for (const outcome of Object.values(result.overlaps))
    report.outcomes[`overlap-${outcome}`] = (report.outcomes[`overlap-${outcome}`] ?? 0) + 1;
  report.failures.push(...result.failures.map((f) => `${f.key}: ${f.error}`));
  if (result.capacityError) report.failures.push(`count: ${result.capacityError}`);
}

const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
process.stdout.write('ready\n');
await lines.next(); // go
let finishing = false;
let notBefore = 0;
const finished = lines.next().then((line) => {
  finishing = true;
  notBefore = Number(String(line.value ?? '').split(' ')[1]) || 0;
});
while (!finishing) {
  const started = Date.now();
  await runOnce();
  await Promise.race([finished, sleep(Math.max(0, everyMs - (Date.now() - started)))]);
}
// What became due meanwhile: the overlaps of the last rolls end at `notBefore`.
await sleep(Math.max(0, notBefore - Date.now()));
await runOnce();
process.stdout.write(`${JSON.stringify(report)}\n`);
process.exit(0);
