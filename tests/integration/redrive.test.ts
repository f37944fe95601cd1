import { execFile } from 'node:child_process';
import { type AddressInfo, createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { ListSecretsCommand } from '@aws-sdk/client-secrets-manager';
import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  ListMessageMoveTasksCommand,
  type Message,
  ReceiveMessageCommand,
  SendMessageCommand,
  SQSClient,
  StartMessageMoveTaskCommand,
} from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import { peekQueue, sendBodies } from '../../lib/local/queues.js';
import { FIRST_SENT_AT_ATTRIBUTE, filterMismatch, formatDuration, parseDuration } from '../../lib/ops/redrive/messages.js';
import { isUnsupportedOperation } from '../../lib/ops/redrive/move-task.js';
import { createPacer } from '../../lib/ops/redrive/pacer.js';
import { type RedriveQueues, resolveQueues, setVisibility } from '../../lib/ops/redrive/queues.js';
import { type MessageReport, type RedriveOptions, redrive } from '../../lib/ops/redrive/redrive.js';
import { formatReport } from '../../lib/ops/redrive/report.js';
import type { CompletionEvent, ProvisionedEvent } from '../../lib/pipeline/completion.js';
import { eventBridgeEnvelope, marketplaceNotification, signup, snsEnvelope } from '../helpers/events.js';
import { type Pipeline, startPipeline } from '../helpers/pipeline.js';

const ROOT = resolve(__dirname, '../..');
// The project's testTimeout does not reach here (Jest reads it globally): redelivery and the CLI take seconds.
jest.setTimeout(60_000);

let pipeline: Pipeline;
beforeAll(async () => {
  // Three deliveries: the replayed messages are looked at once before they are drained (sourceMessagesOnce), and one
  // of them may need a second delivery there — two copies of one customer's signup race, and the loser's GetApiKeys
  // does not list the winner's new key yet (the layer's listing lag), so it is handed back ("not yet").
  pipeline = await startPipeline({ visibilityTimeoutSeconds: 2, maxReceiveCount: 3 });
});
afterAll(() => pipeline.close());

/** Runs the CLI as a child process (tsx, as `npm run redrive` does). */
function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(
      join(ROOT, 'node_modules', '.bin', 'tsx'),
      ['lib/ops/redrive/cli.ts', ...args],
      { cwd: ROOT, env: process.env, timeout: 50_000 },
      (error, stdout, stderr) => done({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

/** Visible and in-flight message counts of a queue. */
async function counts(url: string): Promise<{ visible: number; hidden: number }> {
  const { Attributes = {} } = await pipeline.sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: url,
      AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
    }),
  );
  return { visible: Number(Attributes.ApproximateNumberOfMessages), hidden: Number(Attributes.ApproximateNumberOfMessagesNotVisible) };
}

describe('pure parts', () => {
  test('durations', () => {
    expect(parseDuration('30m')).toBe(1_800_000);
    expect(parseDuration('2h')).toBe(7_200_000);
    expect(parseDuration('7d')).toBe(604_800_000);
    expect(parseDuration('1h30m')).toBe(5_400_000);
    expect(parseDuration('250ms')).toBe(250);
    expect(parseDuration('1.5s')).toBe(1500);
    for (const bad of ['', '30', 'm', '2 hours', '-1h', '1h junk']) expect(() => parseDuration(bad)).toThrow(/not a duration/);
    expect(formatDuration(45_000)).toBe('45s');
    expect(formatDuration(200_000)).toBe('3m 20s');
    expect(formatDuration(7_500_000)).toBe('2h 5m');
    expect(formatDuration(8 * 86_400_000)).toBe('8d 0h');
  });

  test('filters: every given criterion must hold; the first failing one is named', () => {
    const m = { customer: 'acme', reason: 'retries-exhausted' as const, ageMs: 60_000 };
    expect(filterMismatch(m, {})).toBeUndefined();
    expect(filterMismatch(m, { customer: 'acme', reason: 'retries-exhausted', olderThanMs: 60_000, newerThanMs: 60_001 })).toBeUndefined();
    expect(filterMismatch(m, { customer: 'globex' })).toBe('customer');
    expect(filterMismatch(m, { reason: 'invalid-json' })).toBe('reason');
    expect(filterMismatch(m, { olderThanMs: 60_001 })).toBe('older-than');
    expect(filterMismatch(m, { newerThanMs: 60_000 })).toBe('newer-than');
  });

  test('the pacer spaces calls 1/rate apart', async () => {
    let clock = 0;
    const waits: number[] = [];
    const pace = createPacer(4, { now: () => clock, sleep: async (ms) => void waits.push(ms) });
    for (let i = 0; i < 4; i++) await pace();
    expect(waits).toEqual([250, 500, 750]);
    clock = 10_000;
    await pace();
    expect(waits).toHaveLength(3);
    expect(() => createPacer(0)).toThrow();
  });

  test('which errors mean "not implemented here"', () => {
    const withStatus = (name: string, status: number) => Object.assign(new Error('x'), { name, $metadata: { httpStatusCode: status } });
    expect(isUnsupportedOperation(withStatus('SyntaxError', 500))).toBe(true);
    expect(isUnsupportedOperation(withStatus('UnsupportedOperation', 400))).toBe(true);
    expect(isUnsupportedOperation(withStatus('AccessDenied', 403))).toBe(false);
    expect(isUnsupportedOperation(withStatus('ResourceNotFoundException', 400))).toBe(false);
    expect(isUnsupportedOperation('boom')).toBe(false);
  });

  test('a listing line names id, age, receive count, customer and reason', () => {
    const line = formatReport({
      outcome: 'skipped',
      message: {
        messageId: 'm-1',
        sentAt: 0,
        firstSentAt: 0,
        ageMs: 7_200_000,
        receiveCount: 3,
        customer: 'acme',
        reason: 'retries-exhausted',
      },
      detail: 'customer does not match',
    });
    expect(line).toMatch(
      /^skipped\s+m-1\s+age 2h 0m\s+receives 3\s+customer acme\s+reason retries-exhausted\s+\(customer does not match\)$/,
    );
  });
});

/** A loopback port nothing listens on (bound, then closed). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((ready) => server.listen(0, '127.0.0.1', ready));
  const { port } = server.address() as AddressInfo;
  await new Promise((closed) => server.close(closed));
  return port;
}

const stackLines = (text: string) => text.split('\n').filter((l) => /^\s+at /.test(l));

describe('the CLI: usage and failures', () => {
  test('--help prints the usage on stdout and exits 0', async () => {
    const run = await cli(['--help']);
    expect(run).toMatchObject({ code: 0, stderr: '' });
    expect(run.stdout).toMatch(/^Usage: npm run redrive -- /);
    expect(run.stdout).toContain('npm run -s redrive');
    expect(run.stdout).toContain('npm start -- --keep');
  });

  test.each([
    ['an unknown flag', ['--bogus'], '--bogus'],
    ['a bad value', ['--rate', 'abc'], '--rate'],
    ['a bad duration', ['--older-than', '2 hours'], '--older-than'],
    ['no dead-letter queue', [], '--dlq-url'],
    [
      'an unknown --reason (it would select nothing and skip every message)',
      ['--dlq-url', 'https://sqs/1/dlq', '--reason', 'foo'],
      '"foo"',
    ],
    ['an --endpoint without a scheme', ['--endpoint', '127.0.0.1:45469', '--dlq-url', 'http://127.0.0.1:45469/1/dlq'], '--endpoint'],
    [
      'a local queue without --endpoint',
      ['--dlq-url', 'http://127.0.0.1:45469/123456789012/q-dlq', '--dry-run'],
      '--endpoint http://127.0.0.1:45469',
    ],
  ])('%s: one line on stderr naming it, no stack trace, exit 2', async (_, args, named) => {
    const run = await cli(args);
    expect(run.code).toBe(2);
    expect(run.stdout).toBe('');
    expect(run.stderr.trim().split('\n')).toHaveLength(1);
    expect(run.stderr).toMatch(/^redrive: /);
    expect(run.stderr).toContain(named);
    expect(stackLines(run.stderr)).toEqual([]);
  });

  test('an endpoint that refuses connections: "redrive failed: <cause>", exit 2, no stack trace', async () => {
    const endpoint = `http://127.0.0.1:${await closedPort()}`;
    const run = await cli(['--endpoint', endpoint, '--dlq-url', `${endpoint}/123456789012/dlq`]);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/^redrive failed: .*ECONNREFUSED/);
    expect(run.stderr.trim().split('\n')).toHaveLength(1);
    expect(stackLines(run.stderr)).toEqual([]);
  });
});

describe('the move task (StartMessageMoveTask), against a mocked SQS', () => {
  const queues = {
    dlqUrl: 'https://sqs/1/dlq',
    dlqArn: 'arn:aws:sqs:us-east-1:1:dlq',
    sourceUrl: 'https://sqs/1/src',
    sourceArn: 'arn:aws:sqs:us-east-1:1:src',
  };
  const client = new SQSClient({ region: 'us-east-1' });
  const mock = mockClient(client);
  beforeEach(() => mock.reset());
  const run = (options: Partial<RedriveOptions> = {}) => redrive(client, { ...queues, sleep: async () => undefined, ...options });

  test('without filters it moves everything with one task, at the given rate, and waits for it', async () => {
    mock.on(StartMessageMoveTaskCommand).resolves({ TaskHandle: 'task-1' });
    mock
      .on(ListMessageMoveTasksCommand)
      .resolvesOnce({
        Results: [{ TaskHandle: 'task-1', Status: 'RUNNING', ApproximateNumberOfMessagesMoved: 2, ApproximateNumberOfMessagesToMove: 5 }],
      })
      .resolves({ Results: [{ TaskHandle: 'task-1', Status: 'COMPLETED', ApproximateNumberOfMessagesMoved: 5 }] });

    const summary = await run({ ratePerSecond: 7 });

    expect(mock.commandCalls(StartMessageMoveTaskCommand)[0]?.args[0].input).toEqual({
      SourceArn: queues.dlqArn,
      DestinationArn: queues.sourceArn,
      MaxNumberOfMessagesPerSecond: 7,
    });
    expect(summary).toMatchObject({ mechanism: 'move-task', moved: 5, failed: 0, task: { status: 'COMPLETED' } });
    expect(mock.commandCalls(ReceiveMessageCommand)).toHaveLength(0);
  });

  test('a failed task counts as a failure', async () => {
    mock.on(StartMessageMoveTaskCommand).resolves({ TaskHandle: 'task-2' });
    mock.on(ListMessageMoveTasksCommand).resolves({
      Results: [{ TaskHandle: 'task-2', Status: 'FAILED', ApproximateNumberOfMessagesMoved: 1, FailureReason: 'AccessDenied' }],
    });
    expect(await run()).toMatchObject({ mechanism: 'move-task', failed: 1, task: { failureReason: 'AccessDenied' } });
  });

  test('an endpoint without it (HTTP 500) falls back to receive/send/delete', async () => {
    mock
      .on(StartMessageMoveTaskCommand)
      .rejects(Object.assign(new Error('<!doctype html>'), { name: 'SyntaxError', $metadata: { httpStatusCode: 500 } }));
    mock.on(ReceiveMessageCommand).resolves({ Messages: [] });
    const fallback = jest.fn();
    expect(await run({ onFallback: fallback })).toMatchObject({
      mechanism: 'receive-send-delete',
      moved: 0,
      fallbackReason: expect.stringContaining('HTTP 500'),
    });
    expect(fallback).toHaveBeenCalledTimes(1);
  });

  test('a refusal (access denied) is not hidden by a fallback', async () => {
    mock
      .on(StartMessageMoveTaskCommand)
      .rejects(Object.assign(new Error('denied'), { name: 'AccessDenied', $metadata: { httpStatusCode: 403 } }));
    await expect(run()).rejects.toThrow('denied');
  });

  test.each<[string, Partial<RedriveOptions>]>([
    ['a filter', { filter: { customer: 'acme' } }],
    ['--max', { max: 3 }],
    ['a dry run', { dryRun: true }],
    ['--no-move-task', { useMoveTask: false }],
  ])('with %s it never starts a task', async (_, options) => {
    mock.on(ReceiveMessageCommand).resolves({ Messages: [] });
    await run(options);
    expect(mock.commandCalls(StartMessageMoveTaskCommand)).toHaveLength(0);
  });
});

describe('redrive against moto, then replay', () => {
  const A: Record<string, string> = {};
  const B: Record<string, string> = {};
  let midpoint = 0;
  /** Group A's send: before the drain that dead-lettered it. */
  const groupASent = { from: 0, to: 0 };
  /** SentTimestamp of each DLQ message, as the dry run lists it. */
  const sentAt = new Map<string, number>();
  const bodies = new Map<string, string>();
  const attributes = {
    origin: { DataType: 'String', StringValue: 'support-ticket-42' },
    attempt: { DataType: 'Number', StringValue: '3' },
  };
  let queues: RedriveQueues;
  const inProcess = (options: Partial<RedriveOptions>) => {
    const reports: MessageReport[] = [];
    const summary = redrive(pipeline.sqs, {
      ...queues,
      waitTimeSeconds: 0,
      ratePerSecond: 50,
      onMessage: (r) => reports.push(r),
      ...options,
    });
    return summary.then((s) => ({ summary: s, reports, ids: reports.map((r) => r.message.messageId).sort() }));
  };
  const dlqIds = async () => (await peekQueue(pipeline.sqs, pipeline.queues.deadLetterUrl)).map((m) => m.MessageId ?? '').sort();
  /**
   * The source queue's messages with their attributes, read once: the source has maxReceiveCount 3, so a message
   * may be looked at only once before the drain (which may need two deliveries, see startPipeline above).
   */
  const sourceMessagesOnce = async () => {
    const seen = new Map<string, Message>();
    for (;;) {
      const { Messages = [] } = await pipeline.sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: pipeline.queues.signupUrl,
          MaxNumberOfMessages: 10,
          VisibilityTimeout: 30,
          MessageAttributeNames: ['All'],
        }),
      );
      if (Messages.length === 0) break;
      for (const m of Messages) seen.set(m.MessageId ?? '', m);
    }
    await setVisibility(
      pipeline.sqs,
      pipeline.queues.signupUrl,
      [...seen.values()].map((m) => ({ messageId: m.MessageId ?? '', receiptHandle: m.ReceiptHandle ?? '' })),
      0,
    );
    return [...seen.values()];
  };

  beforeAll(async () => {
    // Group A, the older: the pipeline itself sends them to the DLQ. Two customers API Gateway keeps throttling
    // (asking for 2 s, longer than the function waits: each delivery hands them back at once); one whose key is made
    // but whose completion event SQS keeps refusing.
    pipeline.proxy.inject({
      method: 'POST',
      path: '/apikeys',
      bodyIncludes: '"rd-throttled-',
      status: 429,
      errorType: 'TooManyRequestsException',
      retryAfterSeconds: 2,
      times: Infinity,
    });
    pipeline.proxy.inject({
      target: 'AmazonSQS.SendMessageBatch',
      bodyIncludes: 'rd-announced',
      status: 500,
      errorType: 'InternalError',
      times: Infinity,
    });
    const groupA = [signup('rd-throttled-a'), signup('rd-throttled-b'), signup('rd-announced')];
    groupASent.from = Date.now();
    const idsA = await pipeline.send(...groupA);
    groupASent.to = Date.now();
    idsA.forEach((id, i) => {
      A[id] = ['rd-throttled-a', 'rd-throttled-b', 'rd-announced'][i] ?? '';
      bodies.set(id, JSON.stringify(groupA[i]));
    });
    const run = await pipeline.drain();
    expect(run.drained).toBe(true);
    pipeline.proxy.clear();
    expect(await dlqIds()).toEqual(Object.keys(A).sort());
    // Group A was sent before the drain (seconds ago); group B goes out a second after this point.
    midpoint = Date.now();
    await new Promise((r) => setTimeout(r, 1000));

    // Group B, the newer: sent to the DLQ directly, as after an older incident or a manual move.
    const groupB: Array<[string, string]> = [
      ['garbage', 'not json at all'],
      ['unrecognized', '{"hello":"world"}'],
      // Padded past 1 KiB: the send-failure test redrives it to a queue that takes no more.
      [
        'rd-market',
        JSON.stringify({ ...snsEnvelope(marketplaceNotification('subscribe-success', 'rd-market')), Signature: 'S'.repeat(1100) }),
      ],
      ['rd-throttled-a (EventBridge)', JSON.stringify(eventBridgeEnvelope(signup('rd-throttled-a')))],
    ];
    const idsB = await sendBodies(
      pipeline.sqs,
      pipeline.queues.deadLetterUrl,
      groupB.map(([, body]) => body),
    );
    idsB.forEach((id, i) => {
      B[id] = groupB[i]?.[0] ?? '';
      bodies.set(id, groupB[i]?.[1] ?? '');
    });
    const attrsBody = JSON.stringify(signup('rd-attrs', { eventId: 'evt-rd-attrs' }));
    const { MessageId } = await pipeline.sqs.send(
      new SendMessageCommand({ QueueUrl: pipeline.queues.deadLetterUrl, MessageBody: attrsBody, MessageAttributes: attributes }),
    );
    B[MessageId ?? ''] = 'rd-attrs';
    bodies.set(MessageId ?? '', attrsBody);
    queues = await resolveQueues(pipeline.sqs, { dlqUrl: pipeline.queues.deadLetterUrl });
  });

  test('resolveQueues finds the source queue from the DLQ alone (ListDeadLetterSourceQueues)', async () => {
    expect(await resolveQueues(pipeline.sqs, { dlqUrl: pipeline.queues.deadLetterUrl })).toMatchObject({
      sourceUrl: pipeline.queues.signupUrl,
      sourceArn: pipeline.queues.signupArn,
      dlqArn: expect.stringMatching(/:api-key-provisioner-test-signups-dlq$/),
    });
  });

  test('a dry run lists every message with its customer and reason, and moves nothing', async () => {
    const { summary, reports } = await inProcess({ dryRun: true, waitTimeSeconds: 1 });

    expect(summary).toMatchObject({ moved: 0, wouldMove: 8, skipped: 0, failed: 0, notReleased: 0 });
    const listed = Object.fromEntries(reports.map((r) => [r.message.messageId, [r.outcome, r.message.customer, r.message.reason]]));
    const expected = (name: string): [string, string, string] => {
      if (name === 'garbage') return ['would-move', 'unreadable', 'invalid-json'];
      if (name === 'unrecognized') return ['would-move', 'unreadable', 'unrecognized-event'];
      return ['would-move', name.replace(' (EventBridge)', ''), 'retries-exhausted'];
    };
    expect(listed).toEqual(Object.fromEntries(Object.entries({ ...A, ...B }).map(([id, name]) => [id, expected(name)])));
    for (const r of reports) {
      expect(r.message.receiveCount).toBeGreaterThan(0);
      expect(r.message.ageMs).toBeGreaterThanOrEqual(0);
      // Never redriven before: the first send time is this copy's.
      expect(r.message.firstSentAt).toBe(r.message.sentAt);
      sentAt.set(r.message.messageId, r.message.sentAt);
    }
    // Group A went through the pipeline: received three times there before the DLQ.
    for (const id of Object.keys(A))
      expect(reports.find((r) => r.message.messageId === id)?.message.receiveCount).toBeGreaterThanOrEqual(3);
    expect(await counts(pipeline.queues.deadLetterUrl)).toEqual({ visible: 8, hidden: 0 });
    expect(await counts(pipeline.queues.signupUrl)).toEqual({ visible: 0, hidden: 0 });
  });

  test('the CLI dry run prints a line per message and a summary, and moves nothing', async () => {
    const result = await cli([
      '--endpoint',
      process.env.MOTO_ENDPOINT ?? '',
      '--dlq-url',
      pipeline.queues.deadLetterUrl,
      '--dry-run',
      '--customer',
      'unreadable',
    ]);

    expect(result).toMatchObject({ code: 0, stderr: '' });
    const lines = result.stdout.trim().split('\n');
    expect(lines[0]).toBe(`Dry run: ${pipeline.queues.deadLetterUrl} -> ${pipeline.queues.signupUrl}, 10 message(s)/s`);
    expect(
      lines
        .filter((l) => l.startsWith('would move'))
        .map((l) => l.replace(/\s+/g, ' ').replace(/age \S+( \S+)? receives \d+ /, ''))
        .sort(),
    ).toEqual(
      Object.entries(B)
        .filter(([, name]) => name === 'garbage' || name === 'unrecognized')
        .map(([id, name]) => `would move ${id} customer unreadable reason ${name === 'garbage' ? 'invalid-json' : 'unrecognized-event'}`)
        .sort(),
    );
    expect(lines.filter((l) => l.startsWith('skipped'))).toHaveLength(6);
    expect(lines.filter((l) => l.startsWith('skipped')).every((l) => l.endsWith('(customer does not match)'))).toBe(true);
    expect(lines.at(-1)).toBe('Dry run: 2 would move, 6 skipped; nothing was moved');
    expect(await counts(pipeline.queues.deadLetterUrl)).toEqual({ visible: 8, hidden: 0 });
  });

  test("--customer with --max moves one of the customer's two messages; the rest stay in the DLQ, visible", async () => {
    const twoOfThem = Object.entries({ ...A, ...B })
      .filter(([, name]) => name.startsWith('rd-throttled-a'))
      .map(([id]) => id);
    const { summary, reports } = await inProcess({ filter: { customer: 'rd-throttled-a' }, max: 1 });

    expect(summary).toMatchObject({ moved: 1, failed: 0 });
    const [moved] = reports.filter((r) => r.outcome === 'moved').map((r) => r.message.messageId);
    expect(twoOfThem).toContain(moved);
    expect(await counts(pipeline.queues.deadLetterUrl)).toEqual({ visible: 7, hidden: 0 });
    expect(await dlqIds()).toEqual(
      Object.keys({ ...A, ...B })
        .filter((id) => id !== moved)
        .sort(),
    );
    expect(await counts(pipeline.queues.signupUrl)).toEqual({ visible: 1, hidden: 0 });
  });

  test("--reason moves exactly that reason's messages", async () => {
    const { summary, reports } = await inProcess({ filter: { reason: 'invalid-json' } });

    const garbage = Object.keys(B).find((id) => B[id] === 'garbage') ?? '';
    expect(summary).toMatchObject({ moved: 1, skipped: 6, failed: 0 });
    expect(reports.filter((r) => r.outcome === 'moved').map((r) => r.message.messageId)).toEqual([garbage]);
    expect(reports.filter((r) => r.outcome === 'skipped').every((r) => r.detail === 'reason does not match')).toBe(true);
    expect(await counts(pipeline.queues.deadLetterUrl)).toEqual({ visible: 6, hidden: 0 });
    expect(await counts(pipeline.queues.signupUrl)).toEqual({ visible: 2, hidden: 0 });
  });

  test("--older-than selects the pipeline's old dead letters, --newer-than the recent ones", async () => {
    const before = new Set(await dlqIds());
    const older = await inProcess({ filter: { olderThanMs: Date.now() - midpoint, reason: 'retries-exhausted' } });
    const movedOld = older.reports
      .filter((r) => r.outcome === 'moved')
      .map((r) => r.message.messageId)
      .sort();
    expect(movedOld).toEqual(
      Object.keys(A)
        .filter((id) => before.has(id))
        .sort(),
    );
    expect(movedOld.length).toBeGreaterThanOrEqual(2);

    const newer = await inProcess({ filter: { newerThanMs: Date.now() - midpoint, customer: 'rd-attrs' } });
    expect(newer.summary).toMatchObject({ moved: 1, failed: 0 });
    const [moved] = newer.reports.filter((r) => r.outcome === 'moved');
    expect(B[moved?.message.messageId ?? '']).toBe('rd-attrs');
  });

  test('the CLI exits 1 when a send fails, and the message stays in the DLQ, visible', async () => {
    const inDlq = await dlqIds();
    // A queue that refuses messages over 1 KiB, as a source whose sends fail.
    const { QueueUrl: tiny = '' } = await pipeline.sqs.send(
      new CreateQueueCommand({ QueueName: 'it-tiny', Attributes: { MaximumMessageSize: '1024' } }),
    );
    const result = await cli([
      '--endpoint',
      process.env.MOTO_ENDPOINT ?? '',
      '--dlq-url',
      pipeline.queues.deadLetterUrl,
      '--source-url',
      tiny,
      '--customer',
      'rd-market',
    ]);

    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/^FAILED\s+\S+\s+age .* customer rd-market\s+reason retries-exhausted\s+\(SendMessage failed: .*\)$/m);
    expect(result.stdout.trim().split('\n').at(-1)).toMatch(/^Summary: 0 moved, \d+ skipped, 1 failed$/);
    expect(await dlqIds()).toEqual(inDlq);
    expect(await counts(pipeline.queues.deadLetterUrl)).toEqual({ visible: inDlq.length, hidden: 0 });
  });

  test('the CLI without filters tries the move task, falls back, and empties the DLQ', async () => {
    const left = await dlqIds();
    const result = await cli(['--endpoint', process.env.MOTO_ENDPOINT ?? '', '--dlq-url', pipeline.queues.deadLetterUrl, '--rate', '20']);

    expect(result).toMatchObject({ code: 0, stderr: '' });
    expect(result.stdout).toContain('StartMessageMoveTask is not available on this endpoint (HTTP 500): moving message by message instead');
    expect(
      result.stdout
        .split('\n')
        .filter((l) => l.startsWith('moved'))
        .map((l) => l.split(/\s+/)[1])
        .sort(),
    ).toEqual(left);
    expect(result.stdout.trim().split('\n').at(-1)).toBe(`Summary: ${left.length} moved, 0 skipped, 0 failed`);
    expect(await dlqIds()).toEqual([]);
  });

  test(`every moved message is in the source queue with its body and message attributes, plus ${FIRST_SENT_AT_ATTRIBUTE}`, async () => {
    const moved = await sourceMessagesOnce();
    expect(moved.map((m) => m.Body).sort()).toEqual([...bodies.values()].sort());
    const idOfBody = new Map([...bodies].map(([id, body]) => [body, id]));
    for (const m of moved) {
      const id = idOfBody.get(m.Body ?? '') ?? '';
      const own = B[id] === 'rd-attrs' ? attributes : {};
      expect(m.MessageAttributes).toEqual({
        ...own,
        [FIRST_SENT_AT_ATTRIBUTE]: { DataType: 'String', StringValue: String(sentAt.get(id)) },
      });
    }
    // The first send time is the original one: group A's is its send to the signup queue, before the drain that
    // dead-lettered it (SQS keeps SentTimestamp when it moves a message to a DLQ).
    for (const id of Object.keys(A)) {
      expect(sentAt.get(id)).toBeGreaterThanOrEqual(groupASent.from - 50);
      expect(sentAt.get(id)).toBeLessThanOrEqual(groupASent.to + 50);
    }
    for (const id of Object.keys(B)) expect(sentAt.get(id)).toBeGreaterThanOrEqual(midpoint);
  });

  test('draining the replayed messages provisions exactly once', async () => {
    await pipeline.clearCompletions();
    const run = await pipeline.drain();

    expect(run.drained).toBe(true);
    expect(await dlqIds()).toEqual([]);
    const events = await pipeline.completionEvents();
    expect(events).toHaveLength(8);
    const keys = await pipeline.apiKeys();
    const { SecretList = [] } = await pipeline.secrets.send(new ListSecretsCommand({ MaxResults: 100 }));
    const provisioned = events.filter((e): e is ProvisionedEvent => e.type === 'api-key.provisioned');
    for (const customerId of ['rd-throttled-a', 'rd-throttled-b', 'rd-announced', 'rd-market', 'rd-attrs']) {
      const own = keys.filter((k) => k.customerId === customerId);
      expect({ customerId, keys: own.length }).toEqual({ customerId, keys: 1 });
      const secrets = SecretList.filter((s) => s.Name?.endsWith(`/${customerId}/api-key`));
      expect({ customerId, secrets: secrets.length }).toEqual({ customerId, secrets: 1 });
      expect(await pipeline.secretJson(secrets[0]?.Name ?? '')).toMatchObject({ value: own[0]?.value, apiKeyId: own[0]?.id });
      const announced = provisioned.filter((e) => e.customerId === customerId);
      expect(new Set(announced.map((e) => e.eventId)).size).toBe(1);
      expect(new Set(announced.map((e) => e.apiKeyId))).toEqual(new Set([own[0]?.id]));
    }
    // rd-throttled-a came twice (signup and EventBridge): one key, announced twice with one eventId.
    expect(provisioned.filter((e) => e.customerId === 'rd-throttled-a')).toHaveLength(2);
    // rd-announced's key was made during the incident: the replay only re-announces it.
    expect(provisioned.filter((e) => e.customerId === 'rd-announced').map((e) => e.outcome)).toEqual(['already-provisioned']);
    const failed = events.filter(
      (e): e is Extract<CompletionEvent, { type: 'api-key.provisioning-failed' }> => e.type === 'api-key.provisioning-failed',
    );
    expect(failed.map((e) => e.reason).sort()).toEqual(['invalid-json', 'unrecognized-event']);
  });
});

describe(`${FIRST_SENT_AT_ATTRIBUTE}: the first send time, carried through redrives`, () => {
  test('two redrives keep the first send time; each copy has its own SentTimestamp', async () => {
    const create = async (name: string) => (await pipeline.sqs.send(new CreateQueueCommand({ QueueName: name }))).QueueUrl ?? '';
    const first = await create('it-first-sent-a');
    const second = await create('it-first-sent-b');
    const body = JSON.stringify(signup('rd-first-sent'));
    await sendBodies(pipeline.sqs, first, [body]);
    const pause = () => new Promise((r) => setTimeout(r, 50));
    /** One message-by-message redrive of the one message in `from`. */
    const move = async (from: string, to: string) => {
      const reports: MessageReport[] = [];
      const queuePair = await resolveQueues(pipeline.sqs, { dlqUrl: from, sourceUrl: to });
      const summary = await redrive(pipeline.sqs, {
        ...queuePair,
        useMoveTask: false,
        waitTimeSeconds: 0,
        ratePerSecond: 50,
        onMessage: (r) => reports.push(r),
      });
      expect(summary).toMatchObject({ moved: 1, failed: 0 });
      const [only] = reports;
      if (!only) throw new Error('no message was moved');
      return only.message;
    };

    await pause();
    const once = await move(first, second);
    await pause();
    const twice = await move(second, first);

    expect(once.firstSentAt).toBe(once.sentAt);
    expect(twice.sentAt).toBeGreaterThan(once.sentAt);
    expect(twice.firstSentAt).toBe(once.sentAt);
    const { Messages = [] } = await pipeline.sqs.send(
      new ReceiveMessageCommand({ QueueUrl: first, MessageSystemAttributeNames: ['SentTimestamp'], MessageAttributeNames: ['All'] }),
    );
    expect(Messages).toHaveLength(1);
    expect(Messages[0]?.Body).toBe(body);
    expect(Messages[0]?.MessageAttributes).toEqual({ [FIRST_SENT_AT_ATTRIBUTE]: { DataType: 'String', StringValue: String(once.sentAt) } });
    expect(Number(Messages[0]?.Attributes?.SentTimestamp)).toBeGreaterThan(twice.sentAt);
  });
});

describe('queues named wrongly: refused before anything is received (issue 24)', () => {
  const endpoint = () => process.env.MOTO_ENDPOINT ?? '';
  const arnOf = async (url: string) =>
    (await pipeline.sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['QueueArn'] }))).Attributes?.QueueArn ?? '';

  const refused = (run: { code: number | null; stdout: string; stderr: string }) => {
    expect(run.code).toBe(2);
    expect(run.stdout).toBe('');
    expect(run.stderr.trim().split('\n')).toHaveLength(1);
    expect(run.stderr).toMatch(/^redrive: /);
    expect(stackLines(run.stderr)).toEqual([]);
  };

  test('the source queue given as --dlq-url: "not a dead-letter queue", naming the queue its failures go to', async () => {
    const run = await cli(['--endpoint', endpoint(), '--dlq-url', pipeline.queues.signupUrl, '--dry-run']);
    refused(run);
    expect(run.stderr).toContain(`${pipeline.queues.signupUrl} is not a dead-letter queue`);
    expect(run.stderr).toContain(`--dlq-arn ${await arnOf(pipeline.queues.deadLetterUrl)}`);
  });

  test('--dlq-url and --dlq-arn naming two queues: refused, both named', async () => {
    const other = await arnOf(pipeline.queues.completionUrl);
    const run = await cli(['--endpoint', endpoint(), '--dlq-url', pipeline.queues.deadLetterUrl, '--dlq-arn', other, '--dry-run']);
    refused(run);
    expect(run.stderr).toContain('--dlq-url and --dlq-arn name two different queues');
    expect(run.stderr).toContain(other);
  });

  test('--source-url and --source-arn naming two queues: refused likewise', async () => {
    const other = await arnOf(pipeline.queues.completionUrl);
    const run = await cli([
      '--endpoint',
      endpoint(),
      '--dlq-url',
      pipeline.queues.deadLetterUrl,
      '--source-url',
      pipeline.queues.signupUrl,
      '--source-arn',
      other,
      '--dry-run',
    ]);
    refused(run);
    expect(run.stderr).toContain('--source-url and --source-arn name two different queues');
  });

  test('a URL and an ARN of the same queue are accepted', async () => {
    const dlqArn = await arnOf(pipeline.queues.deadLetterUrl);
    const sourceArn = await arnOf(pipeline.queues.signupUrl);
    expect(
      await resolveQueues(pipeline.sqs, {
        dlqUrl: pipeline.queues.deadLetterUrl,
        dlqArn,
        sourceUrl: pipeline.queues.signupUrl,
        sourceArn,
      }),
    ).toEqual({ dlqUrl: pipeline.queues.deadLetterUrl, dlqArn, sourceUrl: pipeline.queues.signupUrl, sourceArn });
  });
});
