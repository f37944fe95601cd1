import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import { loadConfig } from '../lib/config.js';
import { createDeps } from '../lib/pipeline/deps.js';
import { logger, metrics } from '../lib/pipeline/observability.js';
import { createBatchHandler } from '../lib/pipeline/process-batch.js';

// Cold start: configuration is validated and the SDK clients are built once per instance.
const processBatch = createBatchHandler(createDeps(loadConfig(process.env)));

export const handler = middy(processBatch)
  .use(injectLambdaContext(logger, { resetKeys: true }))
  .use(logMetrics(metrics, { captureColdStartMetric: true }));
