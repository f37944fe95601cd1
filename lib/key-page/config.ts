import * as z from 'zod/mini';
import { integer, parseEnvironment, tableName } from '../config.js';
import { NAME_PREFIX_PATTERN } from '../customer-key/naming.js';
import { ConfigError } from '../errors.js';
import { type SigningKeySource, signingKeyOf } from '../registration/config.js';
import '../zod-setup.js';

/** What the seller shows on the page, from configuration (no code): every field optional. */
export interface Branding {
  sellerName?: string;
  /** An https URL (the page's Content-Security-Policy allows images from https: only). */
  logoUrl?: string;
  /** The base URL of the seller's API, for the curl line of the shown key. */
  apiBaseUrl?: string;
  documentationUrl?: string;
  /** An e-mail address or a URL. */
  supportContact?: string;
}

export interface KeyPageConfig {
  /** The customers' records (KEY_RECORDS_TABLE): read only. */
  keyRecordsTable: string;
  /** The page's own table (KEY_REVEALS_TABLE): reference claims, reveal and roll markers. */
  revealsTable: string;
  /** NAME_PREFIX: the customer's secret name derives from it (lib/customer-key/naming.ts). */
  namePrefix: string;
  /** The signup queue: a roll request is sent there. */
  signupQueueUrl: string;
  /** The same HMAC key as the registration hook's (it signs the references the page exchanges). */
  signingKey: SigningKeySource;
  sessionTtlSeconds: number;
  /** Where "go back to AWS Marketplace" links to. */
  marketplaceUrl: string;
  branding: Branding;
  requestTimeoutMs: number;
}

const httpsUrl = z.optional(z.url({ protocol: /^https$/ }));
const text = (max: number) => z.optional(z.string().check(z.maxLength(max)));

const schema = z.object({
  KEY_RECORDS_TABLE: tableName(),
  KEY_REVEALS_TABLE: tableName(),
  NAME_PREFIX: z.string().check(z.regex(NAME_PREFIX_PATTERN, 'must be 1 to 128 characters of A-Z a-z 0-9 / _ + = . @ -')),
  SIGNUP_QUEUE_URL: z.url({ protocol: /^https?$/ }),
  REGISTRATION_SIGNING_KEY: z.optional(z.string()),
  REGISTRATION_SIGNING_KEY_SECRET_ID: z.optional(z.string()),
  KEY_PAGE_SESSION_TTL_SECONDS: integer(300, 86_400, 1_800),
  MARKETPLACE_URL: z._default(z.url({ protocol: /^https?$/ }), 'https://aws.amazon.com/marketplace/'),
  SELLER_NAME: text(100),
  SELLER_LOGO_URL: httpsUrl,
  API_BASE_URL: z.optional(z.url({ protocol: /^https?$/ })),
  DOCUMENTATION_URL: z.optional(z.url({ protocol: /^https?$/ })),
  SUPPORT_CONTACT: text(200),
  AWS_REQUEST_TIMEOUT_MS: integer(100, 10_000, 3_000),
});

/** An empty variable is an unset one (serverless.yml passes `''` for a branding `--param` not given). */
const withoutEmpty = (env: NodeJS.ProcessEnv): NodeJS.ProcessEnv =>
  Object.fromEntries(Object.entries(env).filter(([, value]) => value !== ''));

/**
 * Reads the key page's settings from environment variables, once, at cold start. Throws {@link ConfigError} naming
 * every missing or invalid variable (never a key's value).
 */
export function loadKeyPageConfig(env: NodeJS.ProcessEnv): KeyPageConfig {
  const e = parseEnvironment(schema, withoutEmpty(env));
  const branding: Branding = {
    ...(e.SELLER_NAME && { sellerName: e.SELLER_NAME }),
    ...(e.SELLER_LOGO_URL && { logoUrl: e.SELLER_LOGO_URL }),
    ...(e.API_BASE_URL && { apiBaseUrl: e.API_BASE_URL }),
    ...(e.DOCUMENTATION_URL && { documentationUrl: e.DOCUMENTATION_URL }),
    ...(e.SUPPORT_CONTACT && { supportContact: e.SUPPORT_CONTACT }),
  };
  if (e.KEY_RECORDS_TABLE === e.KEY_REVEALS_TABLE)
    throw new ConfigError('Invalid configuration: KEY_REVEALS_TABLE must be a table of its own, not KEY_RECORDS_TABLE');
  return {
    keyRecordsTable: e.KEY_RECORDS_TABLE,
    revealsTable: e.KEY_REVEALS_TABLE,
    namePrefix: e.NAME_PREFIX,
    signupQueueUrl: e.SIGNUP_QUEUE_URL,
    signingKey: signingKeyOf(e),
    sessionTtlSeconds: e.KEY_PAGE_SESSION_TTL_SECONDS,
    marketplaceUrl: e.MARKETPLACE_URL,
    branding,
    requestTimeoutMs: e.AWS_REQUEST_TIMEOUT_MS,
  };
}
