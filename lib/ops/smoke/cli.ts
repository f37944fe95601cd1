/**
 * `npm run smoke -- --stage S [--region R] [--endpoint URL] [--usage-plans JSON] [--product CODE] [--plan TIER]
 * [--timeout SECONDS] [--json]`: the post-deploy smoke test of a deployed stage (smoke.ts).
 * Exit code: 0 every step passed, 1 a step failed, 2 could not run.
 */
import { randomBytes } from 'node:crypto';
import { APIGatewayClient } from '@aws-sdk/client-api-gateway';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SQSClient } from '@aws-sdk/client-sqs';
import {
  EXIT,
  endpointUrl,
  parseCommandLine,
  positiveNumber,
  requireAwsSettings,
  runCommand,
  UsageError,
  useEndpoint,
} from '../../command-line.js';
import { usagePlanFor } from '../../customer-key/key-record.js';
import { PRODUCT_CODE_PATTERN } from '../../customer-key/naming.js';
import { RejectedError } from '../../errors.js';
import { parseUsagePlans } from '../reconcile/options.js';
import { smokeAws } from './aws.js';
import { formatHeading, formatStep, formatVerdict } from './report.js';
import { runSmoke } from './smoke.js';
import { STAGE_PATTERN, smokeCustomerId, stackNames } from './stack.js';

/** The product code of a smoke signup when the stage has no usage plans: any code then provisions. */
const NO_PLAN_PRODUCT = 'smoke';

const USAGE = `Usage: npm run smoke -- --stage STAGE [--region REGION] [--endpoint URL] [--usage-plans JSON] [--product CODE]
                     [--plan TIER] [--timeout SECONDS] [--json]

The post-deploy smoke test: sends one signup for a new reserved customer (smoke-<time>-<random>) to the stage's
signup queue, waits for the function to provision it, checks the API key (enabled, customerId, tags, usage plan),
its secret (holds the key's value: compared by SHA-256, never printed) and its record, then revokes it through the
pipeline (an unsubscribe-success notification), waits for that, and deletes the key, the secret (without recovery
window) and the record. Each step is printed PASS or FAIL; a failure with the AWS error and the statement to look at.

  --stage STAGE         the deployed stage (serverless deploy --stage); names its queues, table and log group
  --region REGION       default: the SDK's (us-east-1 with --endpoint)
  --endpoint URL        an AWS-compatible endpoint (moto, LocalStack); default: AWS, as the SDK configures it
  --usage-plans JSON    the stage's USAGE_PLANS (default: USAGE_PLANS from the environment): the key must land in
                        the product's plan. Without it the signup uses product code ${NO_PLAN_PRODUCT} and no plan is checked
  --product CODE        the product of the signup (default: the only product of the usage plans, else ${NO_PLAN_PRODUCT})
  --plan TIER           the signup's plan, for USAGE_PLANS entries "code:tier"
  --timeout SECONDS     how long to wait for each outcome of the function (default 120)
  --json                print the report as one JSON document at the end
  -h, --help            print this text

Run it with credentials under docs/operator-policy.json whose role matches the stage's signupPublisherArns when it
is set (the queue policy then refuses anyone else's signup). Key values are never printed.
Exit code: 0 every step passed, 1 a step failed (the clean-up still ran), 2 could not run.`;

/** The product and plan of the signup, and the usage plan it must land in. Throws {@link UsageError}. */
function productOf(usagePlans: Record<string, string>, product: string | undefined, plan: string | undefined) {
  const products = [...new Set(Object.keys(usagePlans).map((k) => k.split(':')[0] ?? ''))];
  const productCode = product ?? (products.length === 0 ? NO_PLAN_PRODUCT : products.length === 1 ? products[0] : undefined);
  if (productCode === undefined) throw new UsageError(`--product is required: the usage plans name the products ${products.join(', ')}`);
  if (!PRODUCT_CODE_PATTERN.test(productCode)) throw new UsageError(`--product must be a product code, got ${JSON.stringify(productCode)}`);
  if (plan !== undefined && !/^[A-Za-z0-9._-]{1,64}$/.test(plan))
    throw new UsageError(`--plan must be a tier name, got ${JSON.stringify(plan)}`);
  try {
    return { productCode, plan, usagePlanId: usagePlanFor(usagePlans, productCode, plan) };
  } catch (error) {
    if (error instanceof RejectedError) throw new UsageError(`--product ${productCode}${plan ? ` --plan ${plan}` : ''}: ${error.message}`);
    throw error;
  }
}

async function main(): Promise<number> {
  const { values: flags } = parseCommandLine(USAGE, {
    stage: { type: 'string' },
    region: { type: 'string' },
    endpoint: { type: 'string' },
    'usage-plans': { type: 'string' },
    product: { type: 'string' },
    plan: { type: 'string' },
    timeout: { type: 'string', default: '120' },
    json: { type: 'boolean', default: false },
  });
  if (flags.stage === undefined) throw new UsageError('the stage is required: --stage STAGE');
  if (!STAGE_PATTERN.test(flags.stage))
    throw new UsageError(`--stage must be a stage name (A-Z a-z 0-9 -), got ${JSON.stringify(flags.stage)}`);
  const timeoutMs = positiveNumber('timeout', flags.timeout, false) * 1000;
  const product = productOf(parseUsagePlans(flags['usage-plans'] ?? process.env.USAGE_PLANS), flags.product, flags.plan);
  const endpoint = endpointUrl(flags.endpoint);
  useEndpoint(endpoint);

  // The SDK's adaptive retry, as reconcile: a throttle slows the run down instead of failing a step.
  const common = {
    ...(endpoint && { endpoint }),
    ...(flags.region && { region: flags.region }),
    maxAttempts: 5,
    retryMode: 'adaptive' as const,
  };
  const sqs = new SQSClient(common);
  await requireAwsSettings(sqs.config as unknown as Parameters<typeof requireAwsSettings>[0], endpoint, { regionFlag: true });
  const names = stackNames(flags.stage, await sqs.config.region());
  const customerId = smokeCustomerId(new Date(), randomBytes(3).toString('hex'));
  const aws = smokeAws({
    sqs,
    apigw: new APIGatewayClient(common),
    secrets: new SecretsManagerClient(common),
    dynamodb: new DynamoDBClient(common),
    endpoint,
  });

  if (!flags.json) console.log(formatHeading(names.stage, names.region, customerId));
  const report = await runSmoke(
    aws,
    { names, customerId, ...product, timeoutMs, pollMs: 1000 },
    { onStep: (step) => flags.json || console.log(formatStep(step)) },
  );
  console.log(flags.json ? JSON.stringify(report, null, 2) : formatVerdict(report));
  return report.passed ? EXIT.ok : EXIT.attention;
}

runCommand('smoke', main);
