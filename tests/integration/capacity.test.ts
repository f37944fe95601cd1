import type { Metrics } from '@aws-lambda-powertools/metrics';
import { CreateApiKeyCommand, DeleteApiKeyCommand } from '@aws-sdk/client-api-gateway';
import type { SQSBatchResponse } from 'aws-lambda';
import { loadSweepConfig } from '../../lib/maintenance/config.js';
import { createSweepInstance } from '../../lib/maintenance/deps.js';
import { sweep } from '../../lib/maintenance/sweep.js';
import type { BatchDeps } from '../../lib/pipeline/process-batch.js';
import { crashAfter } from '../helpers/crash.js';
import { lambdaContext, marketplaceNotification, signup, snsEnvelope, sqsEvent } from '../helpers/events.js';
import { PRINCIPALS } from '../helpers/iam.js';
import { type Pipeline, startPipeline } from '../helpers/pipeline.js';
import { actingAs } from '../realistic-aws/index.js';

/*
 * The capacity guard through the realistic layer's key cap (tests/realistic-aws/key-cap.ts: CreateApiKey beyond the
 * cap answers 429 LimitExceededException, the most plausible reading of AWS's undocumented wall). The function
 * decides "Region full" from a count of the keys: at API_KEY_QUOTA, the record is `capacity-exhausted` (handed back
 * with a long wait, counted); below it, the same error is a throttle like any other.
 */

const CAP = 6;
/** A Marketplace product (the notifications' productCode). */
const PRODUCT = 'prodcap5w8q2';
let pipeline: Pipeline;

beforeAll(async () => {
  pipeline = await startPipeline(undefined, undefined, { keyCap: { max: CAP } });
});
afterAll(() => pipeline.close());

/** Metrics that remember what was added (the function's Powertools metrics, stood in for). */
function recordingMetrics() {
  const added: Array<[string, number]> = [];
  const metrics = {
    addMetric: (name: string, _unit: string, value: number) => added.push([name, value]),
    addDimension: () => undefined,
    singleMetric: () => metrics,
  } as unknown as Metrics;
  return { metrics, added };
}

/** One invocation of a new function instance on one message (a customer id: its signup), with API_KEY_QUOTA as given. */
async function invokeOnce(message: string | object, quota: number) {
  const { metrics, added } = recordingMetrics();
  const handler = pipeline.handlerWith((deps: BatchDeps) => ({ ...deps, metrics }), { API_KEY_QUOTA: String(quota) });
  const body = typeof message === 'string' ? signup(message) : message;
  const response = (await handler(sqsEvent(body), lambdaContext(30_000))) as SQSBatchResponse;
  return { failures: response.batchItemFailures.length, added };
}

const ourKeys = async (customerId: string) => (await pipeline.apiKeys()).filter((k) => k.customerId === customerId);

describe('a Region full of API keys', () => {
  beforeAll(async () => {
    // Others' keys fill the Region up to the cap (they count as much as the pipeline's).
    for (let i = 0; i < CAP; i++) await pipeline.apigw.send(new CreateApiKeyCommand({ name: `someone-else-${i}`, enabled: false }));
  });

  test('counted at API_KEY_QUOTA: capacity-exhausted — handed back (not rejected), counted, no key made', async () => {
    const { failures, added } = await invokeOnce('cap-full', CAP);

    expect(failures).toBe(1);
    expect(added).toContainEqual(['CapacityExhausted', 1]);
    expect(added.map(([name]) => name)).not.toContain('ProvisioningFailures');
    expect(await ourKeys('cap-full')).toEqual([]);
    expect(pipeline.proxy.stats().keyCapRefused.CreateApiKey).toBeGreaterThan(0);
  });

  test('the same refusal with a count below API_KEY_QUOTA is a throttle, not capacity-exhausted', async () => {
    const { failures, added } = await invokeOnce('cap-below', CAP + 100);

    expect(failures).toBe(1);
    expect(added.map(([name]) => name)).not.toContain('CapacityExhausted');
    expect(added.map(([name]) => name)).toContain('Throttles');
  });

  test('a revoke that must make the disabled key of a grant stopped before its CreateApiKey: capacity-exhausted too', async () => {
    const notice = (action: string, at: string) => ({
      ...snsEnvelope(marketplaceNotification(action, 'cap-revoke', PRODUCT)),
      Timestamp: at,
    });
    // The grant stops after its pending record: the secret holds the key's value, no key was made (the Region is full).
    const grant = pipeline.handlerWith(crashAfter('records', 'put', 1), { API_KEY_QUOTA: String(CAP) });
    await grant(sqsEvent(notice('subscribe-success', '2026-12-06T10:00:00.000Z')), lambdaContext(30_000));
    const pending = await pipeline.record(`keyprov/test/${PRODUCT}/cap-revoke/api-key`);
    expect(pending).toMatchObject({ secretArn: expect.any(String) });
    expect(pending).not.toHaveProperty('apiKeyId');

    const { failures, added } = await invokeOnce(notice('unsubscribe-success', '2026-12-06T10:01:00.000Z'), CAP);

    // Handed back until a slot is freed, named as such; not retried as a throttle until its receives run out.
    expect(failures).toBe(1);
    expect(added).toContainEqual(['CapacityExhausted', 1]);
    expect(await ourKeys('cap-revoke')).toEqual([]);
  });

  test('the sweep publishes the count against the quota', async () => {
    const instance = createSweepInstance(loadSweepConfig({ ...process.env, API_KEY_QUOTA: String(CAP), SWEEP_RATE_PER_SECOND: '5' }));
    const report = await actingAs(PRINCIPALS.sweep, () =>
      sweep(
        instance.forRun(() => 60_000),
        { asOf: new Date() },
      ),
    )();
    expect(report.capacity).toEqual({ apiKeys: CAP, quota: CAP });
  });

  test('once a key is deleted, the replayed record is provisioned', async () => {
    const [other] = (await pipeline.apiKeys()).filter((k) => k.name === 'someone-else-0');
    await pipeline.apigw.send(new DeleteApiKeyCommand({ apiKey: other?.id ?? '' }));

    const { failures, added } = await invokeOnce('cap-full', CAP);

    expect(failures).toBe(0);
    expect(added).toContainEqual(['KeysProvisioned', 1]);
    expect(await ourKeys('cap-full')).toHaveLength(1);
  });
});
