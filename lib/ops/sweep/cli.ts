/**
 * `npm run sweep -- [--endpoint URL] [--as-of TIME] [--dry-run] [--records-table NAME] [--prefix P] [--json]`: the
 * maintenance sweep once (lib/maintenance/sweep.ts), as the scheduled function runs it.
 * Exit code: 0 done, 1 a retirement failed (or the keys could not be counted, or they are at 80 % of the quota),
 * 2 could not run.
 */
import { EXIT, endpointUrl, parseCommandLine, requireAwsSettings, runCommand, UsageError, useEndpoint } from '../../command-line.js';
import { ConfigError } from '../../errors.js';
import { loadSweepConfig, type SweepConfig } from '../../maintenance/config.js';
import { createSweepInstance } from '../../maintenance/deps.js';
import { sweepSummary } from '../../maintenance/observability.js';
import { type SweepReport, sweep } from '../../maintenance/sweep.js';
import { parsePrefix, parseRecordsTable, parseUsagePlans } from '../reconcile/options.js';

const USAGE = `Usage: npm run sweep -- [--endpoint URL] [--as-of TIME] [--dry-run] [--records-table NAME] [--prefix PREFIX] [--json]

Runs the maintenance sweep once, as the scheduled function does: every key revoked more than RETIRE_AFTER_DAYS
(default 30; 0: never) before --as-of is taken out of its usage plan and deleted, its record marked retired; then
the Region's API keys are counted against API_KEY_QUOTA (default 10000).

  --endpoint URL       an AWS-compatible endpoint (moto, LocalStack); default: AWS, as the SDK configures it
  --as-of TIME         evaluate what is due at this time (ISO 8601, e.g. 2027-01-31T00:00:00Z); default: now
  --dry-run            list what is due and what would be done; change nothing (the keys are still counted)
  --records-table NAME the deployment's KEY_RECORDS_TABLE (default: KEY_RECORDS_TABLE from the environment, else
                       api-key-provisioner-<stage>-key-records for the prefix keyprov/<stage>/)
  --prefix PREFIX      the deployment's NAME_PREFIX, to derive the record table's name (default: NAME_PREFIX)
  --json               print the report as one JSON document
  -h, --help           print this text

USAGE_PLANS, RETIRE_AFTER_DAYS, API_KEY_QUOTA and SWEEP_RATE_PER_SECOND (default 1 call/s) are read from the
environment. Key values are never read nor printed.
Exit code: 0 done, 1 a retirement failed, the keys could not be counted or they reach 80 % of the quota, 2 could not run.`;

/** When `--as-of` is not a time. */
function parseAsOf(raw: string | undefined): Date {
  if (raw === undefined) return new Date();
  const at = new Date(raw);
  if (!/^\d{4}-\d{2}-\d{2}/.test(raw) || Number.isNaN(at.getTime()))
    throw new UsageError(`--as-of must be an ISO 8601 time such as 2027-01-31T00:00:00Z, got ${JSON.stringify(raw)}`);
  return at;
}

/** The share of the quota at which the alarm (serverless.yml ApiKeyCapacityAlarm) fires, and the command says so. */
const CAPACITY_ALARM_SHARE = 0.8;

function format(report: SweepReport): string {
  const lines = [`Sweep as of ${report.asOf}${report.dryRun ? ' (dry run: nothing changed)' : ''}`];
  lines.push(report.dueBefore ? `Due: keys revoked at or before ${report.dueBefore}` : 'Due: nothing (RETIRE_AFTER_DAYS=0)');
  for (const [key, outcome] of Object.entries(report.overlaps)) lines.push(`  ${outcome === 'ended' ? 'overlap-ended' : outcome} ${key}`);
  for (const [key, outcome] of Object.entries(report.outcomes)) lines.push(`  ${outcome.padEnd(12)} ${key}`);
  for (const failure of report.failures) lines.push(`  failed       ${failure.key}: ${failure.error}`);
  const counts = sweepSummary(report);
  lines.push(
    `Index pages read: ${counts.pages}; records listed: ${Object.keys(report.outcomes).length + Object.keys(report.overlaps).length + report.failures.length}`,
  );
  if (report.capacity)
    lines.push(
      `API keys in the Region: ${report.capacity.apiKeys} of ${report.capacity.quota} (${((100 * report.capacity.apiKeys) / report.capacity.quota).toFixed(1)} %)`,
    );
  if (report.capacityError) lines.push(`API keys could not be counted: ${report.capacityError}`);
  return lines.join('\n');
}

async function main(): Promise<number> {
  const { values: flags } = parseCommandLine(USAGE, {
    endpoint: { type: 'string' },
    'as-of': { type: 'string' },
    'dry-run': { type: 'boolean', default: false },
    'records-table': { type: 'string' },
    prefix: { type: 'string' },
    json: { type: 'boolean', default: false },
  });
  const asOf = parseAsOf(flags['as-of']);
  const rawTable = flags['records-table'] ?? process.env.KEY_RECORDS_TABLE;
  const recordsTable = parseRecordsTable(rawTable, rawTable ? '' : parsePrefix(flags.prefix ?? process.env.NAME_PREFIX));
  parseUsagePlans(process.env.USAGE_PLANS);
  const endpoint = endpointUrl(flags.endpoint);
  useEndpoint(endpoint);
  if (endpoint) process.env.AWS_ENDPOINT_URL = endpoint;
  let config: SweepConfig;
  try {
    config = loadSweepConfig({ ...process.env, KEY_RECORDS_TABLE: recordsTable });
  } catch (error) {
    if (error instanceof ConfigError) throw new UsageError(error.message);
    throw error;
  }
  const instance = createSweepInstance(config);
  const { APIGatewayClient } = await import('@aws-sdk/client-api-gateway');
  const probe = new APIGatewayClient({});
  await requireAwsSettings(probe.config as unknown as Parameters<typeof requireAwsSettings>[0], endpoint);
  probe.destroy();

  const report = await sweep(
    instance.forRun(() => Number.POSITIVE_INFINITY),
    { asOf, dryRun: flags['dry-run'] },
  );
  console.log(flags.json ? JSON.stringify(report, null, 2) : format(report));
  const full = report.capacity !== undefined && report.capacity.apiKeys >= CAPACITY_ALARM_SHARE * report.capacity.quota;
  return report.failures.length > 0 || report.capacityError || full ? EXIT.attention : EXIT.ok;
}

runCommand('sweep', main);
