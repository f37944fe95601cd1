import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { loadSweepConfig } from '../lib/maintenance/config.js';
import { createSweepInstance } from '../lib/maintenance/deps.js';
import { recordSweep, sweepSummary } from '../lib/maintenance/observability.js';
import { sweep } from '../lib/maintenance/sweep.js';
import { logger, metrics } from '../lib/pipeline/observability.js';

// Cold start: configuration is validated and the SDK clients are built once per instance.
const instance = createSweepInstance(loadSweepConfig(process.env));

/** The maintenance sweep on its EventBridge schedule: retire what is due now, count the Region's keys. */
async function runSweep(_event: unknown, context: Context) {
  const report = await sweep(
    instance.forRun(() => context.getRemainingTimeInMillis()),
    {
      asOf: new Date(),
      // Each failure with its Error (name, message, stack, causes); the summary below lists them as text.
      onFailure: (error, key) =>
        logger.error(
          key ? 'Sweep: a record failed (it stays due: the next run tries again)' : "Sweep: the Region's API keys could not be counted",
          {
            ...(key && { key }),
            error,
          },
        ),
    },
  );
  recordSweep(metrics, report);
  const summary = sweepSummary(report);
  if (report.failures.length > 0 || report.capacityError) logger.error('Sweep done, with failures (the next run tries again)', summary);
  else logger.info('Sweep done', summary);
  return summary;
}

export const handler = middy(runSweep)
  .use(injectLambdaContext(logger, { resetKeys: true }))
  .use(logMetrics(metrics, { captureColdStartMetric: true }));
