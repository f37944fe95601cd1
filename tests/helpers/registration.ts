import type { Logger } from '@aws-lambda-powertools/logger';
import { CreateSecretCommand } from '@aws-sdk/client-secrets-manager';
import { SendMessageBatchCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import type { AwsStub } from 'aws-sdk-client-mock';
import { logger } from '../../lib/pipeline/observability.js';
import { FormError } from '../../lib/registration/errors.js';
import { parseRegistrationForm } from '../../lib/registration/form.js';
import type { HttpResponse } from '../../lib/registration/pages.js';
import type { RegistrationHandler } from '../../lib/registration/register.js';
import { actingAs, asPrincipal } from '../realistic-aws/index.js';
import { lambdaContext } from './events.js';
import { PRINCIPALS, STACK_NAMES } from './iam.js';
import type { Pipeline } from './pipeline.js';

/** Marketplace's registration form, url-encoded as a browser sends it. */
export const registrationForm = (token: string, extra: Record<string, string> = {}): string =>
  new URLSearchParams({ 'x-amzn-marketplace-token': token, ...extra }).toString();

/**
 * A Lambda function URL event (payload 2.0) for a request to the hook: a form POST by default. Function URLs
 * base64-encode a form body (`isBase64Encoded: true`); `base64: false` gives it as text, as an HTTP API may.
 */
export function formPost(
  body: string,
  options: { base64?: boolean; contentType?: string | null; method?: string } = {},
): APIGatewayProxyEventV2 {
  const { base64 = true, contentType = 'application/x-www-form-urlencoded', method = 'POST' } = options;
  return {
    version: '2.0',
    routeKey: '$default',
    rawPath: '/',
    rawQueryString: '',
    headers: {
      host: 'abcdefghijklmnopqrstuvwxyz012345.lambda-url.us-east-1.on.aws',
      origin: 'https://aws.amazon.com',
      ...(contentType !== null && { 'content-type': contentType }),
    },
    requestContext: {
      accountId: 'anonymous',
      apiId: 'abcdefghijklmnopqrstuvwxyz012345',
      domainName: 'abcdefghijklmnopqrstuvwxyz012345.lambda-url.us-east-1.on.aws',
      domainPrefix: 'abcdefghijklmnopqrstuvwxyz012345',
      http: { method, path: '/', protocol: 'HTTP/1.1', sourceIp: '203.0.113.7', userAgent: 'Mozilla/5.0' },
      requestId: crypto.randomUUID(),
      routeKey: '$default',
      stage: '$default',
      time: new Date().toUTCString(),
      timeEpoch: Date.now(),
    },
    body: base64 ? Buffer.from(body).toString('base64') : body,
    isBase64Encoded: base64,
  };
}

/** The `ref` of a redirect's Location. */
export const referenceOf = (response: HttpResponse): string => new URL(response.headers.location ?? '').searchParams.get('ref') ?? '';

/** The FormError reason a request gets, or `parsed` when it is a registration form. */
export function formProblemOf(event: APIGatewayProxyEventV2): string {
  try {
    parseRegistrationForm(event);
    return 'parsed';
  } catch (error) {
    return error instanceof FormError ? error.reason : String(error);
  }
}

/** The JSON bodies a mocked SQS client was asked to send (SendMessageBatch), in order. */
// biome-ignore lint/suspicious/noExplicitAny: the stub's input and output types are the SQS client's own.
export const sentSignups = (sqs: AwsStub<any, any, SQSClient['config']>): Record<string, unknown>[] =>
  sqs
    .commandCalls(SendMessageBatchCommand)
    .flatMap((call) => (call.args[0].input.Entries ?? []).map((e) => JSON.parse(e.MessageBody ?? '')));

/**
 * What `run` returns and everything a logger of the product (default the functions' shared one; the key page has its
 * own) writes meanwhile, at DEBUG (tests/helpers/env.ts keeps it SILENT otherwise).
 */
export async function withLogs<T>(run: () => Promise<T>, log: Pick<Logger, 'setLogLevel'> = logger): Promise<[T, string]> {
  const chunks: string[] = [];
  const capture = (chunk: unknown) => chunks.push(String(chunk)) > 0;
  const out = jest.spyOn(process.stdout, 'write').mockImplementation(capture);
  const err = jest.spyOn(process.stderr, 'write').mockImplementation(capture);
  log.setLogLevel('DEBUG');
  try {
    return [await run(), chunks.join('')];
  } finally {
    log.setLogLevel('SILENT');
    out.mockRestore();
    err.mockRestore();
  }
}

/** The stack's signing-key secret (serverless.yml RegistrationSigningKey): RegisterRole may read it, and only it. */
export const SIGNING_KEY_SECRET = STACK_NAMES.signingKeySecret;
export const REGISTRATION_PAGE = 'https://seller.example.com/register';

/**
 * The registration hook next to a running pipeline (tests/helpers/pipeline.ts): the production entry point
 * (functions/register.ts) loaded with its configuration from the environment, every SDK client of it pointed at the
 * pipeline's realistic-AWS layer (AWS_ENDPOINT_URL, and the signup queue's URL naming the layer: the SQS client
 * sends to the queue URL's host), which answers ResolveCustomer for the tokens the test registers (moto has none)
 * and forwards the rest to moto. Its signing key is a Secrets Manager secret, as deployed. One per test file: the
 * module reads its configuration once.
 */
export async function startRegistration(pipeline: Pipeline) {
  const moto = process.env.MOTO_ENDPOINT;
  if (!moto) throw new Error('MOTO_ENDPOINT is not set: run the integration project (its global setup starts moto)');
  const aws = pipeline.proxy;
  const signingKey = `it-signing-key-${crypto.randomUUID()}`;
  await pipeline.secrets.send(new CreateSecretCommand({ Name: SIGNING_KEY_SECRET, SecretString: signingKey }));
  Object.assign(process.env, {
    SIGNUP_QUEUE_URL: pipeline.queues.signupUrl.replace(moto, aws.endpoint),
    REGISTRATION_PAGE_URL: REGISTRATION_PAGE,
    REGISTRATION_SIGNING_KEY_SECRET_ID: SIGNING_KEY_SECRET,
  });
  // Loaded as the registration function's role: its cold start already reads the signing key (functions/register.ts).
  const { handler: registerHandler } = (await asPrincipal(PRINCIPALS.register, () => import('../../functions/register.js'))) as {
    handler: RegistrationHandler;
  };
  // Every request runs as the registration function's role (RegisterRole).
  const handler = actingAs(PRINCIPALS.register, registerHandler);
  return {
    /** The layer: `registerToken(token, customer, { expiresInMs })`, `configure({ resolveCustomer: … })`, `seen`. */
    aws,
    signingKey,
    /** POSTs a form body to the hook as a function URL would. */
    post: (body: string, options?: Parameters<typeof formPost>[1]) => handler(formPost(body, options), lambdaContext(10_000)),
  };
}
