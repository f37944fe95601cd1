/**
 * The names of one deployed stage, derived from the service and the stage as serverless.yml gives them — the way
 * reconcile and sweep name the record table — rather than read from CloudFormation: the tools need no
 * cloudformation:DescribeStacks, and the tests' moto holds no stack.
 */
import { CUSTOMER_ID_PATTERN } from '../../customer-key/naming.js';

/** serverless.yml `service`. */
export const SERVICE = 'api-key-provisioner';

/** A stage name as the stack's resource names allow it (serverless.yml puts it into queue, table and role names). */
export const STAGE_PATTERN = /^[A-Za-z0-9-]{1,32}$/;

/**
 * The customer ids the smoke test uses: `smoke-<UTC time>-<6 hex>`. Reserved: no real customer may have one, and a
 * consumer of the completion queue skips them (docs/operations.md, "The smoke test").
 */
export const SMOKE_CUSTOMER_PREFIX = 'smoke-';

/** The tag every smoke signup asks for (an event's own tag, on its key and secret), with the run's customer id. */
export const SMOKE_TAG = 'keyprov:smoke';

export interface StackNames {
  stage: string;
  region: string;
  /** NAME_PREFIX, and the value of the ownership tag `keyprov:owner`. */
  namePrefix: string;
  signupQueue: string;
  signupDeadLetterQueue: string;
  completionQueue: string;
  keyRecordsTable: string;
  /** The provision function's log group (its ERROR line names a refused call and the AWS error). */
  provisionLogGroup: string;
  /** The roles' names (serverless.yml RoleName), for the statements a failure points at. */
  provisionRole: string;
}

/** The names of stage `stage` in `region` (serverless.yml: `${self:service}-${sls:stage}-…`, `keyprov/${sls:stage}/`). */
export function stackNames(stage: string, region: string): StackNames {
  const base = `${SERVICE}-${stage}`;
  return {
    stage,
    region,
    namePrefix: `keyprov/${stage}/`,
    signupQueue: `${base}-signups`,
    signupDeadLetterQueue: `${base}-signups-dlq`,
    completionQueue: `${base}-completions`,
    keyRecordsTable: `${base}-key-records`,
    provisionLogGroup: `/aws/lambda/${base}-provision`,
    provisionRole: `${base}-${region}-provision`,
  };
}

/** A new reserved customer id: `smoke-20261206T132124Z-a1b2c3` (sortable by time, unique per run). */
export function smokeCustomerId(now: Date, random: string): string {
  const time = now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}/, '');
  const id = `${SMOKE_CUSTOMER_PREFIX}${time}-${random}`;
  if (!CUSTOMER_ID_PATTERN.test(id)) throw new Error(`not a customer id: ${id}`);
  return id;
}
