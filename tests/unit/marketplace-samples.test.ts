/**
 * AWS's own documented Marketplace examples, as sample events (events/marketplace-doc-*.json, sources in
 * events/README.md): what each one parses to, that the SNS samples are the documented templates character for
 * character, and that the sample set cannot leave a buyer who left with an enabled key, in any order, on any date.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SQSEvent } from 'aws-lambda';
import fc from 'fast-check';
import { grantIsProvenNewer, revokeIsProvenOlder, type Stamped } from '../../lib/customer-key/lifecycle-order.js';
import { RejectedError } from '../../lib/errors.js';
import { type ParsedMessage, parseMessageBody } from '../../lib/messages/index.js';

const EVENTS = join(__dirname, '..', '..', 'events');
const recordOf = (name: string) => {
  const event = JSON.parse(readFileSync(join(EVENTS, `${name}.json`), 'utf8')) as SQSEvent;
  expect(event.Records).toHaveLength(1);
  const [record] = event.Records;
  if (!record) throw new Error(`${name}: no record`);
  return record;
};
const bodyOf = (name: string) => recordOf(name).body;
/** Parses a sample as the function does: SentTimestamp is the queue time of a body without a time of its own. */
const parseSample = (name: string, receivedAt?: string): ParsedMessage => {
  const record = recordOf(name);
  return parseMessageBody(record.body, receivedAt ?? new Date(Number(record.attributes.SentTimestamp)).toISOString());
};

const SAMPLES = readdirSync(EVENTS)
  .filter((f) => /^marketplace-(doc|aws-sample-code)-.*\.json$/.test(f))
  .map((f) => f.replace(/\.json$/, ''))
  .sort();

// The templates as AWS's seller guide prints them ("Amazon SNS notifications for SaaS products"), verbatim.
const SUBSCRIPTION_TEMPLATE =
  '{\n    "action": "<action-name>",\n    "customer-identifier": " X01EXAMPLEX",\n    "product-code": "n0123EXAMPLEXXXXXXXXXXXX",\n    "offer-identifier": "offer-abcexample123",\n    "isFreeTrialTermPresent":"true"\n}';
const ENTITLEMENT_TEMPLATE =
  '{\n    "action": "<action-name>",\n    "customer-identifier": " X01EXAMPLEX",\n    "product-code": "n0123EXAMPLEXXXXXXXXXXXX",\n}';
const TEMPLATE_2020 =
  '{\n    "action": "action-name",\n    "CustomerIdentifier": " X01EXAMPLEX",\n    "ProductCode": "n0123EXAMPLEXXXXXXXXXXXX"\n}';

const RAW_SENT = '2026-11-26T08:00:00.000Z';
const SNS_BUYER = { customerId: 'X01EXAMPLEX', productCode: 'n0123EXAMPLEXXXXXXXXXXXX' };
const raw = { source: 'marketplace', ...SNS_BUYER, eventTime: RAW_SENT, clock: 'queue' } as const;
const EB_BUYER = { customerId: '845735284135', customerAccountId: '845735284135' };
const eb = (eventTime: string, eventId = '12345678-1234-1234-1234-123456789012') =>
  ({ source: 'eventbridge', eventTime, clock: 'producer', eventId }) as const;
const DOC_LICENSE = {
  ...EB_BUYER,
  productCode: 'aw4fgf5tyo5w2ap6fEXAMPLE',
  // Printed without `arn:`; read with it (lib/messages/fields.ts readLicenseArn).
  licenseArn: 'arn:aws:license-manager:us-east-1:123456789012:l-e52ca6f38bf84d0fafb8802ca15ac11x',
};
const CANCELLATION_BUYER = { customerId: '123465789012', customerAccountId: '123465789012' };
const CANCELLATION_ID = '01234567-0123-0123-0123-0123456789ab';
const cancellation = (status: string, time: string) => ({
  kind: 'notice',
  action: `Agreement Cancellation Request ${status}`,
  ...eb(time, CANCELLATION_ID),
  ...CANCELLATION_BUYER,
});

const EXPECTED: Record<string, ParsedMessage> = {
  'marketplace-doc-sns-subscription-subscribe-success': { kind: 'provision', ...raw, freeTrial: true },
  'marketplace-doc-sns-subscription-subscribe-fail': { kind: 'revoke', action: 'subscribe-fail', ...raw },
  'marketplace-doc-sns-subscription-unsubscribe-pending': { kind: 'notice', action: 'unsubscribe-pending', ...raw },
  'marketplace-doc-sns-subscription-unsubscribe-success': { kind: 'revoke', action: 'unsubscribe-success', ...raw },
  'marketplace-doc-sns-entitlement-entitlement-updated': { kind: 'notice', action: 'entitlement-updated', ...raw },
  'marketplace-doc-sns-2020-subscribe-success': { kind: 'provision', ...raw },
  'marketplace-doc-sns-2020-subscribe-fail': { kind: 'revoke', action: 'subscribe-fail', ...raw },
  'marketplace-doc-sns-2020-unsubscribe-pending': { kind: 'notice', action: 'unsubscribe-pending', ...raw },
  'marketplace-doc-sns-2020-unsubscribe-success': { kind: 'revoke', action: 'unsubscribe-success', ...raw },
  'marketplace-doc-sns-envelope-unsubscribe-success': {
    kind: 'revoke',
    action: 'unsubscribe-success',
    ...raw,
    eventTime: '2021-02-16T21:41:19.978Z',
    clock: 'producer',
  },
  'marketplace-aws-sample-code-entitlement-envelope': { kind: 'notice', action: 'entitlement-updated', ...raw },
  'marketplace-doc-eb-license-updated-manufacturer': { kind: 'provision', ...eb('2024-08-30T21:36:03Z'), ...DOC_LICENSE },
  'marketplace-doc-eb-license-deprovisioned-manufacturer': {
    kind: 'revoke',
    action: 'unsubscribe-success',
    ...eb('2024-08-30T21:36:03Z'),
    ...DOC_LICENSE,
  },
  'marketplace-doc-eb-purchase-agreement-created-proposer': {
    kind: 'notice',
    action: 'Purchase Agreement Created (ACTIVE)',
    ...eb('2024-08-30T21:36:03Z'),
    ...EB_BUYER,
  },
  'marketplace-doc-eb-purchase-agreement-created-proposer-renew': {
    kind: 'notice',
    action: 'Purchase Agreement Created (ACTIVE)',
    ...eb('2024-08-30T21:36:03Z'),
    ...EB_BUYER,
  },
  'marketplace-doc-eb-purchase-agreement-created-manufacturer': {
    kind: 'notice',
    action: 'Purchase Agreement Created (ACTIVE)',
    ...eb('2024-08-30T21:36:03Z'),
    ...EB_BUYER,
  },
  'marketplace-doc-eb-purchase-agreement-amended-proposer': {
    kind: 'notice',
    action: 'Purchase Agreement Amended (ACTIVE)',
    ...eb('2024-08-30T21:36:03Z'),
    ...EB_BUYER,
  },
  'marketplace-doc-eb-purchase-agreement-amended-proposer-2025-version': {
    kind: 'notice',
    action: 'Purchase Agreement Amended (ACTIVE)',
    ...eb('2024-08-30T21:36:03Z'),
    ...EB_BUYER,
  },
  'marketplace-doc-eb-purchase-agreement-amended-manufacturer': {
    kind: 'notice',
    action: 'Purchase Agreement Amended (ACTIVE)',
    ...eb('2024-08-30T21:36:03Z'),
    ...EB_BUYER,
  },
  'marketplace-doc-eb-purchase-agreement-ended-proposer': {
    kind: 'notice',
    action: 'Purchase Agreement Ended (CANCELLED)',
    ...eb('2024-08-30T21:36:03Z'),
    ...EB_BUYER,
  },
  'marketplace-doc-eb-purchase-agreement-ended-manufacturer': {
    kind: 'notice',
    action: 'Purchase Agreement Ended (CANCELLED)',
    ...eb('2024-08-30T21:36:03Z'),
    ...EB_BUYER,
  },
  'marketplace-doc-eb-purchase-agreement-advisory-issued-manufacturer': {
    kind: 'notice',
    action: 'Purchase Agreement Advisory Issued',
    ...eb('2026-07-02T14:30:00Z', 'a1b2c3d4-1111-2222-3333-444455556666'),
    ...EB_BUYER,
  },
  'marketplace-doc-eb-purchase-agreement-advisory-resolved-manufacturer': {
    kind: 'notice',
    action: 'Purchase Agreement Advisory Resolved',
    ...eb('2026-07-02T14:30:00Z', 'k9s5f3d4-0921-2382-3333-970453552166'),
    ...EB_BUYER,
  },
  'marketplace-doc-eb-purchase-agreement-ending-proposer': {
    kind: 'notice',
    action: 'Purchase Agreement Ending (ACTIVE)',
    ...eb('2026-07-04T00:00:00Z'),
    ...EB_BUYER,
  },
  'marketplace-doc-eb-purchase-agreement-renewal-terms-finalized-proposer': {
    kind: 'notice',
    action: 'Purchase Agreement Renewal Terms Finalized',
    ...eb('2026-11-01T00:00:00Z'),
    ...EB_BUYER,
  },
  'marketplace-doc-eb-purchase-agreement-renewal-upcoming-proposer': {
    kind: 'notice',
    action: 'Purchase Agreement Renewal Upcoming',
    ...eb('2026-12-01T00:00:00Z'),
    ...EB_BUYER,
  },
  // No buyer in the event: the agreement id stands in as customerId, and there is no customerAccountId.
  'marketplace-doc-eb-purchase-agreement-billing-adjustment-completed-proposer': {
    kind: 'notice',
    action: 'Purchase Agreement Billing Adjustment Completed',
    ...eb('2025-01-01T13:12:22Z', CANCELLATION_ID),
    customerId: 'agmt-abcdexampleid',
  },
  'marketplace-doc-eb-purchase-agreement-billing-adjustment-failed-proposer': {
    kind: 'notice',
    action: 'Purchase Agreement Billing Adjustment Failed',
    ...eb('2025-01-01T13:15:00Z', CANCELLATION_ID),
    customerId: 'agmt-abcdexampleid',
  },
  'marketplace-doc-eb-agreement-cancellation-request-pending-approval-proposer': cancellation('Pending Approval', '2025-01-01T13:12:22Z'),
  'marketplace-doc-eb-agreement-cancellation-request-approved-proposer': cancellation('Approved', '2025-01-01T13:16:07Z'),
  'marketplace-doc-eb-agreement-cancellation-request-rejected-proposer': cancellation('Rejected', '2025-01-02T10:30:00Z'),
  'marketplace-doc-eb-agreement-cancellation-request-cancelled-proposer': cancellation('Cancelled', '2025-01-02T08:00:00Z'),
  'marketplace-doc-eb-agreement-cancellation-request-validation-failed-proposer': cancellation('Validation Failed', '2025-01-01T13:15:00Z'),
} as Record<string, ParsedMessage>;

describe("AWS's documented Marketplace examples, as sample events", () => {
  test('every sample has an expectation, and every expectation a sample', () => {
    expect(SAMPLES).toEqual(Object.keys(EXPECTED).sort());
  });

  test.each(SAMPLES)('events/%s.json', (name) => {
    expect(parseSample(name)).toEqual(EXPECTED[name]);
  });

  test('each record is a Lambda SQS record whose md5OfBody is the MD5 of its body', () => {
    for (const name of SAMPLES) {
      const record = recordOf(name);
      expect({ name, md5: record.md5OfBody }).toEqual({ name, md5: createHash('md5').update(record.body).digest('hex') });
      expect(record.eventSource).toBe('aws:sqs');
    }
  });
});

describe('the SNS samples are the documented templates, character for character', () => {
  test.each(['subscribe-success', 'subscribe-fail', 'unsubscribe-pending', 'unsubscribe-success'])('subscription topic, %s', (action) => {
    expect(bodyOf(`marketplace-doc-sns-subscription-${action}`)).toBe(SUBSCRIPTION_TEMPLATE.replace('<action-name>', action));
    expect(bodyOf(`marketplace-doc-sns-2020-${action}`)).toBe(TEMPLATE_2020.replace('action-name', action));
  });

  test('entitlement topic: the template with its action, less the comma after the last member', () => {
    expect(bodyOf('marketplace-doc-sns-entitlement-entitlement-updated')).toBe(
      ENTITLEMENT_TEMPLATE.replace('<action-name>', 'entitlement-updated').replace('",\n}', '"\n}'),
    );
  });

  test('the entitlement template as printed is not JSON: rejected invalid-json, as any body that is not JSON', () => {
    const printed = ENTITLEMENT_TEMPLATE.replace('<action-name>', 'entitlement-updated');
    expect(() => parseMessageBody(printed)).toThrow(expect.objectContaining({ reason: 'invalid-json' }));
  });

  test('the templates with their placeholder action are rejected, naming action', () => {
    for (const template of [SUBSCRIPTION_TEMPLATE, TEMPLATE_2020]) {
      let error: unknown;
      try {
        parseMessageBody(template);
      } catch (caught) {
        error = caught;
      }
      expect(error).toBeInstanceOf(RejectedError);
      expect(error).toMatchObject({
        reason: 'invalid-marketplace-notification',
        message: expect.stringContaining('action must be one of'),
      });
    }
  });

  test("the SNS guide's envelope carries the subscription template as its Message string", () => {
    const envelope = JSON.parse(bodyOf('marketplace-doc-sns-envelope-unsubscribe-success')) as Record<string, unknown>;
    expect(envelope.Message).toBe(SUBSCRIPTION_TEMPLATE.replace('<action-name>', 'unsubscribe-success'));
    expect(envelope).toMatchObject({
      Type: 'Notification',
      MessageId: 'dc1e94d9-56c5-5e96-808d-cc7f68faa162',
      Timestamp: '2021-02-16T21:41:19.978Z',
    });
  });

  test("the SNS guide's own envelopes, whose Message is plain text, are invalid-sns-envelope", () => {
    const envelope = JSON.parse(bodyOf('marketplace-doc-sns-envelope-unsubscribe-success')) as Record<string, unknown>;
    const text = JSON.stringify({ ...envelope, Message: 'This is a test message.' });
    expect(() => parseMessageBody(text)).toThrow(expect.objectContaining({ reason: 'invalid-sns-envelope' }));
  });

  test('the community (re:Post) envelope, whose Message is the entitlement template with its comma, is invalid-sns-envelope', () => {
    const message =
      '{\n "action": "<action-name>",\n "customer-identifier": " X01EXAMPLEX",\n "product-code": "n0123EXAMPLEXXXXXXXXXXXX",\n}';
    const envelope = {
      Type: 'Notification',
      MessageId: '63a3f6b6-d533-4a47-aef9-fcf5cf758c76',
      Message: message,
      Timestamp: '2012-03-29T05:12:16.901Z',
    };
    expect(() => parseMessageBody(JSON.stringify(envelope))).toThrow(
      expect.objectContaining({ reason: 'invalid-sns-envelope', message: 'SNS envelope: Message is not valid JSON' }),
    );
  });
});

/**
 * A model of the ordering rule only (lib/customer-key/lifecycle-order.ts), not of the use cases: a grant creates a missing key or
 * re-enables a revoked one when proven newer; a revoke applies (or leaves a tombstone) unless proven older. `npm start`
 * checks the real pipeline on the same samples.
 */
function finalState(messages: ParsedMessage[]): { enabled: boolean } | undefined {
  let record: { enabled: boolean; last: Stamped } | undefined;
  for (const m of messages) {
    const stamp: Stamped = { time: m.eventTime, clock: m.clock };
    if (m.kind === 'provision') {
      if (!record || (!record.enabled && grantIsProvenNewer(stamp, record.last))) record = { enabled: true, last: stamp };
    } else if (m.kind === 'revoke') {
      if (!revokeIsProvenOlder(stamp, record?.last)) record = { enabled: false, last: stamp };
    }
  }
  return record && { enabled: record.enabled };
}

describe('the sample set cannot leave a buyer who left with an enabled key, in any order, on any date', () => {
  const forBuyer = (customerId: string, receivedAt: string) =>
    SAMPLES.map((name) => parseSample(name, receivedAt)).filter((m) => m.customerId === customerId);

  test.each([
    ['X01EXAMPLEX (SNS: subscribes, fails, unsubscribes)', 'X01EXAMPLEX'],
    ['845735284135 (EventBridge: License Updated and Deprovisioned at the same time)', '845735284135'],
  ])('%s', (_what, buyer) => {
    const date = fc.date({ min: new Date('2000-01-01T00:00:00Z'), max: new Date('2100-01-01T00:00:00Z'), noInvalidDate: true });
    fc.assert(
      fc.property(date, fc.infiniteStream(fc.nat()), (when, randoms) => {
        const messages = forBuyer(buyer, when.toISOString());
        expect(messages.some((m) => m.kind === 'revoke')).toBe(true);
        const shuffled = messages
          .map((m) => ({ m, r: randoms.next().value }))
          .sort((a, b) => a.r - b.r)
          .map(({ m }) => m);
        expect(finalState(shuffled)?.enabled ?? false).toBe(false);
      }),
      { numRuns: 300 },
    );
  });
});
