/**
 * The benchmark's AWS: one moto, behind the realistic-AWS layer (tests/realistic-aws) that throttles API Gateway
 * like the real control plane and serialises usage-plan writes with 409s; per strategy a fresh moto state, the
 * pipeline's queues and (for usage plans) a REST API stage with its usage plan; afterwards, what moto holds.
 */
import {
  APIGatewayClient,
  CreateDeploymentCommand,
  CreateRestApiCommand,
  CreateUsagePlanCommand,
  GetApiKeysCommand,
  GetResourcesCommand,
  GetUsagePlanKeysCommand,
  PutIntegrationCommand,
  PutMethodCommand,
} from '@aws-sdk/client-api-gateway';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { type MotoServer, resetMoto, startMoto } from '../../lib/local/moto.js';
import { ensureCoordinationTable, ensureKeyRecordsTable, ensureQueues, type PipelineQueues } from '../../lib/local/resources.js';
import { REALISTIC, type RealisticAws, type RealisticStats, startRealisticAws } from '../realistic-aws/index.js';
import type { Scenario } from './scenarios.js';

/** Real AWS settings of serverless.yml, scaled by the time factor where they are times. */
export interface TimeScale {
  factor: number;
  /** Function timeout (serverless.yml: 30 s). */
  functionTimeoutMs: number;
  /** The signup queue's visibility timeout (serverless.yml: 181 s): how late a record handed back without a known wait comes back. */
  visibilityTimeoutSeconds: number;
}

export const NAME_PREFIX = 'keyprov/bench/';
export const PRODUCT_CODE = 'bench';
/** Customer ids of the leavers the `maintenance` scenario seeds (tests/bench/maintenance.ts): `leaver-00042`. */
export const LEAVER_PREFIX = 'leaver-';
/** The usage-plan write turns table (serverless.yml CoordinationTable), in every strategy's moto state. */
export const COORDINATION_TABLE_NAME = 'bench-coordination';
/** The customers' records (serverless.yml KeyRecordsTable, KEY_RECORDS_TABLE), in every strategy's moto state. */
export const KEY_RECORDS_TABLE_NAME = 'bench-key-records';

export interface World {
  moto: MotoServer;
  aws: RealisticAws;
  close(): Promise<void>;
}

/** moto, and the layer in front of it with API Gateway quotas × `factor` and REALISTIC's other switches. */
export async function startWorld(factor: number): Promise<World> {
  const moto = await startMoto();
  // GetApiKeys paged as AWS pages it: the sweep counts the Region's keys, 500 a call.
  const aws = await startRealisticAws(moto.endpoint, { ...REALISTIC, throttle: { factor }, apiKeyPaging: true });
  return {
    moto,
    aws,
    async close() {
      await aws.close();
      await moto.stop();
    },
  };
}

export interface Prepared extends PipelineQueues {
  /** The usage plan the keys go into, when the scenario has usage plans. */
  usagePlanId?: string;
}

/**
 * A fresh moto state for one strategy: queues as serverless.yml configures them (maxReceiveCount 10, the visibility
 * timeout of `time`), the usage-plan write turns table, the record table, and for usage plans a REST API with a stage and a usage plan serving it. Created
 * directly in moto, so that the layer's buckets and statistics only see the pipeline.
 */
export async function prepare(world: World, scenario: Scenario, time: TimeScale): Promise<Prepared> {
  await resetMoto(world.moto.endpoint);
  world.aws.configure({ throttle: { factor: time.factor, neighbourShare: scenario.neighbourShare || undefined } });
  const sqs = new SQSClient({ endpoint: world.moto.endpoint });
  const queues = await ensureQueues(
    sqs,
    { signups: 'bench-signups', deadLetter: 'bench-signups-dlq', completions: 'bench-completions' },
    { visibilityTimeoutSeconds: time.visibilityTimeoutSeconds, maxReceiveCount: 10 },
  );
  const dynamodb = new DynamoDBClient({ endpoint: world.moto.endpoint });
  await ensureCoordinationTable(dynamodb, COORDINATION_TABLE_NAME);
  await ensureKeyRecordsTable(dynamodb, KEY_RECORDS_TABLE_NAME);
  if (!scenario.usagePlans) return queues;
  return { ...queues, usagePlanId: await usagePlanWithStage(new APIGatewayClient({ endpoint: world.moto.endpoint })) };
}

/** A REST API with a deployed stage, and a usage plan serving it (made in moto directly); returns the plan id. */
export async function usagePlanWithStage(apigw: APIGatewayClient): Promise<string> {
  const api = await apigw.send(new CreateRestApiCommand({ name: 'bench-api' }));
  const restApiId = api.id as string;
  const { items = [] } = await apigw.send(new GetResourcesCommand({ restApiId }));
  const resourceId = items.find((r) => r.path === '/')?.id as string;
  await apigw.send(new PutMethodCommand({ restApiId, resourceId, httpMethod: 'GET', authorizationType: 'NONE', apiKeyRequired: true }));
  await apigw.send(new PutIntegrationCommand({ restApiId, resourceId, httpMethod: 'GET', type: 'MOCK' }));
  await apigw.send(new CreateDeploymentCommand({ restApiId, stageName: 'prod' }));
  const plan = await apigw.send(new CreateUsagePlanCommand({ name: 'bench-plan', apiStages: [{ apiId: restApiId, stage: 'prod' }] }));
  return plan.id as string;
}

export interface Outcome {
  /** Customers with a key (provisioned or not yet). */
  keys: number;
  /** Keys beyond one per customer. */
  duplicateKeys: number;
  /** Keys reported provisioned (`provisioned`: their customers) that are not in the scenario's usage plan. */
  keysOutsidePlan: number;
  /** Keys not in the plan whose provisioning was not reported done when the run stopped (its next step). */
  keysNotYetInPlan: number;
  dlqMessages: number;
  /** Signups still on the signup queue (visible or in flight). */
  leftOnQueue: number;
}

/** What moto holds after a run, read from moto directly (uncounted, unthrottled, no listing lag). */
export async function outcome(world: World, prepared: Prepared, provisioned: ReadonlySet<string>): Promise<Outcome> {
  const apigw = new APIGatewayClient({ endpoint: world.moto.endpoint });
  const sqs = new SQSClient({ endpoint: world.moto.endpoint });
  // moto ignores paging (one page holds every key).
  const { items = [] } = await apigw.send(new GetApiKeysCommand({ limit: 500, nameQuery: NAME_PREFIX }));
  // The seeded leavers' keys are the sweep's to delete (tests/bench/maintenance.ts counts what is left of them).
  const ours = items.filter((k) => k.name?.startsWith(NAME_PREFIX) && !k.customerId?.startsWith(LEAVER_PREFIX));
  const customers = new Set(ours.map((k) => k.customerId));
  let keysOutsidePlan = 0;
  let keysNotYetInPlan = 0;
  if (prepared.usagePlanId) {
    const inPlan = await apigw.send(new GetUsagePlanKeysCommand({ usagePlanId: prepared.usagePlanId, limit: 500 }));
    const ids = new Set((inPlan.items ?? []).map((k) => k.id));
    const outside = ours.filter((k) => !ids.has(k.id));
    keysOutsidePlan = outside.filter((k) => k.customerId !== undefined && provisioned.has(k.customerId)).length;
    keysNotYetInPlan = outside.length - keysOutsidePlan;
  }
  const count = async (url: string) => {
    const { Attributes = {} } = await sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl: url,
        AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
      }),
    );
    return Number(Attributes.ApproximateNumberOfMessages ?? 0) + Number(Attributes.ApproximateNumberOfMessagesNotVisible ?? 0);
  };
  return {
    keys: customers.size,
    duplicateKeys: ours.length - customers.size,
    keysOutsidePlan,
    keysNotYetInPlan,
    dlqMessages: await count(prepared.deadLetterUrl),
    leftOnQueue: await count(prepared.signupUrl),
  };
}

/** API Gateway operations in the layer's statistics: REST names (`CreateApiKey`); JSON protocols are `prefix.Name`. */
const isApiGatewayKey = (key: string) => /^[A-Z][A-Za-z]+$/.test(key);

/** API Gateway calls, throttled ones and usage-plan 409s, from the layer's statistics. */
export function apiGatewayCalls(stats: RealisticStats): { calls: number; throttled: number; conflicts: number } {
  const sum = (table: Record<string, number>) =>
    Object.entries(table)
      .filter(([key]) => isApiGatewayKey(key))
      .reduce((n, [, v]) => n + v, 0);
  return { calls: sum(stats.requests), throttled: sum(stats.throttled), conflicts: sum(stats.conflicts) };
}
