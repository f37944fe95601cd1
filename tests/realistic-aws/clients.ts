import {
  APIGatewayClient,
  CreateApiKeyCommand,
  CreateUsagePlanCommand,
  CreateUsagePlanKeyCommand,
  GetApiKeysCommand,
} from '@aws-sdk/client-api-gateway';
import { CreateSecretCommand, ListSecretsCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';

let counter = 0;
/** A name no other test of the run uses (moto is reset once per suite, not per test). */
export const unique = (prefix: string) => `${prefix}-${++counter}-${Date.now().toString(36)}`;

/**
 * SDK clients for tests of (or through) the layer, with the few resource helpers those tests need.
 * `maxAttempts: 1`: the SDK must not retry, or it would hide what the layer answered. With the installed
 * @smithy/node-http-handler a `requestTimeout` only logs a warning unless `throwOnRequestTimeout` is set: it is set
 * here unless asked not to.
 */
export class TestClients {
  readonly apigw: APIGatewayClient;
  readonly secrets: SecretsManagerClient;
  readonly sqs: SQSClient;

  constructor(endpoint: string, options: { requestTimeoutMs?: number; throwOnRequestTimeout?: boolean } = {}) {
    const { requestTimeoutMs, throwOnRequestTimeout = true } = options;
    const config = {
      endpoint,
      region: 'us-east-1',
      credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
      maxAttempts: 1,
      ...(requestTimeoutMs === undefined ? {} : { requestHandler: { requestTimeout: requestTimeoutMs, throwOnRequestTimeout } }),
    };
    this.apigw = new APIGatewayClient(config);
    this.secrets = new SecretsManagerClient(config);
    this.sqs = new SQSClient(config);
  }

  async newKey(name = unique('key')): Promise<string> {
    return (await this.apigw.send(new CreateApiKeyCommand({ name, enabled: true }))).id ?? '';
  }

  async newPlan(apiStages: Array<{ apiId: string; stage: string }> = []): Promise<string> {
    return (await this.apigw.send(new CreateUsagePlanCommand({ name: unique('plan'), apiStages }))).id ?? '';
  }

  addKey(usagePlanId: string, keyId: string) {
    return this.apigw.send(new CreateUsagePlanKeyCommand({ usagePlanId, keyId, keyType: 'API_KEY' }));
  }

  async newSecret(name = unique('secret')): Promise<string> {
    await this.secrets.send(new CreateSecretCommand({ Name: name, SecretString: 'v1' }));
    return name;
  }

  async keyNames(prefix: string): Promise<Array<string | undefined>> {
    return ((await this.apigw.send(new GetApiKeysCommand({ nameQuery: prefix, limit: 500 }))).items ?? []).map((k) => k.name);
  }

  async secretNames(): Promise<Array<string | undefined>> {
    return ((await this.secrets.send(new ListSecretsCommand({ MaxResults: 100 }))).SecretList ?? []).map((s) => s.Name);
  }

  async queueDepth(queueUrl: string): Promise<number> {
    const { Attributes } = await this.sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['ApproximateNumberOfMessages'] }),
    );
    return Number(Attributes?.ApproximateNumberOfMessages);
  }

  destroy(): void {
    this.apigw.destroy();
    this.secrets.destroy();
    this.sqs.destroy();
  }
}

/** An SDK error as tests look at it. */
export type SdkError = Error & { $metadata?: { httpStatusCode?: number }; $fault?: string; retryAfterSeconds?: string };

/** The error a call fails with; throws if it succeeds. */
export async function failure(call: Promise<unknown>): Promise<SdkError> {
  try {
    await call;
  } catch (error) {
    return error as SdkError;
  }
  throw new Error('expected the call to fail, it succeeded');
}

/** Settles every call: what each gave, or the error it failed with. */
export const settle = <T>(calls: Array<Promise<T>>) =>
  Promise.all(
    calls.map((c) =>
      c.then(
        (value) => ({ ok: true as const, value }),
        (error: SdkError) => ({ ok: false as const, error }),
      ),
    ),
  );

/** The errors among settled calls. */
export const errorsOf = (results: Awaited<ReturnType<typeof settle>>) => results.flatMap((r) => (r.ok ? [] : [r.error]));

/** A ResolveCustomer call: status and `__type` (or the result). No Metering client is installed: JSON 1.1 by hand. */
export async function resolveCustomer(endpoint: string, token: string): Promise<{ status: number; json: Record<string, unknown> }> {
  const response = await fetch(endpoint, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-amz-json-1.1',
      'x-amz-target': 'AWSMPMeteringService.ResolveCustomer',
      authorization: 'AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/aws-marketplace/aws4_request, SignedHeaders=host, Signature=0',
    },
    body: JSON.stringify({ RegistrationToken: token }),
  });
  const text = await response.text();
  try {
    return { status: response.status, json: JSON.parse(text) as Record<string, unknown> };
  } catch {
    return { status: response.status, json: { raw: text } };
  }
}
