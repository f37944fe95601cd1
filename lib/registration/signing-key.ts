import type { SecretStore } from '../aws/secrets-manager.js';
import { EnvironmentError } from '../errors.js';
import { MIN_SIGNING_KEY_LENGTH, type SigningKeySource } from './config.js';

export interface SigningKeyProvider {
  /**
   * The HMAC key (its UTF-8 bytes are the key), read once per instance and kept. Throws {@link EnvironmentError}
   * when the secret is missing or too short, and whatever the read threw (a TransientError, …); a failed read is not
   * kept, so the next call reads again.
   */
  get(): Promise<string>;
}

/**
 * The signing key from the environment, or from a Secrets Manager secret (read at cold start: call `get` once when
 * the instance starts, so the first buyer does not wait for it). The value is never logged or put in an error.
 */
export function signingKeyProvider(source: SigningKeySource, secrets?: SecretStore): SigningKeyProvider {
  if ('value' in source) {
    const key = Promise.resolve(source.value);
    return { get: () => key };
  }
  if (!secrets) throw new Error('signingKeyProvider: a secret needs a SecretStore');
  let cached: Promise<string> | undefined;
  const read = async (): Promise<string> => {
    const secret = await secrets.getSecret(source.secretId);
    if (!secret) throw new EnvironmentError('the registration signing key secret does not exist (REGISTRATION_SIGNING_KEY_SECRET_ID)');
    if (secret.secretString.length < MIN_SIGNING_KEY_LENGTH)
      throw new EnvironmentError(`the registration signing key secret holds fewer than ${MIN_SIGNING_KEY_LENGTH} characters`);
    return secret.secretString;
  };
  return {
    get() {
      if (!cached) {
        const reading = read();
        cached = reading;
        reading.catch(() => {
          if (cached === reading) cached = undefined;
        });
      }
      return cached;
    },
  };
}
