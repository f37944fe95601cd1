import { type AwsRequest, type AwsResponse, awsError, isRecord, jsonMember, parseJson } from './http.js';
import type { Operation } from './operations.js';

/** AWS's text for a value operation on a secret marked for deletion (e.g. hashicorp/terraform-provider-aws). */
export const MARKED_FOR_DELETION = "You can't perform this operation on the secret because it was marked for deletion.";
/** AWS's text for CreateSecret with the name of such a secret (redpanda-data/console#1835, aws-controllers-k8s/community#2969). */
export const NAME_SCHEDULED_FOR_DELETION =
  "You can't create this secret because a secret with this name is already scheduled for deletion.";

/** Operations that declare InvalidRequestException for a secret scheduled for deletion (Secrets Manager model). */
const VALUE_OPERATIONS = new Set([
  'GetSecretValue',
  'PutSecretValue',
  'UpdateSecret',
  'RotateSecret',
  'CancelRotateSecret',
  'UpdateSecretVersionStage',
]);

interface Marked {
  arn: string | undefined;
  /** performance.now() until which the name stays marked; Infinity for a recovery window (until RestoreSecret). */
  until: number;
}

/**
 * Secrets on their way out. On AWS, DeleteSecret with ForceDeleteWithoutRecovery "performs the actual deletion with
 * an asynchronous background process, so there might be a short delay before the secret is permanently deleted. If
 * you delete a secret and then immediately create a secret with the same name, use appropriate back off and retry
 * logic" (model, DeleteSecret); with a recovery window the secret stays scheduled until restored. moto deletes a
 * forced secret at once (CreateSecret of the name succeeds straight away), and for a scheduled one accepts
 * PutSecretValue and answers CreateSecret with ResourceExistsException. DescribeSecret is left to moto: it declares
 * no InvalidRequestException and is how a caller sees DeletedDate.
 */
export class DeletingSecrets {
  #marked = new Map<string, Marked>();

  #find(id: string | undefined): Marked | undefined {
    if (id === undefined) return undefined;
    const now = performance.now();
    for (const [name, marked] of this.#marked) {
      if (marked.until <= now) {
        this.#marked.delete(name);
        continue;
      }
      // A SecretId is a name, a full ARN, or an ARN without its random six-character suffix.
      if (id === name || id === marked.arn || (marked.arn?.startsWith(`${id}-`) ?? false)) return marked;
    }
    return undefined;
  }

  /** The InvalidRequestException a secret marked for deletion gets, if this call is about one. */
  check(op: Operation, req: AwsRequest): AwsResponse | undefined {
    if (op.service !== 'secretsmanager') return undefined;
    if (op.name === 'CreateSecret' && this.#find(jsonMember(req.body, 'Name'))) {
      return awsError(op, 400, 'InvalidRequestException', NAME_SCHEDULED_FOR_DELETION);
    }
    if (VALUE_OPERATIONS.has(op.name) && this.#find(jsonMember(req.body, 'SecretId'))) {
      return awsError(op, 400, 'InvalidRequestException', MARKED_FOR_DELETION);
    }
    return undefined;
  }

  /** Marks (DeleteSecret) or unmarks (RestoreSecret) after moto answered successfully. */
  record(op: Operation, req: AwsRequest, response: AwsResponse, forcedMs: number): void {
    if (op.service !== 'secretsmanager' || response.status >= 300) return;
    const json = parseJson(response.body);
    if (!isRecord(json) || typeof json.Name !== 'string') return;
    if (op.name === 'RestoreSecret') this.#marked.delete(json.Name);
    if (op.name !== 'DeleteSecret') return;
    const request = parseJson(req.body);
    const forced = isRecord(request) && request.ForceDeleteWithoutRecovery === true;
    const arn = typeof json.ARN === 'string' ? json.ARN : undefined;
    this.#marked.set(json.Name, { arn, until: forced ? performance.now() + forcedMs : Number.POSITIVE_INFINITY });
  }
}

/**
 * GetSecretValue without VersionId or VersionStage: AWS answers with the AWSCURRENT version ("If you don't specify
 * either a VersionStage or VersionId, then Secrets Manager defaults to AWSCURRENT", API reference). moto 5.2 answers
 * with the version the secret was last written with as current, and keeps it when UpdateSecretVersionStage moves
 * AWSCURRENT elsewhere (a roll): the old value. The body to send moto instead, asking for AWSCURRENT; else undefined.
 */
export function currentByDefault(op: Operation, req: AwsRequest): Buffer | undefined {
  if (op.service !== 'secretsmanager' || op.name !== 'GetSecretValue') return undefined;
  const body = parseJson(req.body);
  if (!isRecord(body) || body.VersionId !== undefined || body.VersionStage !== undefined) return undefined;
  return Buffer.from(JSON.stringify({ ...body, VersionStage: 'AWSCURRENT' }));
}
