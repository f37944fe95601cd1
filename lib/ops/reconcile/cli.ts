/**
 * `npm run reconcile -- [--prefix P] [--records-table NAME] [--usage-plans JSON] [--endpoint URL] [--fix] [--json]`:
 * compares the API keys of a deployment with their secrets and records and reports the orphans (reconcile.ts).
 * Exit code: 0 nothing needs attention, 1 something does (or a repair failed), 2 could not run.
 */
import { APIGatewayClient } from '@aws-sdk/client-api-gateway';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { endpointUrl, parseCommandLine, requireAwsSettings, runCommand, useEndpoint } from '../../command-line.js';
import { parsePrefix, parseRecordsTable, parseUsagePlans } from './options.js';
import { reconcile } from './reconcile.js';
import { exitCode, formatReport } from './report.js';
import { storesFor } from './stores.js';

const USAGE = `Usage: npm run reconcile -- [--prefix PREFIX] [--records-table NAME] [--usage-plans JSON] [--endpoint URL] [--fix] [--json]

Compares the API keys named <PREFIX><product>/<customer> with their secrets (<key name>/api-key), the customers'
records (the record table) and the usage plans, and reports what disagrees. Without --fix nothing is changed.

  --prefix PREFIX      the deployment's NAME_PREFIX (default: NAME_PREFIX from the environment; required one way)
  --records-table NAME the deployment's KEY_RECORDS_TABLE (default: KEY_RECORDS_TABLE from the environment, else
                       api-key-provisioner-<stage>-key-records for the prefix keyprov/<stage>/)
  --usage-plans JSON   the deployment's USAGE_PLANS (default: USAGE_PLANS from the environment; none: plans unchecked)
  --endpoint URL       an AWS-compatible endpoint (moto, LocalStack); default: AWS, as the SDK configures it
  --fix                repair what is safe to repair (move a record still in its secret into the record table,
                       restore a missing secret from its key, disable the key of a
                       revoked subscription, put an active key in its plan, take a revoked one out), read each
                       repair back, print it, then look again
  --json               print the report as one JSON document (findings, fixes, remaining)
  -h, --help           print this text

Locally, --endpoint URL is needed: \`npm start -- --keep\` leaves moto running and prints its endpoint and the queue
URLs (the local prefix is keyprov/local/). To pipe the output, run npm with -s, which keeps npm's own header lines
off stdout: npm run -s reconcile -- --json | jq '.findings[].kind'

A key or pending record younger than 15 minutes is reported as in-progress (information), never repaired.
Restored secrets use SECRET_KMS_KEY_ID from the environment when it is set. Key values are never printed.
Exit code: 0 nothing needs attention, 1 findings need attention or a repair failed or did not show, 2 could not run.`;

async function main(): Promise<number> {
  const { values: flags } = parseCommandLine(USAGE, {
    prefix: { type: 'string' },
    'records-table': { type: 'string' },
    'usage-plans': { type: 'string' },
    endpoint: { type: 'string' },
    fix: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
  });
  const prefix = parsePrefix(flags.prefix ?? process.env.NAME_PREFIX);
  const usagePlans = parseUsagePlans(flags['usage-plans'] ?? process.env.USAGE_PLANS);
  const recordsTable = parseRecordsTable(flags['records-table'] ?? process.env.KEY_RECORDS_TABLE, prefix);

  const endpoint = endpointUrl(flags.endpoint);

  useEndpoint(endpoint);
  // The SDK's adaptive retry: throttles slow this run down instead of failing it, and it stays a modest user of the
  // API Gateway control-plane quota the provisioning function shares.
  const common = { ...(endpoint && { endpoint }), maxAttempts: 5, retryMode: 'adaptive' as const };
  const apigw = new APIGatewayClient(common);
  await requireAwsSettings(apigw.config as unknown as Parameters<typeof requireAwsSettings>[0], endpoint);
  const stores = storesFor({
    apigw,
    secrets: new SecretsManagerClient(common),
    dynamodb: { client: new DynamoDBClient(common), recordsTable },
  });

  const report = await reconcile(stores, { prefix, usagePlans, kmsKeyId: process.env.SECRET_KMS_KEY_ID || undefined, fix: flags.fix });
  console.log(flags.json ? JSON.stringify(report, null, 2) : formatReport(report));
  return exitCode(report);
}

runCommand('reconcile', main);
