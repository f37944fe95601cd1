/**
 * What one maintenance sweep costs over a Region full of keys with few of them due (issue 21: "costs in proportion
 * to the work that is due, not to the number of keys: measure and report the API Gateway, Secrets Manager and
 * DynamoDB calls of one sweep over 10,000 keys of which 10 are due").
 *
 * `npm exec -- tsx tests/bench/sweep-cost.ts [--keys 10000] [--due 10] [--recent 0] [--json]`
 *
 * Seeds moto directly (fast, uncounted): `--keys` API keys under the pipeline's prefix, each with its record in the
 * record table — `--due` of them revoked 40 days ago (disabled; due at RETIRE_AFTER_DAYS=30), `--recent` revoked
 * an hour ago (disabled, not due yet), the rest active — and a usage plan USAGE_PLANS names. Then one sweep, the
 * scheduled function's code with its production settings (SWEEP_RATE_PER_SECOND 1), through the realistic layer at
 * the real quotas with GetApiKeys paged as AWS pages it (500 a key listing at most), with the provisioning instances'
 * coordination table as serverless.yml gives it (its UpdateItems: a turn per usage-plan write): the layer counts every
 * call by operation. Prints the calls by service and operation, the throttled ones, the run's time and its outcomes.
 * Exit 0 when every due key was retired and nothing else, 1 otherwise, 2 when it could not run.
 */
import { APIGatewayClient, CreateApiKeyCommand } from '@aws-sdk/client-api-gateway';
import { type AttributeValue, BatchWriteItemCommand, DynamoDBClient, type PutItemCommand } from '@aws-sdk/client-dynamodb';
import pLimit from 'p-limit';
import { dynamoDbRecordStore } from '../../lib/aws/dynamodb.js';
import { EXIT, parseCommandLine, positiveNumber, runCommand } from '../../lib/command-line.js';
import type { KeyRecord } from '../../lib/customer-key/key-record.js';
import { startMoto } from '../../lib/local/moto.js';
import { ensureCoordinationTable, ensureKeyRecordsTable } from '../../lib/local/resources.js';
import { loadSweepConfig } from '../../lib/maintenance/config.js';
import { createSweepInstance } from '../../lib/maintenance/deps.js';
import { sweep } from '../../lib/maintenance/sweep.js';
import { REALISTIC, type RealisticStats, startRealisticAws } from '../realistic-aws/index.js';
import { NAME_PREFIX, PRODUCT_CODE, usagePlanWithStage } from './world.js';

process.env.AWS_REGION ??= 'us-east-1';
process.env.AWS_ACCESS_KEY_ID ??= 'bench';
process.env.AWS_SECRET_ACCESS_KEY ??= 'bench';

const USAGE = `Usage: npm exec -- tsx tests/bench/sweep-cost.ts [--keys N] [--due D] [--recent R] [--json]

Seeds N API keys with their records into moto (D revoked 40 days ago: due; R revoked an hour ago: not yet; the rest
active), runs one maintenance sweep through the realistic AWS layer (real quotas, GetApiKeys in pages of at most
500) and prints its AWS calls by service and operation.

  --keys N     API keys in the Region, all the pipeline's (default 10000)
  --due D      of them revoked longer than RETIRE_AFTER_DAYS (30) ago (default 10)
  --recent R   of them revoked an hour ago, not due yet (default 0)
  --json       print the figures as one JSON document`;

const TABLE = 'bench-key-records';
/** The provisioning instances' coordination table, which the sweep joins as serverless.yml has it (COORDINATION_TABLE). */
const COORDINATION = 'bench-coordination';
const DAY_MS = 86_400_000;
/** Concurrent seeding calls: moto is not safe under heavy concurrency (aws-facts.md). */
const SEED_CONCURRENCY = 8;
/** serverless.yml functions.sweep.timeout. */
const SWEEP_TIMEOUT_MS = 120_000;

type Kind = 'active' | 'due' | 'recent';

/** The service of a statistics key of the layer: API Gateway's are bare REST names, the others `Target.Name`. */
function serviceOf(key: string): { service: string; operation: string } {
  const [prefix, name] = key.includes('.') ? key.split('.', 2) : ['apigateway', key];
  const service = prefix === 'DynamoDB_20120810' ? 'dynamodb' : prefix === 'secretsmanager' ? 'secretsmanager' : (prefix ?? '');
  return { service, operation: name ?? key };
}

function byService(stats: RealisticStats) {
  const calls: Record<string, Record<string, { calls: number; throttled: number }>> = {
    apigateway: {},
    secretsmanager: {},
    dynamodb: {},
  };
  for (const [key, n] of Object.entries(stats.requests)) {
    const { service, operation } = serviceOf(key);
    calls[service] = { ...calls[service], [operation]: { calls: n, throttled: stats.throttled[key] ?? 0 } };
  }
  return calls;
}

/**
 * The record table's item for a record, exactly as the production store writes it (lib/aws/dynamodb.ts
 * dynamoDbRecordStore, with its `due` index attributes): its PutItem is captured instead of sent, so that the seeding
 * can write 25 items a call without a second copy of the item's format.
 */
async function itemOf(key: string, record: KeyRecord): Promise<Record<string, AttributeValue>> {
  let item: Record<string, AttributeValue> | undefined;
  const capture = {
    send: async (command: PutItemCommand) => {
      item = command.input.Item;
      return {};
    },
  } as unknown as DynamoDBClient;
  await dynamoDbRecordStore(capture, TABLE).put(key, record, undefined);
  if (!item) throw new Error(`no item written for ${key}`);
  return item;
}

async function main(): Promise<number> {
  const { values } = parseCommandLine(USAGE, {
    keys: { type: 'string', default: '10000' },
    due: { type: 'string', default: '10' },
    recent: { type: 'string', default: '0' },
    json: { type: 'boolean', default: false },
  });
  const keys = positiveNumber('keys', values.keys);
  const due = values.due === '0' ? 0 : positiveNumber('due', values.due);
  const recent = values.recent === '0' ? 0 : positiveNumber('recent', values.recent);
  if (due + recent > keys) throw new Error('--due and --recent are part of --keys: their sum must not exceed it');
  const say = (line: string) => {
    if (!values.json) console.log(line);
  };

  const moto = await startMoto();
  const aws = await startRealisticAws(moto.endpoint, { ...REALISTIC, throttle: { factor: 1 }, apiKeyPaging: true });
  try {
    // Seeding: straight into moto, neither counted nor throttled.
    const t0 = Date.now();
    const apigw = new APIGatewayClient({ endpoint: moto.endpoint });
    const dynamodb = new DynamoDBClient({ endpoint: moto.endpoint });
    await ensureKeyRecordsTable(dynamodb, TABLE);
    await ensureCoordinationTable(dynamodb, COORDINATION);
    const planId = await usagePlanWithStage(apigw);
    const items: Array<Record<string, AttributeValue>> = [];
    const now = Date.now();
    const kindOf = (i: number): Kind => (i < due ? 'due' : i < due + recent ? 'recent' : 'active');
    const limit = pLimit(SEED_CONCURRENCY);
    await Promise.all(
      Array.from({ length: keys }, (_, i) =>
        limit(async () => {
          const kind = kindOf(i);
          const customerId = `cust-${String(i).padStart(5, '0')}`;
          const apiKeyName = `${NAME_PREFIX}${PRODUCT_CODE}/${customerId}`;
          const key = await apigw.send(new CreateApiKeyCommand({ name: apiKeyName, customerId, enabled: kind === 'active' }));
          const revokedAt = kind === 'active' ? undefined : new Date(now - (kind === 'due' ? 40 * DAY_MS : 3_600_000)).toISOString();
          const record: KeyRecord = {
            customerId,
            productCode: PRODUCT_CODE,
            plan: null,
            apiKeyName,
            createdAt: new Date(now - 90 * DAY_MS).toISOString(),
            apiKeyId: key.id,
            ...(kind === 'active' ? { status: 'active', usagePlanId: planId } : { status: 'revoked', revokedAt, lastEventAt: revokedAt }),
          };
          items.push(await itemOf(`${PRODUCT_CODE}/${customerId}`, record));
        }),
      ),
    );
    for (let i = 0; i < items.length; i += 25) {
      let unprocessed = items.slice(i, i + 25).map((Item) => ({ PutRequest: { Item } }));
      while (unprocessed.length > 0) {
        const answer = await dynamodb.send(new BatchWriteItemCommand({ RequestItems: { [TABLE]: unprocessed } }));
        unprocessed = (answer.UnprocessedItems?.[TABLE] ?? []) as typeof unprocessed;
      }
    }
    say(
      `Seeded ${keys} keys and records (${due} due, ${recent} revoked an hour ago) in moto in ${((Date.now() - t0) / 1000).toFixed(1)} s`,
    );

    // The sweep, as functions/sweep.ts runs it, through the layer.
    process.env.AWS_ENDPOINT_URL = aws.endpoint;
    const instance = createSweepInstance(
      loadSweepConfig({
        ...process.env,
        KEY_RECORDS_TABLE: TABLE,
        COORDINATION_TABLE: COORDINATION,
        USAGE_PLANS: JSON.stringify({ [PRODUCT_CODE]: planId }),
        RETIRE_AFTER_DAYS: '30',
        SWEEP_RATE_PER_SECOND: '1',
      }),
    );
    aws.resetStats();
    const started = Date.now();
    const report = await sweep(
      instance.forRun(() => SWEEP_TIMEOUT_MS - (Date.now() - started)),
      { asOf: new Date() },
    );
    const seconds = (Date.now() - started) / 1000;
    const calls = byService(aws.stats());
    const outcomes: Record<string, number> = {};
    for (const outcome of Object.values(report.outcomes)) outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
    const ok = (outcomes.retired ?? 0) === due && Object.keys(report.outcomes).length === due && report.failures.length === 0;

    if (values.json) {
      console.log(
        JSON.stringify({ keys, due, recent, seconds, calls, outcomes, failures: report.failures, capacity: report.capacity }, null, 2),
      );
    } else {
      say(`One sweep over ${keys} keys, ${due} due, through the realistic layer (real quotas, GetApiKeys paged): ${seconds.toFixed(1)} s`);
      say('service         operation            calls  throttled');
      for (const [service, ops] of Object.entries(calls)) {
        const entries = Object.entries(ops).sort(([a], [b]) => a.localeCompare(b));
        if (entries.length === 0) say(`${service.padEnd(15)} (none)                   0`);
        for (const [operation, n] of entries)
          say(`${service.padEnd(15)} ${operation.padEnd(20)} ${String(n.calls).padStart(5)}  ${String(n.throttled).padStart(9)}`);
      }
      say(`Outcomes: ${JSON.stringify(outcomes)}; failures: ${report.failures.length}; index pages: ${report.pages}`);
      say(
        `API keys in the Region after the sweep: ${report.capacity?.apiKeys ?? report.capacityError} of ${report.capacity?.quota ?? '?'}`,
      );
    }
    return ok ? EXIT.ok : EXIT.attention;
  } finally {
    await aws.close();
    await moto.stop();
  }
}

runCommand('sweep-cost', main);
