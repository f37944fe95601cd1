/**
 * `npm run reconcile -- [--prefix P] [--usage-plans JSON] [--endpoint URL] [--fix] [--json]`: compares the API keys
 * of a deployment with their secrets and subscription state and reports the orphans (the logic is in
 * lib/local/reconcile.ts). Exit code: 0 nothing needs attention, 1 something does (or a repair failed), 2 could not run.
 */
import { parseArgs } from 'node:util';
import { APIGatewayClient } from '@aws-sdk/client-api-gateway';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { exitCode, formatReport, parsePrefix, parseUsagePlans, reconcile } from './reconcile.js';

const USAGE = `Usage: npm run reconcile -- [--prefix PREFIX] [--usage-plans JSON] [--endpoint URL] [--fix] [--json]

Compares the API keys named <PREFIX><product>/<customer> with their secrets (<key name>/api-key), the subscription
state the secrets record and the usage plans, and reports what disagrees. Without --fix nothing is changed.

  --prefix PREFIX      the deployment's NAME_PREFIX (default: NAME_PREFIX from the environment; required one way)
  --usage-plans JSON   the deployment's USAGE_PLANS (default: USAGE_PLANS from the environment; none: plans unchecked)
  --endpoint URL       an AWS-compatible endpoint (moto, LocalStack); default: AWS, as the SDK configures it
  --fix                repair what is safe to repair (restore a missing secret from its key, disable the key of a
                       revoked subscription, put an active key in its plan, take a revoked one out), print each
                       repair, then look again
  --json               print the report as one JSON document (findings, fixes, remaining)

Restored secrets use SECRET_KMS_KEY_ID from the environment when it is set. Key values are never printed.
Exit code: 0 nothing needs attention, 1 findings need attention or a repair failed, 2 could not run.`;

function options() {
  const { values } = parseArgs({
    options: {
      prefix: { type: 'string' },
      'usage-plans': { type: 'string' },
      endpoint: { type: 'string' },
      fix: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  return values;
}

async function main(): Promise<number> {
  const flags = options();
  if (flags.help) {
    console.log(USAGE);
    return 0;
  }
  const prefix = parsePrefix(flags.prefix ?? process.env.NAME_PREFIX);
  const usagePlans = parseUsagePlans(flags['usage-plans'] ?? process.env.USAGE_PLANS);

  if (flags.endpoint) {
    process.env.AWS_REGION ??= 'us-east-1';
    // A local endpoint does not check credentials, but the SDK needs some to sign with.
    if (/^https?:\/\/(localhost|127\.0\.0\.1|\[::1\])(:|\/|$)/.test(flags.endpoint) && !process.env.AWS_PROFILE) {
      process.env.AWS_ACCESS_KEY_ID ??= 'local';
      process.env.AWS_SECRET_ACCESS_KEY ??= 'local';
    }
  }
  // The SDK's adaptive retry: throttles slow this run down instead of failing it, and it stays a modest user of the
  // API Gateway control-plane quota the provisioning function shares.
  const common = { ...(flags.endpoint && { endpoint: flags.endpoint }), maxAttempts: 5, retryMode: 'adaptive' as const };
  const clients = { apigw: new APIGatewayClient(common), secrets: new SecretsManagerClient(common) };

  const report = await reconcile(clients, { prefix, usagePlans, kmsKeyId: process.env.SECRET_KMS_KEY_ID || undefined, fix: flags.fix });
  console.log(flags.json ? JSON.stringify(report, null, 2) : formatReport(report));
  return exitCode(report);
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(`reconcile failed: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(2);
  },
);
