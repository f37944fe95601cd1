import {
  DisabledApiException,
  ExpiredTokenException,
  InternalServiceErrorException,
  InvalidTokenException,
  MarketplaceMeteringClient,
  MarketplaceMeteringServiceException,
  ResolveCustomerCommand,
  ThrottlingException,
} from '@aws-sdk/client-marketplace-metering';
import { GetSecretValueCommand, ResourceNotFoundException, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-jest';
import { parseMessageBody } from '../../lib/messages/index.js';
import { loadRegistrationConfig } from '../../lib/registration/config.js';
import { createRegistrationDeps } from '../../lib/registration/deps.js';
import { parseRegistrationForm } from '../../lib/registration/form.js';
import { redactToken } from '../../lib/registration/redaction.js';
import { signReference, verifyReference } from '../../lib/registration/reference.js';
import { createRegistrationHandler, type RegistrationDeps } from '../../lib/registration/register.js';
import { lambdaContext } from '../helpers/events.js';
import { formPost, formProblemOf, referenceOf, registrationForm, sentSignups, withLogs } from '../helpers/registration.js';

const metering = mockClient(MarketplaceMeteringClient);
const sqs = mockClient(SQSClient);
const secrets = mockClient(SecretsManagerClient);

const KEY = 'unit-test-signing-key-0123456789abcdef';
const TOKEN = 'ehoVIp/3lr0dX+Zy9Ww4ka7HcKb1NJqzTcWy/RpFq0sq5A1Sa3CxhsOOC8E4qqqEO2vA5RxIa7V7RdNqeb9hWTkSKm0==';
const ACCOUNT = '731245098716';
const PRODUCT = 'prod4k2j9x8l7';
const LICENSE = 'arn:aws:license-manager::386209384616:license:l-5d3f9a2c7b8e4016a1c2e9f0b7d64a3e';
const NOW = new Date('2026-11-26T10:00:00.000Z');
const ENV = {
  SIGNUP_QUEUE_URL: 'https://sqs.us-east-1.amazonaws.com/123456789012/api-key-provisioner-test-signups',
  REGISTRATION_PAGE_URL: 'https://seller.example.com/register?lang=en',
  REGISTRATION_SIGNING_KEY: KEY,
};
const meta = (httpStatusCode: number) => ({ message: 'x', $metadata: { httpStatusCode } });
const newListing = { CustomerAWSAccountId: ACCOUNT, ProductCode: PRODUCT, LicenseArn: LICENSE };
const sent = { Successful: [{ Id: '0', MessageId: 'm', MD5OfMessageBody: '' }], Failed: [] };

function hook(env: Record<string, string> = {}, overrides: Partial<RegistrationDeps> = {}) {
  const deps = createRegistrationDeps(loadRegistrationConfig({ ...ENV, ...env }));
  return createRegistrationHandler({ ...deps, now: () => NOW, retry: { sleep: async () => undefined }, ...overrides });
}
const post = (handler: ReturnType<typeof hook>, body = registrationForm(TOKEN), options?: Parameters<typeof formPost>[1]) =>
  handler(formPost(body, options), lambdaContext());
beforeEach(() => {
  metering.reset();
  sqs.reset();
  secrets.reset();
  metering.on(ResolveCustomerCommand).resolves(newListing);
  sqs.on(SendMessageBatchCommand).resolves(sent);
});

describe('reading the form', () => {
  test('url-encoded, as text or base64 (function URLs encode form bodies); "+" sent unencoded still reads as "+"', () => {
    const body = registrationForm(TOKEN, { 'x-amzn-marketplace-offer-type': 'free-trial' });
    expect(parseRegistrationForm(formPost(body, { base64: true }))).toEqual({ token: TOKEN, freeTrial: true, offerType: 'free-trial' });
    expect(parseRegistrationForm(formPost(body, { base64: false })).token).toBe(TOKEN);
    expect(parseRegistrationForm(formPost(`x-amzn-marketplace-token=${TOKEN}`)).token).toBe(TOKEN);
    expect(
      parseRegistrationForm(formPost(registrationForm(` ${TOKEN}\n`), { contentType: 'application/x-www-form-urlencoded; charset=UTF-8' })),
    ).toEqual({ token: TOKEN, freeTrial: false });
  });

  test.each([
    ['no token', 'x-amzn-marketplace-offer-type=free-trial', {}, 'missing-token'],
    ['an empty token', 'x-amzn-marketplace-token=', {}, 'missing-token'],
    ['an empty body', '', {}, 'missing-token'],
    ['two different tokens', `${registrationForm('a')}&${registrationForm('b')}`, {}, 'malformed-form'],
    ['a JSON body', JSON.stringify({ 'x-amzn-marketplace-token': TOKEN }), { contentType: 'application/json' }, 'malformed-form'],
    ['a GET', '', { method: 'GET' }, 'method-not-allowed'],
    ['a control character', registrationForm('abc\u0001def'), {}, 'malformed-form'],
    ['a body over 16 KiB', registrationForm('t'.repeat(17_000)), {}, 'malformed-form'],
  ])('%s: a FormError', (_, body, options, reason) => {
    expect(formProblemOf(formPost(body, options))).toBe(reason);
  });

  test('missing token: a 400 page sending the buyer back to AWS Marketplace, and no AWS call', async () => {
    const response = await post(hook(), 'foo=bar');
    expect(response.statusCode).toBe(400);
    expect(response.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(response.body).toContain('Set up your account');
    expect(metering).not.toHaveReceivedAnyCommand();
    expect(sqs).not.toHaveReceivedAnyCommand();
    expect((await post(hook(), '', { method: 'GET' })).statusCode).toBe(405);
  });
});

describe('a redeemed token', () => {
  test('one signup for the account id (no CustomerIdentifier), then 303 to the page with a signed reference', async () => {
    const response = await post(hook());
    expect(metering).toHaveReceivedCommandTimes(ResolveCustomerCommand, 1);
    expect(metering).toHaveReceivedCommandWith(ResolveCustomerCommand, { RegistrationToken: TOKEN });
    expect(sqs).toHaveReceivedCommandWith(SendMessageBatchCommand, { QueueUrl: ENV.SIGNUP_QUEUE_URL });
    const bodies = sentSignups(sqs);
    expect(bodies).toHaveLength(1);
    const body = bodies[0];
    expect(body).toEqual({
      customerId: ACCOUNT,
      eventId: expect.stringMatching(/^registration-[0-9a-f-]{36}$/),
      productCode: PRODUCT,
      occurredAt: NOW.toISOString(),
      customerAccountId: ACCOUNT,
      licenseArn: LICENSE,
    });
    // The pipeline's own parser reads it as a provision request on the producer's clock.
    const expected = { kind: 'provision', customerId: ACCOUNT, eventId: body?.eventId, clock: 'producer', licenseArn: LICENSE };
    expect(parseMessageBody(JSON.stringify(body))).toMatchObject(expected);
    expect(response.statusCode).toBe(303);
    expect(response.body).toBe('');
    const location = new URL(response.headers.location ?? '');
    expect(`${location.origin}${location.pathname}`).toBe('https://seller.example.com/register');
    expect(location.searchParams.get('lang')).toBe('en');
    expect(response.headers).toMatchObject({ 'cache-control': 'no-store', 'referrer-policy': 'no-referrer' });
    expect(verifyReference(referenceOf(response), KEY, NOW)).toEqual({
      ok: true,
      reference: { customerId: ACCOUNT, productCode: PRODUCT, expiresAt: new Date(NOW.getTime() + 600_000) },
    });
  });

  test('CustomerIdentifier, when populated, is the customer id (an empty one is not); free trials are marked', async () => {
    metering
      .on(ResolveCustomerCommand)
      .resolves({ CustomerIdentifier: 'QWxwaGFCdXllcjAx', CustomerAWSAccountId: ACCOUNT, ProductCode: PRODUCT });
    await post(hook(), registrationForm(TOKEN, { 'x-amzn-marketplace-offer-type': 'free-trial' }));
    metering.on(ResolveCustomerCommand).resolves({ CustomerIdentifier: '', CustomerAWSAccountId: ACCOUNT, ProductCode: PRODUCT });
    await post(hook());
    expect(sentSignups(sqs).map((b) => [b.customerId, b.customerAccountId, b.licenseArn, b.offerType])).toEqual([
      ['QWxwaGFCdXllcjAx', ACCOUNT, undefined, 'free-trial'],
      [ACCOUNT, ACCOUNT, undefined, undefined],
    ]);
  });

  test('the eventId depends on customer, product and license only: a repeat of the form gets the same one', async () => {
    const handler = hook();
    await post(handler);
    await post(handler, registrationForm('another-token-of-the-same-buyer'));
    metering.on(ResolveCustomerCommand).resolves({ ...newListing, LicenseArn: `${LICENSE}0` });
    await post(handler);
    const [first, repeat, otherLicense] = sentSignups(sqs).map((b) => b.eventId);
    expect(repeat).toBe(first);
    expect(otherLicense).not.toBe(first);
  });

  test('an answer without a usable id or product code: 500, nothing enqueued', async () => {
    for (const answer of [
      { ProductCode: PRODUCT },
      { CustomerAWSAccountId: ACCOUNT },
      { CustomerIdentifier: 'a/b', ProductCode: PRODUCT },
      { CustomerAWSAccountId: '12345', ProductCode: PRODUCT, LicenseArn: 'l-1' },
    ]) {
      metering.on(ResolveCustomerCommand).resolves(answer);
      expect((await post(hook())).statusCode).toBe(500);
    }
    expect(sqs).not.toHaveReceivedAnyCommand();
  });
});

describe('the signed reference', () => {
  const [buyer, expiresAt] = [{ customerId: ACCOUNT, productCode: PRODUCT }, new Date(NOW.getTime() + 600_000)];

  test('verifies until it expires, then says expired; another key, a changed payload or signature, garbage: refused', () => {
    const ref = signReference(buyer, KEY, expiresAt);
    expect(verifyReference(ref, KEY, new Date(expiresAt.getTime() - 1))).toMatchObject({ ok: true });
    expect(verifyReference(ref, KEY, expiresAt)).toEqual({ ok: false, reason: 'expired' });
    const [version, payload, signature] = ref.split('.') as [string, string, string];
    const forged = Buffer.from(JSON.stringify({ c: 'someone-else', p: PRODUCT, exp: expiresAt.getTime() / 1000 })).toString('base64url');
    expect(verifyReference(ref, `${KEY}x`, NOW)).toEqual({ ok: false, reason: 'bad-signature' });
    expect(verifyReference(`${version}.${forged}.${signature}`, KEY, NOW)).toEqual({ ok: false, reason: 'bad-signature' });
    expect(verifyReference(`${version}.${payload}.${signature.slice(1)}`, KEY, NOW)).toEqual({ ok: false, reason: 'bad-signature' });
    expect(verifyReference('garbage', KEY, NOW)).toEqual({ ok: false, reason: 'malformed' });
    expect(verifyReference(`v2.${payload}.${signature}`, KEY, NOW)).toEqual({ ok: false, reason: 'malformed' });
  });
});

describe('when AWS refuses or fails', () => {
  test.each([
    ['InvalidTokenException', new InvalidTokenException(meta(400))],
    ['ExpiredTokenException', new ExpiredTokenException(meta(400))],
  ])('%s: a 400 page to go back to AWS Marketplace, one call, no retry, nothing enqueued', async (_, error) => {
    metering.on(ResolveCustomerCommand).rejects(error);
    const response = await post(hook());
    expect(response.statusCode).toBe(400);
    expect(response.body).toContain('Go back to AWS Marketplace');
    expect(response.body).toContain('Set up your account');
    expect(response.body).not.toMatch(/http-equiv|<script/i);
    expect(metering).toHaveReceivedCommandTimes(ResolveCustomerCommand, 1);
    expect(sqs).not.toHaveReceivedAnyCommand();
  });

  test('ThrottlingException (HTTP 400) and InternalServiceError (500) are retried, and succeed when AWS recovers', async () => {
    metering
      .on(ResolveCustomerCommand)
      .rejectsOnce(new ThrottlingException(meta(400)))
      .rejectsOnce(new InternalServiceErrorException(meta(500)))
      .resolves(newListing);
    expect((await post(hook())).statusCode).toBe(303);
    expect(metering).toHaveReceivedCommandTimes(ResolveCustomerCommand, 3);
  });

  test.each([
    ['ThrottlingException', new ThrottlingException(meta(400))],
    ['InternalServiceErrorException', new InternalServiceErrorException(meta(500))],
  ])('%s that lasts: a few attempts, then a 503 page asking to try again', async (_, error) => {
    metering.on(ResolveCustomerCommand).rejects(error);
    const response = await post(hook());
    expect(response.statusCode).toBe(503);
    expect(response.headers['retry-after']).toBe('30');
    expect(response.body).toContain('try again');
    expect(metering).toHaveReceivedCommandTimes(ResolveCustomerCommand, 5);
    expect(sqs).not.toHaveReceivedAnyCommand();
  });

  test('the retries stop at the budget: a 500 ms budget cannot wait out a throttle', async () => {
    metering.on(ResolveCustomerCommand).rejects(new ThrottlingException(meta(400)));
    const handler = hook({ REGISTRATION_RETRY_BUDGET_MS: '500' }, { retry: { sleep: async () => undefined, random: () => 1 } });
    expect((await post(handler)).statusCode).toBe(503);
    expect(metering).toHaveReceivedCommandTimes(ResolveCustomerCommand, 1);
  });

  test('DisabledApiException and an IAM denial: a 500 page (the seller must act), one call', async () => {
    for (const error of [
      new DisabledApiException(meta(400)),
      new MarketplaceMeteringServiceException({ name: 'AccessDeniedException', $fault: 'client', ...meta(400) }),
    ]) {
      metering.reset();
      metering.on(ResolveCustomerCommand).rejects(error);
      const [response, logs] = await withLogs(() => post(hook()));
      expect(response.statusCode).toBe(500);
      expect(response.body).toContain('problem on our side');
      expect(logs).toMatch(new RegExp(`"level":"ERROR","message":"registration failed on our side[^\\n]*${error.name}`));
      expect(metering).toHaveReceivedCommandTimes(ResolveCustomerCommand, 1);
    }
  });

  test('SQS refuses the entry: retried; SQS keeps refusing: 503', async () => {
    const failed = { Successful: [], Failed: [{ Id: '0', SenderFault: false, Code: 'InternalError', Message: 'x' }] };
    sqs.on(SendMessageBatchCommand).resolvesOnce(failed).resolves(sent);
    expect((await post(hook())).statusCode).toBe(303);
    sqs.reset();
    sqs.on(SendMessageBatchCommand).resolves(failed);
    expect((await post(hook())).statusCode).toBe(503);
    expect(sqs).toHaveReceivedCommandTimes(SendMessageBatchCommand, 5);
  });
});

describe('the signing key from Secrets Manager', () => {
  const fromSecret = { REGISTRATION_SIGNING_KEY: '', REGISTRATION_SIGNING_KEY_SECRET_ID: 'keyprov/test/registration-signing-key' };

  test('read once per instance, and it signs the reference', async () => {
    secrets.on(GetSecretValueCommand).resolves({ ARN: 'arn:aws:secretsmanager:us-east-1:1:secret:k', Name: 'k', SecretString: `${KEY}-s` });
    const handler = hook(fromSecret);
    const response = await post(handler);
    await post(handler);
    expect(secrets).toHaveReceivedCommandTimes(GetSecretValueCommand, 1);
    expect(secrets).toHaveReceivedCommandWith(GetSecretValueCommand, { SecretId: fromSecret.REGISTRATION_SIGNING_KEY_SECRET_ID });
    expect(verifyReference(referenceOf(response), `${KEY}-s`, NOW)).toMatchObject({ ok: true });
  });

  test('a missing secret: 500 before the token is redeemed (it stays good for the next try)', async () => {
    secrets.on(GetSecretValueCommand).rejects(new ResourceNotFoundException(meta(400)));
    expect((await post(hook(fromSecret))).statusCode).toBe(500);
    expect(metering).not.toHaveReceivedAnyCommand();
  });

  test('configuration: one source, long enough', () => {
    expect(() => loadRegistrationConfig({ ...ENV, REGISTRATION_SIGNING_KEY: 'short' })).toThrow(/at least 32 characters/);
    expect(() => loadRegistrationConfig({ ...ENV, REGISTRATION_SIGNING_KEY_SECRET_ID: 's' })).toThrow(/not both/);
    expect(() => loadRegistrationConfig({ ...ENV, REGISTRATION_SIGNING_KEY: undefined })).toThrow(/REGISTRATION_SIGNING_KEY_SECRET_ID/);
    expect(() => loadRegistrationConfig({ ...ENV, REGISTRATION_PAGE_URL: 'http://seller.example.com/' })).toThrow(/https/);
    expect(() => loadRegistrationConfig({ REGISTRATION_SIGNING_KEY: KEY })).toThrow(/SIGNUP_QUEUE_URL is required; REGISTRATION_PAGE/);
  });
});

test('no log line holds the token, on any path; lines name it by its redacted form', async () => {
  const [, text] = await withLogs(async () => {
    const handler = hook();
    await post(handler);
    for (const error of [
      new InvalidTokenException({ message: `token ${TOKEN} is invalid`, $metadata: { httpStatusCode: 400 } }),
      new ThrottlingException(meta(400)),
      new DisabledApiException(meta(400)),
      new Error(`unexpected ${TOKEN}`),
    ]) {
      metering.on(ResolveCustomerCommand).rejects(error);
      await post(handler);
    }
    await post(handler, `${registrationForm(TOKEN)}&${registrationForm(`${TOKEN}x`)}`);
  });
  expect(text).toContain(redactToken(TOKEN));
  expect(text).toContain('"level":"INFO"');
  for (const piece of [TOKEN, encodeURIComponent(TOKEN), TOKEN.slice(0, 40), TOKEN.slice(-40)]) expect(text).not.toContain(piece);
});
