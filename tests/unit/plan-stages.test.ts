/**
 * The usage-plan stages an instance caches (issue 23, hazard 4): they expire (PLAN_STAGES_TTL_MS), and a plan move
 * made in the wrong order because they were stale — API Gateway's 400 "cannot reference multiple Usage Plans with the
 * same API Stage" — is retried with the stages looked up again, not rejected (which dropped the message).
 */
import { APIGatewayClient, BadRequestException, CreateUsagePlanKeyCommand } from '@aws-sdk/client-api-gateway';
import { mockClient } from 'aws-sdk-client-mock';
import { type ApiKeyStore, apiGatewayAdapter } from '../../lib/aws/api-gateway.js';
import type { KeyRecord, ProvisionDeps } from '../../lib/customer-key/key-record.js';
import { moveToConfiguredPlan } from '../../lib/customer-key/move-plan.js';
import type { RecordStore, Versioned } from '../../lib/customer-key/record-store.js';
import { planStages } from '../../lib/customer-key/usage-plans.js';
import { EnvironmentError, TransientError, UsagePlanStageConflictError } from '../../lib/errors.js';

const PRODUCT = 'prod4k2j9x8l7';
const KEY_ID = 'key1';
/** PLAN_STAGES_TTL_MS. */
const TTL_MS = 5 * 60_000;

/** Usage plans in memory with API Gateway's rule: a key in one plan per API stage (else the adapter's error). */
function plansOf(initial: Record<string, string[]>) {
  const plans = new Map(Object.entries(initial).map(([id, stages]) => [id, { stages, keys: new Set<string>() }]));
  const calls: string[] = [];
  const plan = (id: string) => {
    const found = plans.get(id);
    if (!found) throw new Error(`no plan ${id}`);
    return found;
  };
  const unused = () => {
    throw new Error('not used by a plan move');
  };
  const apiKeys: ApiKeyStore = {
    async usagePlanStages(id) {
      calls.push(`GetUsagePlan ${id}`);
      return plans.has(id) ? [...plan(id).stages] : undefined;
    },
    async addToUsagePlan(id, keyId) {
      calls.push(`CreateUsagePlanKey ${id}`);
      const target = plan(id);
      for (const [other, { stages, keys }] of plans) {
        if (other !== id && keys.has(keyId) && stages.some((s) => target.stages.includes(s)))
          throw new UsagePlanStageConflictError(`key ${keyId} is in plan ${other}, which shares a stage with ${id}`);
      }
      target.keys.add(keyId);
    },
    async removeFromUsagePlan(id, keyId) {
      calls.push(`DeleteUsagePlanKey ${id}`);
      plan(id).keys.delete(keyId);
    },
    createApiKey: unused,
    deleteApiKey: unused,
    countApiKeys: unused,
    findApiKey: unused,
    valueOf: unused,
    setEnabled: unused,
    isInUsagePlan: unused,
    listApiKeys: unused,
    getApiKey: unused,
    usagePlanKeyIds: unused,
  };
  const membersOf = (id: string) => [...plan(id).keys];
  return { plans, plan, apiKeys, calls, membersOf };
}

/** One record store in memory, with versions. */
function recordsWith(key: string, record: KeyRecord): RecordStore & { current: () => Versioned | undefined } {
  let stored: Versioned | undefined = { record, version: 1 };
  return {
    async get(k) {
      return k === key ? stored : undefined;
    },
    async put(k, next, expected) {
      if (k !== key || stored?.version !== expected) return false;
      stored = { record: next, version: (expected ?? 0) + 1 };
      return true;
    },
    current: () => stored,
  };
}

const noRecords: RecordStore = { get: async () => undefined, put: async () => false };

function depsFor(apiKeys: ApiKeyStore, records: RecordStore, usagePlans: Record<string, string>, clock: { t: number }): ProvisionDeps {
  return {
    config: { namePrefix: 'keyprov/test/', defaultTags: {}, usagePlans, revokedSecretPolicy: 'keep' },
    apiKeys,
    secrets: {
      getSecret: async () => undefined,
      createSecret: async () => undefined,
      putSecretValue: async () => undefined,
      moveStage: async () => undefined,
      describeSecret: async () => undefined,
      scheduleRotation: async () => undefined,
      cancelRotation: async () => undefined,
      listSecrets: async () => [],
    },
    records,
    knownPlans: new Map(),
    now: () => new Date(clock.t),
  };
}

describe('planStages: the cached stages expire', () => {
  test("looked up once within 5 minutes, again after them: a seller's change of the stages is seen", async () => {
    const aws = plansOf({ planB: ['api/s2'] });
    const clock = { t: Date.parse('2026-12-06T10:00:00Z') };
    const deps = depsFor(aws.apiKeys, noRecords, {}, clock);
    await expect(planStages(deps, 'planB')).resolves.toEqual(['api/s2']);
    aws.plan('planB').stages.push('api/s1');
    clock.t += TTL_MS - 1;
    await expect(planStages(deps, 'planB')).resolves.toEqual(['api/s2']);
    clock.t += 1;
    await expect(planStages(deps, 'planB')).resolves.toEqual(['api/s2', 'api/s1']);
    expect(aws.calls).toEqual(['GetUsagePlan planB', 'GetUsagePlan planB']);
  });

  test('an unknown plan is an EnvironmentError and is not cached', async () => {
    const aws = plansOf({});
    const deps = depsFor(aws.apiKeys, noRecords, {}, { t: 0 });
    await expect(planStages(deps, 'nosuchplan')).rejects.toBeInstanceOf(EnvironmentError);
    await expect(planStages(deps, 'nosuchplan')).rejects.toBeInstanceOf(EnvironmentError);
    expect(aws.calls).toEqual(['GetUsagePlan nosuchplan', 'GetUsagePlan nosuchplan']);
  });
});

describe('a plan move in the wrong order because of stale stages is retried, not rejected', () => {
  const record: KeyRecord = {
    customerId: 'mover',
    productCode: PRODUCT,
    plan: null,
    apiKeyName: `keyprov/test/${PRODUCT}/mover`,
    createdAt: '2026-12-06T09:00:00.000Z',
    apiKeyId: KEY_ID,
    usagePlanId: 'planA',
    status: 'active',
  };
  const request = { customerId: 'mover', productCode: PRODUCT, eventTime: '2026-12-06T10:00:00.000Z' };

  test('the join refused (400, one plan per stage) is a TransientError with a short wait; the next try leaves first and moves', async () => {
    const aws = plansOf({ planA: ['api/s1'], planB: ['api/s2'] });
    aws.plan('planA').keys.add(KEY_ID);
    const records = recordsWith(`${PRODUCT}/mover`, record);
    const clock = { t: Date.parse('2026-12-06T10:00:00Z') };
    const deps = depsFor(aws.apiKeys, records, { [PRODUCT]: 'planB' }, clock);
    // The instance has looked plan B up (another record's provisioning) before the seller put it on stage s1 too.
    await planStages(deps, 'planB');
    aws.plan('planB').stages.push('api/s1');
    clock.t += 1_000;

    const first = moveToConfiguredPlan(request, deps);
    await expect(first).rejects.toBeInstanceOf(TransientError);
    const error = await first.catch((e: unknown) => e);
    expect(error).toMatchObject({ retryAfterMs: expect.any(Number) });
    expect((error as TransientError).retryAfterMs).toBeLessThanOrEqual(5_000);
    // Nothing changed: the key is still in plan A only, the record still says A.
    expect(aws.membersOf('planA')).toEqual([KEY_ID]);
    expect(aws.membersOf('planB')).toEqual([]);
    expect(records.current()?.record.usagePlanId).toBe('planA');

    // SQS brings it back: the stages are looked up again, the key leaves A, then joins B.
    aws.calls.length = 0;
    await expect(moveToConfiguredPlan(request, deps)).resolves.toMatchObject({ outcome: 'plan-changed', usagePlanId: 'planB' });
    expect(aws.calls).toEqual(['GetUsagePlan planB', 'GetUsagePlan planA', 'DeleteUsagePlanKey planA', 'CreateUsagePlanKey planB']);
    expect(aws.membersOf('planA')).toEqual([]);
    expect(aws.membersOf('planB')).toEqual([KEY_ID]);
    expect(records.current()?.record.usagePlanId).toBe('planB');
  });
});

describe('the adapter: which 400 of CreateUsagePlanKey is a stage conflict', () => {
  const apigw = mockClient(APIGatewayClient);
  const adapter = apiGatewayAdapter(new APIGatewayClient({ region: 'us-east-1' }));
  beforeEach(() => apigw.reset());
  const badRequest = (message: string) => new BadRequestException({ message, $metadata: { httpStatusCode: 400 } });

  test('"cannot reference multiple Usage Plans with the same API Stage" is a UsagePlanStageConflictError (retried by SQS, never a rejection)', async () => {
    apigw
      .on(CreateUsagePlanKeyCommand)
      .rejects(
        badRequest(
          'Usage Plan planB cannot be added because API Key key1 cannot reference multiple Usage Plans with the same API Stage: api:s1',
        ),
      );
    const added = adapter.addToUsagePlan('planB', KEY_ID);
    await expect(added).rejects.toBeInstanceOf(UsagePlanStageConflictError);
    await expect(added).rejects.toBeInstanceOf(EnvironmentError);
  });

  test('any other 400 is still a rejection (bad-request)', async () => {
    apigw.on(CreateUsagePlanKeyCommand).rejects(badRequest('Invalid API Key identifier specified'));
    await expect(adapter.addToUsagePlan('planB', KEY_ID)).rejects.toMatchObject({ name: 'RejectedError', reason: 'bad-request' });
  });
});
