/**
 * `npm run bench:page`: the key page's figures on moto (prints figures; not a test; asserts nothing).
 *
 * - the hook's POST to the first page: POST /fulfillment (ResolveCustomer, SendMessageBatch, 303) → GET ?ref (the
 *   one-time exchange, 303) → GET the page (*creating*), end to end over HTTP, as a browser follows them;
 * - "Show my key" to the value: POST /show until the answer with the value has arrived;
 * each warm (the functions loaded once, in this process, then N buyers) and cold (each sample a fresh Node that
 * loads the packaged bundles, as a Lambda cold start does, then answers its first requests: init included), p50 and
 * p95 in milliseconds;
 * - the key page function's init (the packaged bundle's module load, fresh Node per sample), and the provision
 *   function's init against a baseline bundle of the same SDK clients plus Middy and Powertools
 *   (tests/bench/baseline-entry.ts).
 *
 * moto runs on this machine, so an AWS call costs about a millisecond here and tens on AWS: the figures are the
 * page's own cost, not AWS's latency. No key value is printed.
 *
 *   npm run bench:page [-- --warm N] [--cold N] [--init N]
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SQSClient } from '@aws-sdk/client-sqs';
import { csrfToken, newSession, sessionCookie, signSession } from '../../lib/key-page/session.js';
import { runEventSourceMapping, type SqsHandler } from '../../lib/local/event-source-mapping.js';
import { type SampleBuyer, startJourneyServer, type UrlHandler } from '../../lib/local/journey-server.js';
import { startMoto } from '../../lib/local/moto.js';
import { ensureKeyRecordsTable, ensureKeyRevealsTable, ensureQueues } from '../../lib/local/resources.js';
import { NONE, startRealisticAws } from '../realistic-aws/index.js';
import { buildLikeTheFunctions, lambdaEnv, packageOurs, sampleInit } from './cold-start.js';

const ROOT = resolve(process.cwd());
const PRODUCT = 'prod4k2j9x8l7';
const KEY = 'bench-signing-key-0123456789abcdefghijklmnop';
const TABLES = { records: 'api-key-provisioner-bench-key-records', reveals: 'api-key-provisioner-bench-key-reveals' };

/** Nearest-rank percentile. */
const percentile = (samples: number[], p: number): number => {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? Number.NaN;
};
const figures = (samples: number[]) =>
  `p50 ${percentile(samples, 50).toFixed(1)} ms, p95 ${percentile(samples, 95).toFixed(1)} ms (n=${samples.length})`;

const csrfOf = (body: string) => /name="csrf" value="([^"]+)"/.exec(body)?.[1] ?? '';
const hasValue = (body: string) => /id="api-key"[^>]*value="[A-Za-z0-9]{20,}"/.test(body);

/** The three requests a browser makes from the hook's POST to the first page; returns the session cookie. */
async function hookToFirstPage(url: string, token: string): Promise<{ ms: number; cookie: string }> {
  const t0 = performance.now();
  const posted = await fetch(`${url}/fulfillment`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ 'x-amzn-marketplace-token': token }).toString(),
  });
  await posted.text();
  const exchanged = await fetch(posted.headers.get('location') ?? '', { redirect: 'manual' });
  await exchanged.text();
  const cookie = (exchanged.headers.get('set-cookie') ?? '').split(';')[0] ?? '';
  const page = await fetch(`${url}/key/`, { headers: { cookie } });
  const body = await page.text();
  const ms = performance.now() - t0;
  if (!body.includes('<h1>Your API key is being created</h1>')) throw new Error(`unexpected first page (${page.status})`);
  return { ms, cookie };
}

async function showMyKey(url: string, cookie: string): Promise<number> {
  const ready = await (await fetch(`${url}/key/`, { headers: { cookie } })).text();
  const t0 = performance.now();
  const shown = await fetch(`${url}/key/show`, {
    method: 'POST',
    headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ csrf: csrfOf(ready) }).toString(),
  });
  const body = await shown.text();
  const ms = performance.now() - t0;
  if (!hasValue(body)) throw new Error(`no value in the answer (${shown.status})`);
  return ms;
}

/**
 * A cold instance of each function in a fresh Node: the packaged bundles required as Lambda requires them, then the
 * first requests answered. Mode `journey`: the hook's POST → the exchange → the first page; mode `show`: POST /show
 * with the session and CSRF token given. Prints `COLD_MS <ms> <ok>`.
 */
const CHILD = `
const { createRequire } = require('node:module');
const [mode, dir, a, b] = process.argv.slice(1);
const requireFrom = createRequire(dir + '/');
const event = (method, path, query, cookies, form) => ({
  version: '2.0', routeKey: '$default', rawPath: path, rawQueryString: query, cookies,
  headers: { host: 'bench.lambda-url.us-east-1.on.aws', ...(form && { 'content-type': 'application/x-www-form-urlencoded' }) },
  requestContext: { http: { method, path, protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 'bench' }, requestId: 'r', timeEpoch: Date.now() },
  ...(form && { body: Buffer.from(new URLSearchParams(form).toString()).toString('base64'), isBase64Encoded: true }),
});
const context = () => ({ awsRequestId: require('node:crypto').randomUUID(), functionName: 'bench', getRemainingTimeInMillis: () => 10000 });
(async () => {
  const t0 = performance.now();
  let ok = false;
  if (mode === 'journey') {
    const register = requireFrom('./functions/register.cjs').handler;
    const page = requireFrom('./functions/key-page.cjs').handler;
    const posted = await register(event('POST', '/', '', undefined, { 'x-amzn-marketplace-token': a }), context());
    if (posted.statusCode !== 303) throw new Error('hook answered ' + posted.statusCode + ' ' + (/<title>([^<]*)/.exec(posted.body) || [])[1]);
    const ref = new URL(posted.headers.location).search.slice(1);
    const exchanged = await page(event('GET', '/', ref), context());
    const cookie = (exchanged.cookies || [])[0].split(';')[0];
    const first = await page(event('GET', '/', '', [cookie]), context());
    ok = first.body.includes('<h1>Your API key is being created</h1>');
  } else {
    const page = requireFrom('./functions/key-page.cjs').handler;
    const shown = await page(event('POST', '/show', '', [a], { csrf: b }), context());
    ok = /id="api-key"[^>]*value="[A-Za-z0-9]{20,}"/.test(shown.body);
  }
  console.log('COLD_MS ' + (performance.now() - t0) + ' ' + ok);
})().catch((e) => { console.log('COLD_ERROR ' + e.name + ': ' + String(e.message).slice(0, 200)); process.exit(1); });
`;

/** One cold sample in a fresh Node (spawned asynchronously: the layer answering its ResolveCustomer runs in this process). */
async function coldSample(mode: 'journey' | 'show', dir: string, env: Record<string, string>, a: string, b = ''): Promise<number> {
  const child = spawn(process.execPath, ['-e', CHILD, mode, dir, a, b], { cwd: ROOT, env: { ...env, PATH: process.env.PATH ?? '' } });
  let stdout = '';
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString('utf8');
  });
  child.stderr.resume();
  await once(child, 'close');
  const match = /^COLD_MS (\S+) (\S+)$/m.exec(stdout);
  if (match?.[2] !== 'true') throw new Error(`cold ${mode} sample failed: ${/^COLD_ERROR .*$/m.exec(stdout)?.[0] ?? 'no answer'}`);
  return Number(match[1]);
}

/** Runs `sample` for each item, one after the other. */
async function inTurn<T>(items: T[], sample: (item: T) => Promise<number>): Promise<number[]> {
  const out: number[] = [];
  for (const item of items) out.push(await sample(item));
  return out;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { warm: { type: 'string', default: '40' }, cold: { type: 'string', default: '12' }, init: { type: 'string', default: '15' } },
  });
  const [warmN, coldN, initN] = [Number(values.warm), Number(values.cold), Number(values.init)];
  if (!process.version.startsWith('v22.')) throw new Error(`Node ${process.version}: run through npm run so node_modules' Node 22 is used`);
  const moto = await startMoto();
  const layer = await startRealisticAws(moto.endpoint, NONE);
  const tmp = mkdtempSync(join(tmpdir(), 'bench-page-'));
  try {
    Object.assign(process.env, {
      AWS_ENDPOINT_URL: layer.endpoint,
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'bench',
      AWS_SECRET_ACCESS_KEY: 'bench',
      NAME_PREFIX: 'keyprov/bench/',
      API_GATEWAY_RATE_PER_SECOND: '0',
      POWERTOOLS_LOG_LEVEL: 'ERROR',
      POWERTOOLS_METRICS_DISABLED: 'true',
      KEY_RECORDS_TABLE: TABLES.records,
      KEY_REVEALS_TABLE: TABLES.reveals,
      REGISTRATION_SIGNING_KEY: KEY,
      SELLER_NAME: 'Bench API',
    });
    const sqs = new SQSClient({});
    const queues = await ensureQueues(
      sqs,
      { signups: 'bench-signups', deadLetter: 'bench-signups-dlq', completions: 'bench-completions' },
      { visibilityTimeoutSeconds: 5, maxReceiveCount: 3 },
    );
    await ensureKeyRecordsTable(new DynamoDBClient({}), TABLES.records);
    await ensureKeyRevealsTable(new DynamoDBClient({}), TABLES.reveals);
    process.env.COMPLETION_QUEUE_URL = queues.completionUrl;
    process.env.SIGNUP_QUEUE_URL = queues.signupUrl;
    const buyers: SampleBuyer[] = Array.from({ length: warmN + coldN * 2 }, (_, i) => ({
      label: `b${i}`,
      token: `bench-token-${i}`,
      customerAWSAccountId: String(300000000000 + i),
      productCode: PRODUCT,
    }));
    for (const { token, label: _, ...customer } of buyers) layer.registerToken(token, customer);
    const server = await startJourneyServer({
      port: 0,
      buyers: [],
      handlers: async (url) => {
        process.env.REGISTRATION_PAGE_URL = `${url}/key/`;
        const register = (await import('../../functions/register.js')).handler as unknown as UrlHandler;
        const keyPage = (await import('../../functions/key-page.js')).handler as unknown as UrlHandler;
        return { register, keyPage };
      },
    });
    const { handler: provision } = (await import('../../functions/provision.js')) as { handler: SqsHandler };
    const drain = () => runEventSourceMapping({ sqs, queueUrl: queues.signupUrl, queueArn: queues.signupArn, handler: provision });

    // Warm: the functions loaded above; the first buyer warms them and is not counted.
    const warmBuyers = buyers.slice(0, warmN);
    const sessions: string[] = [];
    const hookMs: number[] = [];
    for (const [i, b] of warmBuyers.entries()) {
      const { ms, cookie } = await hookToFirstPage(server.url, b.token);
      if (i > 0) hookMs.push(ms);
      sessions.push(cookie);
    }
    await drain();
    const showMs: number[] = [];
    for (const [i, cookie] of sessions.entries()) {
      const ms = await showMyKey(server.url, cookie);
      if (i > 0) showMs.push(ms);
    }

    // Cold: the bundles as `serverless package` builds them.
    console.log('Packaging (serverless package) ...');
    const packaged = packageOurs(join(tmp, 'package'));
    const childEnv: Record<string, string> = {
      ...Object.fromEntries(
        Object.entries(process.env).filter(
          (e): e is [string, string] =>
            e[1] !== undefined && /^(AWS_|KEY_|NAME_PREFIX|SIGNUP_|REGISTRATION_|SELLER_|POWERTOOLS_)/.test(e[0]),
        ),
      ),
      NODE_OPTIONS: '--enable-source-maps',
      POWERTOOLS_LOG_LEVEL: 'INFO',
    };
    const coldBuyers = buyers.slice(warmN, warmN + coldN);
    const coldHookMs = await inTurn(coldBuyers, (b) => coldSample('journey', packaged.dir, childEnv, b.token));
    // Cold "Show my key": buyers provisioned first, each shown by a fresh instance (session and token made here).
    const showBuyers = buyers.slice(warmN + coldN);
    for (const b of showBuyers) await hookToFirstPage(server.url, b.token);
    await drain();
    const coldShowMs = await inTurn(showBuyers, (b) => {
      const session = newSession({ customerId: b.customerAWSAccountId, productCode: PRODUCT }, new Date(), 1800);
      const cookie = sessionCookie(signSession(session, KEY), 1800).split(';')[0] ?? '';
      const csrf = csrfToken(session, 'show', KEY);
      return coldSample('show', packaged.dir, childEnv, cookie, csrf);
    });

    // Inits: the key page's bundle; the provision function's against the baseline (fresh Node per sample, alternating).
    const baseline = await buildLikeTheFunctions('tests/bench/baseline-entry.ts', join(tmp, 'baseline.cjs'));
    const { env: provisionEnv } = lambdaEnv(join(tmp, 'package'));
    const pageInit: number[] = [];
    const provisionInit: number[] = [];
    const baselineInit: number[] = [];
    for (let i = 0; i < initN; i++) {
      pageInit.push(sampleInit(join(packaged.dir, 'functions/key-page.cjs'), childEnv));
      provisionInit.push(sampleInit(join(packaged.dir, packaged.bundle), provisionEnv));
      baselineInit.push(sampleInit(baseline, provisionEnv));
    }
    const overhead = (percentile(provisionInit, 50) / percentile(baselineInit, 50) - 1) * 100;

    const lines = [
      '',
      `Key page on moto (${new Date().toISOString()}, Node ${process.version}, ${process.platform}/${process.arch})`,
      `  hook POST → first page, warm:   ${figures(hookMs)}`,
      `  hook POST → first page, cold:   ${figures(coldHookMs)}   (both functions' init included)`,
      `  Show my key → value, warm:      ${figures(showMs)}`,
      `  Show my key → value, cold:      ${figures(coldShowMs)}   (the page's init included)`,
      `  key page function init:         ${figures(pageInit)}`,
      `  provision function init:        ${figures(provisionInit)}`,
      `  baseline init (SDK clients + Middy + Powertools): ${figures(baselineInit)}`,
      `  provision over baseline (p50):  ${overhead >= 0 ? '+' : ''}${overhead.toFixed(1)} %`,
    ];
    console.log(lines.join('\n'));
    if (process.env.BENCH_PAGE_OUT) writeFileSync(process.env.BENCH_PAGE_OUT, `${lines.join('\n')}\n`);
    await server.close();
  } finally {
    rmSync(tmp, { recursive: true, force: true });
    await layer.close();
    await moto.stop();
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error instanceof Error ? error.message : String(error));
    process.exit(2);
  },
);
