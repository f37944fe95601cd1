/**
 * A function instance in a process of its own, for tests that kill it with SIGKILL mid-invocation:
 * the production handler, run over SIGNUP_QUEUE_URL by the event-source-mapping runner until the queue drains.
 */
import { SQSClient } from '@aws-sdk/client-sqs';
import { handler } from '../../functions/provision.js';
import { runEventSourceMapping } from '../../lib/local/event-source-mapping.js';

const { MOTO_ENDPOINT, SIGNUP_QUEUE_URL, SIGNUP_QUEUE_ARN } = process.env;
if (!MOTO_ENDPOINT || !SIGNUP_QUEUE_URL || !SIGNUP_QUEUE_ARN)
  throw new Error('MOTO_ENDPOINT, SIGNUP_QUEUE_URL and SIGNUP_QUEUE_ARN are required');

// The function's calls are the provision role's: the layer's IAM switch names a child process's caller by its access
// key id (tests/realistic-aws/iam/caller.ts); credentials are read at each client's first call, after this line.
process.env.AWS_ACCESS_KEY_ID = 'provision';

await runEventSourceMapping({
  sqs: new SQSClient({ endpoint: MOTO_ENDPOINT }),
  queueUrl: SIGNUP_QUEUE_URL,
  queueArn: SIGNUP_QUEUE_ARN,
  handler,
  maxDurationMs: 60_000,
});
