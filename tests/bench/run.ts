/**
 * `npm run bench`: provisioning throughput at API Gateway's control-plane limit, ours against baselines.
 *
 *   npm run bench -- [--signups 2000] [--instances 4] [--factor 3] [--batch-size 10] [--strategies ours,sdkStandard,sdkAdaptive]
 *                    [--out FILE] [--no-cold-start]
 *
 * moto runs behind a proxy that throttles API Gateway like the real control plane, at `factor` × the real quotas
 * (time runs `factor` times faster: function timeout, visibility timeout and our retry timings are scaled down by
 * it too). For each strategy, in the same run: a fresh moto state, `signups` signups enqueued at once, `instances`
 * function instances (processes) draining the queue through the event-source-mapping runner, then the figures.
 * The default factor keeps moto (about 200 requests/s on one core, 4–5 requests per key) under about 60% load,
 * so the emulated API Gateway, not moto, is the bottleneck. Prints figures; asserts nothing.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { APIGatewayClient, GetApiKeysCommand } from '@aws-sdk/client-api-gateway';
import { DeleteMessageBatchCommand, GetQueueAttributesCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { CompletionEvent } from '../../lib/completion.js';
import { resetMoto, startMoto } from '../../lib/local/moto.js';
import { sendBodies } from '../../lib/local/queues.js';
import { ensureQueues } from '../../lib/local/resources.js';
import { goodputSvg } from './svg.js';
import { API_GATEWAY_QUOTAS, type ProxyStats, startThrottlingProxy } from './throttling-proxy.js';

// The orchestrator's own clients (and the instances, which inherit this environment) need a Region and credentials.
process.env.AWS_REGION ??= 'us-east-1';
process.env.AWS_ACCESS_KEY_ID ??= 'bench';
process.env.AWS_SECRET_ACCESS_KEY ??= 'bench';

const { values: flags } = parseArgs({
  options: {
    signups: { type: 'string', default: '2000' },
    instances: { type: 'string', default: '4' },
    factor: { type: 'string', default: '3' },
    'batch-size': { type: 'string', default: '10' },
    strategies: { type: 'string', default: 'ours,sdkStandard,sdkAdaptive' },
    out: { type: 'string' },
    'no-cold-start': { type: 'boolean', default: false },
  },
});
const signups = Number(flags.signups);
const instances = Number(flags.instances);
const factor = Number(flags.factor);
const limit = API_GATEWAY_QUOTAS.createApiKeyPerSecond * factor;

/** Real-world timings, divided by the factor like the rates are multiplied by it. */
const scaled = (ms: number) => String(Math.round(ms / factor));
const FUNCTION_TIMEOUT_MS = 60_000 / factor;
const BATCH_SIZE = Number(flags['batch-size']);

interface Strategy {
  label: string;
  env: Record<string, string>;
}

const STRATEGIES: Record<string, Strategy> = {
  ours: {
    label: 'ours: AIMD limiter (quota ÷ instances), own retries',
    env: {
      API_GATEWAY_RATE_PER_SECOND: String(limit / instances),
      SDK_RETRY_MODE: 'off',
      RETRY_MAX_ATTEMPTS: '6',
      RETRY_BASE_DELAY_MS: scaled(100),
      RETRY_MAX_DELAY_MS: scaled(10_000),
    },
  },
  sdkStandard: {
    label: 'SDK standard retry, no limiter',
    env: { API_GATEWAY_RATE_PER_SECOND: '0', SDK_RETRY_MODE: 'standard', RETRY_MAX_ATTEMPTS: '1' },
  },
  sdkAdaptive: {
    label: 'SDK adaptive retry (client-side CUBIC limiter)',
    env: { API_GATEWAY_RATE_PER_SECOND: '0', SDK_RETRY_MODE: 'adaptive', RETRY_MAX_ATTEMPTS: '1' },
  },
};

export interface StrategyResult {
  label: string;
  keys: number;
  durationSeconds: number;
  goodput: number;
  goodputRatio: number;
  throttledShare: number;
  retries: number;
  dlqMessages: number;
  notFinished: number;
  duplicateKeys: number;
  apigwCallsPerKey: number;
  callsPerKey: Record<string, number>;
  p50Seconds: number;
  p95Seconds: number;
  p99Seconds: number;
  peakRssMb: number;
  keysPerSecond: number[];
}

const percentile = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN;
const round = (n: number, digits = 3) => Math.round(n * 10 ** digits) / 10 ** digits;

interface Instance {
  ready: Promise<void>;
  go(): void;
  done: Promise<{ maxRssKb: number }>;
}

/** A function instance in its own process (tests/bench/instance.ts): loads, says ready, runs on go. */
function startInstance(env: NodeJS.ProcessEnv): Instance {
  const child = spawn(join('node_modules', '.bin', 'tsx'), [join('tests', 'bench', 'instance.ts')], {
    env,
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  let out = '';
  let markReady!: () => void;
  const ready = new Promise<void>((resolve) => {
    markReady = resolve;
  });
  child.stdout.on('data', (chunk: Buffer) => {
    out += chunk.toString();
    if (out.startsWith('ready\n')) markReady();
  });
  const done = new Promise<{ maxRssKb: number }>((resolve, reject) => {
    child.once('exit', (code) => {
      const last = out.trim().split('\n').pop() ?? '';
      if (code !== 0) return reject(new Error(`instance exited with ${code}`));
      resolve(JSON.parse(last) as { maxRssKb: number });
    });
  });
  return { ready, done, go: () => child.stdin.end('go\n') };
}

async function runStrategy(
  strategy: Strategy,
  moto: string,
  proxy: Awaited<ReturnType<typeof startThrottlingProxy>>,
): Promise<StrategyResult> {
  await resetMoto(moto);
  const sqs = new SQSClient({ endpoint: moto });
  const queues = await ensureQueues(
    sqs,
    { signups: 'bench-signups', deadLetter: 'bench-signups-dlq', completions: 'bench-completions' },
    // AWS's guidance, scaled: visibility 6 × the function timeout, maxReceiveCount 5.
    { visibilityTimeoutSeconds: Math.ceil((6 * FUNCTION_TIMEOUT_MS) / 1000), maxReceiveCount: 5 },
  );
  const bodies = Array.from({ length: signups }, (_, i) => JSON.stringify({ customerId: `bench-${String(i).padStart(5, '0')}` }));
  const feeder = startFeeder(sqs, queues.signupUrl, bodies);
  await feeder.primed;

  const viaProxy = (url: string) => url.replace(moto, proxy.endpoint);
  const env = {
    ...process.env,
    ...strategy.env,
    AWS_ENDPOINT_URL: proxy.endpoint,
    COMPLETION_QUEUE_URL: viaProxy(queues.completionUrl),
    NAME_PREFIX: 'keyprov/bench/',
    POWERTOOLS_LOG_LEVEL: 'ERROR',
    DEADLINE_SAFETY_MARGIN_MS: scaled(3_000),
    MOTO_ENDPOINT: moto,
    BENCH_QUEUE_URL: queues.signupUrl,
    BENCH_QUEUE_ARN: queues.signupArn,
    BENCH_FUNCTION_TIMEOUT_MS: String(FUNCTION_TIMEOUT_MS),
    BENCH_BATCH_SIZE: String(BATCH_SIZE),
    BENCH_MAX_DURATION_MS: '150000',
  };
  const fleet = Array.from({ length: instances }, () => startInstance(env));
  await Promise.all(fleet.map((i) => i.ready));
  proxy.reset();
  const started = Date.now();
  feeder.start();
  const collector = startCollector(sqs, queues.completionUrl);
  for (const instance of fleet) instance.go();
  const reports = await Promise.all(fleet.map((i) => i.done));
  await feeder.stop();
  const events = await collector.stop();
  const stats: ProxyStats = proxy.stats();

  const firstDone = new Map<string, { at: number; messageId: string }>();
  for (const e of events) {
    if (e.type !== 'api-key.provisioned') continue;
    const at = Date.parse(e.occurredAt);
    const seen = firstDone.get(e.customerId);
    if (!seen || at < seen.at) firstDone.set(e.customerId, { at, messageId: e.messageId });
  }
  // Every signup counts as enqueued when the run started (see startFeeder).
  const latencies = [...firstDone.values()].map((d) => (d.at - started) / 1000).sort((a, b) => a - b);
  const lastDone = Math.max(started, ...[...firstDone.values()].map((d) => d.at));

  const items =
    (await new APIGatewayClient({ endpoint: moto }).send(new GetApiKeysCommand({ limit: 500, nameQuery: 'keyprov/bench/' }))).items ?? [];
  const customers = new Set(items.map((k) => k.customerId));
  const count = async (url: string) =>
    Number(
      (
        await sqs.send(
          new GetQueueAttributesCommand({
            QueueUrl: url,
            AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
          }),
        )
      ).Attributes?.ApproximateNumberOfMessages ?? 0,
    );
  const dlqMessages = await count(queues.deadLetterUrl);
  const leftOnQueue = await count(queues.signupUrl);

  const apiGatewayOps = ['CreateApiKey', 'GetApiKeys', 'CreateUsagePlanKey'];
  const apigwRequests = apiGatewayOps.reduce((sum, op) => sum + (stats.requests[op] ?? 0), 0);
  const throttled = Object.values(stats.throttled).reduce((a, b) => a + b, 0);
  const keys = customers.size;
  const durationSeconds = (lastDone - started) / 1000;
  const goodput = durationSeconds > 0 ? keys / durationSeconds : 0;
  const perKey = (n: number) => (keys ? round(n / keys) : 0);
  return {
    label: strategy.label,
    keys,
    durationSeconds: round(durationSeconds, 1),
    goodput: round(goodput, 2),
    goodputRatio: round(goodput / limit),
    throttledShare: apigwRequests ? round(throttled / apigwRequests) : 0,
    retries: throttled,
    dlqMessages,
    notFinished: signups - keys - dlqMessages > 0 ? leftOnQueue : 0,
    duplicateKeys: items.length - keys,
    apigwCallsPerKey: perKey(apigwRequests),
    callsPerKey: Object.fromEntries(
      Object.entries(stats.requests).map(([op, n]) => [op.replace(/^(secretsmanager|AmazonSQS)\./, ''), perKey(n)]),
    ),
    p50Seconds: round(percentile(latencies, 50), 2),
    p95Seconds: round(percentile(latencies, 95), 2),
    p99Seconds: round(percentile(latencies, 99), 2),
    peakRssMb: round(Math.max(...reports.map((r) => r.maxRssKb)) / 1024, 1),
    keysPerSecond: stats.createdPerSecond,
  };
}

/** Signups kept in the SQS queue at a time. */
const FEED_DEPTH = 100;

/**
 * Holds the N signups and keeps about FEED_DEPTH of them in the SQS queue until all are sent. moto's ReceiveMessage
 * costs time in proportion to the queue's depth (measured: 32 ms at 100 messages, 1.2 s at 2,000), which would make
 * moto's SQS, not API Gateway's quota, the bottleneck. The signups still count as enqueued at the start of the run.
 */
function startFeeder(sqs: SQSClient, queueUrl: string, bodies: string[]) {
  let next = 0;
  let running = false;
  let loop: Promise<void> = Promise.resolve();
  const send = async (n: number) => {
    const chunk = bodies.slice(next, next + n);
    next += chunk.length;
    if (chunk.length) await sendBodies(sqs, queueUrl, chunk);
  };
  const visible = async () =>
    Number(
      (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['ApproximateNumberOfMessages'] }))).Attributes
        ?.ApproximateNumberOfMessages ?? 0,
    );
  return {
    primed: send(FEED_DEPTH),
    start() {
      running = true;
      loop = (async () => {
        while (running && next < bodies.length) {
          const depth = await visible();
          if (depth < FEED_DEPTH) await send(FEED_DEPTH - depth);
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      })();
    },
    async stop() {
      running = false;
      await loop;
    },
  };
}

/** Consumes the completion queue while the run goes on (keeping it shallow for moto, see startFeeder) and keeps every event. */
function startCollector(sqs: SQSClient, queueUrl: string) {
  const events: CompletionEvent[] = [];
  let running = true;
  const loop = (async () => {
    for (;;) {
      const { Messages = [] } = await sqs.send(
        new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }),
      );
      if (Messages.length === 0 && !running) return;
      for (const m of Messages) events.push(JSON.parse(m.Body ?? '{}') as CompletionEvent);
      if (Messages.length > 0) {
        await sqs.send(
          new DeleteMessageBatchCommand({
            QueueUrl: queueUrl,
            Entries: Messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle })),
          }),
        );
      }
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return events;
    },
  };
}

function table(results: Record<string, StrategyResult>): string {
  const rows: Array<[string, (r: StrategyResult) => string]> = [
    ['keys provisioned', (r) => String(r.keys)],
    ['time to drain (s)', (r) => String(r.durationSeconds)],
    ['goodput (keys/s)', (r) => String(r.goodput)],
    [`goodput ÷ limit (${limit}/s)`, (r) => r.goodputRatio.toFixed(3)],
    ['throttled share of API Gateway calls', (r) => `${(r.throttledShare * 100).toFixed(1)}%`],
    ['retries (throttled requests)', (r) => String(r.retries)],
    ['messages in the DLQ', (r) => String(r.dlqMessages)],
    ['duplicate keys', (r) => String(r.duplicateKeys)],
    ['API Gateway calls per key', (r) => String(r.apigwCallsPerKey)],
    ...[...new Set(Object.values(results).flatMap((r) => Object.keys(r.callsPerKey)))]
      .sort()
      .map((op): [string, (r: StrategyResult) => string] => [`  ${op} per key`, (r) => String(r.callsPerKey[op] ?? 0)]),
    ['enqueue → completion p50 (s)', (r) => String(r.p50Seconds)],
    ['enqueue → completion p95 (s)', (r) => String(r.p95Seconds)],
    ['enqueue → completion p99 (s)', (r) => String(r.p99Seconds)],
    ['peak RSS of an instance (MiB)', (r) => String(r.peakRssMb)],
  ];
  const names = Object.keys(results);
  const cells = [['', ...names], ...rows.map(([label, get]) => [label, ...names.map((n) => get(results[n] as StrategyResult))])];
  const widths = cells[0]?.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length))) ?? [];
  return cells.map((r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ')).join('\n');
}

async function main(): Promise<void> {
  const names = (flags.strategies ?? '').split(',').filter(Boolean);
  for (const n of names) if (!STRATEGIES[n]) throw new Error(`unknown strategy ${n}; known: ${Object.keys(STRATEGIES).join(', ')}`);
  console.log(`Bench: ${signups} signups, ${instances} instances, API Gateway quotas × ${factor} (CreateApiKey ${limit}/s)`);
  const moto = await startMoto();
  const proxy = await startThrottlingProxy(moto.endpoint, factor);
  const results: Record<string, StrategyResult> = {};
  try {
    for (const name of names) {
      const strategy = STRATEGIES[name] as Strategy;
      console.log(`\n▶ ${name}: ${strategy.label}`);
      const result = await runStrategy(strategy, moto.endpoint, proxy);
      results[name] = result;
      console.log(
        `  ${result.keys} keys in ${result.durationSeconds} s: ${result.goodput} keys/s (${(result.goodputRatio * 100).toFixed(1)}% of the limit), ${result.dlqMessages} in the DLQ`,
      );
    }
  } finally {
    await proxy.close();
    await moto.stop();
  }

  console.log(`\n${table(results)}`);
  const out = flags.out;
  const svgPath = out ? out.replace(/(\.json)?$/, '.svg') : join('bench-results', 'goodput.svg');
  mkdirSync(dirname(svgPath), { recursive: true });
  writeFileSync(
    svgPath,
    goodputSvg(
      Object.entries(results).map(([name, r]) => ({ name, perSecond: r.keysPerSecond })),
      limit,
    ),
  );
  console.log(`\nGoodput over time: ${svgPath}`);

  let coldStart: unknown;
  if (!flags['no-cold-start']) {
    const { coldStartFigures } = await import('./cold-start.js');
    coldStart = await coldStartFigures();
  }
  if (out) {
    const json = {
      settings: { signups, instances, factor, limitPerSecond: limit },
      ...Object.fromEntries(Object.entries(results).map(([n, r]) => [n, { ...r, keysPerSecond: undefined }])),
      coldStart,
    };
    writeFileSync(out, `${JSON.stringify(json, null, 2)}\n`);
    console.log(`Results: ${out}`);
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
