/**
 * The key's value in the customer's secret: written before any key is made with it, one value per key. Secrets
 * Manager has no conditional write, so a new value is either a new secret (CreateSecret refuses a second) or a
 * version whose ClientRequestToken every writer shares (a second value under it is refused).
 */
import { RejectedError, SecretVersionTakenError, TransientError } from '../errors.js';
import { deterministicId } from '../ids.js';
import {
  generateKeyValue,
  type KeyRecord,
  NOT_YET_RETRY_MS,
  type ProvisionDeps,
  readExistingSecret,
  readSecretContent,
  secretContent,
  valueOfSecret,
} from './key-record.js';

/**
 * A new secret holding a new value for `record`'s key (CreateSecret, the value before any key); undefined, creating
 * nothing, when a secret of that name exists already.
 */
export async function createValueSecret(
  deps: ProvisionDeps,
  name: string,
  record: KeyRecord,
  tags: Record<string, string>,
  description: string,
): Promise<{ value: string; secretArn: string } | undefined> {
  const value = generateKeyValue();
  const created = await deps.secrets.createSecret({
    name,
    description,
    secretString: secretContent(value, record),
    tags,
    kmsKeyId: deps.config.secretKmsKeyId,
  });
  return created && { value, secretArn: created.arn };
}

/**
 * The value for a new key of `record`: a new secret holding a new value (CreateSecret), or, when the secret exists
 * (an earlier delivery made it, or a legacy tombstone), the value it holds, or a new one written into it.
 */
export async function ensureSecret(
  deps: ProvisionDeps,
  name: string,
  record: KeyRecord,
  tags: Record<string, string>,
  description: string,
): Promise<{ value: string; secretArn: string }> {
  const created = await createValueSecret(deps, name, record, tags, description);
  if (created) return created;
  const found = await valueOfSecret(deps, name, record, async () => generateKeyValue());
  if (found.value === undefined) throw new RejectedError('secret-unreadable', `secret ${name} holds no key value`);
  return { value: found.value, secretArn: found.secretArn };
}

/**
 * A new value for the key of a re-subscription after retirement, written over what the secret holds (the deleted
 * key's value, or none), or into a new secret when it is gone. One value per retirement, whoever writes it: the
 * version's token is derived from the retired key's id, so the first writer's value is that version's; a repeat or a
 * concurrent delivery is refused (SecretVersionTakenError) and reads that version back. Every delivery then makes
 * the key from the same value, the one the secret holds.
 */
export async function replaceSecretValue(
  deps: ProvisionDeps,
  name: string,
  record: KeyRecord,
  tags: Record<string, string>,
  description: string,
): Promise<{ value: string; secretArn: string }> {
  const token = deterministicId('secret-version', name, 'new-key-after', record.retiredKeyId ?? '');
  const value = generateKeyValue();
  const secretString = secretContent(value, record);
  const created = await deps.secrets.createSecret({ name, description, secretString, tags, kmsKeyId: deps.config.secretKmsKeyId, token });
  if (created) return { value, secretArn: created.arn };
  try {
    await deps.secrets.putSecretValue(name, secretString, token);
    return { value, secretArn: record.secretArn ?? (await readExistingSecret(deps, name)).arn };
  } catch (error) {
    if (!(error instanceof SecretVersionTakenError)) throw error;
  }
  const taken = await deps.secrets.getSecret(name, token);
  const stored = taken ? readSecretContent(taken).value : undefined;
  if (!taken || stored === undefined)
    throw new TransientError(`secret ${name} has version ${token} but it cannot be read yet`, { retryAfterMs: NOT_YET_RETRY_MS });
  return { value: stored, secretArn: taken.arn };
}
