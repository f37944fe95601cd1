import { type AwsResponse, awsError } from '../http.js';
import type { Operation } from '../operations.js';
import type { Verdict } from './evaluate.js';
import type { Check } from './requests.js';

/**
 * IAM's sentence for a denial (IAM user guide, "Access denied error messages"): "User: ARN is not authorized to
 * perform: ACTION on resource: RESOURCE because no identity-based policy allows the ACTION action", or "… with an
 * explicit deny in a resource-based policy" / "… in an identity-based policy".
 */
function sentence(principalArn: string, action: string, resource: string, verdict: Verdict): string {
  const on = resource === '*' ? '' : ` on resource: ${resource}`;
  const why =
    verdict.decision === 'ExplicitlyDenied'
      ? `with an explicit deny in ${verdict.deniedBy === 'resource-based' ? 'a resource-based' : 'an identity-based'} policy`
      : `because no identity-based policy allows the ${action} action`;
  return `User: ${principalArn} is not authorized to perform: ${action}${on} ${why}`;
}

/**
 * The answer each service gives a denied call (tests/realistic-aws/README.md, switch `iam`, gives the sources):
 * - Secrets Manager, DynamoDB, Marketplace Metering (JSON): HTTP 400 `AccessDeniedException`.
 * - Secrets Manager when the KMS key refuses it: HTTP 400 `AccessDeniedException` "Access to KMS is not allowed".
 * - API Gateway (REST-JSON): HTTP 403 `AccessDeniedException`, `x-amzn-ErrorType`, `{message}`.
 * - SQS (the SDK here speaks JSON 1.0, awsQueryCompatible): HTTP 403, `x-amzn-query-error: AccessDenied;Sender`,
 *   whose code the SDK names the error by, and the action in lower case as SQS writes it.
 */
export function denial(op: Operation, principalArn: string, check: Check, verdict: Verdict): AwsResponse {
  const { action } = check.auth;
  if (check.via === 'kms-through-secretsmanager') return awsError(op, 400, 'AccessDeniedException', 'Access to KMS is not allowed');
  if (op.service === 'apigateway') return awsError(op, 403, 'AccessDeniedException', sentence(principalArn, action, check.named, verdict));
  if (op.service === 'sqs') {
    const lower = action.toLowerCase();
    return awsError(op, 403, 'AccessDenied', sentence(principalArn, lower, check.named, verdict));
  }
  return awsError(op, 400, 'AccessDeniedException', sentence(principalArn, action, check.named, verdict));
}
