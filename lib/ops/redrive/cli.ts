/**
 * `npm run redrive -- --dlq-url URL [--source-url URL] [options]`: moves messages from a dead-letter queue back to
 * its source queue (redrive.ts does the work). Exit code: 0 done, 1 a send (or the move task) failed, 2 could not run.
 */
import { SQSClient } from '@aws-sdk/client-sqs';
import {
  endpointUrl,
  isLoopbackUrl,
  parseCommandLine,
  positiveNumber,
  requireAwsSettings,
  runCommand,
  UsageError,
  useEndpoint,
} from '../../command-line.js';
import { DLQ_REASONS, FIRST_SENT_AT_ATTRIBUTE, isDlqReason, parseDuration, type RedriveFilter } from './messages.js';
import type { MoveTaskReport } from './move-task.js';
import { resolveQueues } from './queues.js';
import { redrive } from './redrive.js';
import { formatReport, formatSummary } from './report.js';

const USAGE = `Usage: npm run redrive -- (--dlq-url URL | --dlq-arn ARN) [--source-url URL | --source-arn ARN] [options]

Moves messages from a dead-letter queue back to its source queue. Without --source-*, the source is the one queue
whose RedrivePolicy names the DLQ (or the one queue of the DLQ's RedriveAllowPolicy). A queue's URL and ARN may
both be given only when they name the same queue.

  --endpoint URL          an AWS-compatible endpoint (moto, LocalStack); default: AWS, as the SDK configures it
  --region REGION         default: the SDK's (us-east-1 with --endpoint)
  --dry-run               list what would move; move nothing
  --customer ID           only this customer's messages ('unreadable': bodies the function cannot read)
  --reason R              only messages failing for this reason: retries-exhausted (the body is fine: the function
                          kept failing on it), or a rejection reason of docs/events.md's "Failure reasons"
                          (invalid-json, unknown-product, ...)
  --older-than DURATION   only messages sent at least this long ago (90s, 30m, 2h, 7d, 1h30m)
  --newer-than DURATION   only messages sent less than this long ago
  --max N                 move at most N messages
  --rate N                messages per second (default 10)
  --visibility-timeout S  how long received messages stay hidden while the run holds them (default 60)
  --no-move-task          never use StartMessageMoveTask (always receive, send, delete; one line per message)
  -h, --help              print this text

Without filters or --max, SQS's move task (StartMessageMoveTask) moves everything; where the endpoint does not
implement it, and whenever filters are given, messages are received, sent to the source (same body and message
attributes, plus ${FIRST_SENT_AT_ATTRIBUTE}: the first send time, kept across redrives), and only then deleted from
the DLQ. Non-matching messages are made visible again when the run ends.

Locally, --endpoint URL is needed: \`npm start -- --keep\` leaves moto running and prints its endpoint and the queue
URLs. To pipe the output, run npm with -s, which keeps npm's own header lines off stdout:
npm run -s redrive -- --dlq-url URL --dry-run | grep '^would move'
Exit code: 0 done, 1 a send (or the move task) failed, 2 could not run.`;

/** A duration flag's value in ms, or undefined when not given; throws {@link UsageError} naming the flag. */
function duration(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  try {
    return parseDuration(value);
  } catch (error) {
    throw new UsageError(`--${flag}: ${error instanceof Error ? error.message : String(error)}`);
  }
}

async function main(): Promise<number> {
  const { values: flags } = parseCommandLine(USAGE, {
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
  });
  if (flags.reason !== undefined && !isDlqReason(flags.reason))
    throw new UsageError(`--reason must be one of ${DLQ_REASONS.join(', ')}; got ${JSON.stringify(flags.reason)}`);
  const endpoint = endpointUrl(flags.endpoint);
  const filter: RedriveFilter = {
    customer: flags.customer,
    reason: flags.reason,
    olderThanMs: duration('older-than', flags['older-than']),
    newerThanMs: duration('newer-than', flags['newer-than']),
  };
  const max = flags.max === undefined ? undefined : positiveNumber('max', flags.max);
  const ratePerSecond = positiveNumber('rate', flags.rate, false);
  const visibilityTimeoutSeconds = positiveNumber('visibility-timeout', flags['visibility-timeout']);
  if (!flags['dlq-url'] && !flags['dlq-arn']) throw new UsageError('the dead-letter queue is required: --dlq-url URL or --dlq-arn ARN');

  const local = [flags['dlq-url'], flags['source-url']].find((url) => url !== undefined && isLoopbackUrl(url));
  if (local && !endpoint) {
    const origin = new URL(local).origin;
    throw new UsageError(`${local} is a queue on this machine: add --endpoint ${origin} (without it, the SDK goes to AWS)`);
  }

  useEndpoint(endpoint);
  const sqs = new SQSClient({ ...(endpoint && { endpoint }), ...(flags.region && { region: flags.region }) });
  await requireAwsSettings(sqs.config as unknown as Parameters<typeof requireAwsSettings>[0], endpoint, { regionFlag: true });
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

runCommand('redrive', main);
