/**
 * What reconcile works with: the gathered state, the findings and the fix results. Types and constants only.
 *
 * Key values never leave the state: it keeps them in maps (which `JSON.stringify` shows as `{}`); findings and fix
 * results carry ids and names only.
 */
import { type KeyStatus, PENDING_GRACE_MS, type SecretRecord } from '../../customer-key/key-record.js';

/**
 * A pending record, or a key whose secret is not readable yet, younger than this is a provisioning in progress (or
 * a listing that lags), not an orphan: it is reported as information at most. The function's own grace
 * (lib/customer-key/key-record.ts), so both agree on when a pending record stops being "not yet".
 */
export const DEFAULT_PENDING_GRACE_MS = PENDING_GRACE_MS;

export interface ReconcileSettings {
  /** NAME_PREFIX of the deployment: the keys and secrets it owns. */
  prefix: string;
  /** USAGE_PLANS of the deployment, parsed (`{}`: keys get no plan, plans are not checked). */
  usagePlans: Record<string, string>;
  /** KMS key of restored secrets (SECRET_KMS_KEY_ID); Secrets Manager's default key when absent. */
  kmsKeyId?: string;
  /** See {@link DEFAULT_PENDING_GRACE_MS}. */
  pendingGraceMs?: number;
  /** The time of the gathering (ages are measured from it); default: the clock. */
  now?: () => Date;
}

/** Where a name of this deployment points: `<prefix><product or _>/<customer>`. */
export interface OwnedName {
  customerId: string;
  /** null for `_` (no product). */
  productCode: string | null;
  apiKeyName: string;
  secretName: string;
}

/** An API key named like one of this deployment's. Its value is in {@link ReconcileState.keyValues}, not here. */
export interface OwnedKey extends OwnedName {
  id: string;
  enabled: boolean;
  tags: Record<string, string>;
  createdDate?: Date;
  lastUpdatedDate?: Date;
}

/** The record of a secret without its value ({@link ReconcileState.secretValues} holds that). */
export type RecordWithoutValue = Omit<SecretRecord, 'value'>;

/** A secret named like one of this deployment's. */
export interface OwnedSecret extends OwnedName {
  arn: string;
  /** Set when the secret is scheduled for deletion (it is then not read). */
  deletedDate?: Date;
  record?: RecordWithoutValue;
  /** Where the record was read: the record table, or the secret (a record from before the table, not moved yet). */
  recordIn?: 'table' | 'secret';
  /** Why the secret could not be read as a record (never quotes its content). */
  unreadable?: string;
}

export interface ReconcileState {
  prefix: string;
  gatheredAt: Date;
  keys: OwnedKey[];
  secrets: OwnedSecret[];
  /** Key ids in each configured usage plan. */
  planMembers: Map<string, Set<string>>;
  /** key id → value. Sensitive: never print. */
  keyValues: Map<string, string>;
  /** secret name → the record's key value. Sensitive: never print. */
  secretValues: Map<string, string>;
  /** Names under the prefix that are not of this deployment's shape (left alone). */
  ignored: { apiKeys: string[]; secrets: string[] };
}

export type FindingKind =
  | 'key-without-secret'
  | 'secret-without-key'
  | 'enabled-key-for-revoked'
  | 'disabled-key-for-active'
  | 'missing-from-plan'
  | 'in-plan-while-revoked'
  | 'duplicate-keys'
  | 'unreadable-secret'
  | 'record-in-secret'
  | 'stalled-pending'
  | 'in-progress';

/** `fix`: `--fix` repairs it; `manual`: needs a human (the action says what to do); `none`: information only. */
export type Repair = 'fix' | 'manual' | 'none';

export interface Finding {
  kind: FindingKind;
  severity: 'error' | 'info';
  repair: Repair;
  customerId: string;
  productCode: string | null;
  apiKeyName: string;
  secretName: string;
  apiKeyId?: string;
  /** duplicate-keys: every key of the name. */
  apiKeyIds?: string[];
  usagePlanId?: string;
  /** The record's status (`pending`: no status and no key id yet). */
  status?: KeyStatus | 'pending';
  /** What is wrong. */
  problem: string;
  /** What `--fix` does, or what the operator can do. */
  action: string;
}

/**
 * What became of one repair. `fixed`: done, and re-reading shows it. `skipped`: the finding no longer held when
 * re-read just before the repair. `not-confirmed`: the repair call succeeded but re-reading does not show its effect
 * (it is not counted as fixed). `failed`: the repair call failed.
 */
export type FixOutcome = 'fixed' | 'skipped' | 'not-confirmed' | 'failed';

export interface FixResult {
  kind: FindingKind;
  customerId: string;
  productCode: string | null;
  secretName: string;
  apiKeyId?: string;
  usagePlanId?: string;
  outcome: FixOutcome;
  /** What was done, or why not. */
  detail: string;
}

export interface ReconcileReport {
  prefix: string;
  gatheredAt: string;
  checked: { apiKeys: number; secrets: number; usagePlans: number; ignoredApiKeys: number; ignoredSecrets: number };
  findings: Finding[];
  /** With fix: what was repaired. */
  fixes?: FixResult[];
  /** With fix: the findings of a second pass, after the repairs. */
  remaining?: Finding[];
}
