import fc from 'fast-check';
import type { KeyRecord } from '../../lib/customer-key/key-record.js';
import { secretName } from '../../lib/customer-key/naming.js';
import type { Versioned } from '../../lib/customer-key/record-store.js';
import { TransientError } from '../../lib/errors.js';
import type { KeyPageConfig } from '../../lib/key-page/config.js';
import { createKeyPageHandler, type KeyPageDeps } from '../../lib/key-page/key-page.js';
import { logger } from '../../lib/key-page/logger.js';
import type { KeyMarkers } from '../../lib/key-page/markers.js';
import { checkReference, csrfToken, newSession, signSession, verifySession } from '../../lib/key-page/session.js';
import type { KeyMarker } from '../../lib/key-page/state.js';
import { signReference } from '../../lib/registration/reference.js';
import { lambdaContext } from '../helpers/events.js';
import { csrfOf, pageEvent, sessionCookieOf, shownValueOf } from '../helpers/key-page.js';
import { withLogs } from '../helpers/registration.js';

const KEY = 'unit-signing-key-0123456789abcdefghijklmnop';
const PREFIX = 'keyprov/test/';
const CUSTOMER = '731245098716';
const PRODUCT = 'prod4k2j9x8l7';
const RECORD_KEY = `${PRODUCT}/${CUSTOMER}`;
const VALUE = 'AbCdEfGhIjKlMnOpQrStUvWxYz0123456789wxyz';
const NEW_VALUE = 'ZyXwVuTsRqPoNmLkJiHgFeDcBa9876543210abcd';

const CONFIG: KeyPageConfig = {
  keyRecordsTable: 'records',
  revealsTable: 'reveals',
  namePrefix: PREFIX,
  signupQueueUrl: 'https://sqs.us-east-1.amazonaws.com/123456789012/signups',
  signingKey: { value: KEY },
  sessionTtlSeconds: 1800,
  marketplaceUrl: 'https://aws.amazon.com/marketplace/',
  branding: { sellerName: 'Example <Weather> API', apiBaseUrl: 'https://api.example.com/v1', supportContact: 'help@example.com' },
  requestTimeoutMs: 1000,
};

/** The markers table in memory, with its conditional writes. */
function memoryMarkers(): KeyMarkers & { items: Map<string, KeyMarker & { shownBy?: string }>; claims: Set<string> } {
  const items = new Map<string, KeyMarker & { shownBy?: string }>();
  const claims = new Set<string>();
  return {
    items,
    claims,
    claimReference: async (id) => {
      if (claims.has(id)) return false;
      claims.add(id);
      return true;
    },
    marker: async (key) => {
      const item = items.get(key);
      return (
        item && { ...(item.shownAt && { shownAt: item.shownAt }), ...(item.rollRequestedAt && { rollRequestedAt: item.rollRequestedAt }) }
      );
    },
    claimReveal: async (key, claim, now) => {
      const item = items.get(key) ?? {};
      if (item.shownAt) return false;
      items.set(key, { ...item, shownAt: now.toISOString(), shownBy: claim });
      return true;
    },
    releaseReveal: async (key, claim) => {
      const item = items.get(key);
      if (item?.shownBy === claim) items.set(key, { ...item, shownAt: undefined, shownBy: undefined });
    },
    claimRoll: async (key, now, staleBefore) => {
      const item = items.get(key) ?? {};
      if (item.rollRequestedAt && item.rollRequestedAt >= staleBefore.toISOString()) return false;
      items.set(key, { ...item, rollRequestedAt: now.toISOString() });
      return true;
    },
    releaseRoll: async (key, at) => {
      const item = items.get(key);
      if (item?.rollRequestedAt === at.toISOString()) items.set(key, { ...item, rollRequestedAt: undefined });
    },
  };
}

function world(now = new Date('2026-12-06T12:00:00.000Z')) {
  const records = new Map<string, Versioned>();
  const secrets = new Map<string, string>();
  const sent: string[] = [];
  const secretReads: string[] = [];
  const markers = memoryMarkers();
  const clock = { now };
  let failSecretReads = 0;
  const deps: KeyPageDeps = {
    config: CONFIG,
    records: { get: async (key) => records.get(key) },
    secrets: {
      getSecret: async (name) => {
        secretReads.push(name);
        if (failSecretReads-- > 0) throw new TransientError('GetSecretValue failed with InternalServiceError (HTTP 500)');
        const secretString = secrets.get(name);
        return secretString === undefined ? undefined : { arn: `arn:${name}`, name, secretString };
      },
    },
    markers,
    signups: {
      sendBatch: async (messages) => {
        sent.push(...messages.map((m) => m.body));
        return { failedIds: [] };
      },
    },
    signingKey: { get: async () => KEY },
    logger,
    now: () => clock.now,
    retry: { sleep: async () => undefined, random: () => 0 },
  };
  const handler = createKeyPageHandler(deps);
  const setRecord = (record: Partial<Omit<KeyRecord, 'rolling'>> & { rolling?: unknown }) => {
    const version = (records.get(RECORD_KEY)?.version ?? 0) + 1;
    records.set(RECORD_KEY, {
      version,
      // A partial roll state is enough for the page (it reads only whether `rolling` is there).
      record: {
        customerId: CUSTOMER,
        productCode: PRODUCT,
        plan: null,
        apiKeyName: `${PREFIX}${RECORD_KEY}`,
        createdAt: now.toISOString(),
        ...record,
      } as KeyRecord,
    });
  };
  const setValue = (value: string) =>
    secrets.set(
      secretName(PREFIX, CUSTOMER, PRODUCT),
      JSON.stringify({ value, customerId: CUSTOMER, productCode: PRODUCT, apiKeyName: 'x' }),
    );
  const request = (event: Parameters<typeof handler>[0]) => handler(event, lambdaContext(10_000));
  /** A browser that arrived through the hook: its cookie. */
  const arrive = async () => {
    const ref = signReference({ customerId: CUSTOMER, productCode: PRODUCT }, KEY, new Date(clock.now.getTime() + 600_000));
    const response = await request(pageEvent({ query: `ref=${ref}` }));
    const cookie = sessionCookieOf(response);
    if (!cookie) throw new Error(`no session cookie: ${response.statusCode}`);
    return { ref, cookie, response };
  };
  const get = (cookie: string) => request(pageEvent({ cookies: [cookie] }));
  const post = (cookie: string, action: 'show' | 'roll', csrf: string | undefined) =>
    request(pageEvent({ method: 'POST', path: `/${action}`, cookies: [cookie], form: { csrf: csrf ?? '' } }));
  return {
    deps,
    records,
    secrets,
    sent,
    secretReads,
    markers,
    clock,
    request,
    setRecord,
    setValue,
    arrive,
    get,
    post,
    failSecretReads: (n: number) => {
      failSecretReads = n;
    },
  };
}

describe('arriving: the one-time exchange of the reference', () => {
  test('a valid reference: a 303 to the page without it, and a __Host- session cookie (Secure, HttpOnly, SameSite=Lax)', async () => {
    const w = world();
    const { response } = await w.arrive();
    expect(response.statusCode).toBe(303);
    expect(response.headers.location).toBe('./');
    expect(response.headers['cache-control']).toBe('no-store');
    expect(response.cookies?.[0]).toMatch(
      /^__Host-keyprov-session=s1\.[\w-]+\.[\w-]+; Max-Age=1800; Path=\/; Secure; HttpOnly; SameSite=Lax$/,
    );
    expect(w.secretReads).toEqual([]);
  });

  test('a HEAD with the reference (a link checker) does not use it up', async () => {
    const w = world();
    const ref = signReference({ customerId: CUSTOMER, productCode: PRODUCT }, KEY, new Date(w.clock.now.getTime() + 600_000));
    expect((await w.request(pageEvent({ method: 'HEAD', query: `ref=${ref}` }))).statusCode).toBe(403);
    expect(w.markers.claims.size).toBe(0);
    expect(sessionCookieOf(await w.request(pageEvent({ query: `ref=${ref}` })))).toBeDefined();
  });

  test('the same reference again, from a browser without the cookie: 410, no cookie; the first browser goes on', async () => {
    const w = world();
    const { ref, cookie } = await w.arrive();
    const replay = await w.request(pageEvent({ query: `ref=${ref}` }));
    expect(replay.statusCode).toBe(410);
    expect(replay.cookies).toBeUndefined();
    expect(replay.body).toContain('Set up your account');
    // The first browser, coming back with its link (back button): straight to its page.
    expect((await w.request(pageEvent({ query: `ref=${ref}`, cookies: [cookie] }))).statusCode).toBe(303);
  });

  test('expired: 410; tampered or malformed: 400; nothing read from Secrets Manager', async () => {
    const w = world();
    const expired = signReference({ customerId: CUSTOMER, productCode: PRODUCT }, KEY, new Date(w.clock.now.getTime() - 1000));
    expect((await w.request(pageEvent({ query: `ref=${expired}` }))).statusCode).toBe(410);
    const good = signReference({ customerId: CUSTOMER, productCode: PRODUCT }, KEY, new Date(w.clock.now.getTime() + 600_000));
    const [v, payload, signature] = good.split('.') as [string, string, string];
    const forged = Buffer.from(JSON.stringify({ c: 'someone-else', p: PRODUCT, exp: 1_900_000_000 })).toString('base64url');
    for (const ref of [
      `${v}.${forged}.${signature}`,
      `${v}.${payload}.${signature.slice(2)}`,
      'garbage',
      'a'.repeat(5000),
      '<img src=x onerror=alert(1)>',
    ]) {
      const response = await w.request(pageEvent({ query: new URLSearchParams({ ref }).toString() }));
      expect(response.statusCode).toBe(400);
      expect(response.body).not.toContain('onerror');
    }
    // Signed with the right key but valid for a day: a seller's link must not outlive an hour.
    const tooLong = signReference({ customerId: CUSTOMER, productCode: PRODUCT }, KEY, new Date(w.clock.now.getTime() + 86_400_000));
    expect((await w.request(pageEvent({ query: `ref=${tooLong}` }))).statusCode).toBe(400);
    expect(w.secretReads).toEqual([]);
  });

  test('without a session: 403 "link expired"; with an expired or forged one: 410 and the cookie removed', async () => {
    const w = world();
    expect((await w.request(pageEvent())).statusCode).toBe(403);
    const old = signSession(
      newSession({ customerId: CUSTOMER, productCode: PRODUCT }, new Date(w.clock.now.getTime() - 3_600_000), 1800),
      KEY,
    );
    const expired = await w.request(pageEvent({ cookies: [`__Host-keyprov-session=${old}`] }));
    expect(expired.statusCode).toBe(410);
    expect(expired.cookies?.[0]).toContain('Max-Age=0');
    const other = signSession(newSession({ customerId: CUSTOMER }, w.clock.now, 1800), `${KEY}-other`);
    expect((await w.request(pageEvent({ cookies: [`__Host-keyprov-session=${other}`] }))).statusCode).toBe(410);
  });
});

describe('the states', () => {
  test('no record yet, pending, a roll under way: creating, which refreshes itself without JavaScript', async () => {
    const w = world();
    const { cookie } = await w.arrive();
    const creating = async () => {
      const page = await w.get(cookie);
      expect(page.statusCode).toBe(200);
      expect(page.body).toContain('<h1>Your API key is being created</h1>');
      expect(page.body).toContain('<noscript><meta http-equiv="refresh" content="3"></noscript>');
      expect(page.body).toContain('<main id="main" data-poll="3">');
    };
    await creating();
    w.setRecord({});
    await creating();
    w.setRecord({ status: 'active', apiKeyId: 'k1', rolling: { rollId: 'r', graceSeconds: 60, requestedAt: 'x' } });
    await creating();
  });

  test('ended and failed subscriptions', async () => {
    const w = world();
    const { cookie } = await w.arrive();
    w.setRecord({ status: 'revoked', apiKeyId: 'k1' });
    expect((await w.get(cookie)).body).toContain('Your subscription has ended');
    w.setRecord({ status: 'failed' });
    expect((await w.get(cookie)).body).toContain('Your subscription could not be completed');
  });

  test('ready → Show my key → the value once, never cached; then already shown, on reload and on the back button', async () => {
    const w = world();
    const { cookie } = await w.arrive();
    w.setRecord({ status: 'active', apiKeyId: 'k1' });
    w.setValue(VALUE);
    const ready = await w.get(cookie);
    expect(ready.body).toContain('Show my key');
    expect(ready.body).not.toContain(VALUE);
    const shown = await w.post(cookie, 'show', csrfOf(ready));
    expect(shown.statusCode).toBe(200);
    expect(shownValueOf(shown)).toBe(VALUE);
    expect(shown.headers).toMatchObject({ 'cache-control': 'no-store', 'referrer-policy': 'no-referrer' });
    expect(shown.body).toContain('x-api-key');
    expect(shown.body).toContain('curl -H "x-api-key: $API_KEY" https://api.example.com/v1');
    expect(shown.body).toContain('It will not be shown again');
    // The form again (a reload re-posts it): a 303 to the page, which says it was shown.
    const again = await w.post(cookie, 'show', csrfOf(ready));
    expect(again.statusCode).toBe(303);
    expect(again.body).not.toContain(VALUE);
    const after = await w.get(cookie);
    expect(after.body).toContain('Your API key has already been shown');
    expect(after.body).toContain('Get a new key');
    expect(w.secretReads).toHaveLength(1);
  });

  test('two requests at once: exactly one gets the value', async () => {
    const w = world();
    const { cookie } = await w.arrive();
    w.setRecord({ status: 'active', apiKeyId: 'k1' });
    w.setValue(VALUE);
    const csrf = csrfOf(await w.get(cookie));
    const answers = await Promise.all([w.post(cookie, 'show', csrf), w.post(cookie, 'show', csrf), w.post(cookie, 'show', csrf)]);
    expect(answers.map(shownValueOf).filter(Boolean)).toEqual([VALUE]);
  });

  test('a failed read of the value gives the reveal back: the 503 page, then the key can be shown', async () => {
    const w = world();
    const { cookie } = await w.arrive();
    w.setRecord({ status: 'active', apiKeyId: 'k1' });
    w.setValue(VALUE);
    const csrf = csrfOf(await w.get(cookie));
    w.failSecretReads(100);
    const failed = await w.post(cookie, 'show', csrf);
    expect(failed.statusCode).toBe(503);
    expect(failed.body).not.toContain(VALUE);
    w.failSecretReads(0);
    expect(shownValueOf(await w.post(cookie, 'show', csrf))).toBe(VALUE);
  });

  test('Get a new key: one roll request (one id however often pressed), creating, then the new key ready and shown once', async () => {
    const w = world();
    const { cookie } = await w.arrive();
    w.setRecord({ status: 'active', apiKeyId: 'k1' });
    w.setValue(VALUE);
    await w.post(cookie, 'show', csrfOf(await w.get(cookie)));
    const rollCsrf = csrfOf(await w.get(cookie));
    expect((await w.post(cookie, 'roll', rollCsrf)).statusCode).toBe(303);
    expect((await w.post(cookie, 'roll', rollCsrf)).statusCode).toBe(303);
    expect(w.sent).toHaveLength(1);
    const request = JSON.parse(w.sent[0] ?? '{}');
    expect(request).toEqual({
      action: 'roll',
      customerId: CUSTOMER,
      productCode: PRODUCT,
      eventId: expect.stringMatching(/^roll-[0-9a-f-]{36}$/),
      occurredAt: w.clock.now.toISOString(),
    });
    expect((await w.get(cookie)).body).toContain('being created');
    // The record does not show the roll within 5 minutes (e.g. refused): the page offers it again, with the same id.
    w.clock.now = new Date(w.clock.now.getTime() + 6 * 60_000);
    expect((await w.get(cookie)).body).toContain('Get a new key');
    await w.post(cookie, 'roll', rollCsrf);
    expect(w.sent.map((body) => JSON.parse(body).eventId)).toEqual([request.eventId, request.eventId]);
    // The provision function rolls: the record names the new key, the secret holds its value.
    w.setRecord({ status: 'active', apiKeyId: 'k2', previousKeyId: 'k1' } as Partial<KeyRecord>);
    w.setValue(NEW_VALUE);
    const ready = await w.get(cookie);
    expect(ready.body).toContain('Show my key');
    expect(shownValueOf(await w.post(cookie, 'show', csrfOf(ready)))).toBe(NEW_VALUE);
  });

  test('a key being rolled while it is shown is not shown (the secret may already hold the next value)', async () => {
    const w = world();
    const { cookie } = await w.arrive();
    w.setRecord({ status: 'active', apiKeyId: 'k1' });
    w.setValue(VALUE);
    const csrf = csrfOf(await w.get(cookie));
    const read = w.deps.secrets.getSecret;
    w.deps.secrets.getSecret = async (name) => {
      w.setRecord({ status: 'active', apiKeyId: 'k1', rolling: { rollId: 'r' } });
      return read(name);
    };
    const answer = await createKeyPageHandler(w.deps)(
      pageEvent({ method: 'POST', path: '/show', cookies: [cookie], form: { csrf: csrf ?? '' } }),
      lambdaContext(10_000),
    );
    expect(shownValueOf(answer)).toBeUndefined();
    expect(answer.statusCode).toBe(503);
  });
});

describe('forms: CSRF and bad requests', () => {
  test("a missing or wrong token, another action's token, another session's token, a cross-site POST: 403, nothing read", async () => {
    const w = world();
    const { cookie } = await w.arrive();
    w.setRecord({ status: 'active', apiKeyId: 'k1' });
    w.setValue(VALUE);
    const session = verifySession(cookie.split('=')[1] ?? '', KEY, w.clock.now);
    if (!session) throw new Error('no session');
    const other = newSession({ customerId: CUSTOMER, productCode: PRODUCT }, w.clock.now, 1800);
    for (const csrf of ['x', csrfToken(session, 'roll', KEY), csrfToken(other, 'show', KEY)])
      expect((await w.post(cookie, 'show', csrf)).statusCode).toBe(403);
    expect((await w.post(cookie, 'show', undefined)).statusCode).toBe(400);
    const crossSite = pageEvent({
      method: 'POST',
      path: '/show',
      cookies: [cookie],
      form: { csrf: csrfToken(session, 'show', KEY) },
      headers: { 'sec-fetch-site': 'cross-site' },
    });
    expect((await w.request(crossSite)).statusCode).toBe(403);
    expect(w.secretReads).toEqual([]);
  });

  test('wrong methods and paths: 405 with Allow, 404; a form that is not a form: 400', async () => {
    const w = world();
    const { cookie } = await w.arrive();
    const put = await w.request(pageEvent({ method: 'PUT', cookies: [cookie] }));
    expect([put.statusCode, put.headers.allow]).toEqual([405, 'GET']);
    const getShow = await w.request(pageEvent({ path: '/show', cookies: [cookie] }));
    expect([getShow.statusCode, getShow.headers.allow]).toEqual([405, 'POST']);
    expect((await w.request(pageEvent({ path: '/admin' }))).statusCode).toBe(404);
    const json = pageEvent({
      method: 'POST',
      path: '/show',
      cookies: [cookie],
      body: '{"csrf":"x"}',
      headers: { 'content-type': 'application/json' },
    });
    expect((await w.request(json)).statusCode).toBe(400);
  });

  test('branding is escaped: a seller name with markup appears as text', async () => {
    const w = world();
    const page = await w.request(pageEvent());
    expect(page.body).toContain('Example &lt;Weather&gt; API');
    expect(page.body).toContain('<a href="mailto:help@example.com">help@example.com</a>');
    expect(page.headers['content-security-policy']).toMatch(/default-src 'none'; style-src 'sha256-[^']+'; script-src 'sha256-[^']+'/);
  });
});

describe('hostile input (properties)', () => {
  const anyText = fc.oneof(
    fc.string({ maxLength: 300 }),
    fc.string({ unit: 'binary', maxLength: 300 }),
    fc.constantFrom('', '/', '/show', '/roll', '/%2e%2e/'),
  );

  test('any request: a page, never a throw; a 2xx/303 only for GET /, and never a read of a key value without a session', async () => {
    const w = world();
    w.setRecord({ status: 'active', apiKeyId: 'k1' });
    w.setValue(VALUE);
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          method: fc.constantFrom('GET', 'POST', 'HEAD', 'PUT', 'DELETE', 'OPTIONS', 'get', 'X'.repeat(40)),
          path: anyText,
          query: fc.oneof(
            anyText,
            anyText.map((ref) => `ref=${encodeURIComponent(ref)}`),
          ),
          cookies: fc.array(
            anyText.map((v) => `__Host-keyprov-session=${v}`),
            { maxLength: 3 },
          ),
          body: fc.option(anyText, { nil: undefined }),
          contentType: fc.constantFrom('application/x-www-form-urlencoded', 'text/plain', 'multipart/form-data; boundary=x'),
        }),
        async ({ method, path, query, cookies, body, contentType }) => {
          const event = pageEvent({ method, path, query, cookies, body, headers: { 'content-type': contentType } });
          const answer = await w.request(event);
          expect(answer.statusCode).toBeGreaterThanOrEqual(200);
          expect(answer.statusCode).toBeLessThan(500);
          expect(answer.body).not.toContain(VALUE);
          expect(answer.headers['cache-control']).toBe('no-store');
        },
      ),
      { numRuns: 300 },
    );
    expect(w.secretReads).toEqual([]);
  });

  test('checkReference and verifySession never throw and accept nothing unsigned', () => {
    const now = new Date();
    fc.assert(
      fc.property(fc.string({ maxLength: 2000 }), fc.string({ unit: 'binary', maxLength: 400 }), (a, b) => {
        for (const text of [a, b, `v1.${a}.${b}`, `s1.${Buffer.from(a).toString('base64url')}.${b}`]) {
          expect(checkReference(text, KEY, now).ok).toBe(false);
          expect(verifySession(text, KEY, now)).toBeUndefined();
        }
      }),
      { numRuns: 500 },
    );
  });

  test('a signed payload with a customer id or product code the pipeline refuses is refused too', () => {
    const now = new Date();
    fc.assert(
      fc.property(
        fc.string({ maxLength: 300 }).filter((c) => !/^[A-Za-z0-9_+=.@-]{1,256}$/.test(c)),
        (customerId) => {
          const ref = signReference({ customerId, productCode: PRODUCT }, KEY, new Date(now.getTime() + 60_000));
          expect(checkReference(ref, KEY, now)).toEqual({ ok: false, reason: 'malformed' });
        },
      ),
    );
  });
});

test('the key value is in no log line, at DEBUG', async () => {
  const [{ cookie, ref }, log] = await withLogs(async () => {
    const w = world();
    const arrived = await w.arrive();
    w.setRecord({ status: 'active', apiKeyId: 'k1' });
    w.setValue(VALUE);
    expect(shownValueOf(await w.post(arrived.cookie, 'show', csrfOf(await w.get(arrived.cookie))))).toBe(VALUE);
    await w.post(arrived.cookie, 'roll', csrfOf(await w.get(arrived.cookie)));
    return arrived;
  }, logger);
  expect(log).toContain('key shown');
  for (const secret of [VALUE, KEY, ref, cookie.split('=')[1] ?? 'none']) expect(log).not.toContain(secret);
});
