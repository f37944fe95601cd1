/**
 * `npm run invoke:local -- --path FILE [--endpoint URL] [--stage STAGE]`: the packaged function once on an event file,
 * through osls's `serverless invoke local` (the bundle a deploy ships), against a local AWS: moto started here, or
 * `--endpoint URL`. It creates the stage's queues and tables where they are missing, as `npm start` does, and gives
 * invoke local what it cannot resolve without a deployed stack (the completion queue's URL, the endpoint,
 * credentials). Exit codes as every command's: 0 the handler answered with no batch item failures, 1 it handed
 * records back, 2 it could not run (osls itself exits 1 for that, hence this wrapper).
 */
import { spawn } from 'node:child_process';
import { statSync } from 'node:fs';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SQSClient } from '@aws-sdk/client-sqs';
import { EXIT, endpointUrl, parseCommandLine, runCommand, UsageError } from '../command-line.js';
import { type MotoServer, startMoto } from './moto.js';
import { ensureCoordinationTable, ensureKeyRecordsTable, ensureQueues } from './resources.js';

/** serverless.yml's `service`: the stage's resources are named `<service>-<stage>-…` there. */
const SERVICE = 'api-key-provisioner';

const USAGE = `Usage: npm run invoke:local -- --path FILE [--endpoint URL] [--stage STAGE]

Runs the packaged function (functions/provision.cjs, the bundle a deploy ships) once on FILE, an event in the
Lambda SQS format of events/, with osls's "serverless invoke local", against a local AWS. Creates the stage's
queues (${SERVICE}-<stage>-signups, -signups-dlq, -completions) and tables (-coordination, -key-records) where
they are missing, and prints the function's log lines and then the handler's answer.

  --path FILE      the event file (required)
  --endpoint URL   an AWS-compatible endpoint already running (npm start -- --keep prints one); default: start
                   moto for this run and stop it afterwards
  --stage STAGE    serverless.yml's stage (default local: NAME_PREFIX=keyprov/local/, the names npm start uses)
  -h, --help       print this text

Exit code: 0 no batch item failures, 1 the handler handed records back (batchItemFailures), 2 could not run.`;

/** invoke local prints the function's logs (JSON lines), then its result, pretty-printed: the last block that opens with a lone `{`. */
function printedResult(stdout: string): { batchItemFailures?: unknown[] } | undefined {
  const lines = stdout.trimEnd().split('\n');
  const start = lines.lastIndexOf('{');
  if (start < 0) return undefined;
  try {
    return JSON.parse(lines.slice(start).join('\n')) as { batchItemFailures?: unknown[] };
  } catch {
    return undefined;
  }
}

function options() {
  const { values } = parseCommandLine(USAGE, {
    path: { type: 'string' },
    endpoint: { type: 'string' },
    stage: { type: 'string', default: 'local' },
  });
  if (!values.path) throw new UsageError('the event file is required: --path FILE (e.g. --path events/signup.json)');
  let isFile = false;
  try {
    isFile = statSync(values.path).isFile();
  } catch {
    isFile = false;
  }
  if (!isFile) throw new UsageError(`--path ${JSON.stringify(values.path)} is not a file`);
  if (!/^[a-zA-Z0-9-]{1,16}$/.test(values.stage))
    throw new UsageError(`--stage must be 1 to 16 letters, digits or -, got ${JSON.stringify(values.stage)}`);
  return { path: values.path, endpoint: endpointUrl(values.endpoint), stage: values.stage };
}

/** Runs `serverless invoke local`, its output passed through; resolves with its exit code and stdout. */
function invokeLocal(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('serverless', args, { env, stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      process.stdout.write(chunk);
    });
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout }));
  });
}

async function main(): Promise<number> {
  const flags = options();
  let moto: MotoServer | undefined;
  let endpoint = flags.endpoint;
  if (!endpoint) {
    moto = await startMoto();
    endpoint = moto.endpoint;
  }
  try {
    const client = { endpoint, region: 'us-east-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } };
    const prefix = `${SERVICE}-${flags.stage}`;
    const queues = await ensureQueues(
      new SQSClient(client),
      { signups: `${prefix}-signups`, deadLetter: `${prefix}-signups-dlq`, completions: `${prefix}-completions` },
      { visibilityTimeoutSeconds: 30, maxReceiveCount: 3 },
    );
    const dynamodb = new DynamoDBClient(client);
    await ensureCoordinationTable(dynamodb, `${prefix}-coordination`);
    await ensureKeyRecordsTable(dynamodb, `${prefix}-key-records`);

    const env: NodeJS.ProcessEnv = {
      ...process.env,
      AWS_REGION: process.env.AWS_REGION ?? 'us-east-1',
      AWS_ACCESS_KEY_ID: process.env.AWS_ACCESS_KEY_ID ?? 'local',
      AWS_SECRET_ACCESS_KEY: process.env.AWS_SECRET_ACCESS_KEY ?? 'local',
    };
    const args = ['invoke', 'local', '-f', 'provision', '--stage', flags.stage, '--path', flags.path];
    args.push('--env', `AWS_ENDPOINT_URL=${endpoint}`, '--param', `completionQueueUrl=${queues.completionUrl}`);
    const { code, stdout } = await invokeLocal(args, env);
    const result = printedResult(stdout);
    if (code !== 0 || !result)
      throw new Error(`serverless invoke local ${code === 0 ? 'printed no handler answer' : `exited ${code}`} (its output is above)`);
    return (result.batchItemFailures?.length ?? 0) > 0 ? EXIT.attention : EXIT.ok;
  } finally {
    await moto?.stop();
  }
}

runCommand('invoke:local', main);
