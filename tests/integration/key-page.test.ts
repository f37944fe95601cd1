import { APIGatewayClient, GetApiKeysCommand } from '@aws-sdk/client-api-gateway';
import { DynamoDBClient, GetItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { MarketplaceMeteringClient, ResolveCustomerCommand } from '@aws-sdk/client-marketplace-metering';
import { CreateSecretCommand, GetSecretValueCommand, PutSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { secretName } from '../../lib/customer-key/naming.js';
import type { SampleBuyer } from '../../lib/local/journey-server.js';
import { peekQueue } from '../../lib/local/queues.js';
import { PRINCIPALS, REGION, STACK_NAMES } from '../helpers/iam.js';
import { startKeyPageJourney } from '../helpers/key-page-journey.js';
import { COORDINATION_TABLE_NAME, type Pipeline, startPipeline } from '../helpers/pipeline.js';
import { registrationForm } from '../helpers/registration.js';

/*
 * The key page over HTTP (no browser: tests/integration/key-page-browser.test.ts drives one), on the pipeline's
 * realistic layer with the IAM switch on: the hook's default redirect, the one-time exchange, show once, one roll
 * request — each call of the page made as its own role, KeyPageRole — and what that role may not do.
 * `npm run iam:statements` runs this suite to show each of KeyPageRole's statements is needed.
 */

const PRODUCT = 'prod4k2j9x8l7';
const PREFIX = process.env.NAME_PREFIX ?? '';
const GIL: SampleBuyer = { label: 'Gil', token: 'http-token-gil', customerAWSAccountId: '220000000001', productCode: PRODUCT };

let pipeline: Pipeline;
let journey: Awaited<ReturnType<typeof startKeyPageJourney>>;
beforeAll(async () => {
  pipeline = await startPipeline({ visibilityTimeoutSeconds: 2, maxReceiveCount: 5 });
  journey = await startKeyPageJourney(pipeline, [GIL]);
}, 120_000);
afterAll(async () => {
  await journey?.close();
  await pipeline?.close();
});

/** One HTTP request to the journey server, redirects not followed, the answer's body read. */
async function http(path: string, options: { method?: string; cookie?: string; form?: Record<string, string> } = {}) {
  const target = path.startsWith('http') ? path : `${journey.server.url}${path}`;
  const response = await fetch(target, {
    method: options.method ?? (options.form ? 'POST' : 'GET'),
    redirect: 'manual',
    headers: {
      ...(options.cookie && { cookie: options.cookie }),
      ...(options.form && { 'content-type': 'application/x-www-form-urlencoded' }),
    },
    ...(options.form && { body: new URLSearchParams(options.form).toString() }),
  });
  return { status: response.status, headers: response.headers, body: await response.text() };
}

const csrfOf = (body: string) => /name="csrf" value="([^"]+)"/.exec(body)?.[1] ?? '';

test('the hook sends the buyer to the key page; the reference is exchanged once; the key is shown once; one roll request', async () => {
  const posted = await http('/fulfillment', { form: Object.fromEntries(new URLSearchParams(registrationForm(GIL.token))) });
  expect(posted.status).toBe(303);
  const arrival = posted.headers.get('location') ?? '';
  expect(arrival.startsWith(`${journey.server.url}/key/?ref=v1.`)).toBe(true);

  const exchanged = await http(arrival);
  expect([exchanged.status, exchanged.headers.get('location')]).toEqual([303, './']);
  const cookie = (exchanged.headers.get('set-cookie') ?? '').split(';')[0] ?? '';
  expect(cookie).toMatch(/^__Host-keyprov-session=s1\./);
  expect((await http(arrival)).status).toBe(410);

  expect((await http('/key/', { cookie })).body).toContain('Your API key is being created');
  expect((await pipeline.drain()).drained).toBe(true);
  const ready = await http('/key/', { cookie });
  expect(ready.body).toContain('Your API key is ready');
  const shown = await http('/key/show', { cookie, form: { csrf: csrfOf(ready.body) } });
  expect(shown.status).toBe(200);
  expect(shown.headers.get('cache-control')).toBe('no-store');
  const { SecretString } = await pipeline.secrets.send(
    new GetSecretValueCommand({ SecretId: secretName(PREFIX, GIL.customerAWSAccountId, PRODUCT) }),
  );
  const value = (JSON.parse(SecretString ?? '{}') as { value: string }).value;
  // A boolean: a failure never prints the key value.
  expect(shown.body.includes(`value="${value}"`)).toBe(true);
  expect((await http('/key/show', { cookie, form: { csrf: csrfOf(ready.body) } })).status).toBe(303);

  const already = await http('/key/', { cookie });
  expect(already.body).toContain('Your API key has already been shown');
  expect((await http('/key/roll', { cookie, form: { csrf: csrfOf(already.body) } })).status).toBe(303);
  expect((await http('/key/roll', { cookie, form: { csrf: csrfOf(already.body) } })).status).toBe(303);
  const queued = (await peekQueue(pipeline.sqs, pipeline.queues.signupUrl)).map((m) => JSON.parse(m.Body ?? '{}'));
  expect(queued).toEqual([expect.objectContaining({ action: 'roll', customerId: GIL.customerAWSAccountId, productCode: PRODUCT })]);
  expect((await http('/key/', { cookie })).body).toContain('Your API key is being created');
  expect(pipeline.iam?.denials ?? []).toEqual([]);
}, 60_000);

describe("the page's role, KeyPageRole: least privilege", () => {
  const as = () => {
    const config = {
      endpoint: pipeline.proxy.endpoint,
      region: REGION,
      credentials: { accessKeyId: PRINCIPALS.keyPage, secretAccessKey: 'testing' },
      maxAttempts: 1,
    };
    return {
      apigw: new APIGatewayClient(config),
      dynamodb: new DynamoDBClient(config),
      secrets: new SecretsManagerClient(config),
      sqs: new SQSClient(config),
      metering: new MarketplaceMeteringClient(config),
    };
  };
  const denied = { name: expect.stringMatching(/AccessDenied/) };

  test('no API Gateway, no Marketplace, no record written, no other table, no other queue', async () => {
    const page = as();
    await expect(page.apigw.send(new GetApiKeysCommand({}))).rejects.toMatchObject(denied);
    await expect(page.metering.send(new ResolveCustomerCommand({ RegistrationToken: GIL.token }))).rejects.toMatchObject(denied);
    const item = { pk: { S: `${PRODUCT}/${GIL.customerAWSAccountId}` }, version: { N: '99' }, record: { S: '{}' } };
    await expect(page.dynamodb.send(new PutItemCommand({ TableName: STACK_NAMES.keyRecordsTable, Item: item }))).rejects.toMatchObject(
      denied,
    );
    await expect(
      page.dynamodb.send(new GetItemCommand({ TableName: COORDINATION_TABLE_NAME, Key: { pk: { S: 'instances' } } })),
    ).rejects.toMatchObject(denied);
    const completions = pipeline.queues.completionUrl.replace(process.env.MOTO_ENDPOINT ?? '', pipeline.proxy.endpoint);
    await expect(page.sqs.send(new SendMessageCommand({ QueueUrl: completions, MessageBody: '{}' }))).rejects.toMatchObject(denied);
  });

  test("secrets: only this stage's, only those with its ownership tag, and only read", async () => {
    const page = as();
    const untagged = `${PREFIX}${PRODUCT}/planted-by-someone/api-key`;
    const otherStage = `keyprov/other/${PRODUCT}/${GIL.customerAWSAccountId}/api-key`;
    for (const name of [untagged, otherStage])
      await pipeline.secrets.send(new CreateSecretCommand({ Name: name, SecretString: '{"value":"x"}' }));
    for (const name of [untagged, otherStage])
      await expect(page.secrets.send(new GetSecretValueCommand({ SecretId: name }))).rejects.toMatchObject(denied);
    const own = secretName(PREFIX, GIL.customerAWSAccountId, PRODUCT);
    await expect(page.secrets.send(new PutSecretValueCommand({ SecretId: own, SecretString: '{}' }))).rejects.toMatchObject(denied);
  });
});
