import { RejectedError } from '../../lib/errors.js';
import { MAX_GRACE_SECONDS, parseMessageBody } from '../../lib/messages/index.js';
import { parseGrace } from '../../lib/ops/roll/grace.js';
import { eventBridgeEnvelope } from '../helpers/events.js';

/* The roll request (docs/events.md "Roll request") and `npm run roll -- --grace`. */

const QUEUED = '2026-12-06T12:00:00.000Z';
const roll = (extra: Record<string, unknown> = {}) =>
  JSON.stringify({ action: 'roll', customerId: 'cust-1', productCode: 'prod4k2j9x8l7', eventId: 'roll-1', ...extra });

const reasonOf = (body: string): string | undefined => {
  try {
    parseMessageBody(body, QUEUED);
  } catch (error) {
    if (error instanceof RejectedError) return error.reason;
    throw error;
  }
  return undefined;
};

describe('a roll request', () => {
  test('is read as a roll, its eventId the roll id, its grace kept', () => {
    expect(parseMessageBody(roll({ graceSeconds: 900, occurredAt: '2026-12-06T11:59:00Z' }), QUEUED)).toEqual({
      kind: 'roll',
      source: 'signup',
      customerId: 'cust-1',
      productCode: 'prod4k2j9x8l7',
      rollId: 'roll-1',
      eventId: 'roll-1',
      graceSeconds: 900,
      eventTime: '2026-12-06T11:59:00Z',
      clock: 'producer',
    });
  });

  test("without a grace, the deployment's; without a time, the queue's", () => {
    const parsed = parseMessageBody(roll(), QUEUED);
    expect(parsed).not.toHaveProperty('graceSeconds');
    expect(parsed).toMatchObject({ eventTime: QUEUED, clock: 'queue' });
  });

  test('inside an EventBridge envelope too', () => {
    const body = JSON.stringify(eventBridgeEnvelope(JSON.parse(roll())));
    expect(parseMessageBody(body, QUEUED)).toMatchObject({ kind: 'roll', source: 'eventbridge', rollId: 'roll-1' });
  });

  test('a body without action "roll" is still a signup', () => {
    expect(parseMessageBody(roll({ action: 'signup' }), QUEUED)).toMatchObject({ kind: 'provision' });
  });

  test.each([
    ['no eventId', { eventId: undefined }, 'invalid-roll-request'],
    ['a negative grace', { graceSeconds: -1 }, 'invalid-roll-request'],
    ['a fractional grace', { graceSeconds: 1.5 }, 'invalid-roll-request'],
    ['a grace as text', { graceSeconds: '15m' }, 'invalid-roll-request'],
    ['a grace over 7 days', { graceSeconds: MAX_GRACE_SECONDS + 1 }, 'invalid-roll-request'],
    ['a bad customer id', { customerId: 'a b' }, 'invalid-customer-id'],
    ['a bad product code', { productCode: '-x' }, 'invalid-product-code'],
  ])('%s: rejected (%s)', (_name, extra, reason) => {
    expect(reasonOf(roll(extra))).toBe(reason);
  });

  test('7 days exactly, and 0, are graces', () => {
    expect(parseMessageBody(roll({ graceSeconds: MAX_GRACE_SECONDS }), QUEUED)).toMatchObject({ graceSeconds: MAX_GRACE_SECONDS });
    expect(parseMessageBody(roll({ graceSeconds: 0 }), QUEUED)).toMatchObject({ graceSeconds: 0 });
  });
});

describe('npm run roll -- --grace', () => {
  test.each([
    ['3600', 3600],
    ['0', 0],
    ['90s', 90],
    ['15m', 900],
    ['24h', 86_400],
    ['7d', MAX_GRACE_SECONDS],
    ['1h30m', 5400],
  ])('%s is %d seconds', (raw, seconds) => {
    expect(parseGrace(raw)).toBe(seconds);
  });

  test.each(['-5', 'soon', '8d', '500ms', ''])('%s is refused, naming the flag', (raw) => {
    expect(() => parseGrace(raw)).toThrow(/--grace/);
  });
});
