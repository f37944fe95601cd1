import { type AwsRequest, type AwsResponse, awsError, isRecord, jsonMember, motoGet } from './http.js';
import type { Operation } from './operations.js';

/**
 * Usage-plan rules moto does not enforce. moto answers `GET /usageplans/{id}` with 404 for an unknown plan but
 * accepts CreateUsagePlanKey (and lists keys) on any plan id; it also lets a key join two plans that serve the same
 * API stage. The checks below ask moto for the state they need, with the caller's signature (moto keeps state per
 * Region, chosen from it).
 */

/**
 * One usage-plan write at a time per Region. AWS Support, quoted in serverless/serverless#12065: CreateUsagePlanKey
 * "can run only one at a time in a Region"; an overlapping call gets 409 ConflictException.
 */
export class UsagePlanWriteLock {
  #busy = new Set<string>();

  /** Takes the Region's slot; false when a write is already in flight there. */
  tryAcquire(region: string): boolean {
    if (this.#busy.has(region)) return false;
    this.#busy.add(region);
    return true;
  }

  release(region: string): void {
    this.#busy.delete(region);
  }
}

/** Operations that name a usage plan in their path and, on AWS, answer 404 when it does not exist. */
const PLAN_SCOPED = new Set(['CreateUsagePlanKey', 'GetUsagePlanKeys', 'GetUsagePlanKey', 'DeleteUsagePlanKey']);

const planPath = (id: string) => `/usageplans/${encodeURIComponent(id)}`;

/** The items of an API Gateway collection: moto names the member `item`, AWS `items` (the SDK accepts either). */
export function collectionItems(json: unknown): Record<string, unknown>[] {
  if (!isRecord(json)) return [];
  const items = json.items ?? json.item;
  return Array.isArray(items) ? items.filter(isRecord) : [];
}

/**
 * 404 NotFoundException "Invalid Usage Plan ID specified" (moto's own text for GetUsagePlan, and AWS's) for a plan
 * that does not exist; the same for DeleteUsagePlanKey of a key that is not in the plan, which is what AWS answered
 * in hashicorp/terraform#14958, where moto fails with an HTML 500 (a KeyError).
 */
export async function unknownPlan(moto: URL, op: Operation, req: AwsRequest): Promise<AwsResponse | undefined> {
  const id = op.params.usagePlanId;
  if (!PLAN_SCOPED.has(op.name) || id === undefined) return undefined;
  const notFound = () => awsError(op, 404, 'NotFoundException', 'Invalid Usage Plan ID specified');
  if ((await motoGet(moto, req, planPath(id))).status === 404) return notFound();
  const keyId = op.params.keyId;
  if (op.name !== 'DeleteUsagePlanKey' || keyId === undefined) return undefined;
  const keys = collectionItems((await motoGet(moto, req, `${planPath(id)}/keys`)).json);
  return keys.some((k) => k.id === keyId) ? undefined : notFound();
}

type Stage = { apiId: string; stage: string };

function stagesOf(plan: Record<string, unknown>): Stage[] {
  const stages = Array.isArray(plan.apiStages) ? plan.apiStages.filter(isRecord) : [];
  return stages.flatMap((s) => (typeof s.apiId === 'string' && typeof s.stage === 'string' ? [{ apiId: s.apiId, stage: s.stage }] : []));
}

/**
 * "A given API key can only be associated with one usage plan for each stage of your API" (API Gateway developer
 * guide, api-gateway-api-usage-plans). The refusal is a 400 BadRequestException; its text is the one AWS users
 * report, not found in the sources searchable here (README.md says so).
 */
export async function planStageConflict(moto: URL, op: Operation, req: AwsRequest): Promise<AwsResponse | undefined> {
  const planId = op.params.usagePlanId;
  const keyId = jsonMember(req.body, 'keyId');
  if (op.name !== 'CreateUsagePlanKey' || planId === undefined || keyId === undefined) return undefined;
  const plans = collectionItems((await motoGet(moto, req, '/usageplans')).json);
  const target = plans.find((p) => p.id === planId);
  const stages = target ? stagesOf(target) : [];
  if (stages.length === 0) return undefined;
  for (const plan of plans) {
    if (plan.id === planId || typeof plan.id !== 'string') continue;
    const shared = stagesOf(plan).find((s) => stages.some((t) => t.apiId === s.apiId && t.stage === s.stage));
    if (!shared) continue;
    const keys = collectionItems((await motoGet(moto, req, `${planPath(plan.id)}/keys`)).json);
    if (!keys.some((k) => k.id === keyId)) continue;
    const message = `Usage Plan ${planId} cannot be added because API Key ${keyId} cannot reference multiple Usage Plans with the same API Stage: ${shared.apiId}:${shared.stage}`;
    return awsError(op, 400, 'BadRequestException', message);
  }
  return undefined;
}
