/**
 * The `maintenance` bench scenario's arithmetic (tests/bench/maintenance.ts): the capacity the sweep leaves to
 * provisioning, and the layer's statistics without the sweep's own calls.
 */
import { capacityLeft, retirementsOf, rollsOf, withoutSweep, withRollStorm } from '../../tests/bench/maintenance.js';
import { SCENARIOS } from '../../tests/bench/scenarios.js';
import type { SweeperCall, SweeperReport } from '../../tests/bench/sweeper.js';

const scenario = SCENARIOS.maintenance;
if (!scenario) throw new Error('no maintenance scenario');
const call = (operation: string, at: number, extra: Partial<SweeperCall> = {}): SweeperCall => ({
  operation,
  at,
  throttled: false,
  conflict: false,
  ...extra,
});

describe('capacityLeft', () => {
  test('without the sweep: CreateApiKey quota × factor, less a neighbour', () => {
    expect(capacityLeft(scenario, 1, undefined)).toBe(5);
    expect(capacityLeft({ ...scenario, neighbourShare: 0.3 }, 3, undefined)).toBeCloseTo(10.5);
  });

  test("with usage plans each key takes two Total calls: the sweep's answered calls come off Total, halved", () => {
    // 100 s of provisioning, 100 sweep calls answered in it (1/s): Total 10 × 100 + 40 (burst) − 100 = 940, ÷ 2 = 470
    // keys, less than CreateApiKey's 5 × 100 + 5: 4.7 keys/s.
    const calls = Array.from({ length: 100 }, (_, i) => call('DeleteApiKey', 1_000 + i * 1_000));
    expect(capacityLeft(scenario, 1, { sweepCalls: calls, rolls: 0, from: 0, until: 100_000 })).toBeCloseTo(4.7);
    // Nothing taken: CreateApiKey's 505 keys in 100 s bind (Total would give 520).
    expect(capacityLeft(scenario, 1, { sweepCalls: [], rolls: 0, from: 0, until: 100_000 })).toBeCloseTo(5.05);
  });

  test('throttled calls took no token, calls after provisioning ended take nothing from it', () => {
    const calls = [call('DeleteApiKey', 10_000, { throttled: true }), call('GetApiKeys', 200_000)];
    expect(capacityLeft(scenario, 1, { sweepCalls: calls, rolls: 0, from: 0, until: 100_000 })).toBeCloseTo(5.05);
  });

  test("a roll takes one CreateApiKey and four Total calls: they come off provisioning's capacity", () => {
    // 100 s, 50 rolls: CreateApiKey 505 − 50 = 455 keys; Total 1040 − 200 = 840, ÷ 2 = 420 keys: 4.2 keys/s.
    expect(capacityLeft(scenario, 1, { sweepCalls: [], rolls: 50, from: 0, until: 100_000 })).toBeCloseTo(4.2);
    expect(capacityLeft({ ...scenario, usagePlans: false }, 1, { sweepCalls: [], rolls: 50, from: 0, until: 100_000 })).toBeCloseTo(4.55);
  });

  test('without usage plans a key takes one Total call: the sweep has to take more than half of Total to cost a key', () => {
    const half = Array.from({ length: 300 }, (_, i) => call('DeleteApiKey', i * 200));
    expect(capacityLeft({ ...scenario, usagePlans: false }, 1, { sweepCalls: half, rolls: 0, from: 0, until: 60_000 })).toBeCloseTo(
      305 / 60,
    );
    // 640 Total tokens in 60 s, 400 taken: 240 keys, fewer than CreateApiKey's 305.
    const more = Array.from({ length: 400 }, (_, i) => call('DeleteApiKey', i * 150));
    expect(capacityLeft({ ...scenario, usagePlans: false }, 1, { sweepCalls: more, rolls: 0, from: 0, until: 60_000 })).toBeCloseTo(4);
  });
});

test('the roll storm: a block of roll requests a quarter into the signups, one per roller, each its own eventId', () => {
  const bodies = withRollStorm(['s0', 's1', 's2', 's3', 's4', 's5', 's6', 's7'], 3, 20);
  expect(bodies.slice(0, 2)).toEqual(['s0', 's1']);
  expect(bodies.slice(5)).toEqual(['s2', 's3', 's4', 's5', 's6', 's7']);
  const rolls = bodies.slice(2, 5).map((b) => JSON.parse(b));
  expect(rolls.map((r) => [r.action, r.customerId, r.graceSeconds, r.eventId])).toEqual([
    ['roll', 'roller-00000', 20, 'bench-roll-0'],
    ['roll', 'roller-00001', 20, 'bench-roll-1'],
    ['roll', 'roller-00002', 20, 'bench-roll-2'],
  ]);
  expect(rollsOf(scenario, 400)).toBe(40);
  expect(rollsOf({ ...scenario, maintenance: { retirementsPerSignup: 0.1, sweepEverySeconds: 20 } }, 400)).toBe(0);
});

test('retirements: a share of the signups, at least one', () => {
  expect(retirementsOf(scenario, 400)).toBe(60);
  expect(retirementsOf(scenario, 60)).toBe(9);
  expect(retirementsOf(scenario, 1)).toBe(1);
  expect(retirementsOf({ ...scenario, maintenance: undefined }, 400)).toBe(0);
});

test("withoutSweep: the sweep's attempts, throttles and 409s taken out of the layer's counts", () => {
  const sweep: SweeperReport = {
    runs: 1,
    runTimes: [{ start: 0, end: 4 }],
    outcomes: { retired: 1 },
    failures: [],
    apiGatewayCalls: [
      call('DeleteUsagePlanKey', 1, { conflict: true }),
      call('DeleteUsagePlanKey', 2),
      call('DeleteApiKey', 3, { throttled: true }),
      call('DeleteApiKey', 4),
    ],
    dynamoDbCalls: { GetItem: 1, PutItem: 2 },
  };
  const stats = {
    requests: { CreateApiKey: 10, DeleteUsagePlanKey: 2, DeleteApiKey: 2, 'DynamoDB_20120810.PutItem': 22, 'DynamoDB_20120810.GetItem': 1 },
    throttled: { CreateApiKey: 1, DeleteApiKey: 1 },
    conflicts: { CreateUsagePlanKey: 3, DeleteUsagePlanKey: 1 },
  };
  const left = withoutSweep(stats as unknown as Parameters<typeof withoutSweep>[0], sweep);
  expect(left.requests).toEqual({ CreateApiKey: 10, 'DynamoDB_20120810.PutItem': 20 });
  expect(left.throttled).toEqual({ CreateApiKey: 1 });
  expect(left.conflicts).toEqual({ CreateUsagePlanKey: 3 });
});
