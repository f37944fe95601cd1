import type { SecretDescription } from '../aws/secrets-manager.js';
import { EnvironmentError } from '../errors.js';
import type { KeyRecord, ProvisionDeps } from './key-record.js';

/**
 * With ROTATION_SCHEDULE, the customer's secret gets Secrets Manager's rotation schedule naming this function, whose
 * rotations roll the key (lib/pipeline/rotation.ts): RotateSecret with RotateImmediately false, which starts no
 * rotation but runs this function's testSecret on a version of Secrets Manager's own (it claims nothing: roll.ts).
 * Nothing when DescribeSecret shows that schedule and function already (a redelivery, a returning customer whose
 * secret has it), so a secret with a rotation under way is not asked again (RotateSecret would refuse it).
 *
 * A rotation a revoke cancelled (turnOffRotation) may have left its AWSPENDING label behind, and RotateSecret refuses
 * a secret whose AWSPENDING is not on AWSCURRENT's version ("A previous rotation isn't complete"): that label is
 * cleared first (clearIncompleteRotation), from the same DescribeSecret.
 *
 * Called before the key is made or re-enabled and before the record says `active`: a RotateSecret that fails
 * (throttled, denied) hands the message back, and its redelivery, finding the record as it was, gets here again.
 * Throws what the adapter throws (RetryableError, EnvironmentError).
 */
export async function ensureRotationSchedule(deps: ProvisionDeps, name: string, record: KeyRecord): Promise<void> {
  const schedule = deps.config.rotationSchedule;
  if (!schedule) return;
  const functionArn = deps.rotationFunctionArn;
  if (!functionArn)
    throw new EnvironmentError('ROTATION_SCHEDULE is set but the function does not know its own ARN (no invokedFunctionArn)');
  const now = await deps.secrets.describeSecret(name);
  if (now?.enabled && now.functionArn === functionArn && now.scheduleExpression === schedule) return;
  if (now) await clearIncompleteRotation(deps, name, now, record);
  await deps.secrets.scheduleRotation(name, functionArn, schedule);
}

/**
 * With ROTATION_SCHEDULE, a leaver's secret loses its schedule: CancelRotateSecret, "Turns off automatic rotation,
 * and if a rotation is currently in progress, cancels the rotation" (API reference, CancelRotateSecret). Otherwise
 * every scheduled rotation of a leaver's secret would fail (its roll is rejected `customer-left`), be retried and
 * raise the function's error alarm, for ever. Nothing when DescribeSecret shows rotation off already (a redelivery),
 * or when there is no secret (a tombstone); nothing at all without ROTATION_SCHEDULE. A re-subscription puts the
 * schedule back (ensureRotationSchedule).
 *
 * A rotation in progress is cancelled, but its labels stay: "If you cancel a rotation in progress, it can leave the
 * VersionStage labels in an unexpected state. You might need to remove the staging label AWSPENDING from the
 * partially created version." (same page). They are not touched here: until the revoke's write wins the record a
 * roll may still switch to that version, and a roll's finishSecret finds its version by that label (roll.ts). The
 * next RotateSecret clears them first (ensureRotationSchedule).
 *
 * Throws what the adapter throws (RetryableError; EnvironmentError for a denial or a secret scheduled for deletion).
 */
export async function turnOffRotation(deps: ProvisionDeps, name: string): Promise<void> {
  if (!deps.config.rotationSchedule) return;
  const now = await deps.secrets.describeSecret(name);
  if (now?.enabled) await deps.secrets.cancelRotation(name);
}

/**
 * Before RotateSecret on a secret whose rotation is off: an AWSPENDING label on a version that is not AWSCURRENT's
 * (a rotation cancelled by a revoke, or a roll the revoke ended) is what AWS asks the caller to clean up after
 * CancelRotateSecret: "Failing to clean up a cancelled rotation can block you from starting future rotations."
 * (API reference, CancelRotateSecret, VersionId). A roll that switched already (the record names its key) is
 * finished as its finishSecret would: AWSCURRENT onto its version, then AWSPENDING off it. A roll still under way
 * before its switch keeps its label (RotateSecret refuses, the message comes back once it is done). Any other
 * AWSPENDING is a leftover: taken off (the version keeps its value, unlabelled, as a finished roll's old one).
 */
async function clearIncompleteRotation(deps: ProvisionDeps, name: string, now: SecretDescription, record: KeyRecord): Promise<void> {
  const versions = Object.entries(now.stages);
  const pending = versions.find(([, stages]) => stages.includes('AWSPENDING') && !stages.includes('AWSCURRENT'))?.[0];
  if (!pending) return;
  const { rolling } = record;
  if (rolling?.token === pending && !rolling.switching) return;
  if (rolling?.token === pending) {
    const current = versions.find(([, stages]) => stages.includes('AWSCURRENT'))?.[0];
    await deps.secrets.moveStage(name, 'AWSCURRENT', pending, current);
  }
  await deps.secrets.moveStage(name, 'AWSPENDING', undefined, pending);
}
