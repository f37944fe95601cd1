import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { loadConfig } from '../lib/config.js';
import { createDeps } from '../lib/pipeline/deps.js';
import { logger, metrics } from '../lib/pipeline/observability.js';
import { createBatchHandler } from '../lib/pipeline/process-batch.js';
import { createRotationHandler, isRotationEvent, type RotationEvent } from '../lib/pipeline/rotation.js';

// Cold start: configuration is validated and the SDK clients are built once per instance.
const deps = createDeps(loadConfig(process.env));
const processBatch = createBatchHandler(deps);
// Secrets Manager rotation of a customer's secret rolls its key: the same function, role and roll path.
const rotate = createRotationHandler(deps);

const route = (event: SQSEvent | RotationEvent, context: Context): Promise<SQSBatchResponse | undefined> =>
  isRotationEvent(event) ? rotate(event, context) : processBatch(event, context);

export const handler = middy(route)
  .use(injectLambdaContext(logger, { resetKeys: true }))
  .use(logMetrics(metrics, { captureColdStartMetric: true }));
