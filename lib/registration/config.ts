import * as z from 'zod/mini';
import { integer } from '../config.js';
import { ConfigError } from '../errors.js';
import '../zod-setup.js';

/** Where the HMAC key of the buyer references comes from (docs/registration.md, "The signing key"). */
export type SigningKeySource =
  /** A Secrets Manager secret (name or ARN) whose SecretString is the key: the deployed function. */
  | { secretId: string }
  /** The key itself, from the environment: local runs and tests. */
  | { value: string };

export interface RegistrationConfig {
  /** The signup queue: the hook sends one signup message there per registration. */
  signupQueueUrl: string;
  /** Where the browser is sent (303) with `?ref=<signed reference>`. */
  registrationPageUrl: string;
  signingKey: SigningKeySource;
  /** How long a reference stays valid. */
  referenceTtlSeconds: number;
  /** Per-request timeout of every AWS call. */
  requestTimeoutMs: number;
  /** Time one registration may spend retrying AWS calls (ResolveCustomer, SendMessageBatch) before a 503 page. */
  retryBudgetMs: number;
}

/** Keys shorter than this are refused: HMAC-SHA256 keys should have at least the hash's 32 bytes of strength. */
export const MIN_SIGNING_KEY_LENGTH = 32;

const optionalText = z.optional(z.string());

const schema = z.object({
  SIGNUP_QUEUE_URL: z.url({ protocol: /^https?$/ }),
  REGISTRATION_PAGE_URL: z.url({ protocol: /^https?$/ }),
  REGISTRATION_SIGNING_KEY: optionalText,
  REGISTRATION_SIGNING_KEY_SECRET_ID: optionalText,
  REGISTRATION_REFERENCE_TTL_SECONDS: integer(60, 3_600, 600),
  AWS_REQUEST_TIMEOUT_MS: integer(100, 10_000, 3_000),
  REGISTRATION_RETRY_BUDGET_MS: integer(500, 20_000, 6_000),
});

/** The browser may only be sent over HTTPS; plain HTTP only to this machine (a local run). */
function pageUrlProblem(raw: string): string | undefined {
  const url = new URL(raw);
  if (url.protocol === 'https:') return undefined;
  return ['localhost', '127.0.0.1', '[::1]'].includes(url.hostname) ? undefined : 'must be an https URL (http only for localhost)';
}

/** The signing key's source from REGISTRATION_SIGNING_KEY or REGISTRATION_SIGNING_KEY_SECRET_ID (exactly one); the key page reads the same. */
export function signingKeyOf(env: { REGISTRATION_SIGNING_KEY?: string; REGISTRATION_SIGNING_KEY_SECRET_ID?: string }): SigningKeySource {
  const value = env.REGISTRATION_SIGNING_KEY || undefined;
  const secretId = env.REGISTRATION_SIGNING_KEY_SECRET_ID || undefined;
  if (value && secretId)
    throw new ConfigError('Invalid configuration: set REGISTRATION_SIGNING_KEY or REGISTRATION_SIGNING_KEY_SECRET_ID, not both');
  if (secretId) return { secretId };
  if (!value)
    throw new ConfigError(
      'Invalid configuration: REGISTRATION_SIGNING_KEY_SECRET_ID (or, for local runs, REGISTRATION_SIGNING_KEY) is required',
    );
  // The value itself is never quoted.
  if (value.length < MIN_SIGNING_KEY_LENGTH)
    throw new ConfigError(`Invalid configuration: REGISTRATION_SIGNING_KEY must be at least ${MIN_SIGNING_KEY_LENGTH} characters`);
  return { value };
}

/**
 * Reads the registration hook's settings from environment variables, once, at cold start. Throws {@link ConfigError}
 * naming every missing or invalid variable (never a key's value).
 */
export function loadRegistrationConfig(env: NodeJS.ProcessEnv): RegistrationConfig {
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => {
      const name = String(issue.path[0]);
      return env[name] === undefined || env[name] === '' ? `${name} is required` : `${name}: ${issue.message}`;
    });
    throw new ConfigError(`Invalid configuration: ${[...new Set(problems)].join('; ')}`);
  }
  const e = parsed.data;
  const pageProblem = pageUrlProblem(e.REGISTRATION_PAGE_URL);
  if (pageProblem) throw new ConfigError(`Invalid configuration: REGISTRATION_PAGE_URL ${pageProblem}`);
  return {
    signupQueueUrl: e.SIGNUP_QUEUE_URL,
    registrationPageUrl: e.REGISTRATION_PAGE_URL,
    signingKey: signingKeyOf(e),
    referenceTtlSeconds: e.REGISTRATION_REFERENCE_TTL_SECONDS,
    requestTimeoutMs: e.AWS_REQUEST_TIMEOUT_MS,
    retryBudgetMs: e.REGISTRATION_RETRY_BUDGET_MS,
  };
}
