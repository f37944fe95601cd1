import type { IncomingHttpHeaders } from 'node:http';

/**
 * Naming an AWS request. Every switch of the layer is keyed by operation name, and moto does not tell us which
 * operation it ran, so the layer works it out from the request: the `X-Amz-Target` header of the JSON protocols
 * (SQS `AmazonSQS.X` and DynamoDB `DynamoDB_20120810.X`, JSON 1.0; Secrets Manager `secretsmanager.X` and Marketplace Metering `AWSMPMeteringService.X`,
 * JSON 1.1), else method + path for API Gateway's REST-JSON protocol. The SigV4 credential scope gives the Region.
 */

export type Service = 'apigateway' | 'secretsmanager' | 'sqs' | 'metering' | 'kms' | 'dynamodb' | 'other';

export interface Operation {
  service: Service;
  /** The API's operation name: `CreateApiKey`, `SendMessageBatch`, … (or `METHOD /shape` for an unknown route). */
  name: string;
  /** The key in the statistics: the `X-Amz-Target` for JSON protocols (unique across services), else `name`. */
  key: string;
  /** What the fault proxy's `seen` always recorded: the `X-Amz-Target`, else `METHOD path` (no query). */
  seen: string;
  /** From the SigV4 credential scope (moto keeps state per Region, and so does AWS); us-east-1 when unsigned. */
  region: string;
  /** True for signed or targeted calls: AWS calls, as opposed to moto's own `/moto-api`. */
  aws: boolean;
  /** The JSON protocol version of targeted calls (for the error content-type); undefined for REST. */
  jsonVersion: '1.0' | '1.1' | undefined;
  /** Path parameters of API Gateway routes: `usagePlanId`, `keyId`, `apiKeyId`, … (decoded). */
  params: Readonly<Record<string, string>>;
}

const TARGET_PREFIXES: Record<string, { service: Service; jsonVersion: '1.0' | '1.1' }> = {
  AmazonSQS: { service: 'sqs', jsonVersion: '1.0' },
  secretsmanager: { service: 'secretsmanager', jsonVersion: '1.1' },
  AWSMPMeteringService: { service: 'metering', jsonVersion: '1.1' },
  TrentService: { service: 'kms', jsonVersion: '1.1' },
  DynamoDB_20120810: { service: 'dynamodb', jsonVersion: '1.0' },
};

type Route = readonly [method: string, path: RegExp, name: string, params?: readonly string[]];

const ID = '([^/]+)';
const route = (method: string, shape: string, name: string, params?: readonly string[]): Route => [
  method,
  new RegExp(`^${shape.replaceAll('{}', ID)}$`),
  name,
  params,
];

/** API Gateway REST routes (service model `requestUri`s) of the calls this project and its tests make. */
const API_GATEWAY_ROUTES: readonly Route[] = [
  route('POST', '/apikeys', 'CreateApiKey'),
  route('GET', '/apikeys', 'GetApiKeys'),
  route('GET', '/apikeys/{}', 'GetApiKey', ['apiKeyId']),
  route('PATCH', '/apikeys/{}', 'UpdateApiKey', ['apiKeyId']),
  route('DELETE', '/apikeys/{}', 'DeleteApiKey', ['apiKeyId']),
  route('POST', '/usageplans', 'CreateUsagePlan'),
  route('GET', '/usageplans', 'GetUsagePlans'),
  route('GET', '/usageplans/{}', 'GetUsagePlan', ['usagePlanId']),
  route('PATCH', '/usageplans/{}', 'UpdateUsagePlan', ['usagePlanId']),
  route('DELETE', '/usageplans/{}', 'DeleteUsagePlan', ['usagePlanId']),
  route('POST', '/usageplans/{}/keys', 'CreateUsagePlanKey', ['usagePlanId']),
  route('GET', '/usageplans/{}/keys', 'GetUsagePlanKeys', ['usagePlanId']),
  route('GET', '/usageplans/{}/keys/{}', 'GetUsagePlanKey', ['usagePlanId', 'keyId']),
  route('DELETE', '/usageplans/{}/keys/{}', 'DeleteUsagePlanKey', ['usagePlanId', 'keyId']),
  route('GET', '/usageplans/{}/usage', 'GetUsage', ['usagePlanId']),
  route('PATCH', '/usageplans/{}/keys/{}/usage', 'UpdateUsage', ['usagePlanId', 'keyId']),
  route('POST', '/restapis', 'CreateRestApi'),
  route('GET', '/restapis', 'GetRestApis'),
  route('GET', '/restapis/{}', 'GetRestApi', ['restApiId']),
  route('PATCH', '/restapis/{}', 'UpdateRestApi', ['restApiId']),
  route('DELETE', '/restapis/{}', 'DeleteRestApi', ['restApiId']),
  route('GET', '/restapis/{}/resources', 'GetResources', ['restApiId']),
  route('POST', '/restapis/{}/deployments', 'CreateDeployment', ['restApiId']),
  route('POST', '/restapis/{}/stages', 'CreateStage', ['restApiId']),
  route('GET', '/restapis/{}/stages', 'GetStages', ['restApiId']),
  route('GET', '/restapis/{}/stages/{}', 'GetStage', ['restApiId', 'stageName']),
  route('PATCH', '/restapis/{}/stages/{}', 'UpdateStage', ['restApiId', 'stageName']),
  route('DELETE', '/restapis/{}/stages/{}', 'DeleteStage', ['restApiId', 'stageName']),
  route('PUT', '/tags/{}', 'TagResource', ['resourceArn']),
  route('GET', '/tags/{}', 'GetTags', ['resourceArn']),
  route('DELETE', '/tags/{}', 'UntagResource', ['resourceArn']),
  route('GET', '/account', 'GetAccount'),
];

const SCOPE = /Credential=[^/,\s]+\/\d{8}\/([^/]+)\/([^/]+)\/aws4_request/;

/** Region and service of a SigV4-signed request, from `Credential=AKID/DATE/REGION/SERVICE/aws4_request`. */
function credentialScope(headers: IncomingHttpHeaders): { region: string; service: string } | undefined {
  const match = SCOPE.exec(headers.authorization ?? '');
  return match?.[1] && match[2] ? { region: match[1], service: match[2] } : undefined;
}

const decode = (segment: string) => {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
};

function apiGatewayRoute(
  method: string,
  path: string,
  query: URLSearchParams,
): { name: string; params: Record<string, string> } | undefined {
  for (const [m, pattern, name, names = []] of API_GATEWAY_ROUTES) {
    const match = m === method ? pattern.exec(path) : null;
    if (!match) continue;
    const params = Object.fromEntries(names.map((n, i) => [n, decode(match[i + 1] ?? '')]));
    // ImportApiKeys shares CreateApiKey's route: POST /apikeys?mode=import.
    return { name: name === 'CreateApiKey' && query.get('mode') === 'import' ? 'ImportApiKeys' : name, params };
  }
  return undefined;
}

/** Names a request; `url` is the request target (`/usageplans/abc/keys?x=1`). */
export function operationOf(method: string, url: string, headers: IncomingHttpHeaders): Operation {
  const parsed = new URL(url, 'http://layer.invalid');
  const path = parsed.pathname;
  const scope = credentialScope(headers);
  const region = scope?.region ?? 'us-east-1';
  const rawTarget = headers['x-amz-target'];
  const target = Array.isArray(rawTarget) ? rawTarget[0] : rawTarget;
  if (target) {
    const [prefix = '', name = target] = target.split('.');
    const known = TARGET_PREFIXES[prefix];
    const service = known?.service ?? 'other';
    return { service, name, key: target, seen: target, region, aws: true, jsonVersion: known?.jsonVersion ?? '1.1', params: {} };
  }
  const seen = `${method} ${path}`;
  const found = apiGatewayRoute(method, path, parsed.searchParams);
  if (scope?.service === 'apigateway' || (!scope && found)) {
    const name = found?.name ?? `${method} ${path.replace(/\/[A-Za-z0-9]{6,}(?=\/|$)/g, '/{id}')}`;
    return { service: 'apigateway', name, key: name, seen, region, aws: true, jsonVersion: undefined, params: found?.params ?? {} };
  }
  return { service: 'other', name: seen, key: seen, seen, region, aws: scope !== undefined, jsonVersion: undefined, params: {} };
}

/** Usage-plan writes: on AWS "only one at a time in a Region" (serverless/serverless#12065). */
export const USAGE_PLAN_WRITES: ReadonlySet<string> = new Set([
  'CreateUsagePlan',
  'UpdateUsagePlan',
  'DeleteUsagePlan',
  'CreateUsagePlanKey',
  'DeleteUsagePlanKey',
]);

export const isUsagePlanWrite = (op: Operation) => op.service === 'apigateway' && USAGE_PLAN_WRITES.has(op.name);

/** Whether an {@link OperationList}-style setting names this operation. */
export const listed = (list: readonly string[] | 'all' | undefined, op: Operation) =>
  list !== undefined && (list === 'all' || list.includes(op.name));
