import {
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  type GetQueueAttributesCommandOutput,
  type Message,
  ReceiveMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-jest';
import {
  type BatchReport,
  type EventSourceMappingOptions,
  recordsToKeep,
  runEventSourceMapping,
} from '../../lib/local/event-source-mapping.js';
import { sqsRecord } from '../helpers/events.js';

describe('recordsToKeep (ReportBatchItemFailures rules)', () => {
  const records: SQSRecord[] = ['m1', 'm2', 'm3'].map((messageId) => sqsRecord({ n: messageId }, { messageId }));
  const ALL = ['m1', 'm2', 'm3'];
  const fail = (...ids: unknown[]) => ({ batchItemFailures: ids.map((itemIdentifier) => ({ itemIdentifier })) });

  test.each<[string, unknown]>([
    ['undefined (a void handler)', undefined],
    ['null', null],
    ['an object without batchItemFailures', {}],
    ['batchItemFailures: undefined', { batchItemFailures: undefined }],
    ['batchItemFailures: null', { batchItemFailures: null }],
    ['batchItemFailures: []', { batchItemFailures: [] }],
  ])('%s keeps nothing: every record is deleted', (_, response) => {
    expect(recordsToKeep(records, response)).toEqual([]);
  });

  test.each<[string, unknown]>([
    ['a string', 'ok'],
    ['an empty string', ''],
    ['a number', 0],
    ['a boolean', true],
    ['batchItemFailures as a string', { batchItemFailures: 'm1' }],
    ['batchItemFailures as a single object', { batchItemFailures: { itemIdentifier: 'm1' } }],
    ['batchItemFailures as a number', { batchItemFailures: 1 }],
    ['an entry with an empty itemIdentifier', fail('')],
    ['an entry with a null itemIdentifier', fail(null)],
    ['an entry with no itemIdentifier', { batchItemFailures: [{}] }],
    ['an entry with a numeric itemIdentifier', fail(1)],
    ['an entry with an object itemIdentifier', fail({ id: 'm1' })],
    ['a null entry', { batchItemFailures: [null] }],
    ['a bare string entry', { batchItemFailures: ['m1'] }],
    ['an id not in the batch', fail('m4')],
    ['a valid id next to an id not in the batch', fail('m1', 'not-in-batch')],
    ['a valid id next to an empty itemIdentifier', fail('m2', '')],
    ['an id differing only in case', fail('M1')],
  ])('%s keeps the whole batch', (_, response) => {
    expect(recordsToKeep(records, response)).toEqual(ALL);
  });

  test.each<[string, unknown, string[]]>([
    ['one id', fail('m2'), ['m2']],
    ['two ids', fail('m1', 'm3'), ['m1', 'm3']],
    ['every id', fail('m3', 'm1', 'm2'), ['m1', 'm2', 'm3']],
    ['a repeated id, once', fail('m2', 'm2'), ['m2']],
    ['repeated ids, once each', fail('m3', 'm1', 'm3', 'm1'), ['m1', 'm3']],
    ['ids of entries with extra fields', { batchItemFailures: [{ itemIdentifier: 'm3', note: 'x' }] }, ['m3']],
  ])('%s keeps exactly the named records', (_, response, expected) => {
    const kept = recordsToKeep(records, response);
    expect([...kept].sort()).toEqual(expected);
    expect(new Set(kept).size).toBe(kept.length);
  });

  test('an empty batch keeps nothing for a valid response', () => {
    expect(recordsToKeep([], { batchItemFailures: [] })).toEqual([]);
  });
});

describe('runEventSourceMapping', () => {
  const sqs = mockClient(SQSClient);
  const QUEUE_URL = 'https://sqs.us-east-1.amazonaws.com/123456789012/esm-test-signups';
  const QUEUE_ARN = 'arn:aws:sqs:us-east-1:123456789012:esm-test-signups';

  const message = (id: string, receiveCount = '1'): Message => ({
    MessageId: id,
    ReceiptHandle: `rh-${id}`,
    Body: JSON.stringify({ customerId: `customer-${id}` }),
    MD5OfBody: `md5-${id}`,
    Attributes: { ApproximateReceiveCount: receiveCount, SentTimestamp: '1700000000000' },
  });
  const counts = (visible: number, notVisible: number, delayed: number): Partial<GetQueueAttributesCommandOutput> => ({
    Attributes: {
      ApproximateNumberOfMessages: String(visible),
      ApproximateNumberOfMessagesNotVisible: String(notVisible),
      ApproximateNumberOfMessagesDelayed: String(delayed),
    },
  });
  const EMPTY = counts(0, 0, 0);

  type Handler = EventSourceMappingOptions['handler'];
  const run = (handler: Handler, options: Partial<EventSourceMappingOptions> = {}) => {
    const reports: BatchReport[] = [];
    const result = runEventSourceMapping({
      sqs: sqs as unknown as SQSClient,
      queueUrl: QUEUE_URL,
      queueArn: QUEUE_ARN,
      handler,
      waitTimeSeconds: 0,
      maxDurationMs: 5_000,
      onBatch: (report) => reports.push(report),
      ...options,
    });
    return result.then((summary) => ({ ...summary, reports }));
  };

  /** Receipt handles in every DeleteMessageBatch call, in order. */
  const deletedHandles = () =>
    sqs.commandCalls(DeleteMessageBatchCommand).flatMap((call) => (call.args[0].input.Entries ?? []).map((e) => e.ReceiptHandle));

  beforeEach(() => {
    sqs.reset();
    sqs.on(ReceiveMessageCommand).resolves({});
    sqs.on(GetQueueAttributesCommand).resolves(EMPTY);
    sqs.on(DeleteMessageBatchCommand).resolves({ Successful: [], Failed: [] });
  });

  test('receives a batch of batchSize, builds SQS records, deletes them all after a void response, and stops when drained', async () => {
    sqs
      .on(ReceiveMessageCommand)
      .resolvesOnce({ Messages: [message('m1', '3'), message('m2')] })
      .resolves({});
    const events: SQSEvent[] = [];
    const remaining: number[] = [];
    const handler = jest.fn(async (event: SQSEvent, context: Context) => {
      remaining.push(context.getRemainingTimeInMillis());
      events.push(event);
    });

    const result = await run(handler, { batchSize: 7, functionTimeoutMs: 12_000, region: 'eu-west-2' });

    expect(sqs).toHaveReceivedCommandWith(ReceiveMessageCommand, { QueueUrl: QUEUE_URL, MaxNumberOfMessages: 7, WaitTimeSeconds: 0 });
    expect(sqs).toHaveReceivedCommandTimes(ReceiveMessageCommand, 2);
    expect(handler).toHaveBeenCalledTimes(1);
    const records = events[0]?.Records ?? [];
    expect(records).toHaveLength(2);
    expect(records[0]).toMatchObject({
      messageId: 'm1',
      receiptHandle: 'rh-m1',
      body: JSON.stringify({ customerId: 'customer-m1' }),
      attributes: { ApproximateReceiveCount: '3', SentTimestamp: '1700000000000' },
      eventSource: 'aws:sqs',
      eventSourceARN: QUEUE_ARN,
      awsRegion: 'eu-west-2',
    });
    expect(records[1]).toMatchObject({ messageId: 'm2', receiptHandle: 'rh-m2', attributes: { ApproximateReceiveCount: '1' } });
    expect(remaining[0]).toBeLessThanOrEqual(12_000);
    expect(remaining[0]).toBeGreaterThan(11_000);

    expect(sqs).toHaveReceivedCommandTimes(DeleteMessageBatchCommand, 1);
    expect(sqs).toHaveReceivedCommandWith(DeleteMessageBatchCommand, { QueueUrl: QUEUE_URL });
    expect(deletedHandles()).toEqual(['rh-m1', 'rh-m2']);
    const entryIds = (sqs.commandCalls(DeleteMessageBatchCommand)[0]?.args[0].input.Entries ?? []).map((e) => e.Id);
    expect(new Set(entryIds).size).toBe(2);

    expect(sqs).toHaveReceivedCommandWith(GetQueueAttributesCommand, {
      QueueUrl: QUEUE_URL,
      AttributeNames: expect.arrayContaining([
        'ApproximateNumberOfMessages',
        'ApproximateNumberOfMessagesNotVisible',
        'ApproximateNumberOfMessagesDelayed',
      ]),
    });
    expect(result).toMatchObject({ invocations: 1, drained: true });
    expect(result.reports).toHaveLength(1);
    expect(result.reports[0]).toMatchObject({ handedBack: [], error: undefined });
    expect(result.reports[0]?.records.map((r) => r.messageId)).toEqual(['m1', 'm2']);
  });

  test('a message without attributes gets ApproximateReceiveCount 1', async () => {
    sqs
      .on(ReceiveMessageCommand)
      .resolvesOnce({ Messages: [{ MessageId: 'bare', ReceiptHandle: 'rh-bare', Body: 'x' }] })
      .resolves({});
    const events: SQSEvent[] = [];
    await run(async (event) => {
      events.push(event);
    });
    expect(events[0]?.Records[0]?.attributes.ApproximateReceiveCount).toBe('1');
    expect(events[0]?.Records[0]?.eventSource).toBe('aws:sqs');
  });

  test('deletes only the records the handler did not hand back', async () => {
    sqs
      .on(ReceiveMessageCommand)
      .resolvesOnce({ Messages: [message('m1'), message('m2'), message('m3')] })
      .resolves({});
    const handler = jest.fn(async (): Promise<SQSBatchResponse> => ({ batchItemFailures: [{ itemIdentifier: 'm2' }] }));

    const result = await run(handler);

    expect(deletedHandles()).toEqual(['rh-m1', 'rh-m3']);
    expect(result.reports[0]?.handedBack).toEqual(['m2']);
    expect(result.reports[0]?.error).toBeUndefined();
    expect(result).toMatchObject({ invocations: 1, drained: true });
  });

  test('deletes nothing when every record is handed back', async () => {
    sqs
      .on(ReceiveMessageCommand)
      .resolvesOnce({ Messages: [message('m1'), message('m2')] })
      .resolves({});
    const result = await run(async () => ({ batchItemFailures: [{ itemIdentifier: 'm1' }, { itemIdentifier: 'm2' }] }));

    expect(sqs).not.toHaveReceivedCommand(DeleteMessageBatchCommand);
    expect([...(result.reports[0]?.handedBack ?? [])].sort()).toEqual(['m1', 'm2']);
  });

  test('deletes nothing when the response names an id outside the batch', async () => {
    sqs
      .on(ReceiveMessageCommand)
      .resolvesOnce({ Messages: [message('m1'), message('m2')] })
      .resolves({});
    const result = await run(async () => ({ batchItemFailures: [{ itemIdentifier: 'm1' }, { itemIdentifier: 'elsewhere' }] }));

    expect(sqs).not.toHaveReceivedCommand(DeleteMessageBatchCommand);
    expect(result.reports[0]?.handedBack).toEqual(['m1', 'm2']);
  });

  test('deletes nothing when the handler throws, and reports the error', async () => {
    sqs
      .on(ReceiveMessageCommand)
      .resolvesOnce({ Messages: [message('m1'), message('m2')] })
      .resolves({});
    const result = await run(async () => {
      throw new Error('handler exploded');
    });

    expect(sqs).not.toHaveReceivedCommand(DeleteMessageBatchCommand);
    expect(result.reports).toHaveLength(1);
    expect(result.reports[0]).toMatchObject({ handedBack: ['m1', 'm2'], error: 'handler exploded' });
    expect(result).toMatchObject({ invocations: 1, drained: true });
  });

  test('a thrown non-Error is reported as a string', async () => {
    sqs
      .on(ReceiveMessageCommand)
      .resolvesOnce({ Messages: [message('m1')] })
      .resolves({});
    const result = await run(async () => {
      throw 'plain failure';
    });
    expect(sqs).not.toHaveReceivedCommand(DeleteMessageBatchCommand);
    expect(result.reports[0]?.error).toBe('plain failure');
  });

  test('one invocation per non-empty receive, each batch deleted on its own', async () => {
    sqs
      .on(ReceiveMessageCommand)
      .resolvesOnce({ Messages: [message('a1'), message('a2')] })
      .resolvesOnce({ Messages: [message('b1')] })
      .resolves({});
    const handler = jest.fn(
      async (event: SQSEvent): Promise<SQSBatchResponse> => ({
        batchItemFailures: event.Records.filter((r) => r.messageId === 'a2').map((r) => ({ itemIdentifier: r.messageId })),
      }),
    );

    const result = await run(handler);

    expect(handler).toHaveBeenCalledTimes(2);
    expect(sqs).toHaveReceivedCommandTimes(DeleteMessageBatchCommand, 2);
    expect(deletedHandles()).toEqual(['rh-a1', 'rh-b1']);
    expect(result.reports.map((r) => r.handedBack)).toEqual([['a2'], []]);
    expect(result).toMatchObject({ invocations: 2, drained: true });
  });

  test.each([
    ['visible', counts(1, 0, 0)],
    ['not visible (in flight)', counts(0, 2, 0)],
    ['delayed', counts(0, 0, 1)],
  ])('an empty receive does not end the run while messages are %s', async (_, notEmpty) => {
    sqs.on(GetQueueAttributesCommand).resolvesOnce(notEmpty).resolves(EMPTY);
    sqs
      .on(ReceiveMessageCommand)
      .resolvesOnce({})
      .resolvesOnce({ Messages: [message('late')] })
      .resolves({});
    const handler = jest.fn(async () => undefined);

    const result = await run(handler);

    expect(sqs).toHaveReceivedCommandTimes(ReceiveMessageCommand, 3);
    expect(sqs).toHaveReceivedCommandTimes(GetQueueAttributesCommand, 2);
    expect(handler).toHaveBeenCalledTimes(1);
    expect(deletedHandles()).toEqual(['rh-late']);
    expect(result).toMatchObject({ invocations: 1, drained: true });
  });

  test('an empty queue ends the run after one receive, without invoking the handler', async () => {
    const handler = jest.fn(async () => undefined);
    const result = await run(handler);

    expect(handler).not.toHaveBeenCalled();
    expect(sqs).toHaveReceivedCommandTimes(ReceiveMessageCommand, 1);
    expect(sqs).toHaveReceivedCommandTimes(GetQueueAttributesCommand, 1);
    expect(result).toMatchObject({ invocations: 0, drained: true });
  });

  test('stops at maxDurationMs when the queue never drains', async () => {
    // Something always in flight; answer after a short delay so the loop does not spin.
    sqs.on(GetQueueAttributesCommand).callsFake(() => new Promise((resolve) => setTimeout(() => resolve(counts(0, 1, 0)), 5)));
    const handler = jest.fn(async () => undefined);

    const began = Date.now();
    const result = await run(handler, { maxDurationMs: 150 });
    const elapsed = Date.now() - began;

    expect(result.drained).toBe(false);
    expect(result.invocations).toBe(0);
    expect(result.durationMs).toBeGreaterThanOrEqual(150);
    expect(elapsed).toBeLessThan(2_000);
    expect(sqs.commandCalls(ReceiveMessageCommand).length).toBeGreaterThan(1);
  });

  test('stops at maxDurationMs when a message keeps being handed back', async () => {
    sqs
      .on(ReceiveMessageCommand)
      .callsFake(() => new Promise((resolve) => setTimeout(() => resolve({ Messages: [message('poison')] }), 5)));
    const handler = jest.fn(async (): Promise<SQSBatchResponse> => ({ batchItemFailures: [{ itemIdentifier: 'poison' }] }));

    const result = await run(handler, { maxDurationMs: 150 });

    expect(result.drained).toBe(false);
    expect(result.invocations).toBeGreaterThan(1);
    expect(result.invocations).toBe(handler.mock.calls.length);
    expect(result.durationMs).toBeGreaterThanOrEqual(150);
    expect(sqs).not.toHaveReceivedCommand(DeleteMessageBatchCommand);
    expect(result.reports.every((r) => r.handedBack.length === 1 && r.handedBack[0] === 'poison')).toBe(true);
  });
});

test('an empty itemIdentifier fails the whole batch even when a record has an empty message id', () => {
  const records = [sqsRecord('a', { messageId: '' }), sqsRecord('b', { messageId: 'm2' })];
  expect(recordsToKeep(records, { batchItemFailures: [{ itemIdentifier: '' }] })).toEqual(['', 'm2']);
});
