import { UpdateUsagePlanCommand } from '@aws-sdk/client-api-gateway';
import { marketplaceNotification, snsEnvelope } from '../helpers/events.js';
import { type Pipeline, startPipeline } from '../helpers/pipeline.js';
import { type ApiStage, createApiStage, createUsagePlan, usagePlanKeyIds } from '../helpers/usage-plans.js';

// Issue 23, hazard 4: an instance caches the stages of the usage plans it uses; a seller then changes a plan's
// stages, and a plan move decided on the stale stages goes in the wrong order. Through the realistic layer (one plan
// per stage on), the wrong order gets API Gateway's 400; it must be retried with the stages looked up again, not
// rejected (which acknowledged the message and left the key in its old plan).
jest.setTimeout(60_000);

const PRODUCT = 'prod4k2j9x8l7';
let pipeline: Pipeline;
let stage1: ApiStage;
let planA: string;
let planB: string;

beforeAll(async () => {
  pipeline = await startPipeline({ visibilityTimeoutSeconds: 2, maxReceiveCount: 3 }, async ({ apigw }) => {
    stage1 = await createApiStage(apigw, 'stages-api-1');
    const stage2 = await createApiStage(apigw, 'stages-api-2');
    planA = await createUsagePlan(apigw, 'stages-plan-a', [stage1]);
    planB = await createUsagePlan(apigw, 'stages-plan-b', [stage2]);
    return { USAGE_PLANS: JSON.stringify({ [PRODUCT]: planA }) };
  });
});
afterAll(() => pipeline.close());

const notification = (action: string, customer: string, at: string) => ({
  ...snsEnvelope(marketplaceNotification(action, customer, PRODUCT)),
  Timestamp: at,
});

test('a plan move ordered on stages the seller has changed since is retried, and ends in the new plan only', async () => {
  await pipeline.send(notification('subscribe-success', 'stale-mover', '2026-11-26T11:00:00.000Z'));
  await pipeline.drain();
  const keyId = (await pipeline.apiKeys()).find((k) => k.customerId === 'stale-mover')?.id ?? '';
  expect(await usagePlanKeyIds(pipeline.apigw, planA)).toContain(keyId);

  // The seller maps the product to plan B. The instance that will move the key learns plan B's stages (stage 2 only)
  // while it provisions another buyer into it.
  const mover = pipeline.handlerWith(undefined, {
    USAGE_PLANS: JSON.stringify({ [PRODUCT]: planB }),
    ON_ENTITLEMENT_UPDATED: 'move-to-configured-plan',
  });
  await pipeline.send(notification('subscribe-success', 'stale-warm', '2026-11-26T11:01:00.000Z'));
  await pipeline.drain({ handler: mover });
  // Then the seller adds stage 1 to plan B: plan A and plan B now share it, and the key must leave A before joining B.
  await pipeline.apigw.send(
    new UpdateUsagePlanCommand({
      usagePlanId: planB,
      patchOperations: [{ op: 'add', path: '/apiStages', value: `${stage1.apiId}:${stage1.stage}` }],
    }),
  );
  await pipeline.clearCompletions();
  pipeline.proxy.resetStats();

  await pipeline.send(notification('entitlement-updated', 'stale-mover', '2026-11-26T11:10:00.000Z'));
  const run = await pipeline.drain({ handler: mover });

  // The stale order was tried, and refused (the layer's statistics), then retried in the right order.
  expect(pipeline.proxy.stats().planStageConflicts).toBe(1);
  expect([...run.handedBack.values()]).toEqual([1]);
  expect(await pipeline.completionEvents()).toEqual([
    expect.objectContaining({ type: 'api-key.plan-changed', usagePlanId: planB, previousUsagePlanId: planA, apiKeyId: keyId }),
  ]);
  expect(await usagePlanKeyIds(pipeline.apigw, planB)).toContain(keyId);
  expect(await usagePlanKeyIds(pipeline.apigw, planA)).not.toContain(keyId);
  expect(await pipeline.deadLetterIds()).toEqual([]);
});
