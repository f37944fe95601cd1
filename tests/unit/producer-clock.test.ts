/**
 * Producer times from the future (issue 23, hazard 3): a producer's time more than a minute ahead of the time the
 * queue got the message (lib/messages/event-time.ts) is not believed, whichever field carries it — a signup's
 * `occurredAt`, an SNS `Timestamp`, an EventBridge `time` — so it cannot beat the unsubscribes that follow it.
 */
import { grantIsProvenNewer, revokeIsProvenOlder, type Stamped } from '../../lib/customer-key/lifecycle-order.js';
import { type ParsedMessage, parseMessageBody } from '../../lib/messages/index.js';

/** When the queue got the messages (SQS SentTimestamp). */
const QUEUED = '2026-12-06T10:00:00.000Z';
const plus = (ms: number, from = QUEUED) => new Date(Date.parse(from) + ms).toISOString();
const NEXT_YEAR = plus(365 * 24 * 3_600_000);
const ACCOUNT = '123456789012';
const PRODUCT = 'prod4k2j9x8l7';

const stamp = (message: ParsedMessage): Stamped => ({ time: message.eventTime, clock: message.clock });
const signup = (occurredAt: string) => JSON.stringify({ customerId: 'acme-corp', productCode: PRODUCT, occurredAt });
const sns = (action: string, timestamp: string) =>
  JSON.stringify({
    Type: 'Notification',
    MessageId: 'm-1',
    Timestamp: timestamp,
    Message: JSON.stringify({ action, 'customer-identifier': 'QnJhdm9CdXllcjAy', 'product-code': PRODUCT }),
  });
const license = (detailType: 'License Updated' | 'License Deprovisioned', time: string) =>
  JSON.stringify({
    id: 'ev-1',
    'detail-type': `${detailType} - Manufacturer`,
    source: 'aws.agreement-marketplace',
    time,
    detail: { acceptor: { accountId: ACCOUNT }, product: { code: PRODUCT } },
  });

describe('a producer time more than a minute ahead of the queue is the queue time, with the queue clock', () => {
  test.each([
    ['a signup occurredAt', signup(NEXT_YEAR)],
    ['an SNS Timestamp', sns('subscribe-success', NEXT_YEAR)],
    ['an EventBridge time', license('License Updated', NEXT_YEAR)],
    [
      'the occurredAt of a signup inside an EventBridge event with no time',
      JSON.stringify({ id: 'ev-2', 'detail-type': 'Signup', source: 'com.example.signups', detail: JSON.parse(signup(NEXT_YEAR)) }),
    ],
  ])('%s', (_what, body) => {
    const parsed = parseMessageBody(body, QUEUED);
    expect(stamp(parsed)).toEqual({ time: QUEUED, clock: 'queue' });
  });

  test('a signup inside an EventBridge event whose occurredAt is not believed takes the envelope time, if that one is', () => {
    const envelopeTime = plus(-5_000);
    const body = JSON.stringify({
      id: 'ev-3',
      'detail-type': 'Signup',
      source: 'com.example.signups',
      time: envelopeTime,
      detail: JSON.parse(signup(NEXT_YEAR)),
    });
    expect(stamp(parseMessageBody(body, QUEUED))).toEqual({ time: envelopeTime, clock: 'producer' });
  });

  test('up to one minute ahead the producer time is kept (clocks of producers drift a little); a millisecond more is not', () => {
    expect(stamp(parseMessageBody(signup(plus(60_000)), QUEUED))).toEqual({ time: plus(60_000), clock: 'producer' });
    expect(stamp(parseMessageBody(signup(plus(60_001)), QUEUED))).toEqual({ time: QUEUED, clock: 'queue' });
    expect(stamp(parseMessageBody(sns('unsubscribe-success', plus(-3_600_000)), QUEUED))).toEqual({
      time: plus(-3_600_000),
      clock: 'producer',
    });
  });

  test('the queue time is the first send time a redrive carried, so a replay does not move the bound', () => {
    const firstSent = '2026-12-01T00:00:00.000Z';
    const occurredAt = plus(120_000, firstSent);
    expect(stamp(parseMessageBody(signup(occurredAt), firstSent))).toEqual({ time: firstSent, clock: 'queue' });
  });
});

describe('a leaver does not keep the key because a grant was stamped in the future', () => {
  test('a later unsubscribe is not proven older than a future-stamped subscribe (SNS)', () => {
    const grant = parseMessageBody(sns('subscribe-success', NEXT_YEAR), QUEUED);
    // The buyer leaves an hour later; SNS stamps it with the real time.
    const unsubscribe = parseMessageBody(sns('unsubscribe-success', plus(3_600_000)), plus(3_600_000));
    expect(revokeIsProvenOlder(stamp(unsubscribe), stamp(grant))).toBe(false);
  });

  test('a later License Deprovisioned is not proven older than a future-stamped signup', () => {
    const grant = parseMessageBody(signup(NEXT_YEAR), QUEUED);
    const deprovisioned = parseMessageBody(license('License Deprovisioned', plus(60_000)), plus(60_000));
    expect(revokeIsProvenOlder(stamp(deprovisioned), stamp(grant))).toBe(false);
  });

  test('nor can a future-stamped grant re-enable a key revoked after it was sent', () => {
    const revoke = parseMessageBody(sns('unsubscribe-success', plus(1_000)), plus(1_000));
    const replayedGrant = parseMessageBody(license('License Updated', NEXT_YEAR), plus(2_000));
    expect(grantIsProvenNewer(stamp(replayedGrant), stamp(revoke))).toBe(false);
  });
});
