/**
 * The maintenance traffic of the `maintenance` scenario, on the same quotas as provisioning: leavers' keys due for
 * retirement, seeded into moto before the run; a roll storm — customers provisioned before the run, then a block of
 * roll requests on the signup queue among the signups —; and the sweep (tests/bench/sweeper.ts, a process of its own)
 * that retires the leavers' keys and ends the rolls' overlaps while the provisioning instances work. Afterwards, what
 * is left to retire or to end, and the capacity the maintenance left to provisioning.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { APIGatewayClient, CreateApiKeyCommand, GetApiKeysCommand } from '@aws-sdk/client-api-gateway';
import { DynamoDBClient, QueryCommand } from '@aws-sdk/client-dynamodb';
import { SQSClient } from '@aws-sdk/client-sqs';
import { DUE_INDEX, DUE_OVERLAP, DUE_REVOKED, type DuePartition, dynamoDbRecordStore } from '../../lib/aws/dynamodb.js';
import type { KeyRecord } from '../../lib/customer-key/key-record.js';
import { sendBodies } from '../../lib/local/queues.js';
import { API_GATEWAY_QUOTAS, type RealisticStats } from '../realistic-aws/index.js';
import { startFleet } from './fleet.js';
import type { Scenario } from './scenarios.js';
import type { SweeperReport } from './sweeper.js';
import { type Collected, startCollector } from './traffic.js';
import {
  COORDINATION_TABLE_NAME,
  KEY_RECORDS_TABLE_NAME,
  LEAVER_PREFIX,
  NAME_PREFIX,
  PRODUCT_CODE,
  type Prepared,
  type World,
} from './world.js';

const DAY_MS = 86_400_000;
/** serverless.yml custom.retireAfterDays (the default); the leavers were revoked 10 days before that. */
export const RETIRE_AFTER_DAYS = 30;
const REVOKED_DAYS_AGO = 40;

/** The retirements of a scenario's run: a share of its signups (60 for 400), at least one. */
export const retirementsOf = (scenario: Scenario, signups: number): number =>
  scenario.maintenance ? Math.max(1, Math.round(scenario.maintenance.retirementsPerSignup * signups)) : 0;

/** The rolls of a scenario's run: a share of its signups (40 for 400), none without a roll storm. */
export const rollsOf = (scenario: Scenario, signups: number): number =>
  scenario.maintenance?.rollsPerSignup ? Math.max(1, Math.round(scenario.maintenance.rollsPerSignup * signups)) : 0;

/** Customer ids of the roll storm's customers: `roller-00042`. */
export const ROLLER_PREFIX = 'roller-';
const roller = (i: number) => `${ROLLER_PREFIX}${String(i).padStart(5, '0')}`;

/**
 * API Gateway calls of one roll (lib/customer-key/roll.ts): GetApiKey of the old key, CreateApiKey,
 * CreateUsagePlanKey, GetApiKey of the new one (testSecret); each counts against Total, CreateApiKey also against its own.
 */
export const ROLL_TOTAL_CALLS = 4;

/**
 * Provisions the roll storm's `count` customers before the run, as any customer is: their signups through the
 * production handler (one instance, through the layer), then the completion queue emptied. Throws unless every one
 * got its key.
 */
export async function provisionRollers(world: World, prepared: Prepared, env: NodeJS.ProcessEnv, count: number): Promise<void> {
  const sqs = new SQSClient({ endpoint: world.moto.endpoint });
  await sendBodies(
    sqs,
    prepared.signupUrl,
    Array.from({ length: count }, (_, i) => JSON.stringify({ customerId: roller(i), productCode: PRODUCT_CODE })),
  );
  const collector = startCollector(sqs, prepared.completionUrl);
  const [instance] = await startFleet(1, env);
  instance?.go();
  await instance?.done;
  const provisioned = (await collector.stop()).filter(({ event }) => event.type === 'api-key.provisioned').length;
  if (provisioned !== count) throw new Error(`the roll storm's customers: ${provisioned} of ${count} provisioned before the run`);
}

/**
 * The storm: one roll request per roller (docs/events.md "Roll request"), each with its own `eventId` and the grace
 * given, as a block among the signups — a quarter of them before it — so that the rolls arrive at once while
 * signups are still coming, and their overlaps end while the run goes on.
 */
export function withRollStorm(signups: string[], count: number, graceSeconds: number): string[] {
  const occurredAt = new Date().toISOString();
  const rolls = Array.from({ length: count }, (_, i) =>
    JSON.stringify({
      action: 'roll',
      customerId: roller(i),
      productCode: PRODUCT_CODE,
      graceSeconds,
      eventId: `bench-roll-${i}`,
      occurredAt,
    }),
  );
  const at = Math.floor(signups.length / 4);
  return [...signups.slice(0, at), ...rolls, ...signups.slice(at)];
}

/**
 * The rolls the completion events report done (`rolled`, once per roll), the latest end of their overlaps (ms), and
 * every completion event about a roller by type and outcome or reason (`api-key.rolled:rolled`, …): what became of
 * a roll that was not done.
 */
export function rollsDone(events: Collected[]): { done: Collected[]; lastOverlapEnd: number; outcomes: Record<string, number> } {
  const outcomes: Record<string, number> = {};
  for (const { event } of events) {
    if (!('customerId' in event) || !String(event.customerId).startsWith(ROLLER_PREFIX)) continue;
    const detail = 'outcome' in event ? event.outcome : 'reason' in event ? event.reason : undefined;
    const name = `${event.type}${detail ? `:${detail}` : ''}`;
    outcomes[name] = (outcomes[name] ?? 0) + 1;
  }
  const byRoll = new Map<string, Collected>();
  let lastOverlapEnd = 0;
  for (const collected of events) {
    const { event } = collected;
    if (event.type !== 'api-key.rolled' || event.outcome !== 'rolled' || byRoll.has(event.rollId)) continue;
    byRoll.set(event.rollId, collected);
    if (event.overlapEndsAt) lastOverlapEnd = Math.max(lastOverlapEnd, Date.parse(event.overlapEndsAt));
  }
  return { done: [...byRoll.values()], lastOverlapEnd, outcomes };
}

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

/**
 * What is left after a run, read from moto directly: the leavers' keys, records the index still lists as due for
 * retirement, records with an overlap over but not ended, and rollers' keys beyond one each (old keys not deleted).
 */
export async function leftToRetire(
  world: World,
): Promise<{ leaverKeys: number; due: number; overlapsDue: number; rollerKeysExtra: number }> {
  const apigw = new APIGatewayClient({ endpoint: world.moto.endpoint });
  const dynamodb = new DynamoDBClient({ endpoint: world.moto.endpoint });
  // moto ignores paging (one page holds every key).
  const keysOf = async (prefix: string) =>
    (await apigw.send(new GetApiKeysCommand({ limit: 500, nameQuery: `${NAME_PREFIX}${PRODUCT_CODE}/${prefix}` }))).items ?? [];
  const dueIn = async (partition: DuePartition, until: string) =>
    (
      await dynamodb.send(
        new QueryCommand({
          TableName: KEY_RECORDS_TABLE_NAME,
          IndexName: DUE_INDEX,
          KeyConditionExpression: '#due = :due AND #dueAt <= :until',
          ExpressionAttributeNames: { '#due': 'due', '#dueAt': 'dueAt' },
          ExpressionAttributeValues: { ':due': { S: partition }, ':until': { S: until } },
          Select: 'COUNT',
        }),
      )
    ).Count ?? 0;
  const rollerKeys = await keysOf(ROLLER_PREFIX);
  return {
    leaverKeys: (await keysOf(LEAVER_PREFIX)).length,
    due: await dueIn(DUE_REVOKED, new Date(Date.now() - RETIRE_AFTER_DAYS * DAY_MS).toISOString()),
    overlapsDue: await dueIn(DUE_OVERLAP, new Date().toISOString()),
    rollerKeysExtra: rollerKeys.length - new Set(rollerKeys.map((k) => k.customerId)).size,
  };
}

export interface Sweeper {
  ready: Promise<void>;
  go(): void;
  /** Finishes the run under way, runs once more at `notBefore` (ms) or now, and resolves with what the sweep did. */
  finish(notBefore?: number): Promise<SweeperReport>;
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
    finish(notBefore = 0) {
      child.stdin.end(`finish ${notBefore}\n`);
      return exited;
    },
    kill: () => child.kill('SIGKILL'),
  };
}

/** The scheduled function's environment (serverless.yml functions.sweep), its rate and times scaled by the bench's factor. */
export function sweeperEnv(scenario: Scenario, factor: number, scaled: (ms: number) => string): Record<string, string> {
  return {
    KEY_RECORDS_TABLE: KEY_RECORDS_TABLE_NAME,
    // serverless.yml functions.sweep: the provisioning instances' table (their usage-plan write turns).
    COORDINATION_TABLE: COORDINATION_TABLE_NAME,
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
 * The capacity left to provisioning, keys/s, from `from` to `until` (ms): what CreateApiKey's bucket gave meanwhile
 * (its rate × the time, and its burst) less the rolls' own CreateApiKey calls, or what "Total operations" gave
 * (likewise) less the sweep's calls answered meanwhile (counted by the sweep's process; a throttled call took no
 * token) and the rolls' calls ({@link ROLL_TOTAL_CALLS} each, for the rolls done meanwhile) ÷ the Total calls a key
 * needs (CreateApiKey, and CreateUsagePlanKey with usage plans), whichever is less; both less a neighbour's share.
 * The bursts count here because Total, whose burst is 8 times CreateApiKey's, is what binds while the sweep runs (the
 * other scenarios' capacity is CreateApiKey's rate alone, as before; with nothing taken this is 1 % above it for 400
 * signups). Without `traffic`: CreateApiKey's rate.
 */
export function capacityLeft(
  scenario: Scenario,
  factor: number,
  traffic: { sweepCalls: SweeperReport['apiGatewayCalls']; rolls: number; from: number; until: number } | undefined,
): number {
  const q = API_GATEWAY_QUOTAS;
  const share = 1 - scenario.neighbourShare;
  if (!traffic || traffic.until <= traffic.from) return q.createApiKeyPerSecond * factor * share;
  const seconds = (traffic.until - traffic.from) / 1000;
  const given = (perSecond: number, burst: number) => (perSecond * seconds + burst) * factor * share;
  const taken = traffic.sweepCalls.filter((c) => !c.throttled && c.at >= traffic.from && c.at <= traffic.until).length;
  const create = given(q.createApiKeyPerSecond, q.createApiKeyBurst) - traffic.rolls;
  const total = (given(q.totalPerSecond, q.totalBurst) - taken - ROLL_TOTAL_CALLS * traffic.rolls) / (scenario.usagePlans ? 2 : 1);
  return Math.min(create, total) / seconds;
}
