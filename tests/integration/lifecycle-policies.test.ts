import { GetApiKeyCommand } from '@aws-sdk/client-api-gateway';
import type { CompletionEvent } from '../../lib/pipeline/completion.js';
import { marketplaceNotification, snsEnvelope } from '../helpers/events.js';
import { type Pipeline, startPipeline } from '../helpers/pipeline.js';
import { createApiStage, createUsagePlan, usagePlanKeyIds } from '../helpers/usage-plans.js';

const PRODUCT = 'prod4k2j9x8l7';
let pipeline: Pipeline;
let planA: string;
let planB: string;

// The function of this file deletes the value of a revoked secret and moves keys on entitlement-updated. Both plans
// serve the same API stage: a key can be in only one of them at a time (the layer's one-plan-per-stage rule).
beforeAll(async () => {
  pipeline = await startPipeline(undefined, async ({ apigw }) => {
    const stage = await createApiStage(apigw, 'policies-api');
    planA = await createUsagePlan(apigw, 'plan-a', [stage]);
    planB = await createUsagePlan(apigw, 'plan-b', [stage]);
    return {
      USAGE_PLANS: JSON.stringify({ [PRODUCT]: planA }),
      REVOKED_SECRET_POLICY: 'delete-value',
      ON_ENTITLEMENT_UPDATED: 'move-to-configured-plan',
    };
  });
});
afterAll(() => pipeline.close());

const notification = (action: string, customer: string, at: string) => ({
  ...snsEnvelope(marketplaceNotification(action, customer, PRODUCT)),
  Timestamp: at,
});

async function deliver(body: unknown, handler = undefined as Parameters<Pipeline['drain']>[0]): Promise<CompletionEvent[]> {
  await pipeline.clearCompletions();
  await pipeline.send(body);
  await pipeline.drain(handler);
  return pipeline.completionEvents();
}

const secretOf = (customer: string) => pipeline.secretJson(`keyprov/test/${PRODUCT}/${customer}/api-key`);
const planMembers = (usagePlanId: string) => usagePlanKeyIds(pipeline.apigw, usagePlanId);

test('REVOKED_SECRET_POLICY=delete-value: the revoked secret keeps its record but not the value; a re-subscribe brings the same key and value back', async () => {
  await deliver(notification('subscribe-success', 'policy-1', '2026-11-26T10:00:00.000Z'));
  const [key] = (await pipeline.apiKeys()).filter((k) => k.customerId === 'policy-1');

  await deliver(notification('unsubscribe-success', 'policy-1', '2026-11-26T10:10:00.000Z'));
  const revoked = await secretOf('policy-1');
  expect(revoked).toMatchObject({ status: 'revoked', apiKeyId: key?.id, lastEventAt: '2026-11-26T10:10:00.000Z' });
  expect(revoked).not.toHaveProperty('value');

  const events = await deliver(notification('subscribe-success', 'policy-1', '2026-11-26T10:20:00.000Z'));
  expect(events).toEqual([expect.objectContaining({ type: 'api-key.enabled', apiKeyId: key?.id })]);
  expect(await secretOf('policy-1')).toMatchObject({ status: 'active', value: key?.value, apiKeyId: key?.id });
  expect((await pipeline.apiKeys()).filter((k) => k.customerId === 'policy-1')).toHaveLength(1);
  expect((await pipeline.apigw.send(new GetApiKeyCommand({ apiKey: key?.id }))).enabled).toBe(true);
});

test('ON_ENTITLEMENT_UPDATED=move-to-configured-plan: after the map changes, entitlement-updated moves the key to the new plan', async () => {
  await deliver(notification('subscribe-success', 'policy-2', '2026-11-26T11:00:00.000Z'));
  const [key] = (await pipeline.apiKeys()).filter((k) => k.customerId === 'policy-2');
  expect(await planMembers(planA)).toContain(key?.id);

  // The seller maps the product to plan B; the next instances start with the new configuration.
  process.env.USAGE_PLANS = JSON.stringify({ [PRODUCT]: planB });
  const newInstance = pipeline.handlerWith((deps) => deps);
  const events = await deliver(notification('entitlement-updated', 'policy-2', '2026-11-26T11:10:00.000Z'), { handler: newInstance });

  expect(events).toEqual([
    expect.objectContaining({ type: 'api-key.plan-changed', usagePlanId: planB, previousUsagePlanId: planA, apiKeyId: key?.id }),
  ]);
  expect(await planMembers(planB)).toContain(key?.id);
  expect(await planMembers(planA)).not.toContain(key?.id);
  expect(await secretOf('policy-2')).toMatchObject({ usagePlanId: planB, status: 'active' });

  const again = await deliver(notification('entitlement-updated', 'policy-2', '2026-11-26T11:20:00.000Z'), { handler: newInstance });
  expect(again).toEqual([expect.objectContaining({ type: 'api-key.notification-acknowledged', action: 'entitlement-updated' })]);
});
