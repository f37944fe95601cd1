/**
 * The maintenance traffic of the `maintenance` scenario: leavers' keys due for retirement, seeded into moto before
 * the run, and the sweep (tests/bench/sweeper.ts, a process of its own) that retires them while the provisioning
 * instances work, on the same quotas; afterwards, what is left to retire, and the capacity the sweep left to
 * provisioning.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { APIGatewayClient, CreateApiKeyCommand, GetApiKeysCommand } from '@aws-sdk/client-api-gateway';
import { DynamoDBClient, QueryCommand } from '@aws-sdk/client-dynamodb';
import { DUE_INDEX, DUE_REVOKED, dynamoDbRecordStore } from '../../lib/aws/dynamodb.js';
import type { KeyRecord } from '../../lib/customer-key/key-record.js';
import { API_GATEWAY_QUOTAS, type RealisticStats } from '../realistic-aws/index.js';
import type { Scenario } from './scenarios.js';
import type { SweeperReport } from './sweeper.js';
import { KEY_RECORDS_TABLE_NAME, LEAVER_PREFIX, NAME_PREFIX, PRODUCT_CODE, type Prepared, type World } from './world.js';

const DAY_MS = 86_400_000;
/** serverless.yml custom.retireAfterDays (the default); the leavers were revoked 10 days before that. */
export const RETIRE_AFTER_DAYS = 30;
const REVOKED_DAYS_AGO = 40;

/** The retirements of a scenario's run: a share of its signups (60 for 400), at least one. */
export const retirementsOf = (scenario: Scenario, signups: number): number =>
  scenario.maintenance ? Math.max(1, Math.round(scenario.maintenance.retirementsPerSignup * signups)) : 0;

/**
 * `count` leavers as the pipeline leaves them: a disabled key (out of its plan, as a revoke leaves it), its record
 * revoked 40 days ago with the plan it was in: due at RETIRE_AFTER_DAYS=30. Straight into moto: uncounted, unthrottled.
 */
export async function seedLeavers(world: World, prepared: Prepared, count: number): Promise<void> {
  const apigw = new APIGatewayClient({ endpoint: world.moto.endpoint });
  const records = dynamoDbRecordStore(new DynamoDBClient({ endpoint: world.moto.endpoint }), KEY_RECORDS_TABLE_NAME);
  const revokedAt = new Date(Date.now() - REVOKED_DAYS_AGO * DAY_MS).toISOString();
  for (let i = 0; i < count; i++) {
    const customerId = `${LEAVER_PREFIX}${String(i).padStart(5, '0')}`;
    const apiKeyName = `${NAME_PREFIX}${PRODUCT_CODE}/${customerId}`;
    const key = await apigw.send(new CreateApiKeyCommand({ name: apiKeyName, customerId, enabled: false }));
    const record: KeyRecord = {
      customerId,
      productCode: PRODUCT_CODE,
      plan: null,
      apiKeyName,
      createdAt: new Date(Date.now() - (REVOKED_DAYS_AGO + 60) * DAY_MS).toISOString(),
      apiKeyId: key.id,
      ...(prepared.usagePlanId && { usagePlanId: prepared.usagePlanId }),
      status: 'revoked',
      revokedAt,
      lastEventAt: revokedAt,
    };
    if (!(await records.put(`${PRODUCT_CODE}/${customerId}`, record, undefined))) throw new Error(`leaver ${customerId} exists`);
  }
}

/** What is left to retire after a run, read from moto directly: the leavers' keys, and records the index lists as due. */
export async function leftToRetire(world: World): Promise<{ leaverKeys: number; due: number }> {
  const apigw = new APIGatewayClient({ endpoint: world.moto.endpoint });
  const dynamodb = new DynamoDBClient({ endpoint: world.moto.endpoint });
  // moto ignores paging (one page holds every key).
  const { items = [] } = await apigw.send(
    new GetApiKeysCommand({ limit: 500, nameQuery: `${NAME_PREFIX}${PRODUCT_CODE}/${LEAVER_PREFIX}` }),
  );
  const until = new Date(Date.now() - RETIRE_AFTER_DAYS * DAY_MS).toISOString();
  const { Count = 0 } = await dynamodb.send(
    new QueryCommand({
      TableName: KEY_RECORDS_TABLE_NAME,
      IndexName: DUE_INDEX,
      KeyConditionExpression: '#due = :due AND #dueAt <= :until',
      ExpressionAttributeNames: { '#due': 'due', '#dueAt': 'dueAt' },
      ExpressionAttributeValues: { ':due': { S: DUE_REVOKED }, ':until': { S: until } },
      Select: 'COUNT',
    }),
  );
  return { leaverKeys: items.length, due: Count };
}

export interface Sweeper {
  ready: Promise<void>;
  go(): void;
  /** Finishes the run under way, runs once more, and resolves with what the sweep did. */
  finish(): Promise<SweeperReport>;
  kill(): void;
}

/** Starts the sweep's process (tests/bench/sweeper.ts) with the scheduled function's environment. */
export function startSweeper(env: NodeJS.ProcessEnv): Sweeper {
  const child = spawn(join('node_modules', '.bin', 'tsx'), [join('tests', 'bench', 'sweeper.ts')], {
    env,
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  let out = '';
  let markReady!: () => void;
  const ready = new Promise<void>((resolve) => {
    markReady = resolve;
  });
  child.stdout.on('data', (chunk: Buffer) => {
    out += chunk.toString();
    if (out.startsWith('ready\n')) markReady();
  });
  const exited = new Promise<SweeperReport>((resolve, reject) => {
    child.once('exit', (code) => {
      if (code !== 0) return reject(new Error(`the sweep's process exited with ${code}`));
      resolve(JSON.parse(out.trim().split('\n').pop() ?? '{}') as SweeperReport);
    });
  });
  return {
    ready: Promise.race([ready, exited.then(() => undefined)]),
    go: () => child.stdin.write('go\n'),
    finish() {
      child.stdin.end('finish\n');
      return exited;
    },
    kill: () => child.kill('SIGKILL'),
  };
}

/** The scheduled function's environment (serverless.yml functions.sweep), its rate and times scaled by the bench's factor. */
export function sweeperEnv(scenario: Scenario, factor: number, scaled: (ms: number) => string): Record<string, string> {
  return {
    KEY_RECORDS_TABLE: KEY_RECORDS_TABLE_NAME,
    RETIRE_AFTER_DAYS: String(RETIRE_AFTER_DAYS),
    // serverless.yml custom.sweepApiGatewayRate: 1 DeleteApiKey a second (2 for the other calls).
    SWEEP_RATE_PER_SECOND: String(1 * factor),
    RETRY_BASE_DELAY_MS: scaled(100),
    RETRY_MAX_DELAY_MS: scaled(10_000),
    DEADLINE_SAFETY_MARGIN_MS: scaled(3_000),
    BENCH_SWEEP_TIMEOUT_MS: scaled(120_000),
    BENCH_SWEEP_EVERY_MS: scaled((scenario.maintenance?.sweepEverySeconds ?? 20) * 1000),
  };
}

/**
 * The layer's statistics without the sweep's calls (each attempt the sweep made is one request the layer counted):
 * provisioning's calls and throttles alone.
 */
export function withoutSweep(stats: RealisticStats, sweep: SweeperReport | undefined): RealisticStats {
  if (!sweep) return stats;
  const requests = { ...stats.requests };
  const throttled = { ...stats.throttled };
  const conflicts = { ...stats.conflicts };
  const less = (table: Record<string, number>, key: string, n = 1) => {
    const left = (table[key] ?? 0) - n;
    if (left > 0) table[key] = left;
    else delete table[key];
  };
  for (const call of sweep.apiGatewayCalls) {
    less(requests, call.operation);
    if (call.throttled) less(throttled, call.operation);
    if (call.conflict) less(conflicts, call.operation);
  }
  for (const [operation, n] of Object.entries(sweep.dynamoDbCalls)) less(requests, `DynamoDB_20120810.${operation}`, n);
  return { ...stats, requests, throttled, conflicts };
}

/**
 * The capacity left to provisioning, keys/s: CreateApiKey's quota, or what the sweep left of "Total operations"
 * while provisioning ran (the sweep's calls answered before `until`; a throttled call took no token) ÷ the Total calls
 * a key needs (CreateApiKey, and CreateUsagePlanKey with usage plans), whichever is less. Both less a neighbour's share.
 */
export function capacityLeft(
  scenario: Scenario,
  factor: number,
  sweep: { calls: SweeperReport['apiGatewayCalls']; from: number; until: number } | undefined,
): number {
  const share = 1 - scenario.neighbourShare;
  const create = API_GATEWAY_QUOTAS.createApiKeyPerSecond * factor * share;
  if (!sweep || sweep.until <= sweep.from) return create;
  const taken = sweep.calls.filter((c) => !c.throttled && c.at >= sweep.from && c.at <= sweep.until).length;
  const total = API_GATEWAY_QUOTAS.totalPerSecond * factor * share - taken / ((sweep.until - sweep.from) / 1000);
  return Math.min(create, total / (scenario.usagePlans ? 2 : 1));
}
