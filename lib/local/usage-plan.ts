/**
 * `npm start -- --usage-plans`: a usage plan on the local AWS, so that keys can be seen going into one. On AWS a usage
 * plan serves real API stages, so this creates what one needs: a REST API with one keyed method (GET / with a MOCK
 * integration; moto refuses a deployment without a method and an integration), deployed to a stage, and the plan
 * serving that stage. Existing ones (by name) are reused, so a kept moto can run it again.
 */
import {
  type APIGatewayClient,
  CreateDeploymentCommand,
  CreateRestApiCommand,
  CreateUsagePlanCommand,
  GetResourcesCommand,
  GetRestApisCommand,
  GetUsagePlanKeysCommand,
  GetUsagePlansCommand,
  PutIntegrationCommand,
  PutMethodCommand,
} from '@aws-sdk/client-api-gateway';
import { RejectedError } from '../errors.js';
import { parseMessageBody } from '../messages/index.js';

export interface LocalUsagePlan {
  id: string;
  /** `<apiId>/<stage>`, the API stage it serves. */
  apiStage: string;
  created: boolean;
}

/** The product codes of the bodies the function can read (the keys a USAGE_PLANS map needs); unreadable ones are skipped. */
export function productCodesOf(bodies: string[]): string[] {
  const codes = new Set<string>();
  for (const body of bodies) {
    try {
      const code = parseMessageBody(body).productCode;
      if (code) codes.add(code);
    } catch (error) {
      if (!(error instanceof RejectedError)) throw error;
    }
  }
  return [...codes].sort();
}

async function ensureApiStage(apigw: APIGatewayClient, name: string, stage: string): Promise<{ apiId: string; created: boolean }> {
  const { items: apis = [] } = await apigw.send(new GetRestApisCommand({ limit: 500 }));
  const existing = apis.find((api) => api.name === name)?.id;
  if (existing) return { apiId: existing, created: false };
  const { id: apiId } = await apigw.send(
    new CreateRestApiCommand({ name, description: 'npm start --usage-plans: the API stage of the local usage plan' }),
  );
  if (!apiId) throw new Error('CreateRestApi answered without an id');
  await deployMockStage(apigw, apiId, stage);
  return { apiId, created: true };
}

/**
 * Deploys `stage` of a new REST API: a GET on its root (API key required) with a MOCK integration, since a usage
 * plan's apiStages must name a real stage and moto refuses a deployment without a method and an integration.
 */
export async function deployMockStage(apigw: APIGatewayClient, apiId: string, stage: string): Promise<void> {
  const { items = [] } = await apigw.send(new GetResourcesCommand({ restApiId: apiId }));
  const root = items.find((r) => r.path === '/')?.id;
  if (!root) throw new Error(`REST API ${apiId} has no root resource`);
  await apigw.send(
    new PutMethodCommand({ restApiId: apiId, resourceId: root, httpMethod: 'GET', authorizationType: 'NONE', apiKeyRequired: true }),
  );
  await apigw.send(new PutIntegrationCommand({ restApiId: apiId, resourceId: root, httpMethod: 'GET', type: 'MOCK' }));
  await apigw.send(new CreateDeploymentCommand({ restApiId: apiId, stageName: stage }));
}

/** Creates (or finds, by name) the REST API, its stage and the usage plan serving it. Throws the SDK's errors. */
export async function ensureLocalUsagePlan(apigw: APIGatewayClient, name: string, stage = 'local'): Promise<LocalUsagePlan> {
  const { apiId, created } = await ensureApiStage(apigw, name, stage);
  const { items: plans = [] } = await apigw.send(new GetUsagePlansCommand({ limit: 500 }));
  const existing = plans.find((plan) => plan.name === name)?.id;
  if (existing) return { id: existing, apiStage: `${apiId}/${stage}`, created };
  const { id } = await apigw.send(
    new CreateUsagePlanCommand({ name, description: 'npm start --usage-plans', apiStages: [{ apiId, stage }] }),
  );
  if (!id) throw new Error('CreateUsagePlan answered without an id');
  return { id, apiStage: `${apiId}/${stage}`, created: true };
}

/** The names of the keys in the usage plan (GetUsagePlanKeys, one page of 500: a local run has fewer). */
export async function usagePlanKeyNames(apigw: APIGatewayClient, usagePlanId: string): Promise<string[]> {
  const { items = [] } = await apigw.send(new GetUsagePlanKeysCommand({ usagePlanId, limit: 500 }));
  return items.flatMap((k) => (k.name ? [k.name] : [])).sort();
}
