/**
 * One function instance of the benchmark, in its own process (its own limiter, SDK clients and memory): the
 * production handler run over the signup queue by the event-source-mapping runner until the queue drains.
 * With BENCH_DESIGN, the same batch handler with its API Gateway limiter built by that design (scenarios.ts
 * LIMITER_DESIGNS) instead of production's: how the designs were compared before one was chosen. With
 * BENCH_SDK_RETRY_MODE, the batch handler with the SDK's own retries (designs.ts sdkRetryHandler): the baselines.
 * Says `ready` once its modules are loaded and starts on `go` (stdin), so every instance starts at the same moment
 * and module loading through tsx stays out of the measurement. Prints one JSON line at the end: invocations and peak RSS.
 */
import { once } from 'node:events';
import { SQSClient } from '@aws-sdk/client-sqs';
import { loadConfig } from '../../lib/config.js';
import { runEventSourceMapping, type SqsHandler } from '../../lib/local/event-source-mapping.js';
import { apiGatewayLimiterOptions, createDeps, instanceLimiter } from '../../lib/pipeline/deps.js';
import { createBatchHandler } from '../../lib/pipeline/process-batch.js';
import { pausing, type SdkRetryMode, sdkRetryHandler } from './designs.js';
import { LIMITER_DESIGNS } from './scenarios.js';

const { MOTO_ENDPOINT, BENCH_QUEUE_URL, BENCH_QUEUE_ARN, BENCH_FUNCTION_TIMEOUT_MS, BENCH_MAX_DURATION_MS, BENCH_DESIGN } = process.env;
if (!MOTO_ENDPOINT || !BENCH_QUEUE_URL || !BENCH_QUEUE_ARN)
  throw new Error('MOTO_ENDPOINT, BENCH_QUEUE_URL and BENCH_QUEUE_ARN are required');

async function designHandler(name: string): Promise<SqsHandler> {
  const design = LIMITER_DESIGNS[name];
  if (!design) throw new Error(`unknown BENCH_DESIGN ${name}`);
  const config = loadConfig(process.env);
  const deps = createDeps(config);
  const { pauseOnThrottle, ...options } = design.options(apiGatewayLimiterOptions(config));
  const limiter = instanceLimiter(config, options);
  return createBatchHandler({
    ...deps,
    apiGatewayLimiter: pauseOnThrottle ? pausing(limiter, pauseOnThrottle, options.maxPauseMs ?? config.retry.maxDelayMs) : limiter,
  });
}

const handler: SqsHandler = BENCH_DESIGN
  ? await designHandler(BENCH_DESIGN)
  : process.env.BENCH_SDK_RETRY_MODE
    ? sdkRetryHandler(process.env.BENCH_SDK_RETRY_MODE as SdkRetryMode)
    : (await import('../../functions/provision.js')).handler;

process.stdout.write('ready\n');
await once(process.stdin, 'data');

const run = await runEventSourceMapping({
  // The runner plays the Lambda service: it talks to moto directly, unthrottled and uncounted.
  sqs: new SQSClient({ endpoint: MOTO_ENDPOINT }),
  queueUrl: BENCH_QUEUE_URL,
  queueArn: BENCH_QUEUE_ARN,
  handler,
  batchSize: Number(process.env.BENCH_BATCH_SIZE ?? 10),
  waitTimeSeconds: 1,
  functionTimeoutMs: Number(BENCH_FUNCTION_TIMEOUT_MS ?? 30_000),
  maxDurationMs: Number(BENCH_MAX_DURATION_MS ?? 120_000),
});
process.stdout.write(
  `${JSON.stringify({ invocations: run.invocations, drained: run.drained, maxRssKb: process.resourceUsage().maxRSS })}\n`,
);
