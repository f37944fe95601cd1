import { GetApiKeyCommand, GetUsagePlanKeysCommand } from '@aws-sdk/client-api-gateway';
import type { CompletionEvent } from '../../lib/pipeline/completion.js';
import { eventBridgeEnvelope, marketplaceNotification, sampleEvent, signup, snsEnvelope } from '../helpers/events.js';
import { type Pipeline, startPipeline } from '../helpers/pipeline.js';
import { createApiStage, createUsagePlan } from '../helpers/usage-plans.js';

const PRODUCT = 'prod4k2j9x8l7';
let pipeline: Pipeline;
let planId: string;

beforeAll(async () => {
  pipeline = await startPipeline(undefined, async ({ apigw }) => {
    planId = await createUsagePlan(apigw, 'gold', [await createApiStage(apigw, 'lifecycle-api')]);
    return { USAGE_PLANS: JSON.stringify({ [PRODUCT]: planId }) };
  });
});
afterAll(() => pipeline.close());

/** A Marketplace notification in its SNS envelope, at a given time. */
const notification = (action: string, customer: string, at: string, product = PRODUCT) => ({
  ...snsEnvelope(marketplaceNotification(action, customer, product)),
  Timestamp: at,
});

/** Sends the bodies (one at a time, in order, each drained before the next) and returns the events of this step. */
async function deliverInOrder(...bodies: unknown[]): Promise<CompletionEvent[]> {
  const events: CompletionEvent[] = [];
  for (const body of bodies) {
    await pipeline.clearCompletions();
    await pipeline.send(body);
    await pipeline.drain();
    events.push(...(await pipeline.completionEvents()));
  }
  return events;
}

/** What moto holds for the customer: the key (enabled?), whether it is in the plan, and the secret's record. */
async function stateOf(customerId: string) {
  const keys = (await pipeline.apiKeys()).filter((k) => k.customerId === customerId);
  const [key] = keys;
  const planKeys = (await pipeline.apigw.send(new GetUsagePlanKeysCommand({ usagePlanId: planId }))).items ?? [];
  let record: Record<string, unknown> | undefined;
  try {
    record = await pipeline.secretJson(`keyprov/test/${PRODUCT}/${customerId}/api-key`);
  } catch {
    record = undefined;
  }
  return {
    keys: keys.length,
    enabled: key ? (await pipeline.apigw.send(new GetApiKeyCommand({ apiKey: key.id }))).enabled : undefined,
    inPlan: key ? planKeys.some((k) => k.id === key.id) : false,
    status: record?.status,
    valueKept: key ? record?.value === key.value : undefined,
  };
}

describe('each Marketplace action', () => {
  const T = (minute: number) => `2026-11-26T10:${String(minute).padStart(2, '0')}:00.000Z`;

  test("subscribe-success provisions an enabled key in the product's usage plan", async () => {
    const events = await deliverInOrder(notification('subscribe-success', 'life-1', T(0)));

    expect(events).toEqual([expect.objectContaining({ type: 'api-key.provisioned', outcome: 'provisioned', usagePlanId: planId })]);
    expect(await stateOf('life-1')).toEqual({ keys: 1, enabled: true, inPlan: true, status: 'active', valueKept: true });
  });

  test.each(['unsubscribe-pending', 'entitlement-updated'])('%s changes nothing and is announced', async (action) => {
    const events = await deliverInOrder(notification(action, 'life-1', T(1)));

    expect(events).toEqual([expect.objectContaining({ type: 'api-key.notification-acknowledged', action, customerId: 'life-1' })]);
    expect(await stateOf('life-1')).toEqual({ keys: 1, enabled: true, inPlan: true, status: 'active', valueKept: true });
  });

  test('unsubscribe-success disables the key, takes it out of the plan, and marks the secret revoked (value kept)', async () => {
    const events = await deliverInOrder(notification('unsubscribe-success', 'life-1', T(2)));

    expect(events).toEqual([expect.objectContaining({ type: 'api-key.revoked', customerId: 'life-1', eventTime: T(2) })]);
    expect(await stateOf('life-1')).toEqual({ keys: 1, enabled: false, inPlan: false, status: 'revoked', valueKept: true });
  });

  test('a newer subscribe-success re-enables the same key and puts it back in the plan', async () => {
    const [before] = (await pipeline.apiKeys()).filter((k) => k.customerId === 'life-1');
    const events = await deliverInOrder(notification('subscribe-success', 'life-1', T(3)));

    expect(events).toEqual([expect.objectContaining({ type: 'api-key.enabled', apiKeyId: before?.id })]);
    expect(await stateOf('life-1')).toEqual({ keys: 1, enabled: true, inPlan: true, status: 'active', valueKept: true });
  });

  test('subscribe-fail after a key exists disables it and reports the failure', async () => {
    await deliverInOrder(notification('subscribe-success', 'life-2', T(0)));
    const events = await deliverInOrder(notification('subscribe-fail', 'life-2', T(1)));

    expect(events).toEqual([
      expect.objectContaining({ type: 'api-key.provisioning-failed', reason: 'subscribe-fail', apiKeyId: expect.any(String) }),
    ]);
    expect(await stateOf('life-2')).toEqual({ keys: 1, enabled: false, inPlan: false, status: 'failed', valueKept: true });
  });

  test('subscribe-fail with no key creates none and reports the failure', async () => {
    const events = await deliverInOrder(notification('subscribe-fail', 'life-3', T(0)));

    expect(events).toEqual([expect.objectContaining({ type: 'api-key.provisioning-failed', reason: 'subscribe-fail' })]);
    expect(await stateOf('life-3')).toMatchObject({ keys: 0, status: 'failed' });
  });

  test('a product outside USAGE_PLANS is rejected as unknown-product, and nothing is created', async () => {
    const events = await deliverInOrder(notification('subscribe-success', 'life-4', T(0), 'produnknown1'));

    expect(events).toEqual([expect.objectContaining({ type: 'api-key.provisioning-failed', reason: 'unknown-product' })]);
    expect((await pipeline.apiKeys()).filter((k) => k.customerId === 'life-4')).toEqual([]);
  });
});

describe('out of order and repeated', () => {
  const subscribe = (customer: string) => notification('subscribe-success', customer, '2026-11-26T11:00:00.000Z');
  const unsubscribe = (customer: string) => notification('unsubscribe-success', customer, '2026-11-26T11:30:00.000Z');

  test('in order: subscribe then unsubscribe ends with the key disabled and out of the plan', async () => {
    await deliverInOrder(subscribe('order-a'), unsubscribe('order-a'));

    expect(await stateOf('order-a')).toEqual({ keys: 1, enabled: false, inPlan: false, status: 'revoked', valueKept: true });
  });

  test('unsubscribe processed before the subscribe it follows: no key is ever created', async () => {
    const events = await deliverInOrder(unsubscribe('order-b'), subscribe('order-b'));

    expect(events.map((e) => e.type)).toEqual(['api-key.revoked', 'api-key.notification-ignored']);
    expect(events[1]).toMatchObject({ reason: 'stale', action: 'provision' });
    expect(await stateOf('order-b')).toMatchObject({ keys: 0, status: 'revoked' });
  });

  test('a stale subscribe-success replayed from a DLQ after the unsubscribe leaves the key disabled', async () => {
    await deliverInOrder(subscribe('order-c'), unsubscribe('order-c'));
    const events = await deliverInOrder(subscribe('order-c'));

    expect(events).toEqual([expect.objectContaining({ type: 'api-key.notification-ignored', reason: 'stale' })]);
    expect(await stateOf('order-c')).toEqual({ keys: 1, enabled: false, inPlan: false, status: 'revoked', valueKept: true });
  });

  test('a whole lifecycle replayed, shuffled and concurrently, ends where the notification times say', async () => {
    const lifecycle = [
      notification('subscribe-success', 'order-d', '2026-11-26T12:00:00.000Z'),
      notification('unsubscribe-pending', 'order-d', '2026-11-26T12:10:00.000Z'),
      notification('unsubscribe-success', 'order-d', '2026-11-26T12:20:00.000Z'),
      notification('subscribe-success', 'order-d', '2026-11-26T12:30:00.000Z'),
    ];
    await deliverInOrder(...lifecycle);
    const settled = await stateOf('order-d');

    await pipeline.clearCompletions();
    await pipeline.send(...[...lifecycle, ...lifecycle].sort(() => Math.random() - 0.5));
    await pipeline.drain({ concurrency: 2, batchSize: 2 });

    expect(settled).toEqual({ keys: 1, enabled: true, inPlan: true, status: 'active', valueKept: true });
    expect(await stateOf('order-d')).toEqual(settled);
    expect(await pipeline.deadLetterIds()).toEqual([]);
  });
});

describe('Marketplace EventBridge events', () => {
  const bodyOf = (file: string) => sampleEvent(file).Records[0]?.body ?? '';

  test('the sample lifecycle: License Updated provisions, agreement events are announced, License Deprovisioned revokes', async () => {
    const files = [
      'marketplace-eventbridge-agreement-created',
      'marketplace-eventbridge-license-updated',
      'marketplace-eventbridge-agreement-ended',
      'marketplace-eventbridge-license-deprovisioned',
    ];
    const events = await deliverInOrder(...files.map(bodyOf));
    const buyer = JSON.parse(bodyOf(files[0] ?? '')).detail.acceptor.accountId as string;

    expect(events.map((e) => e.type)).toEqual([
      'api-key.notification-acknowledged',
      'api-key.provisioned',
      'api-key.notification-acknowledged',
      'api-key.revoked',
    ]);
    expect(events.every((e) => 'customerId' in e && e.customerId === buyer && e.source === 'eventbridge')).toBe(true);
    expect(await stateOf(buyer)).toEqual({ keys: 1, enabled: false, inPlan: false, status: 'revoked', valueKept: true });
  });

  test('a signup in an EventBridge envelope from another source is still a signup', async () => {
    const events = await deliverInOrder(eventBridgeEnvelope(signup('eb-signup', { productCode: PRODUCT })));

    expect(events).toEqual([expect.objectContaining({ type: 'api-key.provisioned', source: 'eventbridge', usagePlanId: planId })]);
  });
});
