import { randomUUID } from 'node:crypto';
import { apiKeyName } from '../../lib/customer-key/naming.js';
import { peekQueue } from '../../lib/local/queues.js';
import { verifyReference } from '../../lib/registration/reference.js';
import { marketplaceNotification, sampleEvent, snsEnvelope } from '../helpers/events.js';
import { type Pipeline, startPipeline } from '../helpers/pipeline.js';
import { REGISTRATION_PAGE, referenceOf, registrationForm, startRegistration } from '../helpers/registration.js';

/*
 * The fulfillment-URL hook end to end, locally: a token registered with the realistic layer's ResolveCustomer, the
 * production entry point (functions/register.ts) redeeming it through the layer, its signup on the real signup queue,
 * the provisioning pipeline draining that queue, and the buyer's key in moto, under the customer id the hook chose.
 */

const PRODUCT = 'prod4k2j9x8l7';
const ACCOUNT = '731245098716';
const LICENSE = 'arn:aws:license-manager::386209384616:license:l-5d3f9a2c7b8e4016a1c2e9f0b7d64a3e';
const LEGACY = { customerIdentifier: 'QWxwaGFCdXllcjAx', customerAWSAccountId: '444455556666' };
const PREFIX = process.env.NAME_PREFIX ?? '';

let pipeline: Pipeline;
let hook: Awaited<ReturnType<typeof startRegistration>>;
beforeAll(async () => {
  // Five receives before the DLQ: a look at the queue (peek) counts as one.
  pipeline = await startPipeline({ visibilityTimeoutSeconds: 2, maxReceiveCount: 5 });
  process.env.REGISTRATION_RETRY_BUDGET_MS = '2000';
  hook = await startRegistration(pipeline);
});
afterAll(() => pipeline.close());

const keysOf = async (customerId: string) => (await pipeline.apiKeys()).filter((key) => key.customerId === customerId);
const queuedSignups = async () =>
  (await peekQueue(pipeline.sqs, pipeline.queues.signupUrl)).map((m) => JSON.parse(m.Body ?? '{}') as Record<string, unknown>);

/** AWS's License Updated example (events/), for this buyer, now. */
function licenseUpdated(accountId: string, licenseArn: string) {
  const event = JSON.parse(sampleEvent('marketplace-eventbridge-license-updated').Records[0]?.body ?? '{}');
  event.id = randomUUID();
  event.time = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  event.detail.acceptor.accountId = accountId;
  event.detail.product.code = PRODUCT;
  event.detail.license.arn = licenseArn;
  return event;
}

describe('a token of a new listing (account id and license, no CustomerIdentifier)', () => {
  test('→ ResolveCustomer → one signup on the queue → a key whose customerId is the account id; 303 with a reference', async () => {
    hook.aws.registerToken('token-new-listing', { customerAWSAccountId: ACCOUNT, productCode: PRODUCT, licenseArn: LICENSE });
    const response = await hook.post(registrationForm('token-new-listing'));
    expect(response.statusCode).toBe(303);
    expect(response.headers.location?.startsWith(`${REGISTRATION_PAGE}?ref=`)).toBe(true);
    expect(verifyReference(referenceOf(response), hook.signingKey)).toMatchObject({
      ok: true,
      reference: { customerId: ACCOUNT, productCode: PRODUCT },
    });
    expect(hook.aws.seen.filter((request) => request.includes('ResolveCustomer'))).toHaveLength(1);
    expect(await queuedSignups()).toEqual([
      {
        customerId: ACCOUNT,
        eventId: expect.stringMatching(/^registration-/),
        productCode: PRODUCT,
        occurredAt: expect.any(String),
        customerAccountId: ACCOUNT,
        licenseArn: LICENSE,
      },
    ]);

    expect((await pipeline.drain()).drained).toBe(true);
    const keys = await keysOf(ACCOUNT);
    expect(keys).toEqual([expect.objectContaining({ name: apiKeyName(PREFIX, ACCOUNT, PRODUCT), customerId: ACCOUNT, enabled: true })]);
    expect((await pipeline.completionEvents()).map((e) => [e.type, 'customerId' in e && e.customerId])).toEqual([
      ['api-key.provisioned', ACCOUNT],
    ]);
  });

  test('its License Updated event and a second submission of the form end on that same key', async () => {
    const [before] = await keysOf(ACCOUNT);
    await pipeline.send(licenseUpdated(ACCOUNT, LICENSE));
    // The same token again (the browser's back button): within its window it resolves to the same buyer.
    expect((await hook.post(registrationForm('token-new-listing'))).statusCode).toBe(303);
    expect((await pipeline.drain()).drained).toBe(true);
    expect(await keysOf(ACCOUNT)).toEqual([expect.objectContaining({ id: before?.id, enabled: true })]);
    expect(await pipeline.deadLetterIds()).toEqual([]);
  });
});

test('a token of an older listing: the key takes the CustomerIdentifier, the id its SNS subscribe-success carries', async () => {
  hook.aws.registerToken('token-older-listing', { ...LEGACY, productCode: PRODUCT });
  expect((await hook.post(registrationForm('token-older-listing', { 'x-amzn-marketplace-offer-type': 'free-trial' }))).statusCode).toBe(
    303,
  );
  await pipeline.send(snsEnvelope(marketplaceNotification('subscribe-success', LEGACY.customerIdentifier, PRODUCT)));
  expect((await pipeline.drain()).drained).toBe(true);
  expect(await keysOf(LEGACY.customerIdentifier)).toEqual([expect.objectContaining({ enabled: true })]);
  expect(await keysOf(LEGACY.customerAWSAccountId)).toEqual([]);
});

describe('when the token or Marketplace fails', () => {
  test('an expired or unknown token: the 400 page, no retry, nothing on the signup queue', async () => {
    hook.aws.registerToken('token-expired', { customerAWSAccountId: '111122223333', productCode: PRODUCT }, { expiresInMs: 0 });
    const before = hook.aws.seen.length;
    for (const token of ['token-expired', 'token-never-issued']) {
      const response = await hook.post(registrationForm(token));
      expect(response.statusCode).toBe(400);
      expect(response.body).toContain('Set up your account');
    }
    expect(hook.aws.seen.slice(before).filter((request) => request.includes('ResolveCustomer'))).toHaveLength(2);
    expect(await queuedSignups()).toEqual([]);
  });

  test('ResolveCustomer throttled throughout: retried within the budget, then the 503 page; disabled: the 500 page', async () => {
    hook.aws.registerToken('token-busy', { customerAWSAccountId: '111122223333', productCode: PRODUCT });
    try {
      hook.aws.configure({ resolveCustomer: { throttle: true } });
      const before = hook.aws.seen.length;
      expect((await hook.post(registrationForm('token-busy'))).statusCode).toBe(503);
      expect(hook.aws.seen.slice(before).filter((request) => request.includes('ResolveCustomer')).length).toBeGreaterThan(1);
      hook.aws.configure({ resolveCustomer: { disabled: true } });
      expect((await hook.post(registrationForm('token-busy'))).statusCode).toBe(500);
    } finally {
      hook.aws.configure({ resolveCustomer: undefined });
    }
    expect(await queuedSignups()).toEqual([]);
    // Once Marketplace answers again, the same token goes through.
    expect((await hook.post(registrationForm('token-busy'))).statusCode).toBe(303);
  });
});
