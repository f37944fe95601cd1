import { grantIsProvenNewer, lastChange, revokeIsProvenOlder, type Stamped } from '../../lib/customer-key/lifecycle-order.js';

const at = (time: string, clock: 'producer' | 'queue' = 'producer'): Stamped => ({ time, clock });
const EARLY = '2026-01-01T00:00:00Z';
const LATE = '2026-06-01T00:00:00Z';

describe('a grant re-enables a revoked key only when proven newer', () => {
  test.each([
    ['producer, later than a producer revoke', at(LATE), at(EARLY), true],
    ['producer, later than a queue-timed revoke (a queue time is an upper bound)', at(LATE), at(EARLY, 'queue'), true],
    ['producer, earlier', at(EARLY), at(LATE), false],
    // A replay (SQS redrive, a re-send) gives a raw body a later queue time: it proves nothing.
    ['queue-timed, later than a producer revoke', at(LATE, 'queue'), at(EARLY), false],
    ['queue-timed, later than a queue-timed revoke', at(LATE, 'queue'), at(EARLY, 'queue'), false],
    ['the same time', at(EARLY), at(EARLY), false],
  ])('%s → %s', (_what, grant, last, expected) => {
    expect(grantIsProvenNewer(grant, last)).toBe(expected);
  });

  test('a record with no time yet takes any grant', () => {
    expect(grantIsProvenNewer(at(EARLY, 'queue'), undefined)).toBe(true);
  });
});

describe('a revoke applies unless proven older', () => {
  test.each([
    ['earlier than a producer-timed change', at(EARLY), at(LATE), true],
    ['queue-timed, earlier than a producer-timed change', at(EARLY, 'queue'), at(LATE), true],
    // The key was granted at or before a queue time: a revoke before it may still be after the grant.
    ['earlier than a queue-timed grant', at(EARLY), at(LATE, 'queue'), false],
    ['later', at(LATE), at(EARLY), false],
  ])('%s → proven older: %s', (_what, revoke, last, expected) => {
    expect(revokeIsProvenOlder(revoke, last)).toBe(expected);
  });
});

test('records written before clocks existed count as producer-timed', () => {
  expect(lastChange({ lastEventAt: EARLY })).toEqual(at(EARLY));
  expect(lastChange({ lastEventAt: EARLY, lastEventClock: 'queue' })).toEqual(at(EARLY, 'queue'));
  expect(lastChange({})).toBeUndefined();
});
