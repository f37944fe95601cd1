/** What the smoke test talks to (its port onto AWS), what it reports, and its error. No @aws-sdk import here. */
import type { KeyRecord } from '../../customer-key/key-record.js';
import { ProvisionerError } from '../../errors.js';
import type { StackNames } from './stack.js';
import type { Statement } from './statements.js';

/** An API key as GetApiKey answers (the value only to compare with the secret's: never printed). */
export interface FoundKey {
  id: string;
  name: string;
  enabled: boolean;
  customerId?: string;
  tags: Record<string, string>;
  value?: string;
}

/** The calls the smoke test makes, each one AWS call (the SDK's adaptive retry under it). Throws {@link AwsCallError}. */
export interface SmokeAws {
  /** GetQueueUrl. */
  queueUrl(queueName: string): Promise<string>;
  /** SendMessage; the message id. */
  send(queueUrl: string, body: string): Promise<string>;
  /** GetItem (strongly consistent): the record, or undefined. */
  record(table: string, key: string): Promise<KeyRecord | undefined>;
  /** GetApiKey with its value; undefined when there is no such key. */
  apiKey(id: string): Promise<FoundKey | undefined>;
  /** GetApiKeys by name (a prefix match): the ids of the keys named exactly `name`. */
  apiKeyIdsNamed(name: string): Promise<string[]>;
  /** GetUsagePlanKey: whether the key is in the plan. */
  inUsagePlan(usagePlanId: string, keyId: string): Promise<boolean>;
  /** GetSecretValue: its ARN and content; `deleted` while a deletion is under way; undefined when there is none. */
  secret(name: string): Promise<{ arn: string; secretString: string } | 'deleted' | undefined>;
  /** DeleteUsagePlanKey. */
  removeFromUsagePlan(usagePlanId: string, keyId: string): Promise<void>;
  /** DeleteApiKey; nothing when it is gone already. */
  deleteApiKey(id: string): Promise<void>;
  /** DeleteSecret with ForceDeleteWithoutRecovery; nothing when it is gone already. */
  deleteSecret(name: string): Promise<void>;
  /** DeleteItem. */
  deleteRecord(table: string, key: string): Promise<void>;
}

/** An AWS call of the smoke test's own that failed: the operation, and the AWS error as the service answered it. */
export class AwsCallError extends ProvisionerError {
  override name = 'AwsCallError';
  constructor(
    readonly operation: string,
    /** The AWS error's name (`AccessDeniedException`, `AccessDenied`, …), or the network error's. */
    readonly errorName: string,
    readonly awsMessage: string,
    readonly httpStatus: number | undefined,
    options?: ErrorOptions,
  ) {
    super(`${operation} failed: ${errorName}${httpStatus ? ` (HTTP ${httpStatus})` : ''}: ${awsMessage}`, options);
  }

  /** IAM (or a resource policy, or KMS) refused the call. */
  get accessDenied(): boolean {
    return /AccessDenied/.test(this.errorName);
  }
}

/** One step of the run, as printed. Never holds a key value. */
export interface SmokeStep {
  name: string;
  ok: boolean;
  /** What was checked or done; for a failure, what went wrong. */
  detail: string;
  /** The AWS error of the smoke test's own call that failed. */
  error?: { operation: string; name: string; message: string; httpStatus?: number };
  /** The statements to look at: the role or policy, its Sid, and the IAM action behind the failing call. */
  lookAt?: Statement[];
  /** More lines: where the pipeline stopped, the command that shows the function's AWS error, the issue-22 note. */
  notes?: string[];
}

export interface SmokeSettings {
  names: StackNames;
  /** The reserved customer id of this run. */
  customerId: string;
  productCode: string;
  /** The signup's `plan` (a tier of USAGE_PLANS `code:tier`). */
  plan?: string;
  /** The plan USAGE_PLANS gives the product, when usage plans are configured. */
  usagePlanId?: string;
  /** How long to wait for each outcome of the pipeline. */
  timeoutMs: number;
  pollMs: number;
}

export interface SmokeReport {
  stage: string;
  region: string;
  customerId: string;
  passed: boolean;
  steps: SmokeStep[];
}
