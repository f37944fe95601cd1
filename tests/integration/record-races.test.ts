import type { SQSBatchResponse } from 'aws-lambda';
import type { BatchDeps } from '../../lib/pipeline/process-batch.js';
import { lambdaContext, marketplaceNotification, snsEnvelope, sqsEvent } from '../helpers/events.js';
import { type Pipeline, startPipeline } from '../helpers/pipeline.js';

// A grant and a revoke of one customer interleaved at the worst moment (issue 23, hazard 2): the revoke's write lands
// after the grant's last look at the record and before the grant's final write. With the record in the secret, the
// grant's final write put `active` over the revoke — a record active over a disabled key. With conditional writes,
// the grant's write fails, it reads the revoke's record, and the revoke wins.

const PRODUCT = 'prod4k2j9x8l7';
const T = (minute: number) => `2026-11-26T16:${String(minute).padStart(2, '0')}:00.000Z`;
const notification = (action: string, customer: string, at: string) => ({
  ...snsEnvelope(marketplaceNotification(action, customer, PRODUCT)),
  Timestamp: at,
});

type Port = Record<string, (...args: unknown[]) => Promise<unknown>>;

/**
 * The function's dependencies with the grant's final write — the one that marks the record `active` — held until
 * `release`: whichever store holds the record (the record table's `put`, or, before it, the secret's
 * `putSecretValue`). `reached` says when the grant got there. Only the first such write is held.
 */
function holdActiveWrite(reached: () => void, release: Promise<void>) {
  let held = false;
  const wrap = (port: Port, method: string, isActive: (args: unknown[]) => boolean): Port => ({
    ...port,
    [method]: async (...args: unknown[]) => {
      if (!held && isActive(args)) {
        held = true;
        reached();
        await release;
      }
      return port[method]?.(...args);
    },
  });
  return (deps: BatchDeps): BatchDeps => {
    const secrets = wrap(deps.secrets as unknown as Port, 'putSecretValue', (args) => String(args[1]).includes('"status":"active"'));
    const records = (deps as unknown as { records?: Port }).records;
    return {
      ...deps,
      secrets: secrets as unknown as BatchDeps['secrets'],
      ...(records && { records: wrap(records, 'put', (args) => (args[1] as { status?: string }).status === 'active') }),
    } as BatchDeps;
  };
}

let pipeline: Pipeline;
beforeAll(async () => {
  pipeline = await startPipeline();
});
afterAll(() => pipeline.close());

test('a revoke between a grant’s last look and its final write wins: the record ends revoked, the key disabled', async () => {
  const customer = 'race-window';
  let reached!: () => void;
  const atFinalWrite = new Promise<void>((resolve) => {
    reached = resolve;
  });
  let release!: () => void;
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });

  const grant = pipeline.handlerWith(holdActiveWrite(reached, released));
  const granting = grant(sqsEvent(notification('subscribe-success', customer, T(0))), lambdaContext(30_000)) as Promise<SQSBatchResponse>;
  await atFinalWrite;
  // The key exists now; wait out GetApiKeys' listing lag (the layer's 300 ms), so the revoke finds it at once.
  await new Promise((resolve) => setTimeout(resolve, 600));
  const revoke = pipeline.handlerWith();
  const revoked = (await revoke(sqsEvent(notification('unsubscribe-success', customer, T(5))), lambdaContext(30_000))) as SQSBatchResponse;
  expect(revoked.batchItemFailures).toEqual([]);
  release();
  const granted = await granting;

  expect(granted.batchItemFailures).toEqual([]);
  const keys = (await pipeline.apiKeys()).filter((k) => k.customerId === customer);
  expect(keys.map((k) => k.enabled)).toEqual([false]);
  expect(await pipeline.secretJson(`keyprov/test/${PRODUCT}/${customer}/api-key`)).toMatchObject({
    status: 'revoked',
    apiKeyId: keys[0]?.id,
    lastEventAt: T(5),
  });
});
