import { loadSweepConfig } from '../maintenance/config.js';
import { createSweepInstance } from '../maintenance/deps.js';
import { type SweepReport, sweep } from '../maintenance/sweep.js';

/** serverless.yml functions.sweep.timeout: how long one run of the maintenance sweep may take. */
const SWEEP_TIMEOUT_MS = 120_000;

/**
 * One run of the maintenance sweep as the scheduled function (functions/sweep.ts) and `npm run sweep` run it: the
 * same configuration (RETIRE_AFTER_DAYS, API_KEY_QUOTA, USAGE_PLANS, KEY_RECORDS_TABLE from the environment), the
 * same instance and use case, what is due now, within the function's timeout.
 */
export async function sweepOnce(): Promise<SweepReport> {
  const instance = createSweepInstance(loadSweepConfig(process.env));
  const deadline = Date.now() + SWEEP_TIMEOUT_MS;
  return sweep(
    instance.forRun(() => deadline - Date.now()),
    { asOf: new Date() },
  );
}
