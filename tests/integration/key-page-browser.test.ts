import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { GetSecretValueCommand } from '@aws-sdk/client-secrets-manager';
import AxeBuilder from '@axe-core/playwright';
import { type Browser, type BrowserContext, chromium, type Locator, type Page } from 'playwright-core';
import { secretName } from '../../lib/customer-key/naming.js';
import type { SampleBuyer } from '../../lib/local/journey-server.js';
import { peekQueue } from '../../lib/local/queues.js';
import { signReference } from '../../lib/registration/reference.js';
import { marketplaceNotification, snsEnvelope } from '../helpers/events.js';
import { startKeyPageJourney } from '../helpers/key-page-journey.js';
import { type Pipeline, startPipeline } from '../helpers/pipeline.js';

/*
 * The buyer journey in a real browser: headless Chromium (Debian's package; CHROMIUM_PATH to use another) through
 * the Marketplace stand-in, the registration hook and the key page as `npm start -- --serve` serves them, on the
 * pipeline's realistic layer with the IAM switch on (each function as its own role). Every state is checked by
 * axe-core (no serious or critical violation) and saved as a screenshot under test-results/key-page/ (not
 * committed; the key's field is masked).
 */

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SHOTS = join(process.cwd(), 'test-results', 'key-page');
const PRODUCT = 'prod4k2j9x8l7';
const PREFIX = process.env.NAME_PREFIX ?? '';

const buyer = (label: string, account: string, extra: Partial<SampleBuyer> = {}): SampleBuyer => ({
  label,
  token: `browser-token-${label.toLowerCase()}`,
  customerAWSAccountId: account,
  productCode: PRODUCT,
  ...extra,
});
const ANA = buyer('Ana', '210000000001');
const BO = buyer('Bo', '210000000002');
const CY = buyer('Cy', '210000000003');
const DEE = buyer('Dee', '210000000004', { customerIdentifier: 'RGVlTGVhdmVz' });
const FAY = buyer('Fay', '210000000005');

let pipeline: Pipeline;
let journey: Awaited<ReturnType<typeof startKeyPageJourney>>;
let browser: Browser;
let url: string;
beforeAll(async () => {
  pipeline = await startPipeline({ visibilityTimeoutSeconds: 2, maxReceiveCount: 5 });
  journey = await startKeyPageJourney(pipeline, [ANA, BO, CY, DEE, FAY]);
  url = journey.server.url;
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true });
  mkdirSync(SHOTS, { recursive: true });
}, 120_000);
afterAll(async () => {
  await browser?.close();
  await journey?.close();
  await pipeline?.close();
});

const h1 = (page: Page) => page.getByRole('heading', { level: 1 });
const waitForHeading = (page: Page, name: string, timeout = 15_000) =>
  page.getByRole('heading', { level: 1, name, exact: true }).waitFor({ timeout });

/** axe-core on the page as it is (no serious or critical violation), then a screenshot; the key's field masked. */
async function check(page: Page, state: string): Promise<void> {
  const { violations } = await new AxeBuilder({ page }).analyze();
  const severe = violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  expect({ state, violations: severe.map((v) => `${v.id}: ${v.help}`) }).toEqual({ state, violations: [] });
  await page.screenshot({ path: join(SHOTS, `${state}.png`), fullPage: true, mask: [page.locator('#api-key')], maskColor: '#b1b4b6' });
}

/** Tabs to `target` as a keyboard user would (it must be reachable, and show its focus). */
async function tabTo(page: Page, target: Locator): Promise<void> {
  for (let i = 0; i < 20; i++) {
    await page.keyboard.press('Tab');
    if (await target.evaluate((el) => el === el.ownerDocument.activeElement)) {
      const outline = await target.evaluate(
        (el) =>
          (el.ownerDocument.defaultView as unknown as { getComputedStyle(e: unknown): { outlineStyle: string } }).getComputedStyle(el)
            .outlineStyle,
      );
      expect(outline).not.toBe('none');
      return;
    }
  }
  throw new Error('not reachable with the Tab key');
}

/** From the Marketplace stand-in: the buyer's "Set up your account"; returns the URL the hook redirected to (with its ref). */
async function setUp(page: Page, who: SampleBuyer): Promise<string> {
  let arrival = '';
  const seen = (request: { url(): string }) => {
    if (request.url().includes('ref=')) arrival = request.url();
  };
  page.on('request', seen);
  await page.goto(`${url}/`);
  await page.getByRole('button', { name: `Set up your account: ${who.label}` }).click();
  await page.waitForURL(`${url}/key/`);
  page.off('request', seen);
  return arrival;
}

async function storedValue(customerId: string): Promise<string> {
  const { SecretString } = await pipeline.secrets.send(
    new GetSecretValueCommand({ SecretId: secretName(PREFIX, customerId, PRODUCT), VersionStage: 'AWSCURRENT' }),
  );
  return (JSON.parse(SecretString ?? '{}') as { value: string }).value;
}

async function newContext(options: Parameters<Browser['newContext']>[0] = {}): Promise<BrowserContext> {
  // A narrow window: the screenshots stay small (two of them are in docs/).
  return browser.newContext({ viewport: { width: 800, height: 600 }, ...options });
}

test('Marketplace → creating → ready → Show my key (keyboard) → shown, copied → reload and back: never again; the URL elsewhere: nothing', async () => {
  const context = await newContext();
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: url });
  const page = await context.newPage();
  await page.goto(`${url}/`);
  await check(page, 'marketplace-stand-in');
  const arrival = await setUp(page, ANA);
  expect(arrival).toMatch(/\/key\/\?ref=v1\./);
  // The reference is gone from the address bar: the page's URL alone names nobody.
  expect(page.url()).toBe(`${url}/key/`);
  await waitForHeading(page, 'Your API key is being created');
  await check(page, 'creating');

  // Provisioning runs; the page refreshes itself.
  expect((await pipeline.drain()).drained).toBe(true);
  await waitForHeading(page, 'Your API key is ready');
  await check(page, 'ready');

  await tabTo(page, page.getByRole('button', { name: 'Show my key' }));
  await page.keyboard.press('Enter');
  await waitForHeading(page, 'Your API key');
  const value = await page.getByLabel('API key').inputValue();
  // Compared as booleans: a failure never prints a key value.
  expect(value === (await storedValue(ANA.customerAWSAccountId))).toBe(true);
  expect(page.url().includes(value)).toBe(false);
  await check(page, 'shown');

  await tabTo(page, page.getByRole('button', { name: 'Copy key' }));
  await page.keyboard.press('Enter');
  await page.getByRole('status').filter({ hasText: 'Copied to the clipboard.' }).waitFor();
  const clipboard = () =>
    (globalThis as unknown as { navigator: { clipboard: { readText(): Promise<string> } } }).navigator.clipboard.readText();
  expect((await page.evaluate(clipboard)) === value).toBe(true);

  // A reload re-posts the form: the page says the key was shown, and not what it was.
  await page.reload();
  await waitForHeading(page, 'Your API key has already been shown');
  expect((await page.content()).includes(value)).toBe(false);
  await check(page, 'already-shown');
  await page.goBack();
  await page.waitForLoadState();
  expect((await page.content()).includes(value)).toBe(false);

  // Another browser with the page's URL, or with the hook's redirect (its reference): nothing.
  const other = await (await newContext()).newPage();
  const bare = await other.goto(`${url}/key/`);
  expect(bare?.status()).toBe(403);
  await waitForHeading(other, 'This link has expired');
  await check(other, 'link-expired');
  const replayed = await other.goto(arrival);
  expect(replayed?.status()).toBe(410);
  expect((await other.content()).includes(value)).toBe(false);
  await other.context().close();
  await context.close();
}, 90_000);

test('two tabs press "Show my key" at once: exactly one sees the key', async () => {
  const context = await newContext();
  const first = await context.newPage();
  await setUp(first, BO);
  expect((await pipeline.drain()).drained).toBe(true);
  await waitForHeading(first, 'Your API key is ready');
  const second = await context.newPage();
  await second.goto(`${url}/key/`);
  await waitForHeading(second, 'Your API key is ready');
  await Promise.all([first, second].map((page) => page.getByRole('button', { name: 'Show my key' }).click()));
  await Promise.all([first, second].map((page) => page.waitForLoadState()));
  const headings = await Promise.all([first, second].map((page) => h1(page).textContent()));
  expect([...headings].sort()).toEqual(['Your API key', 'Your API key has already been shown']);
  const shown = headings[0] === 'Your API key' ? first : second;
  expect((await shown.getByLabel('API key').inputValue()) === (await storedValue(BO.customerAWSAccountId))).toBe(true);
  await context.close();
}, 90_000);

test('JavaScript disabled: the page refreshes itself, the key is shown, no copy button that cannot work', async () => {
  const context = await newContext({ javaScriptEnabled: false });
  const page = await context.newPage();
  await setUp(page, CY);
  await waitForHeading(page, 'Your API key is being created');
  expect((await pipeline.drain()).drained).toBe(true);
  await waitForHeading(page, 'Your API key is ready');
  await page.getByRole('button', { name: 'Show my key' }).click();
  await waitForHeading(page, 'Your API key');
  expect((await page.getByLabel('API key').inputValue()) === (await storedValue(CY.customerAWSAccountId))).toBe(true);
  expect(await page.getByRole('button', { name: 'Copy key' }).count()).toBe(0);
  await context.close();
}, 90_000);

test('references: expired, tampered and replayed get the "link" pages; nothing is read', async () => {
  const page = await (await newContext()).newPage();
  const sign = (expiresInMs: number, customerId = 'browser-link-1') =>
    signReference({ customerId, productCode: PRODUCT }, journey.signingKey, new Date(Date.now() + expiresInMs));
  const expired = await page.goto(`${url}/key/?ref=${sign(-1_000)}`);
  expect(expired?.status()).toBe(410);
  await waitForHeading(page, 'This link has expired');
  const [v, payload, signature] = sign(600_000).split('.') as [string, string, string];
  const forged = Buffer.from(JSON.stringify({ c: ANA.customerAWSAccountId, p: PRODUCT, exp: Math.floor(Date.now() / 1000) + 600 }));
  for (const ref of [`${v}.${forged.toString('base64url')}.${signature}`, `${v}.${payload}.${signature.slice(3)}`]) {
    expect((await page.goto(`${url}/key/?ref=${ref}`))?.status()).toBe(400);
    await waitForHeading(page, 'This link is not valid');
  }
  await check(page, 'link-not-valid');
  const link = `${url}/key/?ref=${sign(600_000)}`;
  expect((await page.goto(link))?.status()).toBe(200);
  await waitForHeading(page, 'Your API key is being created');
  const elsewhere = await (await newContext()).newPage();
  expect((await elsewhere.goto(link))?.status()).toBe(410);
  await page.context().close();
  await elsewhere.context().close();
}, 90_000);

test('subscription ended, subscription failed, and an error page with its reference', async () => {
  const page = await (await newContext()).newPage();
  await setUp(page, DEE);
  expect((await pipeline.drain()).drained).toBe(true);
  await waitForHeading(page, 'Your API key is ready');
  await pipeline.send(snsEnvelope(marketplaceNotification('unsubscribe-success', DEE.customerIdentifier ?? '', PRODUCT)));
  expect((await pipeline.drain()).drained).toBe(true);
  await page.reload();
  await waitForHeading(page, 'Your subscription has ended');
  await check(page, 'ended');

  const failed = 'RmFpbGVkQnV5ZXI';
  await pipeline.send(snsEnvelope(marketplaceNotification('subscribe-fail', failed, PRODUCT)));
  expect((await pipeline.drain()).drained).toBe(true);
  const ref = signReference({ customerId: failed, productCode: PRODUCT }, journey.signingKey, new Date(Date.now() + 600_000));
  await page.goto(`${url}/key/?ref=${ref}`);
  await waitForHeading(page, 'Your subscription could not be completed');
  await check(page, 'failed');

  pipeline.proxy.inject({
    target: 'DynamoDB_20120810.GetItem',
    status: 500,
    errorType: 'InternalServerError',
    times: Number.POSITIVE_INFINITY,
  });
  try {
    const answer = await page.reload();
    expect(answer?.status()).toBe(503);
    await waitForHeading(page, 'Sorry, please try again in a minute');
    expect(await page.locator('.reference').textContent()).toMatch(/^[0-9a-f-]{36}$/);
    await check(page, 'error');
  } finally {
    pipeline.proxy.clear();
  }
  await page.context().close();
}, 90_000);

test('"Get a new key": one roll request (two tabs press it), creating, then the new key ready and shown once; the old key keeps working', async () => {
  const context = await newContext();
  const page = await context.newPage();
  await setUp(page, FAY);
  expect((await pipeline.drain()).drained).toBe(true);
  await waitForHeading(page, 'Your API key is ready');
  await page.getByRole('button', { name: 'Show my key' }).click();
  await waitForHeading(page, 'Your API key');
  const first = await page.getByLabel('API key').inputValue();
  const firstKeyId = (await pipeline.apiKeys()).find((k) => k.value === first)?.id;
  expect(firstKeyId).toBeDefined();
  await page.goto(`${url}/key/`);
  await waitForHeading(page, 'Your API key has already been shown');
  // Two tabs press it at once.
  const second = await context.newPage();
  await second.goto(`${url}/key/`);
  await Promise.all([page, second].map((p) => p.getByRole('button', { name: 'Get a new key' }).click()));
  await waitForHeading(page, 'Your API key is being created');
  await waitForHeading(second, 'Your API key is being created');
  const requests = (await peekQueue(pipeline.sqs, pipeline.queues.signupUrl)).map((m) => JSON.parse(m.Body ?? '{}'));
  expect(requests).toEqual([
    {
      action: 'roll',
      customerId: FAY.customerAWSAccountId,
      productCode: PRODUCT,
      eventId: expect.stringMatching(/^roll-/),
      occurredAt: expect.any(String),
    },
  ]);
  await check(second, 'creating-new-key');
  await second.close();

  // The provision function rolls: a new key, its value AWSCURRENT; the page turns ready by itself.
  expect((await pipeline.drain()).drained).toBe(true);
  await waitForHeading(page, 'Your API key is ready');
  await page.getByRole('button', { name: 'Show my key' }).click();
  await waitForHeading(page, 'Your API key');
  const next = await page.getByLabel('API key').inputValue();
  expect(next === first).toBe(false);
  expect(next === (await storedValue(FAY.customerAWSAccountId))).toBe(true);
  const keys = await pipeline.apiKeys();
  const nextKey = keys.find((k) => k.value === next);
  expect([nextKey?.enabled, nextKey?.customerId]).toEqual([true, FAY.customerAWSAccountId]);
  // The old key works on for the grace period.
  expect(keys.find((k) => k.id === firstKeyId)?.enabled).toBe(true);
  await page.reload();
  await waitForHeading(page, 'Your API key has already been shown');
  expect((await page.content()).includes(next)).toBe(false);
  await context.close();
}, 90_000);
