/**
 * Baseline entry of tests/bench/key-page.ts's provision-init figure: what the function's design itself costs at
 * init — the same four SDK clients, Middy, and Powertools' Logger, Metrics and BatchProcessor, built at module scope
 * as functions/provision.ts builds them — and none of this project's own code (lib/). The provision function's init
 * over this is the price of our code; over tests/bench/sdk-only-entry.ts it would also count the libraries the
 * design chose. Kept in the repo so `tsc --noEmit` checks it against the installed versions.
 */
import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import { APIGatewayClient } from '@aws-sdk/client-api-gateway';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SQSClient } from '@aws-sdk/client-sqs';
import middy from '@middy/core';
import type { Context, SQSEvent } from 'aws-lambda';

const clients = [new APIGatewayClient({}), new SecretsManagerClient({}), new SQSClient({}), new DynamoDBClient({})];
const logger = new Logger({ serviceName: 'baseline' });
const metrics = new Metrics({ namespace: 'Baseline', serviceName: 'baseline' });
const processor = new BatchProcessor(EventType.SQS);

/** A handler of the function's shape: the batch processed by Powertools, the chain built by Middy. */
export const handler = middy(async (event: SQSEvent, context: Context) =>
  processPartialResponse(event, async () => clients.length, processor, { context }),
)
  .use(injectLambdaContext(logger, { resetKeys: true }))
  .use(logMetrics(metrics));
