import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { PolicyDocument } from '../realistic-aws/iam/evaluate.js';
import { packagedTemplate } from '../realistic-aws/iam/package.js';
import { IamWorld, type Omission } from '../realistic-aws/iam/world.js';

/*
 * This stack's IAM world for the integration suites: the template `serverless package` writes for stage `test` with
 * the seller's settings below, and its callers as production has them.
 */

export const STAGE = 'test';
export const REGION = 'us-east-1';
/** moto's account. */
export const ACCOUNT = '123456789012';
const ROOT = process.cwd();

/** The resources' names as serverless.yml gives them for stage `test` (the suites create them under these names). */
export const STACK_NAMES = {
  signups: `api-key-provisioner-${STAGE}-signups`,
  deadLetter: `api-key-provisioner-${STAGE}-signups-dlq`,
  completions: `api-key-provisioner-${STAGE}-completions`,
  coordinationTable: `api-key-provisioner-${STAGE}-coordination`,
  keyRecordsTable: `api-key-provisioner-${STAGE}-key-records`,
  keyRevealsTable: `api-key-provisioner-${STAGE}-key-reveals`,
  signingKeySecret: `api-key-provisioner/${STAGE}/registration-signing-key`,
  secretsKeyAlias: `alias/api-key-provisioner-${STAGE}-secrets`,
  provisionFunction: `api-key-provisioner-${STAGE}-provision`,
} as const;

/** The functions' ARNs (serverless.yml's names for stage `test`). */
export const STACK_FUNCTION_ARNS = {
  provision: `arn:aws:lambda:${REGION}:${ACCOUNT}:function:${STACK_NAMES.provisionFunction}`,
} as const;

/** The seller's producer (signupPublisherArns) and the operators' roles (covered by `role/ops/*`, so redrive may send). */
export const PUBLISHER_ROLE_ARN = `arn:aws:iam::${ACCOUNT}:role/signup-service`;
export const OPERATOR_ROLE_ARN = `arn:aws:iam::${ACCOUNT}:role/ops/keyprov-operator`;

/** `--param` settings: a seller who names its producers and its Marketplace topic, as docs/deployment.md advises. */
export const PACKAGE_PARAMS = {
  signupPublisherArns: `${PUBLISHER_ROLE_ARN},arn:aws:iam::${ACCOUNT}:role/ops/*`,
  signupSourceArns: `arn:aws:sns:${REGION}:${ACCOUNT}:aws-mp-subscription-notification-prod4k2j9x8l7,arn:aws:events:${REGION}:${ACCOUNT}:rule/signups-to-keyprov`,
};

/** Principals: the function roles (the session name is the function's name, as Lambda gives it), then the others. */
export const PRINCIPALS = {
  provision: 'provision',
  register: 'register',
  sweep: 'sweep',
  keyPage: 'key-page',
  operator: 'operator',
  publisher: 'publisher',
} as const;

/** docs/operator-policy.json with its placeholders filled in. */
export function operatorPolicy(secretsKeyArn: string): PolicyDocument {
  const text = readFileSync(resolve(ROOT, 'docs/operator-policy.json'), 'utf8');
  const values: Record<string, string> = { Partition: 'aws', Region: REGION, Account: ACCOUNT, Stage: STAGE, SecretsKeyArn: secretsKeyArn };
  return JSON.parse(
    text.replace(/\$\{(\w+)\}/g, (whole, name: string) => {
      const value = values[name];
      if (value === undefined) throw new Error(`docs/operator-policy.json: unknown placeholder ${whole}`);
      return value;
    }),
  ) as PolicyDocument;
}

/** The producer's own IAM policy: sqs:SendMessage on the signup queue (docs/deployment.md, "Who may send"). */
export const publisherPolicy = (): PolicyDocument => ({
  Version: '2012-10-17',
  Statement: [
    { Sid: 'SendSignups', Effect: 'Allow', Action: 'sqs:SendMessage', Resource: `arn:aws:sqs:${REGION}:${ACCOUNT}:${STACK_NAMES.signups}` },
  ],
});

/**
 * Statements to leave out, from REALISTIC_IAM_OMIT (`Holder:Sid,Holder:Sid`): how `npm run iam:statements` runs
 * the suites without one statement.
 */
export function omissionsFromEnvironment(env: NodeJS.ProcessEnv = process.env): Omission[] {
  return (env.REALISTIC_IAM_OMIT ?? '')
    .split(',')
    .filter(Boolean)
    .map((entry) => {
      const [holder, sid] = entry.split(':');
      if (!holder || !sid) throw new Error(`REALISTIC_IAM_OMIT: "${entry}" is not Holder:Sid`);
      return { holder, sid };
    });
}

export interface StackWorldOptions {
  /** The id of the KMS key the stack's SecretsKey is (moto's, created by the suite). */
  secretsKeyId: string;
  /** UsagePlanIds: the plans the suite configured (USAGE_PLANS' values). */
  usagePlanIds?: string[];
  /** RotationSchedule: the suite's ROTATION_SCHEDULE (ScheduleRotationPolicy is in the stack only with one). */
  rotationSchedule?: string;
  omit?: Omission[];
}

/** The IAM world of the packaged stack (packaged once per content of serverless.yml, then cached). */
export function stackIamWorld(options: StackWorldOptions): IamWorld {
  const template = packagedTemplate({ stage: STAGE, region: REGION, params: PACKAGE_PARAMS });
  const secretsKeyArn = `arn:aws:kms:${REGION}:${ACCOUNT}:key/${options.secretsKeyId}`;
  return new IamWorld(template, {
    account: ACCOUNT,
    region: REGION,
    stackName: `api-key-provisioner-${STAGE}`,
    parameters: { UsagePlanIds: [...new Set(options.usagePlanIds ?? [])].join(','), RotationSchedule: options.rotationSchedule ?? '' },
    physicalIds: { SecretsKey: options.secretsKeyId },
    roles: [
      { name: PRINCIPALS.provision, roleId: 'ProvisionRole', session: `api-key-provisioner-${STAGE}-provision` },
      { name: PRINCIPALS.register, roleId: 'RegisterRole', session: `api-key-provisioner-${STAGE}-register` },
      { name: PRINCIPALS.sweep, roleId: 'SweepRole', session: `api-key-provisioner-${STAGE}-sweep` },
      { name: PRINCIPALS.keyPage, roleId: 'KeyPageRole', session: `api-key-provisioner-${STAGE}-keyPage` },
    ],
    extraPrincipals: [
      {
        name: PRINCIPALS.operator,
        roleArn: OPERATOR_ROLE_ARN,
        session: 'operator',
        policies: [{ name: 'operator', policy: operatorPolicy(secretsKeyArn) }],
      },
      {
        name: PRINCIPALS.publisher,
        roleArn: PUBLISHER_ROLE_ARN,
        session: 'signup-service',
        policies: [{ name: 'publisher', policy: publisherPolicy() }],
      },
    ],
    omit: options.omit ?? omissionsFromEnvironment(),
  });
}
