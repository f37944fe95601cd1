import type { SQSBatchResponse } from 'aws-lambda';
import type { BatchDeps } from '../../lib/pipeline/process-batch.js';
import {
  lambdaContext,
  licenseEvent as marketplaceLicenseEvent,
  marketplaceNotification,
  snsEnvelope,
  sqsEvent,
} from '../helpers/events.js';
import { type Pipeline, startPipeline } from '../helpers/pipeline.js';
import { createApiStage, createUsagePlan, usagePlanKeyIds } from '../helpers/usage-plans.js';

/*
 * A delivery's call on a key that lands after another delivery changed the record (the chaos run found the first):
 * each call is held until the other delivery has finished, then released. What the held delivery did must not
 * outlive the other's change: it confirms its calls with a write on the version that justified them, and when that
 * write loses, brings the key back in line with the record it reads again.
 */

const PRODUCT = 'prod4k2j9x8l7';
const ACCOUNT = (n: number) => `70000000900${n}`;
const T = (minute: number) => `2026-11-26T17:${String(minute).padStart(2, '0')}:00.000Z`;
let pipeline: Pipeline;
let planId: string;

beforeAll(async () => {
  pipeline = await startPipeline(undefined, async ({ apigw }) => {
    planId = await createUsagePlan(apigw, 'late-calls', [await createApiStage(apigw, 'late-calls-api')]);
    return { USAGE_PLANS: JSON.stringify({ [PRODUCT]: planId }) };
  });
});
afterAll(() => pipeline.close());

const license = (account: string, n: number) => `arn:aws:license-manager::386209384616:license:l-${account}-${n}`;
/** Marketplace's License Updated / Deprovisioned (EventBridge) of one of a buyer's two licenses. */
const licenseEvent = (kind: 'Updated' | 'Deprovisioned', account: string, n: number, time: string) =>
  marketplaceLicenseEvent(kind, { productCode: PRODUCT, accountId: account, time, licenseArn: license(account, n) });
const notification = (action: string, customer: string, at: string) => ({
  ...snsEnvelope(marketplaceNotification(action, customer, PRODUCT)),
  Timestamp: at,
});

type Port = Record<string, (...args: unknown[]) => Promise<unknown>>;

/** The function's dependencies with the first API Gateway call `method(args)` matching `which` held until `release`. */
function holdFirst(method: string, which: (args: unknown[]) => boolean, reached: () => void, release: Promise<void>) {
  let held = false;
  return (deps: BatchDeps): BatchDeps => {
    const port = deps.apiKeys as unknown as Port;
    const wrapped: Port = {
      ...port,
      [method]: async (...args: unknown[]) => {
        if (!held && which(args)) {
          held = true;
          reached();
          await release;
        }
        return port[method]?.(...args);
      },
    };
    return { ...deps, apiKeys: wrapped as unknown as BatchDeps['apiKeys'] };
  };
}

/** A latch: `reached` resolves `at`; `release` resolves `released`. */
function latch() {
  let reached!: () => void;
  let release!: () => void;
  const at = new Promise<void>((resolve) => {
    reached = resolve;
  });
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  return { reached, at, release, released };
}

const run = (handler: ReturnType<Pipeline['handlerWith']>, body: unknown) =>
  handler(sqsEvent(body), lambdaContext(30_000)) as Promise<SQSBatchResponse>;

async function keyState(customer: string) {
  const keys = (await pipeline.apiKeys()).filter((k) => k.customerId === customer);
  const members = await usagePlanKeyIds(pipeline.apigw, planId);
  return keys.map((k) => ({ enabled: k.enabled, inPlan: members.includes(k.id ?? '') }));
}

test("the first license's Deprovisioned, holding its key in the plan, does not outlive the second's revoke", async () => {
  const account = ACCOUNT(1);
  for (const body of [licenseEvent('Updated', account, 1, T(0)), licenseEvent('Updated', account, 2, T(0))]) {
    await pipeline.send(body);
    await pipeline.drain();
  }
  expect(await keyState(account)).toEqual([{ enabled: true, inPlan: true }]);

  // Deprovisioned 1 sees license 2 active: it keeps the key (enabled, in its plan). Its CreateUsagePlanKey is held
  // while Deprovisioned 2 runs to the end; then it lands.
  const hold = latch();
  const first = run(
    pipeline.handlerWith(holdFirst('addToUsagePlan', () => true, hold.reached, hold.released)),
    licenseEvent('Deprovisioned', account, 1, T(1)),
  );
  await hold.at;
  expect((await run(pipeline.handlerWith(), licenseEvent('Deprovisioned', account, 2, T(2)))).batchItemFailures).toEqual([]);
  hold.release();
  expect((await first).batchItemFailures).toEqual([]);

  expect(await pipeline.record(`keyprov/test/${PRODUCT}/${account}/api-key`)).toMatchObject({ status: 'revoked' });
  expect(await keyState(account)).toEqual([{ enabled: false, inPlan: false }]);
});

test("a stale grant's disable, landing after a newer grant re-enabled the key, does not outlive it", async () => {
  const customer = 'late-stale-grant';
  for (const body of [notification('subscribe-success', customer, T(0)), notification('unsubscribe-success', customer, T(1))]) {
    await pipeline.send(body);
    await pipeline.drain();
  }
  expect(await keyState(customer)).toEqual([{ enabled: false, inPlan: false }]);

  // A replay of the first subscribe (stale: older than the unsubscribe) makes sure the key is disabled; its
  // UpdateApiKey is held while a newer subscribe re-enables the key; then it lands.
  const hold = latch();
  const stale = run(
    pipeline.handlerWith(holdFirst('setEnabled', (args) => args[1] === false, hold.reached, hold.released)),
    notification('subscribe-success', customer, T(0)),
  );
  await hold.at;
  expect((await run(pipeline.handlerWith(), notification('subscribe-success', customer, T(2)))).batchItemFailures).toEqual([]);
  expect(await keyState(customer)).toEqual([{ enabled: true, inPlan: true }]);
  hold.release();
  expect((await stale).batchItemFailures).toEqual([]);

  expect(await pipeline.record(`keyprov/test/${PRODUCT}/${customer}/api-key`)).toMatchObject({ status: 'active' });
  expect(await keyState(customer)).toEqual([{ enabled: true, inPlan: true }]);
});

test("a license's grant that put its new key in the plan, after its license's Deprovisioned won the record, takes it back", async () => {
  const account = ACCOUNT(2);
  // License Updated makes the key; its CreateUsagePlanKey is held while the same license's Deprovisioned runs to
  // the end (it finds the pending record's key by value, disables it and records the revoke); then it lands.
  const hold = latch();
  const grant = run(
    pipeline.handlerWith(holdFirst('addToUsagePlan', () => true, hold.reached, hold.released)),
    licenseEvent('Updated', account, 1, T(0)),
  );
  await hold.at;
  // The key exists now; wait out GetApiKeys' listing lag (the layer's 300 ms), so the revoke finds it at once.
  await new Promise((resolve) => setTimeout(resolve, 600));
  expect((await run(pipeline.handlerWith(), licenseEvent('Deprovisioned', account, 1, T(1)))).batchItemFailures).toEqual([]);
  hold.release();
  expect((await grant).batchItemFailures).toEqual([]);

  expect(await pipeline.record(`keyprov/test/${PRODUCT}/${account}/api-key`)).toMatchObject({ status: 'revoked' });
  expect(await keyState(account)).toEqual([{ enabled: false, inPlan: false }]);
});
