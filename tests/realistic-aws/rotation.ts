import { randomUUID } from 'node:crypto';
import { type AwsRequest, type AwsResponse, awsError, isRecord, jsonResponse, motoJson, parseJson, withJson } from './http.js';
import type { Operation } from './operations.js';
import { MARKED_FOR_DELETION } from './secrets.js';

/** What Secrets Manager sends a rotation function (one step per call). */
export interface RotationStepEvent {
  Step: 'createSecret' | 'setSecret' | 'testSecret' | 'finishSecret';
  SecretId: string;
  ClientRequestToken: string;
}

/** A rotation function as the layer invokes it: the test's handler, run as the function's role. Throws when the step fails. */
export type RotationFunction = (event: RotationStepEvent) => Promise<unknown>;

/** AWS's text when a secret has an AWSPENDING label on a version other than AWSCURRENT's (hashicorp/terraform-provider-aws#35023). */
export const ROTATION_NOT_COMPLETE = "A previous rotation isn't complete. That rotation will be reattempted.";
/** AWS's text for RotateSecret with no function named and none configured (AWS CLI output quoted in getmoto/moto#3912). */
export const NO_ROTATION_FUNCTION = 'No Lambda rotation function ARN is associated with this secret.';

interface Configured {
  /** RotationEnabled: true after RotateSecret, false after CancelRotateSecret (the function and rules stay). */
  enabled: boolean;
  lambdaArn: string;
  rules: Record<string, unknown>;
}

/** The schedule rules RotationRulesType documents; a problem in words, or undefined. */
function rulesProblem(rules: Record<string, unknown>): string | undefined {
  const days = rules.AutomaticallyAfterDays;
  const expression = rules.ScheduleExpression;
  // "you can set the rotation schedule in RotationRules with AutomaticallyAfterDays or ScheduleExpression, but not both"
  if (days !== undefined && expression !== undefined) return 'RotationRules: AutomaticallyAfterDays or ScheduleExpression, not both';
  // AutomaticallyAfterDays "Valid Range: Minimum value of 1. Maximum value of 1000." (API reference, RotationRulesType)
  if (days !== undefined && !(Number.isInteger(days) && Number(days) >= 1 && Number(days) <= 1000))
    return 'RotationRules.AutomaticallyAfterDays must be 1 to 1000';
  if (typeof expression === 'string' && !expression.startsWith('cron(')) {
    // "rate() expressions represent the interval in hours or days … for example rate(12 hours) or rate(10 days). You
    // can rotate a secret as often as every four hours." (RotationRulesType, ScheduleExpression)
    const rate = /^rate\((\d+) (hours|days)\)$/.exec(expression);
    if (!rate || Number(rate[1]) < (rate[2] === 'hours' ? 4 : 1))
      return `RotationRules.ScheduleExpression ${expression}: a rate of at least 4 hours, rate(N hours) or rate(N days), or cron(…)`;
  }
  return undefined;
}

/** Versions without a staging label dropped: DescribeSecret lists "the versions of the secret that have staging labels attached". */
const labelled = (stages: unknown) =>
  isRecord(stages) ? Object.fromEntries(Object.entries(stages).filter(([, s]) => Array.isArray(s) && s.length > 0)) : stages;

/**
 * RotateSecret with `RotateImmediately: false`, answered by the layer. AWS (API reference, RotateSecret): "If you set
 * RotateImmediately to false, Secrets Manager tests the rotation configuration by running the testSecret step of the
 * Lambda rotation function. This test creates an AWSPENDING version of the secret and then removes it." — the
 * configuration (RotationEnabled, RotationLambdaARN, RotationRules) is kept and no rotation starts. moto 5.2.1
 * instead starts one: it leaves an AWSPENDING version (a copy of the current value), sets RotationEnabled only for
 * AutomaticallyAfterDays (never for a ScheduleExpression, which it drops), and invokes the function in its own Lambda
 * backend (a function it does not hold: ResourceNotFoundException, the AWSPENDING version left behind).
 *
 * The layer never sends it to moto. It keeps the configuration by secret ARN and puts it into DescribeSecret and
 * ListSecrets answers; it runs the configuration test itself through the function a test registered for that ARN:
 * an AWSPENDING version under the request's ClientRequestToken (its content is not documented: the layer copies
 * AWSCURRENT's, as moto does), testSecret with the secret's ARN, then the label removed. The configuration is kept
 * before the test (AWS's rotation templates refuse a step while DescribeSecret says RotationEnabled false, so AWS
 * must have set it by then). What AWS answers when testSecret fails is not documented: the layer answers a 500 that
 * names it, so that a suite cannot pass over it. NextRotationDate is not given (when AWS puts the first window of a
 * schedule that was not rotated at once is not documented). Versions left without a label (the test's) are not
 * listed in DescribeSecret, as on AWS; moto lists them with no stages.
 */
export class RotationSchedules {
  readonly #configured = new Map<string, Configured>();
  readonly #functions = new Map<string, RotationFunction>();
  /** What went wrong in a configuration test (a failed testSecret, an unknown function): each a 500 to the caller. */
  readonly problems: string[] = [];

  /** The rotation function that answers for `functionArn` (undefined: none, RotateSecret naming it gets a 500). */
  register(functionArn: string, fn: RotationFunction | undefined): void {
    if (fn) this.#functions.set(functionArn, fn);
    else this.#functions.delete(functionArn);
  }

  /** The layer's answer to RotateSecret with RotateImmediately false; undefined for every other request (moto answers). */
  async rotate(moto: URL, op: Operation, req: AwsRequest): Promise<AwsResponse | undefined> {
    if (op.service !== 'secretsmanager' || op.name !== 'RotateSecret') return undefined;
    const body = parseJson(req.body);
    if (!isRecord(body) || body.RotateImmediately !== false) return undefined;
    const secretId = String(body.SecretId ?? '');
    const described = await motoJson(moto, req, 'secretsmanager.DescribeSecret', '1.1', { SecretId: secretId });
    if (described.status >= 300) return described.response;
    const secret = described.json;
    const arn = String(secret.ARN);
    if (secret.DeletedDate !== undefined && secret.DeletedDate !== null)
      return awsError(op, 400, 'InvalidRequestException', MARKED_FOR_DELETION);
    const before = this.#configured.get(arn);
    const lambdaArn = typeof body.RotationLambdaARN === 'string' ? body.RotationLambdaARN : before?.lambdaArn;
    if (!lambdaArn) return awsError(op, 400, 'InvalidRequestException', NO_ROTATION_FUNCTION);
    const rules = isRecord(body.RotationRules) ? body.RotationRules : (before?.rules ?? {});
    // RotateSecret declares InvalidParameterException (model); the text is the layer's own.
    const problem = rulesProblem(rules);
    if (problem) return awsError(op, 400, 'InvalidParameterException', problem);
    const stages = isRecord(secret.VersionIdsToStages) ? (secret.VersionIdsToStages as Record<string, string[]>) : {};
    // "If the AWSPENDING staging label is present but not attached to the same version as AWSCURRENT, then any later
    // invocation of RotateSecret assumes that a previous rotation request is still in progress and returns an error."
    if (Object.values(stages).some((s) => s.includes('AWSPENDING') && !s.includes('AWSCURRENT')))
      return awsError(op, 400, 'InvalidRequestException', ROTATION_NOT_COMPLETE);
    const fn = this.#functions.get(lambdaArn);
    if (!fn) return this.#problem(`RotateSecret names ${lambdaArn}, for which no rotation function is registered (rotationFunction)`);

    this.#configured.set(arn, { enabled: true, lambdaArn, rules });
    const token = typeof body.ClientRequestToken === 'string' ? body.ClientRequestToken : randomUUID();
    const current = await motoJson(moto, req, 'secretsmanager.GetSecretValue', '1.1', { SecretId: arn, VersionStage: 'AWSCURRENT' });
    if (current.status >= 300 || typeof current.json.SecretString !== 'string')
      return this.#problem(`RotateSecret on ${arn}: no AWSCURRENT string value to test with (not modelled)`);
    const pending = { SecretId: arn, ClientRequestToken: token, SecretString: current.json.SecretString, VersionStages: ['AWSPENDING'] };
    const put = await motoJson(moto, req, 'secretsmanager.PutSecretValue', '1.1', pending);
    if (put.status >= 300) return put.response;
    let failure: unknown;
    try {
      await fn({ Step: 'testSecret', SecretId: arn, ClientRequestToken: token });
    } catch (error) {
      failure = error;
    }
    const removed = { SecretId: arn, VersionStage: 'AWSPENDING', RemoveFromVersionId: token };
    await motoJson(moto, req, 'secretsmanager.UpdateSecretVersionStage', '1.1', removed);
    if (failure !== undefined)
      return this.#problem(
        `the configuration test's testSecret failed for ${arn} (${failure instanceof Error ? failure.message : String(failure)}); what AWS answers then is not documented`,
      );
    return jsonResponse(200, { ARN: arn, Name: secret.Name }, {}, 'application/x-amz-json-1.1');
  }

  /**
   * The layer's answer to CancelRotateSecret on a secret whose configuration the layer keeps (a RotateSecret with
   * RotateImmediately false); undefined otherwise (moto answers from its own state: an immediate RotateSecret's).
   * AWS (API reference, CancelRotateSecret): "Turns off automatic rotation, and if a rotation is currently in
   * progress, cancels the rotation." — the model's example: "The operation sets the RotationEnabled field to false
   * and cancels all scheduled rotations. To resume scheduled rotations, you must re-enable rotation by calling the
   * rotate-secret operation." Labels are left as they are: "If you cancel a rotation in progress, it can leave the
   * VersionStage labels in an unexpected state. You might need to remove the staging label AWSPENDING from the
   * partially created version." moto 5.2.1 (`cancel_rotate_secret`) sets rotation_enabled to false and keeps the
   * function's ARN and the rules, touches no label, and refuses a secret it holds no function for (InvalidRequest-
   * Exception "You tried to enable rotation on a secret that doesn't already have a Lambda function ARN configured
   * …") — which is every secret scheduled through the layer, since such a RotateSecret never reaches moto.
   *
   * So the layer: RotationEnabled false in DescribeSecret and ListSecrets from now on; RotationLambdaARN and
   * RotationRules kept, as moto keeps them (AWS does not say; its RotateSecret refusing a secret "that doesn't
   * already have a Lambda function ARN configured" implies a function stays configured), and a later RotateSecret
   * without a function uses that one; no label moved. A secret marked for deletion: InvalidRequestException (a cause
   * the model lists). The response is `{ARN, Name}`; `VersionId` ("the version of the secret created during the
   * rotation") is not given: the layer runs no rotation of its own to cancel.
   */
  async cancel(moto: URL, op: Operation, req: AwsRequest): Promise<AwsResponse | undefined> {
    if (op.service !== 'secretsmanager' || op.name !== 'CancelRotateSecret') return undefined;
    const body = parseJson(req.body);
    const secretId = String((isRecord(body) && body.SecretId) || '');
    const described = await motoJson(moto, req, 'secretsmanager.DescribeSecret', '1.1', { SecretId: secretId });
    if (described.status >= 300) return described.response;
    const secret = described.json;
    const configured = this.#configured.get(String(secret.ARN));
    if (!configured) return undefined;
    if (secret.DeletedDate !== undefined && secret.DeletedDate !== null)
      return awsError(op, 400, 'InvalidRequestException', MARKED_FOR_DELETION);
    configured.enabled = false;
    return jsonResponse(200, { ARN: secret.ARN, Name: secret.Name }, {}, 'application/x-amz-json-1.1');
  }

  /** DescribeSecret and ListSecrets with the configurations kept here, and without versions that lost every label. */
  describe(op: Operation, response: AwsResponse): AwsResponse {
    if (op.service !== 'secretsmanager' || response.status >= 300) return response;
    if (op.name !== 'DescribeSecret' && op.name !== 'ListSecrets') return response;
    const json = parseJson(response.body);
    if (!isRecord(json)) return response;
    const patch = (secret: Record<string, unknown>) => {
      const configured = this.#configured.get(String(secret.ARN));
      return {
        ...secret,
        ...(secret.VersionIdsToStages !== undefined && { VersionIdsToStages: labelled(secret.VersionIdsToStages) }),
        ...(secret.SecretVersionsToStages !== undefined && { SecretVersionsToStages: labelled(secret.SecretVersionsToStages) }),
        ...(configured && {
          RotationEnabled: configured.enabled,
          RotationLambdaARN: configured.lambdaArn,
          RotationRules: configured.rules,
        }),
      };
    };
    if (op.name === 'DescribeSecret') return withJson(response, patch(json));
    const list = Array.isArray(json.SecretList) ? json.SecretList : [];
    return withJson(response, { ...json, SecretList: list.map((s) => (isRecord(s) ? patch(s) : s)) });
  }

  #problem(message: string): AwsResponse {
    this.problems.push(message);
    return jsonResponse(500, { message: `realistic-aws: ${message}` });
  }
}
