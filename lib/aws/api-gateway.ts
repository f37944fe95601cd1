/**
 * The API Gateway adapter: one port, {@link ApiKeyStore}, over two concepts — the keys (lib/aws/api-gateway-keys.ts)
 * and their usage plans (lib/aws/api-gateway-usage-plans.ts) — on one client (lib/aws/api-gateway-client.ts).
 */
import type { APIGatewayClient } from '@aws-sdk/client-api-gateway';
import type { CallTable } from '../quota/call-path.js';
import { API_KEY_CALLS, type ApiKeys, apiKeysAdapter } from './api-gateway-keys.js';
import { USAGE_PLAN_KEY_CALLS, type UsagePlanKeys, usagePlanKeysAdapter } from './api-gateway-usage-plans.js';

export { createApiGatewayClient } from './api-gateway-client.js';
export type { ApiKeys, ListedApiKey, NewApiKey } from './api-gateway-keys.js';
export type { UsagePlanKeys } from './api-gateway-usage-plans.js';

/** What the use cases and the operations tools ask of API Gateway: its keys, and their usage plans. */
export interface ApiKeyStore extends ApiKeys, UsagePlanKeys {}

/**
 * API Gateway adapter: every method one SDK call (a usage-plan write's 409 adds a look at the plan; the paged ones a
 * call per page), SDK errors turned into the product's errors.
 */
export function apiGatewayAdapter(client: APIGatewayClient): ApiKeyStore {
  return { ...apiKeysAdapter(client), ...usagePlanKeysAdapter(client) };
}

/** The operation of each method of {@link ApiKeyStore}, for the call path (lib/quota/call-path.ts). */
export const API_GATEWAY_CALLS: CallTable<ApiKeyStore> = { ...API_KEY_CALLS, ...USAGE_PLAN_KEY_CALLS };
