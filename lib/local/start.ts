/**
 * `npm start`: runs the pipeline end to end on a local AWS-compatible endpoint (usage below). Exit codes as every
 * command's (lib/command-line.ts): 0 every message final, 1 some message still retried, 2 could not run.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { APIGatewayClient } from '@aws-sdk/client-api-gateway';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SQSClient } from '@aws-sdk/client-sqs';
import { EXIT, endpointUrl, parseCommandLine, positiveNumber, runCommand, UsageError } from '../command-line.js';
import type { CompletionEvent } from '../pipeline/completion.js';
import { runEventSourceMapping, type SqsHandler } from './event-source-mapping.js';
import { type MotoServer, startMoto } from './moto.js';
import { peekQueue, sendBodies } from './queues.js';
import { ensureCoordinationTable, ensureKeyRecordsTable, ensureQueues, type PipelineQueues } from './resources.js';
import { formatSummary, formatSweep, nextSteps, type SentMessage, summarize, sweepNeedsAttention } from './summary.js';
import { sweepOnce } from './sweep-once.js';
import { ensureLocalUsagePlan, type LocalUsagePlan, productCodesOf, usagePlanKeyNames } from './usage-plan.js';

const QUEUES = {
  signups: 'api-key-provisioner-local-signups',
  deadLetter: 'api-key-provisioner-local-signups-dlq',
  completions: 'api-key-provisioner-local-completions',
};
/** serverless.yml custom.coordinationTable for `--stage local`. */
const COORDINATION_TABLE_NAME = 'api-key-provisioner-local-coordination';
/** serverless.yml custom.keyRecordsTable for `--stage local`. */
const KEY_RECORDS_TABLE_NAME = 'api-key-provisioner-local-key-records';

/** The REST API, and the usage plan serving its stage, of `--usage-plans`. */
const USAGE_PLAN_NAME = 'api-key-provisioner-local-plan';

/** The prefix of every local key and secret name: reconcile needs it (`--prefix`). */
const LOCAL_PREFIX = 'keyprov/local/';

const USAGE = `Usage: npm start -- [--endpoint URL] [options] [FILE ...]

Runs the provisioning pipeline end to end on a local AWS: starts moto (or uses --endpoint), creates the queues,
sends each FILE as one message (a file with a top-level "Records" array: each record's body; default: every
events/*.json), runs the function as Lambda's SQS event source mapping would until the queue drains, prints what became of
each message, then runs the maintenance sweep once (as npm run sweep does: retires keys revoked more than
RETIRE_AFTER_DAYS ago, counts the Region's API keys) and prints what it did.

  --endpoint URL            an AWS-compatible endpoint already running (moto, LocalStack); default: start moto
  --keep                    leave the embedded moto running afterwards and print what the next commands need
  --serve                   then keep running and serve the buyer journey on 127.0.0.1: a stand-in for AWS
                            Marketplace with sample buyers, the fulfillment URL and the key page (Ctrl-C stops)
  --port N                  the buyer journey's port (default 8080; 0: any free port)
  --usage-plans             create a local usage plan (with the REST API stage it serves) and set USAGE_PLANS to
                            map every product code of the messages to it: the keys go into it, listed at the end
  --batch-size N            records per invocation, 1-10 (default 10)
  --visibility-timeout S    seconds before a handed-back record comes back (default 5)
  --max-receive-count N     deliveries before a message goes to the dead-letter queue (default 3)
  --function-timeout S      the function's deadline per invocation (default 30)
  --max-seconds S           stop after this long even if the queue has not drained (default 300)

Key and secret names start with ${LOCAL_PREFIX} (NAME_PREFIX). Key values are never printed.
Exit code: 0 every message reached a final outcome, 1 some message is still being retried (or the sweep could not
finish a retirement or count the keys), 2 could not run.`;

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

function options() {
  const { values, positionals } = parseCommandLine(
    USAGE,
    {
      endpoint: { type: 'string' },
      keep: { type: 'boolean', default: false },
      serve: { type: 'boolean', default: false },
      port: { type: 'string', default: '8080' },
      'usage-plans': { type: 'boolean', default: false },
      'batch-size': { type: 'string', default: '10' },
      'visibility-timeout': { type: 'string', default: '5' },
      'max-receive-count': { type: 'string', default: '3' },
      'function-timeout': { type: 'string', default: '30' },
      'max-seconds': { type: 'string', default: '300' },
    },
    { allowPositionals: true },
  );
  const batchSize = positiveNumber('batch-size', values['batch-size']);
  if (batchSize > 10) throw new UsageError('--batch-size is at most 10 here (one ReceiveMessage call per invocation)');
  if (values['usage-plans'] && process.env.USAGE_PLANS)
    throw new UsageError('--usage-plans sets USAGE_PLANS itself: give either --usage-plans or USAGE_PLANS, not both');
  // Before anything is started or created: a FILE that is not there is the user's typo, said first.
  for (const file of positionals) {
    let isFile = false;
    try {
      isFile = statSync(file).isFile();
    } catch {
      isFile = false;
    }
    if (!isFile) throw new UsageError(`FILE ${JSON.stringify(file)} is not a file (no such file, or a directory)`);
  }
  const port = Number(values.port);
  if (!/^\d+$/.test(values.port ?? '') || port > 65_535) throw new UsageError('--port must be a port number, 0 to 65535');
  if (values.port !== '8080' && !values.serve) throw new UsageError("--port is the buyer journey's: give it with --serve");
  return {
    endpoint: endpointUrl(values.endpoint),
    keep: values.keep,
    serve: values.serve,
    port,
    usagePlans: values['usage-plans'],
    batchSize,
    queueSettings: {
      visibilityTimeoutSeconds: positiveNumber('visibility-timeout', values['visibility-timeout']),
      maxReceiveCount: positiveNumber('max-receive-count', values['max-receive-count']),
    },
    functionTimeoutMs: positiveNumber('function-timeout', values['function-timeout']) * 1000,
    maxDurationMs: positiveNumber('max-seconds', values['max-seconds']) * 1000,
    files: positionals,
  };
}

/** `--serve`: the buyer journey until Ctrl-C (SIGINT) or SIGTERM. */
async function serve(
  endpoint: string,
  port: number,
  sqs: SQSClient,
  queues: PipelineQueues,
  provision: SqsHandler,
  functionTimeoutMs: number,
  stop: string | undefined,
): Promise<void> {
  // Loaded only for --serve: it brings the test layer's ResolveCustomer, which a plain run does not need.
  const { LOCAL_REVEALS_TABLE, serveLocalJourney } = await import('./serve.js');
  process.env.KEY_REVEALS_TABLE ??= LOCAL_REVEALS_TABLE;
  const journey = await serveLocalJourney({ endpoint, port, sqs, queues, provision, functionTimeoutMs, onError: (m) => console.error(m) });
  console.log(
    [
      '',
      `Buyer journey:     ${journey.server.url}/`,
      `Local AWS:         ${endpoint}${stop ? ' (stopped with this command)' : ''}`,
      `Signup queue:      ${queues.signupUrl}`,
      `Name prefix:       ${process.env.NAME_PREFIX}`,
      `Key page:          ${journey.server.url}/key/ (a link for any customer: npm run key-link -- --customer C --page ${journey.server.url}/key/)`,
      'Stop with Ctrl-C.',
    ].join('\n'),
  );
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  console.log('Stopping ...');
  await journey.stop();
}

async function main(): Promise<number> {
  const flags = options();
  const settings = flags.queueSettings;
  const { batchSize, functionTimeoutMs, files } = flags;
  const inputs =
    files.length > 0
      ? files
      : readdirSync('events')
          .filter((f) => f.endsWith('.json'))
          .sort()
          .map((f) => join('events', f));
  const messages = inputs.flatMap(messagesFromFile);

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
    process.env.NAME_PREFIX ??= LOCAL_PREFIX;
    // One local instance may use the whole account's CreateApiKey quota.
    process.env.API_GATEWAY_RATE_PER_SECOND ??= '5';
    process.env.POWERTOOLS_LOG_LEVEL ??= 'ERROR'; // the summary reports every outcome; INFO shows the function's logs
    process.env.POWERTOOLS_METRICS_DISABLED ??= 'true'; // EMF lines are for CloudWatch; 'false' prints them
    // The sweep alone may use DeleteApiKey's whole quota (5/s) here; a deployment gives it 1 (serverless.yml).
    process.env.SWEEP_RATE_PER_SECOND ??= '5';

    const sqs = new SQSClient({});
    const queues = await ensureQueues(sqs, QUEUES, settings);
    // The deployment's coordination table, under the name `--stage local` gives it (invoke:local uses it too).
    const tableCreated = await ensureCoordinationTable(new DynamoDBClient({}), COORDINATION_TABLE_NAME);
    const recordsCreated = await ensureKeyRecordsTable(new DynamoDBClient({}), KEY_RECORDS_TABLE_NAME);
    const created = [
      ...queues.created,
      ...(tableCreated ? [`table ${COORDINATION_TABLE_NAME}`] : []),
      ...(recordsCreated ? [`table ${KEY_RECORDS_TABLE_NAME}`] : []),
    ];
    console.log(created.length ? `Created: ${created.join(', ')}` : 'All queues and the table exist already: left as they are');
    process.env.COMPLETION_QUEUE_URL = queues.completionUrl;
    process.env.COORDINATION_TABLE ??= COORDINATION_TABLE_NAME;
    process.env.KEY_RECORDS_TABLE ??= KEY_RECORDS_TABLE_NAME;

    const productCodes = productCodesOf(messages.map((m) => m.body));
    let plan: LocalUsagePlan | undefined;
    const apigw = new APIGatewayClient({});
    if (flags.usagePlans) {
      plan = await ensureLocalUsagePlan(apigw, USAGE_PLAN_NAME);
      const planId = plan.id;
      process.env.USAGE_PLANS = JSON.stringify(Object.fromEntries(productCodes.map((code) => [code, planId])));
      console.log(
        `Usage plan ${plan.id} (${plan.created ? 'created' : 'exists'}; serves the API stage ${plan.apiStage}): USAGE_PLANS=${process.env.USAGE_PLANS}`,
      );
    }
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
      maxDurationMs: flags.maxDurationMs,
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
    const summary = summarize(sent, events, new Set(deadLetters.map((m) => m.MessageId ?? '')), handedBack, new Set(productCodes));
    console.log(`\n${formatSummary(summary, { deadLetter: deadLetters.length, completions: events.length })}`);
    const swept = await sweepOnce();
    console.log(`\n${formatSweep(swept)}`);
    if (plan) {
      const names = await usagePlanKeyNames(apigw, plan.id);
      console.log(`Usage plan ${plan.id}: ${names.length} key(s)${names.length ? `: ${names.join(', ')}` : ''}`);
    }
    console.log(summary.ok ? 'Every message reached a final outcome.' : 'Some messages did not reach a final outcome (see above).');
    if (sweepNeedsAttention(swept)) console.log('The sweep left work undone (see above): npm run sweep runs it again.');
    if (flags.serve) {
      await serve(endpoint, flags.port, sqs, queues, handler, functionTimeoutMs, moto && `kill ${moto.process.pid}`);
      return EXIT.ok;
    }
    if (flags.keep) {
      console.log(nextSteps(endpoint, queues, moto && `kill ${moto.process.pid}`, plan && process.env.USAGE_PLANS));
      moto?.process.unref();
      moto = undefined;
    }
    return summary.ok && !sweepNeedsAttention(swept) ? EXIT.ok : EXIT.attention;
  } finally {
    await moto?.stop();
  }
}

runCommand('npm start', main);
