import { APIGatewayClient, GetApiKeysCommand } from '@aws-sdk/client-api-gateway';
import { DynamoDBClient, GetItemCommand } from '@aws-sdk/client-dynamodb';
import { GetSecretValueCommand, ResourceNotFoundException, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { PurgeQueueCommand, SQSClient } from '@aws-sdk/client-sqs';
import { loadConfig } from '../../lib/config.js';
import { runEventSourceMapping, type SqsHandler } from '../../lib/local/event-source-mapping.js';
import { resetMoto } from '../../lib/local/moto.js';
import { peekQueue, sendBodies } from '../../lib/local/queues.js';
import { ensureCoordinationTable, ensureKeyRecordsTable, ensureQueues, type QueueSettings } from '../../lib/local/resources.js';
import type { CompletionEvent } from '../../lib/pipeline/completion.js';
import { createDeps } from '../../lib/pipeline/deps.js';
import { type BatchDeps, createBatchHandler } from '../../lib/pipeline/process-batch.js';
import type { RotationEvent } from '../../lib/pipeline/rotation.js';
import {
  actingAs,
  asPrincipal,
  type IamSwitch,
  NONE,
  REALISTIC,
  type RealisticAws,
  type RealisticSettings,
  startRealisticAws,
} from '../realistic-aws/index.js';
import { lambdaContext } from './events.js';
import { PRINCIPALS, STACK_FUNCTION_ARNS, STACK_NAMES, stackIamWorld } from './iam.js';

const purge = (sqs: SQSClient, url: string) => sqs.send(new PurgeQueueCommand({ QueueUrl: url }));

/** The stack's own names (serverless.yml, stage `test`): the IAM world's policies name them. */
const QUEUES = { signups: STACK_NAMES.signups, deadLetter: STACK_NAMES.deadLetter, completions: STACK_NAMES.completions };

/** The id the stack's KMS key (SecretsKey) has in the IAM world; the function names it by its alias, as deployed. */
export const SECRETS_KEY_ID = '0f2c4b7e-5a3d-4e21-9c8b-6d1e2f3a4b5c';

/**
 * The AWS the integration suites run against unless they say otherwise: the realistic layer's REALISTIC preset —
 * API Gateway throttling at 20 times the real quotas (fast suites, still a bucket), usage-plan writes one at a
 * time with 409 "concurrent modification" on overlap, 404 for an unknown plan, one plan per API stage for a key,
 * and GetApiKeys / ListSecrets that do not list what was created in the last 300 ms. Faults (chaos, denials,
 * partial batch failures) stay off: a suite turns them on where it tests them.
 */
export const PIPELINE_AWS: Readonly<RealisticSettings> = REALISTIC;

/**
 * The function's retry policy in these suites. tests/helpers/env.ts gives 1 ms backoff capped at 20 ms, made for a
 * moto that never conflicts nor throttles: against the layer every attempt of a CreateUsagePlanKey would fall inside
 * one 50 ms write of another record, and a 429's Retry-After (at least 1 s) would never be waited for. Production
 * defaults are 100 ms / 10 s (lib/config.ts); these keep the same proportions to the layer's timings, faster.
 */
export const FUNCTION_RETRY = {
  RETRY_BASE_DELAY_MS: '50',
  RETRY_MAX_DELAY_MS: '1500',
} as const;

/** The usage-plan write turns table, as serverless.yml gives the function one (lib/quota/usage-plan-turns.ts). */
export const COORDINATION_TABLE_NAME = STACK_NAMES.coordinationTable;
/** The customers' records (KEY_RECORDS_TABLE), as serverless.yml gives the function one. */
export const KEY_RECORDS_TABLE_NAME = STACK_NAMES.keyRecordsTable;

/** SDK clients, all pointed at one endpoint. */
export interface AwsClients {
  sqs: SQSClient;
  apigw: APIGatewayClient;
  secrets: SecretsManagerClient;
}

/** Clients signing with `accessKeyId` (the layer's IAM switch takes a principal's name there; see iam/caller.ts). */
const clientsFor = (endpoint: string, accessKeyId = 'harness'): AwsClients => {
  const config = { endpoint, credentials: { accessKeyId, secretAccessKey: 'testing' } };
  return { sqs: new SQSClient(config), apigw: new APIGatewayClient(config), secrets: new SecretsManagerClient(config) };
};

/** The USAGE_PLANS values (plan ids) a suite configured: the UsagePlanIds the stack would be deployed with. */
function usagePlanIdsOf(usagePlans: string | undefined): string[] {
  if (!usagePlans) return [];
  return Object.values(JSON.parse(usagePlans) as Record<string, string>);
}

/**
 * The real pipeline on the test run's moto server: the production handler, its SDK clients pointed at moto through
 * the realistic-AWS layer (tests/realistic-aws: moto does the work, the layer answers as AWS would), real queues with
 * a redrive policy, and the event-source-mapping runner. One per test file: the handler reads its configuration
 * once, when first imported.
 *
 * The test's own clients (`sqs`, `apigw`, `secrets`) read and arrange state straight in moto, never through the
 * layer, so that an assertion sees what really is there; `viaLayer` holds clients through the layer, for the
 * operations tools under test (reconcile). `proxy` is the layer itself: `seen`, `inject`, `clear`, `injected` as the
 * old fault proxy had them, plus `configure` and `stats`.
 */
export async function startPipeline(
  settings: QueueSettings = { visibilityTimeoutSeconds: 2, maxReceiveCount: 2 },
  /** Runs on the fresh moto before the function loads; returns environment variables for the function (e.g. USAGE_PLANS). */
  setup?: (clients: { apigw: APIGatewayClient }) => Promise<Record<string, string>>,
  /** Switches of the layer, merged over {@link PIPELINE_AWS} (`undefined` turns one off). */
  aws: Partial<RealisticSettings> = {},
  /**
   * `iam: false` runs without the IAM switch. By default every call is evaluated against the packaged stack's
   * policies (tests/helpers/iam.ts): the function's as its role, `send` as the seller's producer, `operator` clients
   * under docs/operator-policy.json; the test's own clients (`sqs`, `apigw`, `secrets`, `viaLayer`) are the harness.
   * REALISTIC_IAM=off in the environment turns it off for a whole run (to tell an IAM failure from another).
   */
  options: { iam?: boolean } = {},
) {
  const moto = process.env.MOTO_ENDPOINT;
  if (!moto) throw new Error('MOTO_ENDPOINT is not set: run the integration project (its global setup starts moto)');
  await resetMoto(moto);
  const proxy: RealisticAws = await startRealisticAws(moto, { ...PIPELINE_AWS, ...aws });
  const { sqs, apigw, secrets } = clientsFor(moto);
  const viaLayer = clientsFor(proxy.endpoint);
  /** Clients of an operator (reconcile in-process): evaluated under docs/operator-policy.json. */
  const operator = clientsFor(proxy.endpoint, PRINCIPALS.operator);
  const queues = await ensureQueues(sqs, QUEUES, settings);
  await ensureCoordinationTable(new DynamoDBClient({ endpoint: moto }), COORDINATION_TABLE_NAME);
  await ensureKeyRecordsTable(new DynamoDBClient({ endpoint: moto }), KEY_RECORDS_TABLE_NAME);
  Object.assign(
    process.env,
    FUNCTION_RETRY,
    { COORDINATION_TABLE: COORDINATION_TABLE_NAME, KEY_RECORDS_TABLE: KEY_RECORDS_TABLE_NAME },
    await setup?.({ apigw }),
  );
  // The secrets' key by its alias, as deployed (serverless.yml SECRET_KMS_KEY_ID).
  process.env.SECRET_KMS_KEY_ID = STACK_NAMES.secretsKeyAlias;
  const iam: IamSwitch | undefined =
    options.iam === false || process.env.REALISTIC_IAM === 'off'
      ? undefined
      : proxy.useIam(
          stackIamWorld({
            secretsKeyId: SECRETS_KEY_ID,
            usagePlanIds: usagePlanIdsOf(process.env.USAGE_PLANS),
            rotationSchedule: process.env.ROTATION_SCHEDULE,
          }),
        );

  // Every call of the function goes through the layer; the SQS client sends to the queue URL's host, so the
  // completion queue's URL names the layer too.
  process.env.AWS_ENDPOINT_URL = proxy.endpoint;
  process.env.COMPLETION_QUEUE_URL = queues.completionUrl.replace(moto, proxy.endpoint);
  // Loaded as the function's role, as Lambda runs a cold start.
  const { handler: provisionHandler } = (await asPrincipal(PRINCIPALS.provision, () => import('../../functions/provision.js'))) as {
    handler: SqsHandler;
  };
  /** Every invocation runs as the provision function's role (ProvisionRole). */
  const asProvision = (h: SqsHandler): SqsHandler => actingAs(PRINCIPALS.provision, h);
  const handler = asProvision(provisionHandler);
  // The provision function is the customers' secrets' rotation function: Secrets Manager invokes it, as its role,
  // for RotateSecret's configuration test (the layer's rotation.ts).
  const rotationHandler = provisionHandler as unknown as (
    event: RotationEvent,
    context: ReturnType<typeof lambdaContext>,
  ) => Promise<unknown>;
  proxy.rotationFunction(STACK_FUNCTION_ARNS.provision, (event) =>
    actingAs(PRINCIPALS.provision, () => rotationHandler(event, lambdaContext()))(),
  );
  // Calls made outside the function — Lambda's event source mapping, which receives and deletes with the function's
  // role, and the seller's producer sending signups — go through a layer of their own: the same IAM world and no
  // other switch, so that a suite's faults, throttling and injected rules (aimed at the function) never meet them.
  const outside = iam ? await startRealisticAws(moto, NONE) : undefined;
  const outsideIam = outside?.useIam(iam?.world);
  const outsideClient = (principal: string) =>
    outside ? new SQSClient({ endpoint: outside.endpoint, credentials: { accessKeyId: principal, secretAccessKey: 'testing' } }) : sqs;
  let deployedPlans = usagePlanIdsOf(process.env.USAGE_PLANS);
  /** The stack redeployed with these usage plans as well (the IAM world of both layers). */
  const deployPlans = (planIds: string[]) => {
    deployedPlans = [...new Set([...deployedPlans, ...planIds])];
    const world = stackIamWorld({
      secretsKeyId: SECRETS_KEY_ID,
      usagePlanIds: deployedPlans,
      rotationSchedule: process.env.ROTATION_SCHEDULE,
    });
    for (const layer of [iam, outsideIam]) if (layer) layer.world = world;
  };
  const pollerSqs = outsideClient(PRINCIPALS.provision);
  const publisherSqs = outsideClient(PRINCIPALS.publisher);
  const outsideSignupUrl = outside ? queues.signupUrl.replace(moto, outside.endpoint) : queues.signupUrl;

  /**
   * Moves every message of the DLQ back to the signup queue (receive, send, then delete), as an operator's replay
   * does; returns, for each, its id in the DLQ and the id of its new copy.
   */
  async function redriveDeadLetters(): Promise<Array<{ deadLetterId: string; messageId: string }>> {
    const messages = await peekQueue(sqs, queues.deadLetterUrl);
    const ids = await sendBodies(
      sqs,
      queues.signupUrl,
      messages.map((m) => m.Body ?? ''),
    );
    await purge(sqs, queues.deadLetterUrl);
    return messages.map((m, i) => ({ deadLetterId: m.MessageId ?? '', messageId: ids[i] ?? '' }));
  }

  const dynamodb = new DynamoDBClient({ endpoint: moto });
  async function recordOf(secretName: string): Promise<Record<string, unknown> | undefined> {
    // `<prefix><product or _>/<customer>/api-key` → `<product or _>/<customer>`, whatever the prefix.
    const key = secretName
      .replace(/\/api-key$/, '')
      .split('/')
      .slice(-2)
      .join('/');
    const { Item } = await dynamodb.send(
      new GetItemCommand({ TableName: KEY_RECORDS_TABLE_NAME, Key: { pk: { S: key } }, ConsistentRead: true }),
    );
    return Item?.record?.S ? (JSON.parse(Item.record.S) as Record<string, unknown>) : undefined;
  }

  return {
    proxy,
    queues,
    sqs,
    apigw,
    secrets,
    viaLayer,
    /** The layer's IAM switch (its `denials` and `problems`), undefined with `iam: false`. */
    iam,
    operator,
    /** Sends each body (objects as JSON) to the signup queue as the seller's producer; returns the SQS message ids. */
    send: (...bodies: unknown[]) =>
      sendBodies(
        publisherSqs,
        outsideSignupUrl,
        bodies.map((b) => (typeof b === 'string' ? b : JSON.stringify(b))),
      ),
    /**
     * A new function instance (configuration, clients, caches of its own): the production batch handler, built from
     * the environment as it is now plus `env`, with some of its dependencies replaced by `override` (e.g. to crash
     * after a step). `env` is read once, here, as a cold start would: the process environment is left as it was.
     */
    handlerWith: (override: (deps: BatchDeps) => BatchDeps = (deps) => deps, env: Record<string, string> = {}): SqsHandler => {
      // A new USAGE_PLANS is a redeployment: usagePlanIds then names its plans too (serverless.yml UsagePlanKeysPolicy).
      // (Union with the plans deployed before: a key moved out of a plan needs DeleteUsagePlanKey on the old one.)
      deployPlans(usagePlanIdsOf(env.USAGE_PLANS ?? process.env.USAGE_PLANS));
      return asProvision(createBatchHandler(override(createDeps(loadConfig({ ...process.env, ...env })))));
    },
    /** Runs a handler (the function's, by default) as Lambda's event source mapping would, until the signup queue is empty. */
    async drain(
      options: { maxDurationMs?: number; maxInvocations?: number; handler?: SqsHandler; concurrency?: number; batchSize?: number } = {},
    ) {
      const handedBack = new Map<string, number>();
      const run = await runEventSourceMapping({
        sqs: pollerSqs,
        queueUrl: outsideSignupUrl,
        queueArn: queues.signupArn,
        handler: options.handler ?? handler,
        functionTimeoutMs: 20_000,
        // The stack's function, as Lambda names it in the context (its invokedFunctionArn is the one its role may name).
        functionName: STACK_NAMES.provisionFunction,
        maxDurationMs: options.maxDurationMs ?? 60_000,
        maxInvocations: options.maxInvocations,
        concurrency: options.concurrency,
        batchSize: options.batchSize,
        onBatch: (report) => {
          for (const id of report.handedBack) handedBack.set(id, (handedBack.get(id) ?? 0) + 1);
        },
      });
      return { ...run, handedBack };
    },
    /** Empties the completion queue (between scenarios of one file). */
    clearCompletions: () => purge(sqs, queues.completionUrl),
    completionEvents: async () => (await peekQueue(sqs, queues.completionUrl)).map((m) => JSON.parse(m.Body ?? '{}') as CompletionEvent),
    deadLetterIds: async () => (await peekQueue(sqs, queues.deadLetterUrl)).map((m) => m.MessageId ?? ''),
    redriveDeadLetters,
    /** {@link redriveDeadLetters}, counting the messages moved. */
    replayDeadLetters: async () => (await redriveDeadLetters()).length,
    /** Every API key in moto, with its value. */
    apiKeys: async () => (await apigw.send(new GetApiKeysCommand({ includeValues: true, limit: 500 }))).items ?? [],
    /** The customer's record in the record table, found by its secret's name (`<prefix><product>/<customer>/api-key`). */
    record: (secretName: string) => recordOf(secretName),
    /**
     * What is stored for the customer of a secret name: the record (table) with the secret's content (the value) over
     * it; the record alone when there is no secret (a revoke before any key).
     */
    secretJson: async (secretName: string) => {
      const record = await recordOf(secretName);
      try {
        // AWSCURRENT named: moto without it answers the version last written as current, not the one a roll moved
        // AWSCURRENT to (tests/realistic-aws/secrets.ts currentByDefault).
        const { SecretString } = await secrets.send(new GetSecretValueCommand({ SecretId: secretName, VersionStage: 'AWSCURRENT' }));
        return { ...record, ...(JSON.parse(SecretString ?? '{}') as Record<string, unknown>) };
      } catch (error) {
        if (record && error instanceof ResourceNotFoundException) return record;
        throw error;
      }
    },
    async close() {
      for (const clients of [{ sqs, apigw, secrets }, viaLayer, operator]) for (const client of Object.values(clients)) client.destroy();
      if (outside) {
        pollerSqs.destroy();
        publisherSqs.destroy();
        await outside.close();
      }
      await proxy.close();
      // REALISTIC_IAM_REPORT=1: every denial of the suite on stderr (which statement a failing test misses).
      const denials = [...(iam?.denials ?? []), ...(outsideIam?.denials ?? [])];
      if (process.env.REALISTIC_IAM_REPORT) for (const d of denials) console.error(`realistic-aws iam denied: ${JSON.stringify(d)}`);
      // A request the IAM switch could not judge was answered 500: the suite fails here, naming it, even if it coped.
      const problems = [...(iam?.problems ?? []), ...(outsideIam?.problems ?? []), ...proxy.rotationProblems()];
      if (problems.length > 0)
        throw new Error(`realistic-aws could not answer as AWS (iam, rotation):\n${[...new Set(problems)].join('\n')}`);
    },
  };
}

export type Pipeline = Awaited<ReturnType<typeof startPipeline>>;
