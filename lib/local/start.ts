/**
 * `npm start`: runs the pipeline end to end on a local AWS-compatible endpoint.
 *   npm start                               embedded moto, the sample events of events/
 *   npm start -- --endpoint URL [FILE ...]  an endpoint already running; each FILE is one message (or a Lambda SQS event's records)
 * Options: --keep, --batch-size N, --visibility-timeout S, --max-receive-count N, --function-timeout S, --max-seconds S.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { SQSClient } from '@aws-sdk/client-sqs';
import type { CompletionEvent } from '../completion.js';
import { runEventSourceMapping, type SqsHandler } from './event-source-mapping.js';
import { type MotoServer, startMoto } from './moto.js';
import { peekQueue, sendBodies } from './queues.js';
import { ensureQueues } from './resources.js';
import { formatSummary, type SentMessage, summarize } from './summary.js';

const QUEUES = {
  signups: 'api-key-provisioner-local-signups',
  deadLetter: 'api-key-provisioner-local-signups-dlq',
  completions: 'api-key-provisioner-local-completions',
};

const { values: flags, positionals: files } = parseArgs({
  allowPositionals: true,
  options: {
    endpoint: { type: 'string' },
    keep: { type: 'boolean', default: false },
    'batch-size': { type: 'string', default: '10' },
    'visibility-timeout': { type: 'string', default: '5' },
    'max-receive-count': { type: 'string', default: '3' },
    'function-timeout': { type: 'string', default: '30' },
    'max-seconds': { type: 'string', default: '300' },
  },
});

const positiveInt = (name: string, value: string | undefined): number => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer, got ${JSON.stringify(value)}`);
  return n;
};

/** One message per body: a file with a top-level `Records` array gives each record's body; any other file is one body, verbatim. */
export function messagesFromFile(path: string): Array<{ body: string; origin: string }> {
  const text = readFileSync(path, 'utf8');
  try {
    const json: unknown = JSON.parse(text);
    const records = (json as { Records?: unknown }).Records;
    if (Array.isArray(records)) {
      return records.map((r, i) => ({ body: String((r as { body?: unknown }).body ?? ''), origin: `${path}#${i + 1}` }));
    }
  } catch {
    // not JSON: sent as it is
  }
  return [{ body: text, origin: path }];
}

async function main(): Promise<number> {
  const batchSize = positiveInt('batch-size', flags['batch-size']);
  if (batchSize > 10) throw new Error('--batch-size is at most 10 here (one ReceiveMessage call per invocation)');
  const settings = {
    visibilityTimeoutSeconds: positiveInt('visibility-timeout', flags['visibility-timeout']),
    maxReceiveCount: positiveInt('max-receive-count', flags['max-receive-count']),
  };
  const functionTimeoutMs = positiveInt('function-timeout', flags['function-timeout']) * 1000;
  const inputs =
    files.length > 0
      ? files
      : readdirSync('events')
          .filter((f) => f.endsWith('.json'))
          .sort()
          .map((f) => join('events', f));

  let moto: MotoServer | undefined;
  let endpoint = flags.endpoint;
  if (!endpoint) {
    console.log('Starting moto_server (local AWS) ...');
    moto = await startMoto({ log: (line) => console.log(line) });
    endpoint = moto.endpoint;
  }
  try {
    console.log(`Endpoint: ${endpoint}`);
    // The production code reads these; only the endpoint differs from a deployment.
    process.env.AWS_ENDPOINT_URL = endpoint;
    process.env.AWS_REGION ??= 'us-east-1';
    process.env.AWS_ACCESS_KEY_ID ??= 'local';
    process.env.AWS_SECRET_ACCESS_KEY ??= 'local';
    process.env.NAME_PREFIX ??= 'keyprov/local/';
    // One local instance may use the whole account's CreateApiKey quota.
    process.env.API_GATEWAY_RATE_PER_SECOND ??= '5';
    process.env.POWERTOOLS_LOG_LEVEL ??= 'ERROR'; // the summary reports every outcome; INFO shows the function's logs
    process.env.POWERTOOLS_METRICS_DISABLED ??= 'true'; // EMF lines are for CloudWatch; 'false' prints them

    const sqs = new SQSClient({});
    const queues = await ensureQueues(sqs, QUEUES, settings);
    console.log(queues.created.length ? `Created queues: ${queues.created.join(', ')}` : 'All queues exist already: left as they are');
    process.env.COMPLETION_QUEUE_URL = queues.completionUrl;

    const messages = inputs.flatMap(messagesFromFile);
    const ids = await sendBodies(
      sqs,
      queues.signupUrl,
      messages.map((m) => m.body),
    );
    const sent: SentMessage[] = messages.map((m, i) => ({ origin: m.origin, messageId: ids[i] ?? '' }));
    console.log(`Sent ${sent.length} message(s) from ${inputs.length} file(s) to ${QUEUES.signups}`);

    // Imported only now: the function reads its configuration when its module loads, as at a cold start.
    const { handler } = (await import('../../functions/provision.js')) as { handler: SqsHandler };
    const handedBack = new Map<string, number>();
    let batch = 0;
    const run = await runEventSourceMapping({
      sqs,
      queueUrl: queues.signupUrl,
      queueArn: queues.signupArn,
      handler,
      batchSize,
      functionTimeoutMs,
      maxDurationMs: positiveInt('max-seconds', flags['max-seconds']) * 1000,
      onBatch: (report) => {
        for (const id of report.handedBack) handedBack.set(id, (handedBack.get(id) ?? 0) + 1);
        const back = report.handedBack.length
          ? `, ${report.handedBack.length} handed back for a retry in ${settings.visibilityTimeoutSeconds}s`
          : '';
        console.log(
          `batch ${++batch}: ${report.records.length} record(s), ${report.records.length - report.handedBack.length} done${back} (${report.durationMs} ms)${report.error ? ` handler threw: ${report.error}` : ''}`,
        );
      },
    });
    console.log(
      run.drained
        ? `Queue drained after ${run.invocations} invocation(s) in ${(run.durationMs / 1000).toFixed(1)} s`
        : 'Stopped before the queue drained (--max-seconds)',
    );

    const events = (await peekQueue(sqs, queues.completionUrl)).map((m) => JSON.parse(m.Body ?? '{}') as CompletionEvent);
    const deadLetters = await peekQueue(sqs, queues.deadLetterUrl);
    const summary = summarize(sent, events, new Set(deadLetters.map((m) => m.MessageId ?? '')), handedBack);
    console.log(`\n${formatSummary(summary, { deadLetter: deadLetters.length, completions: events.length })}`);
    console.log(summary.ok ? 'Every message reached a final outcome.' : 'Some messages did not reach a final outcome (see above).');
    if (moto && flags.keep) {
      console.log(`\nmoto_server keeps running at ${endpoint} (pid ${moto.process.pid}); stop it with: kill ${moto.process.pid}`);
      moto.process.unref();
      moto = undefined;
    }
    return summary.ok ? 0 : 1;
  } finally {
    await moto?.stop();
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(`npm start failed: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(2);
  },
);
