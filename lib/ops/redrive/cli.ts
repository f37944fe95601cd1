/**
 * `npm run redrive -- --dlq-url URL [--source-url URL] [options]`: moves messages from a dead-letter queue back to
 * its source queue (the logic is in lib/local/redrive.ts). Exit code: 0 done, 1 a send (or the move task) failed,
 * 2 could not run.
 */
import { parseArgs } from 'node:util';
import { SQSClient } from '@aws-sdk/client-sqs';
import { formatReport, formatSummary, type MoveTaskReport, parseDuration, type RedriveFilter, redrive, resolveQueues } from './redrive.js';

const USAGE = `Usage: npm run redrive -- (--dlq-url URL | --dlq-arn ARN) [--source-url URL | --source-arn ARN] [options]

Moves messages from a dead-letter queue back to its source queue. Without --source-*, the source is the one queue
whose RedrivePolicy names the DLQ (or the one queue of the DLQ's RedriveAllowPolicy).

  --endpoint URL          an AWS-compatible endpoint (moto, LocalStack); default: AWS, as the SDK configures it
  --region REGION         default: the SDK's (us-east-1 with --endpoint)
  --dry-run               list what would move; move nothing
  --customer ID           only this customer's messages ('unreadable': bodies the function cannot read)
  --reason R              only messages failing for this reason: retries-exhausted (the body is fine: the function
                          kept failing on it), or a rejection reason of the README's table (invalid-json, ...)
  --older-than DURATION   only messages sent at least this long ago (90s, 30m, 2h, 7d, 1h30m)
  --newer-than DURATION   only messages sent less than this long ago
  --max N                 move at most N messages
  --rate N                messages per second (default 10)
  --visibility-timeout S  how long received messages stay hidden while the run holds them (default 60)
  --no-move-task          never use StartMessageMoveTask (always receive, send, delete; one line per message)

Without filters or --max, SQS's move task (StartMessageMoveTask) moves everything; where the endpoint does not
implement it, and whenever filters are given, messages are received, sent to the source (same body and message
attributes), and only then deleted from the DLQ. Non-matching messages are made visible again when the run ends.
Exit code: 0 done, 1 a send (or the move task) failed, 2 could not run.`;

function options() {
  const { values } = parseArgs({
    options: {
      'dlq-url': { type: 'string' },
      'dlq-arn': { type: 'string' },
      'source-url': { type: 'string' },
      'source-arn': { type: 'string' },
      endpoint: { type: 'string' },
      region: { type: 'string' },
      'dry-run': { type: 'boolean', default: false },
      customer: { type: 'string' },
      reason: { type: 'string' },
      'older-than': { type: 'string' },
      'newer-than': { type: 'string' },
      max: { type: 'string' },
      rate: { type: 'string', default: '10' },
      'visibility-timeout': { type: 'string', default: '60' },
      'no-move-task': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  return values;
}

const positive = (name: string, value: string, integer: boolean): number => {
  const n = Number(value);
  if (!(n > 0) || (integer && !Number.isInteger(n)))
    throw new Error(`--${name} must be a positive ${integer ? 'integer' : 'number'}, got ${JSON.stringify(value)}`);
  return n;
};

async function main(): Promise<number> {
  const flags = options();
  if (flags.help) {
    console.log(USAGE);
    return 0;
  }
  const filter: RedriveFilter = {
    customer: flags.customer,
    reason: flags.reason,
    olderThanMs: flags['older-than'] === undefined ? undefined : parseDuration(flags['older-than']),
    newerThanMs: flags['newer-than'] === undefined ? undefined : parseDuration(flags['newer-than']),
  };
  const max = flags.max === undefined ? undefined : positive('max', flags.max, true);
  const ratePerSecond = positive('rate', flags.rate, false);
  const visibilityTimeoutSeconds = positive('visibility-timeout', flags['visibility-timeout'], true);

  if (flags.endpoint) {
    process.env.AWS_REGION ??= 'us-east-1';
    // A local endpoint does not check credentials, but the SDK needs some to sign with.
    if (/^https?:\/\/(localhost|127\.0\.0\.1|\[::1\])(:|\/|$)/.test(flags.endpoint) && !process.env.AWS_PROFILE) {
      process.env.AWS_ACCESS_KEY_ID ??= 'local';
      process.env.AWS_SECRET_ACCESS_KEY ??= 'local';
    }
  }
  const sqs = new SQSClient({ ...(flags.endpoint && { endpoint: flags.endpoint }), ...(flags.region && { region: flags.region }) });
  const queues = await resolveQueues(sqs, {
    dlqUrl: flags['dlq-url'],
    dlqArn: flags['dlq-arn'],
    sourceUrl: flags['source-url'],
    sourceArn: flags['source-arn'],
  });
  const dryRun = flags['dry-run'];
  console.log(`${dryRun ? 'Dry run: ' : ''}${queues.dlqUrl} -> ${queues.sourceUrl}, ${ratePerSecond} message(s)/s`);

  const abort = new AbortController();
  process.once('SIGINT', () => {
    console.error('Interrupted: stopping after the current message, releasing the messages held');
    abort.abort();
  });
  const summary = await redrive(sqs, {
    ...queues,
    dryRun,
    filter,
    max,
    ratePerSecond,
    visibilityTimeoutSeconds,
    useMoveTask: !flags['no-move-task'],
    signal: abort.signal,
    onMessage: (report) => console.log(formatReport(report)),
    onTaskProgress: (task: MoveTaskReport) =>
      console.log(`move task ${task.status}: ${task.moved}${task.toMove === undefined ? '' : ` of ${task.toMove}`} moved`),
    onFallback: (reason) => console.log(`${reason}: moving message by message instead`),
  });
  console.log(formatSummary(summary, dryRun));
  return summary.failed > 0 ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(`redrive failed: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(2);
  },
);
