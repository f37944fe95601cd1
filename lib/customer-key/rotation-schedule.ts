import { EnvironmentError } from '../errors.js';
import type { ProvisionDeps } from './key-record.js';

/**
 * With ROTATION_SCHEDULE, the customer's secret gets Secrets Manager's rotation schedule naming this function, whose
 * rotations roll the key (lib/pipeline/rotation.ts): RotateSecret with RotateImmediately false, which starts no
 * rotation but runs this function's testSecret on a version of Secrets Manager's own (it claims nothing: roll.ts).
 * Nothing when DescribeSecret shows that schedule and function already (a redelivery, a returning customer whose
 * secret has it), so a secret with a rotation under way is not asked again (RotateSecret would refuse it).
 *
 * Called before the key is made or re-enabled and before the record says `active`: a RotateSecret that fails
 * (throttled, denied) hands the message back, and its redelivery, finding the record as it was, gets here again.
 * Throws what the adapter throws (RetryableError, EnvironmentError).
 */
export async function ensureRotationSchedule(deps: ProvisionDeps, name: string): Promise<void> {
  const schedule = deps.config.rotationSchedule;
  if (!schedule) return;
  const functionArn = deps.rotationFunctionArn;
  if (!functionArn)
    throw new EnvironmentError('ROTATION_SCHEDULE is set but the function does not know its own ARN (no invokedFunctionArn)');
  const now = await deps.secrets.rotationOf(name);
  if (now?.enabled && now.functionArn === functionArn && now.scheduleExpression === schedule) return;
  await deps.secrets.scheduleRotation(name, functionArn, schedule);
}
