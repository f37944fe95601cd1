import { type APIGatewayClient, CreateRestApiCommand, CreateUsagePlanCommand, GetUsagePlanKeysCommand } from '@aws-sdk/client-api-gateway';
import { deployMockStage } from '../../lib/local/usage-plan.js';

/** An API stage a usage plan serves: `apiId` is a real REST API, `stage` one of its deployed stages. */
export interface ApiStage {
  apiId: string;
  stage: string;
}

/**
 * Creates a REST API with one keyed method (GET / with a MOCK integration, `apiKeyRequired`) and deploys it to
 * `stage`: on AWS a usage plan's apiStages must name a real stage, and moto refuses a deployment without a method
 * and an integration. Returns the stage for {@link createUsagePlan}.
 */
export async function createApiStage(apigw: APIGatewayClient, name: string, stage = 'prod'): Promise<ApiStage> {
  const { id: apiId } = await apigw.send(new CreateRestApiCommand({ name }));
  if (!apiId) throw new Error('CreateRestApi answered without an id');
  await deployMockStage(apigw, apiId, stage);
  return { apiId, stage };
}

/** Creates a usage plan serving `stages` and returns its id. */
export async function createUsagePlan(apigw: APIGatewayClient, name: string, stages: ApiStage[]): Promise<string> {
  const { id } = await apigw.send(new CreateUsagePlanCommand({ name, description: `${name} (test)`, apiStages: stages }));
  if (!id) throw new Error('CreateUsagePlan answered without an id');
  return id;
}

/** The ids of the keys in a usage plan (GetUsagePlanKeys; moto returns one page). */
export async function usagePlanKeyIds(apigw: APIGatewayClient, usagePlanId: string): Promise<string[]> {
  const { items = [] } = await apigw.send(new GetUsagePlanKeysCommand({ usagePlanId, limit: 500 }));
  return items.flatMap((k) => (k.id ? [k.id] : []));
}
