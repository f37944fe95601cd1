import { type AwsRequest, type AwsResponse, awsError, jsonMember } from './http.js';
import { isUsagePlanWrite, listed, type Operation } from './operations.js';
import { SeededRandom } from './random.js';
import type { AccessDeniedSettings, ChaosKind, ChaosPhase, ChaosSettings } from './settings.js';

/**
 * A fault to inject, as the former fault proxy of the integration suites took them (same shape, same behaviour): requests matching it are
 * answered with an AWS-style JSON error (or held) instead of being forwarded.
 */
export interface FaultRule {
  method?: string;
  /** Matched against the URL path (REST APIs such as API Gateway: `/apikeys`). */
  path?: string | RegExp;
  /** Matched against the request body (e.g. a customerId). */
  bodyIncludes?: string;
  /** Matched against the `X-Amz-Target` header of JSON protocols, e.g. `secretsmanager.PutSecretValue`. */
  target?: string;
  status: number;
  errorType: string;
  /** Never answer a matching request (as if the caller died waiting); `onMatch` says when one arrived. */
  hold?: boolean;
  onMatch?: () => void;
  retryAfterSeconds?: number;
  /** How many matching requests fail; Infinity for all. */
  times: number;
}

/** What the layer does with a request instead of (or after) answering it normally. */
export type Outcome = { kind: 'respond'; response: AwsResponse } | { kind: 'hold' } | { kind: 'reset' };

/** The injected rules, first match wins; explicit test intent, so they come before every switch. */
export class FaultRules {
  #rules: Array<FaultRule & { used: number }> = [];

  inject(rule: FaultRule): void {
    this.#rules.push({ ...rule, used: 0 });
  }

  clear(): void {
    this.#rules.splice(0);
  }

  injected(): number[] {
    return this.#rules.map((r) => r.used);
  }

  match(req: AwsRequest): Outcome | undefined {
    const path = new URL(req.url, 'http://layer.invalid').pathname;
    const target = req.headers['x-amz-target'];
    const rule = this.#rules.find(
      (r) =>
        r.used < r.times &&
        (!r.method || r.method === req.method) &&
        (!r.path || (typeof r.path === 'string' ? r.path === path : r.path.test(path))) &&
        (!r.bodyIncludes || req.body.toString('utf8').includes(r.bodyIncludes)) &&
        (!r.target || target === r.target),
    );
    if (!rule) return undefined;
    rule.used++;
    rule.onMatch?.();
    if (rule.hold) return { kind: 'hold' };
    const headers: Record<string, string> = { 'content-type': 'application/json', 'x-amzn-ErrorType': rule.errorType };
    if (rule.retryAfterSeconds !== undefined) headers['retry-after'] = String(rule.retryAfterSeconds);
    const body = Buffer.from(JSON.stringify({ message: `injected ${rule.errorType}`, __type: rule.errorType }));
    return { kind: 'respond', response: { status: rule.status, headers, body } };
  }
}

const DEFAULT_PRINCIPAL = 'arn:aws:sts::123456789012:assumed-role/api-key-provisioner-role/provision';

/** Secrets Manager operations that use the secret's KMS key (to encrypt or decrypt a value). */
const KMS_USING = ['CreateSecret', 'GetSecretValue', 'BatchGetSecretValue', 'PutSecretValue', 'UpdateSecret', 'RotateSecret'];

/**
 * IAM and KMS denials in the shape each service gives them. Secrets Manager: HTTP 400 `AccessDeniedException`
 * "User: … is not authorized to perform: secretsmanager:Op on resource: SecretId because no identity-based policy
 * allows the secretsmanager:Op action" (e.g. mongodb/awscdk-resources-mongodbatlas#207), and "Access to KMS is not
 * allowed" when the key policy refuses (aws/aws-cdk#7677). API Gateway: HTTP 403 `AccessDeniedException`, IAM action
 * `apigateway:METHOD` on the resource `arn:aws:apigateway:REGION::/path` (aws/aws-sdk-js-v3#2567). DynamoDB: HTTP
 * 400 `AccessDeniedException` "User: … is not authorized to perform: dynamodb:Op on resource:
 * arn:aws:dynamodb:REGION:ACCOUNT:table/NAME" (boostchicken/spring-data-dynamodb#558; the DynamoDB developer guide,
 * "Error handling with DynamoDB", lists AccessDeniedException among the 400s).
 */
export function accessDenied(op: Operation, req: AwsRequest, settings: AccessDeniedSettings | undefined): AwsResponse | undefined {
  if (!settings) return undefined;
  const principal = settings.principal ?? DEFAULT_PRINCIPAL;
  if (op.service === 'apigateway' && listed(settings.apiGateway, op)) {
    const action = `apigateway:${req.method}`;
    const resource = `arn:aws:apigateway:${op.region}::${new URL(req.url, 'http://layer.invalid').pathname}`;
    const message = `User: ${principal} is not authorized to perform: ${action} on resource: ${resource} because no identity-based policy allows the ${action} action`;
    return awsError(op, 403, 'AccessDeniedException', message);
  }
  if (op.service === 'dynamodb' && listed(settings.dynamodb, op)) {
    const action = `dynamodb:${op.name}`;
    const table = jsonMember(req.body, 'TableName');
    const on = table ? ` on resource: arn:aws:dynamodb:${op.region}:123456789012:table/${table}` : '';
    const message = `User: ${principal} is not authorized to perform: ${action}${on} because no identity-based policy allows the ${action} action`;
    return awsError(op, 400, 'AccessDeniedException', message);
  }
  if (op.service !== 'secretsmanager') return undefined;
  if (listed(settings.secretsManager, op)) {
    const action = `secretsmanager:${op.name}`;
    const secret = jsonMember(req.body, 'SecretId') ?? jsonMember(req.body, 'Name');
    const on = secret ? ` on resource: ${secret}` : '';
    const message = `User: ${principal} is not authorized to perform: ${action}${on} because no identity-based policy allows the ${action} action`;
    return awsError(op, 400, 'AccessDeniedException', message);
  }
  const kms = settings.kms === 'all' ? KMS_USING : settings.kms;
  if (kms?.includes(op.name)) return awsError(op, 400, 'AccessDeniedException', 'Access to KMS is not allowed');
  return undefined;
}

/** The modeled message of API Gateway's concurrent-modification conflict (serverless/serverless#12065). */
export const CONCURRENT_MODIFICATION = 'Unable to complete operation due to concurrent modification. Please try again later.';

export interface ChaosFault {
  kind: ChaosKind;
  phase: ChaosPhase;
}

const ALL_KINDS: readonly ChaosKind[] = ['5xx', 'timeout', 'reset', '409'];
const BOTH_PHASES: readonly ChaosPhase[] = ['before', 'after'];

/**
 * Random faults of the network and the service, drawn from a seeded generator: 5xx answers, timeouts (the request
 * is held unanswered until the client's requestTimeout fires), connection resets, and 409 conflicts on usage-plan
 * writes. "After" faults let moto do the write first: the caller cannot tell whether it happened.
 */
export class Chaos {
  #random = new SeededRandom(1);

  /** Restarts the sequence (`configure` calls it whenever chaos settings are given). */
  reseed(settings: ChaosSettings | undefined): void {
    this.#random = new SeededRandom(settings?.seed ?? 1);
  }

  /** Draws the fault for one call, if any. */
  pick(op: Operation, settings: ChaosSettings | undefined): ChaosFault | undefined {
    if (!settings || settings.rate <= 0 || !op.aws) return undefined;
    if (settings.operations && !settings.operations.includes(op.name)) return undefined;
    const kinds = (settings.kinds ?? ALL_KINDS).filter((k) => k !== '409' || isUsagePlanWrite(op));
    if (kinds.length === 0 || this.#random.next() >= settings.rate) return undefined;
    const kind = this.#random.pick(kinds) ?? '5xx';
    const phases = kind === '409' ? (['before'] as const) : (settings.phases ?? BOTH_PHASES);
    return { kind, phase: this.#random.pick(phases) ?? 'before' };
  }

  /** The outcome of a fault (for '5xx', alternately a 500 and a 503 in the service's shape). */
  outcome(op: Operation, fault: ChaosFault): Outcome {
    if (fault.kind === 'timeout') return { kind: 'hold' };
    if (fault.kind === 'reset') return { kind: 'reset' };
    if (fault.kind === '409') return { kind: 'respond', response: awsError(op, 409, 'ConflictException', CONCURRENT_MODIFICATION) };
    const unavailable = this.#random.next() < 0.5;
    if (op.service === 'apigateway') {
      return unavailable
        ? { kind: 'respond', response: awsError(op, 503, 'ServiceUnavailableException', 'Service Unavailable', { 'retry-after': '1' }) }
        : { kind: 'respond', response: awsError(op, 500, 'InternalFailure', 'Internal server error') };
    }
    return unavailable
      ? { kind: 'respond', response: awsError(op, 503, 'ServiceUnavailable', 'Service is unavailable. Try again later.') }
      : {
          kind: 'respond',
          response: awsError(op, 500, 'InternalFailure', 'The request processing has failed because of an unknown error.'),
        };
  }
}
