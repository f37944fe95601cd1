import { anyActive, applyLicenseEvent, type Licenses } from '../../lib/customer-key/licenses.js';

type LicenseEvent = [arn: string, status: 'active' | 'deprovisioned', time: string];
const L1 = 'arn:aws:license-manager::123456789012:license:l-1';
const L2 = 'arn:aws:license-manager::123456789012:license:l-2';

/** Every order of the events. */
function permutations<T>(items: T[]): T[][] {
  if (items.length <= 1) return [items];
  return items.flatMap((item, i) => permutations([...items.slice(0, i), ...items.slice(i + 1)]).map((rest) => [item, ...rest]));
}

function fold(events: LicenseEvent[]): Licenses | undefined {
  let licenses: Licenses | undefined;
  for (const [arn, status, time] of events) {
    const next = applyLicenseEvent(licenses, arn, status, { time, clock: 'producer' });
    if (typeof next === 'object') licenses = next;
  }
  return licenses;
}

describe('concurrent agreements: any order of two licenses’ events converges', () => {
  test('License Updated 1, License Updated 2, License Deprovisioned 1 → enabled (license 2 is active), in every order', () => {
    const events: LicenseEvent[] = [
      [L1, 'active', '2026-07-01T00:00:00Z'],
      [L2, 'active', '2026-07-02T00:00:00Z'],
      [L1, 'deprovisioned', '2026-07-03T00:00:00Z'],
    ];
    const outcomes = permutations(events).map(fold);
    for (const licenses of outcomes) {
      expect(licenses).toEqual(outcomes[0]);
      expect(anyActive(licenses)).toBe(true);
    }
    expect(outcomes[0]?.[L1]?.status).toBe('deprovisioned');
  });

  test('both licenses updated then deprovisioned → disabled, in all 24 orders, with repeats', () => {
    const events: LicenseEvent[] = [
      [L1, 'active', '2026-07-01T00:00:00Z'],
      [L2, 'active', '2026-07-02T00:00:00Z'],
      [L1, 'deprovisioned', '2026-07-03T00:00:00Z'],
      [L2, 'deprovisioned', '2026-07-04T00:00:00Z'],
    ];
    const outcomes = permutations(events).map((order) => fold([...order, ...order]));
    expect(outcomes).toHaveLength(24);
    for (const licenses of outcomes) {
      expect(licenses).toEqual(outcomes[0]);
      expect(anyActive(licenses)).toBe(false);
    }
  });

  test('a re-purchase after a deprovisioning re-enables; a replay of the old purchase does not', () => {
    let licenses = fold([
      [L1, 'active', '2026-07-01T00:00:00Z'],
      [L1, 'deprovisioned', '2026-07-03T00:00:00Z'],
    ]);
    expect(applyLicenseEvent(licenses, L1, 'active', { time: '2026-07-01T00:00:00Z', clock: 'producer' })).toBe('stale');
    const again = applyLicenseEvent(licenses, L1, 'active', { time: '2026-07-05T00:00:00Z', clock: 'producer' });
    expect(typeof again === 'object' && anyActive(again)).toBe(true);
    licenses = typeof again === 'object' ? again : licenses;
    expect(applyLicenseEvent(licenses, L1, 'active', { time: '2026-07-05T00:00:00Z', clock: 'producer' })).toBe('unchanged');
  });

  test('a queue-timed grant never re-activates a deprovisioned license', () => {
    const licenses = fold([[L1, 'deprovisioned', '2026-07-03T00:00:00Z']]);
    expect(applyLicenseEvent(licenses, L1, 'active', { time: '2026-12-01T00:00:00Z', clock: 'queue' })).toBe('stale');
  });
});
