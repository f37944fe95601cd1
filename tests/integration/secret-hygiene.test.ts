// First: the logger reads POWERTOOLS_LOG_LEVEL when its module loads (tests/helpers/pipeline.ts imports it).
import '../helpers/debug-logging.js';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { GetSecretValueCommand, ListSecretsCommand } from '@aws-sdk/client-secrets-manager';
import type { Message } from '@aws-sdk/client-sqs';
import { peekQueue } from '../../lib/local/queues.js';
import { crashAfter } from '../helpers/crash.js';
import { signup } from '../helpers/events.js';
import { type Pipeline, startPipeline } from '../helpers/pipeline.js';
import { createApiStage, createUsagePlan } from '../helpers/usage-plans.js';

// Redeliveries wait for real visibility timeouts.
jest.setTimeout(60_000);

const PRODUCT = 'prod4k2j9x8l7';

/** Every message of events/: one per record body of a Lambda SQS event file, else the file itself. */
function sampleBodies(): Array<{ origin: string; body: string }> {
  const dir = join(__dirname, '..', '..', 'events');
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .flatMap((file) => {
      const text = readFileSync(join(dir, file), 'utf8');
      const records = (JSON.parse(text) as { Records?: Array<{ body?: string }> }).Records;
      return Array.isArray(records)
        ? records.map((r, i) => ({ origin: `${file}#${i + 1}`, body: String(r.body ?? '') }))
        : [{ origin: file, body: text }];
    });
}

let pipeline: Pipeline;
/** Everything the test process printed while the pipeline ran: stdout, stderr and the console. */
const printed: string[] = [];
let completions: Message[] = [];
let deadLetters: Message[] = [];
let handedBack = new Map<string, number>();

beforeAll(async () => {
  const record = (chunk: unknown) => {
    printed.push(
      typeof chunk === 'string'
        ? chunk
        : Buffer.isBuffer(chunk) || chunk instanceof Uint8Array
          ? Buffer.from(chunk).toString('utf8')
          : String(chunk),
    );
    return true;
  };
  const spies: jest.SpyInstance[] = [
    jest.spyOn(process.stdout, 'write').mockImplementation(record),
    jest.spyOn(process.stderr, 'write').mockImplementation(record),
    ...(['log', 'info', 'warn', 'error', 'debug', 'trace'] as const).map((level) =>
      jest.spyOn(console, level).mockImplementation((...args: unknown[]) => void record(args.map(String).join(' '))),
    ),
  ];
  try {
    // Captured from before the handler module loads: its cold start logs too.
    // A visibility timeout longer than the harness default (2 s): a slow CI machine must not see redeliveries of
    // messages still being processed.
    pipeline = await startPipeline({ visibilityTimeoutSeconds: 3, maxReceiveCount: 4 }, async ({ apigw }) => {
      const plan = await createUsagePlan(apigw, 'hygiene', [await createApiStage(apigw, 'hygiene-api')]);
      return { USAGE_PLANS: JSON.stringify({ [PRODUCT]: plan }) };
    });

    // Crash and redeliver: a function that dies right after CreateApiKey (the next delivery gets 409 and looks the key
    // up by value), and one that dies right after CreateSecret (the next delivery reads the value back).
    await pipeline.send(signup('hygiene-crash-after-key', { productCode: PRODUCT }));
    await pipeline.drain({ handler: pipeline.handlerWith(crashAfter('apiKeys', 'createApiKey')), maxInvocations: 1 });
    await pipeline.send(signup('hygiene-crash-after-secret'));
    await pipeline.drain({ handler: pipeline.handlerWith(crashAfter('secrets', 'createSecret')), maxInvocations: 1 });

    // Transient failures: API Gateway unavailable for a whole delivery; a throttle with Retry-After; a Secrets Manager 500.
    pipeline.proxy.inject({
      method: 'POST',
      path: '/apikeys',
      bodyIncludes: '"hygiene-transient"',
      status: 503,
      errorType: 'ServiceUnavailableException',
      times: Number(process.env.RETRY_MAX_ATTEMPTS ?? 6),
    });
    pipeline.proxy.inject({
      method: 'POST',
      path: '/apikeys',
      bodyIncludes: '"hygiene-throttled"',
      status: 429,
      errorType: 'TooManyRequestsException',
      retryAfterSeconds: 1,
      times: 1,
    });
    pipeline.proxy.inject({ target: 'secretsmanager.PutSecretValue', status: 500, errorType: 'InternalServiceError', times: 1 });

    // The mixed batch: every sample, the transient ones, and repeats of provisioned customers (already-provisioned).
    await pipeline.send(
      ...sampleBodies().map((s) => s.body),
      signup('hygiene-transient'),
      signup('hygiene-throttled', { productCode: PRODUCT, plan: 'gold' }),
      signup('hygiene-crash-after-key', { productCode: PRODUCT }),
    );
    const run = await pipeline.drain();
    expect(run.drained).toBe(true);
    handedBack = run.handedBack;
    await pipeline.send(signup('hygiene-transient'), signup('hygiene-crash-after-secret'));
    expect((await pipeline.drain()).drained).toBe(true);

    completions = await peekQueue(pipeline.sqs, pipeline.queues.completionUrl);
    deadLetters = await peekQueue(pipeline.sqs, pipeline.queues.deadLetterUrl);
  } finally {
    for (const spy of spies) spy.mockRestore();
  }
});
afterAll(() => pipeline.close());

/** Every key value there is: API Gateway's keys (includeValues) and the value of every secret. */
async function keyValues(): Promise<string[]> {
  const values = new Set((await pipeline.apiKeys()).map((k) => k.value ?? '').filter(Boolean));
  const { SecretList = [] } = await pipeline.secrets.send(new ListSecretsCommand({ MaxResults: 100 }));
  for (const secret of SecretList) {
    const { SecretString = '{}' } = await pipeline.secrets.send(new GetSecretValueCommand({ SecretId: secret.ARN }));
    const value = (JSON.parse(SecretString) as { value?: string }).value;
    if (value) values.add(value);
  }
  return [...values];
}

/** What would give a value away: the value, any 16 characters of it, and its base64 and hex forms. */
const telltales = (value: string) => [
  value,
  ...Array.from({ length: value.length - 15 }, (_, i) => value.slice(i, i + 16)),
  Buffer.from(value).toString('base64'),
  Buffer.from(value).toString('hex'),
];

describe('at DEBUG, across a mixed run with transient failures and crashes, no key value leaves its secret', () => {
  test('the run took the paths that handle values: new keys, 409 recovery, read-backs, retries, crashes, rejections', () => {
    const lines = printed
      .join('')
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.some((l) => l.level === 'DEBUG')).toBe(true);
    expect(lines.some((l) => l.message === 'Retrying AWS call')).toBe(true);
    // Errors are logged as Error objects (name, message, stack, causes).
    const crashes = lines.filter((l) => String((l.error as { message?: unknown } | undefined)?.message).includes('injected crash after'));
    expect(crashes).toHaveLength(2);
    for (const crash of crashes) expect(crash.error).toMatchObject({ name: 'Error', stack: expect.stringContaining('\n    at ') });
    expect([...handedBack.values()].length).toBeGreaterThan(0);
    // The 409 recovery listed keys with their values (GetApiKeys, includeValues).
    expect(pipeline.proxy.seen).toContain('GET /apikeys');
    const events = completions.map((m) => JSON.parse(m.Body ?? '{}') as Record<string, unknown>);
    expect(events.some((e) => e.type === 'api-key.provisioned' && e.outcome === 'provisioned')).toBe(true);
    expect(events.some((e) => e.type === 'api-key.provisioned' && e.outcome === 'already-provisioned')).toBe(true);
    expect(events.some((e) => e.type === 'api-key.provisioning-failed')).toBe(true);
    // The crashed delivery and the repeat both end provisioned (SQS may deliver either once more: at least 2).
    expect(
      events.filter((e) => e.customerId === 'hygiene-crash-after-key' && e.type === 'api-key.provisioned').length,
    ).toBeGreaterThanOrEqual(2);
  });

  test('no key value, nor a part or an encoding of one, is in the output, the completion or failure events, or the DLQ', async () => {
    const values = await keyValues();
    expect(values.length).toBeGreaterThanOrEqual(10);
    for (const value of values) expect(value).toMatch(/^[A-Za-z0-9]{20,128}$/);

    const output = printed.join('');
    const events = completions.map((m) => m.Body ?? '').join('\n');
    const dlq = deadLetters.map((m) => m.Body ?? '').join('\n');
    expect(output.length).toBeGreaterThan(10_000);
    for (const value of values) {
      for (const telltale of telltales(value)) {
        expect({ where: 'stdout/stderr/console', found: output.includes(telltale) }).toEqual({
          where: 'stdout/stderr/console',
          found: false,
        });
        expect({ where: 'completion and failure events', found: events.includes(telltale) }).toEqual({
          where: 'completion and failure events',
          found: false,
        });
        expect({ where: 'dead-letter queue', found: dlq.includes(telltale) }).toEqual({ where: 'dead-letter queue', found: false });
      }
    }
  });
});
