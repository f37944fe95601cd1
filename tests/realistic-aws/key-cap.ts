import { type AwsRequest, type AwsResponse, awsError, motoGet } from './http.js';
import type { Operation } from './operations.js';
import type { KeyCapSettings } from './settings.js';
import { collectionItems } from './usage-plans.js';

/**
 * API Gateway's wall: "API keys per account per Region | 10000 | No" (API Gateway quotas, "Quotas for configuring
 * and running a REST API"). AWS does not document how CreateApiKey fails beyond it. The model here is the most
 * plausible reading (/work/shared/reference/aws-facts.md, "A key's life after creation"): LimitExceededException with
 * HTTP 429 — the shape API Gateway gives its rate limits too, so a client cannot tell a full Region from a throttle
 * by the error alone (the function decides from a count of the keys: lib/customer-key/provision.ts). Every key in
 * moto counts, enabled or not, the pipeline's or anyone's: only DeleteApiKey frees a slot.
 */
export async function keyCapReached(
  moto: URL,
  op: Operation,
  req: AwsRequest,
  cap: KeyCapSettings | undefined,
): Promise<AwsResponse | undefined> {
  if (!cap || op.service !== 'apigateway' || op.name !== 'CreateApiKey') return undefined;
  // moto answers GetApiKeys in one page whatever the limit (tests/unit/api-key-paging.test.ts).
  const keys = collectionItems((await motoGet(moto, req, '/apikeys?limit=500')).json);
  if (keys.length < cap.max) return undefined;
  return awsError(op, 429, 'LimitExceededException', `API key limit exceeded: ${cap.max} API keys per account and Region`);
}
