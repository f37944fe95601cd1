/**
 * The switches of the realistic-AWS layer. Each one adds a behaviour that real AWS documents and moto lacks; each is
 * off in {@link NONE}, so the layer then is a plain proxy. README.md gives the source of every behaviour.
 */

/** API Gateway's control-plane quotas per account and Region (aws-facts.md; developerguide/limits.html). */
export const API_GATEWAY_QUOTAS = {
  createApiKeyPerSecond: 5,
  createApiKeyBurst: 5,
  /** The quotas page gives DeleteApiKey 5 requests/s and no burst: a burst of 5 is assumed. */
  deleteApiKeyPerSecond: 5,
  deleteApiKeyBurst: 5,
  /** "Total operations": every control-plane call of the account shares it. */
  totalPerSecond: 10,
  totalBurst: 40,
} as const;

export interface ThrottleSettings {
  /** Multiplies every quota (rate and burst), so that tests can run faster than real AWS allows. */
  factor: number;
  /** The fraction (0 ≤ share < 1) of each bucket used by a neighbour process of the same account: it is not ours. */
  neighbourShare?: number;
  /**
   * By default CreateApiKey and DeleteApiKey take a token from their own bucket and one from "Total operations"
   * (the quota is named for all operations). `true` gives the older model: their own bucket only.
   */
  separateBuckets?: boolean;
}

export interface UsagePlanWriteSettings {
  /** One usage-plan write at a time per Region: an overlapping one gets 409 ConflictException. */
  serialise: boolean;
  /** Each write is held at least this long (its duration on AWS), so that writes can overlap. */
  holdMs: number;
}

/** Operation names (e.g. `PutSecretValue`, `CreateApiKey`) or `'all'`. */
export type OperationList = readonly string[] | 'all';

export interface AccessDeniedSettings {
  /** Secrets Manager operations denied by IAM: 400 AccessDeniedException. */
  secretsManager?: OperationList;
  /** API Gateway operations denied by IAM: 403 AccessDeniedException. */
  apiGateway?: OperationList;
  /** Secrets Manager operations whose use of the KMS key is denied: 400 AccessDeniedException "Access to KMS is not allowed". */
  kms?: OperationList;
  /** DynamoDB operations denied by IAM: 400 AccessDeniedException. */
  dynamodb?: OperationList;
  /** The caller named in the messages. */
  principal?: string;
}

export interface DeletingSecretsSettings {
  /** How long a force-deleted secret stays "marked for deletion" (the deletion is asynchronous on AWS). */
  ms: number;
}

export interface BatchFailureSettings {
  /** The fraction (0–1) of SendMessageBatch entries that fail with a server-side InternalError. */
  rate: number;
  /** Seed of the pseudo-random choice of entries (default 1): the same seed fails the same entries. */
  seed?: number;
  /** Instead of `rate`: every Nth entry seen (counting across calls) fails. Exact, for tests. */
  everyNth?: number;
}

export type ChaosKind = '5xx' | 'timeout' | 'reset' | '409';
export type ChaosPhase = 'before' | 'after';

export interface ChaosSettings {
  /** The fraction (0–1) of AWS calls that get a fault. */
  rate: number;
  /** Seed of the pseudo-random choices (default 1): the same seed gives the same faults for the same calls. */
  seed?: number;
  /** Which faults to draw from (default all four; '409' only ever hits usage-plan writes). */
  kinds?: readonly ChaosKind[];
  /**
   * When a fault strikes (default both): before forwarding to moto (nothing happened) or after (the write happened
   * and the caller does not know). '409' is always before.
   */
  phases?: readonly ChaosPhase[];
  /** Only these operations (names such as `CreateSecret`); default every AWS call. */
  operations?: readonly string[];
}

export interface ResolveCustomerSettings {
  /** Every ResolveCustomer call gets ThrottlingException. */
  throttle?: boolean;
  /** Every ResolveCustomer call gets DisabledApiException (the API is disabled in the Region). */
  disabled?: boolean;
}

/** The Region's API key quota (10,000 on AWS): CreateApiKey beyond `max` keys answers 429 LimitExceededException (key-cap.ts). */
export interface KeyCapSettings {
  max: number;
}

export interface RealisticSettings {
  throttle: ThrottleSettings | undefined;
  usagePlanWrites: UsagePlanWriteSettings | undefined;
  /** CreateUsagePlanKey, GetUsagePlanKey(s), DeleteUsagePlanKey on a plan moto does not know → 404 NotFoundException. */
  unknownPlan404: boolean;
  /** CreateUsagePlanKey for a key already in another plan with a common API stage → 400 BadRequestException. */
  onePlanPerStage: boolean;
  /** GetApiKeys and ListSecrets omit what was created less than this many ms ago (0 = off). */
  listingLagMs: number;
  accessDenied: AccessDeniedSettings | undefined;
  deletingSecrets: DeletingSecretsSettings | undefined;
  sendMessageBatchFailures: BatchFailureSettings | undefined;
  chaos: ChaosSettings | undefined;
  resolveCustomer: ResolveCustomerSettings | undefined;
  /** CreateApiKey beyond this many keys in the Region → 429 LimitExceededException (off: moto has no cap). */
  keyCap?: KeyCapSettings;
  /** GetApiKeys answers in pages of `limit` (default 25, at most 500) with a `position`, as AWS does (off: moto's one page). */
  apiKeyPaging?: boolean;
}

/** Everything off: the layer forwards every request unchanged (ResolveCustomer is still answered: moto has none). */
export const NONE: Readonly<RealisticSettings> = Object.freeze({
  throttle: undefined,
  usagePlanWrites: undefined,
  unknownPlan404: false,
  onePlanPerStage: false,
  listingLagMs: 0,
  accessDenied: undefined,
  deletingSecrets: undefined,
  sendMessageBatchFailures: undefined,
  chaos: undefined,
  resolveCustomer: undefined,
});

/**
 * What integration suites run against: AWS's rules, with quotas 20 times the real ones so that suites stay fast,
 * and a short listing lag. Faults (chaos, denials, partial failures) and the deleting-secrets window stay off: suites
 * turn them on where they test them.
 */
export const REALISTIC: Readonly<RealisticSettings> = Object.freeze({
  ...NONE,
  throttle: { factor: 20 },
  usagePlanWrites: { serialise: true, holdMs: 50 },
  unknownPlan404: true,
  onePlanPerStage: true,
  listingLagMs: 300,
});

/** Checks the numbers a caller can get wrong, so that a bad setting fails loudly instead of silently doing nothing. */
export function validate(settings: RealisticSettings): RealisticSettings {
  const fraction = (name: string, value: number | undefined, max = 1) => {
    if (value !== undefined && !(value >= 0 && value <= max)) throw new RangeError(`${name} must be within 0..${max}, got ${value}`);
  };
  if (settings.throttle && !(settings.throttle.factor > 0)) throw new RangeError('throttle.factor must be > 0');
  fraction('throttle.neighbourShare', settings.throttle?.neighbourShare, 0.99);
  fraction('sendMessageBatchFailures.rate', settings.sendMessageBatchFailures?.rate);
  fraction('chaos.rate', settings.chaos?.rate);
  if (settings.listingLagMs < 0) throw new RangeError('listingLagMs must be >= 0');
  if (settings.keyCap && !(Number.isInteger(settings.keyCap.max) && settings.keyCap.max >= 0))
    throw new RangeError('keyCap.max must be an integer >= 0');
  return settings;
}
