import { RejectedError, type RejectionReason } from '../../lib/errors.js';
import { MARKETPLACE_ACTIONS, parseMessageBody } from '../../lib/messages.js';
import { eventBridgeEnvelope, marketplaceNotification, signup, snsEnvelope } from '../helpers/events.js';

const body = (value: unknown): string => JSON.stringify(value);

/** Parses `raw` expecting a rejection, and returns it. */
function rejectionOf(raw: string): RejectedError {
  try {
    parseMessageBody(raw);
  } catch (error) {
    expect(error).toBeInstanceOf(RejectedError);
    return error as RejectedError;
  }
  throw new Error('expected parseMessageBody to throw a RejectedError');
}

describe('parseMessageBody: recognised sources', () => {
  test('a plain signup event becomes a provision request with every field', () => {
    const parsed = parseMessageBody(
      body(
        signup('cust-1', {
          eventId: 'evt-42',
          productCode: 'prod4k2j9x8l7',
          plan: 'pro',
          tags: { team: 'growth' },
          occurredAt: '2026-11-26T10:00:00Z',
        }),
      ),
    );
    expect(parsed).toEqual({
      kind: 'provision',
      source: 'signup',
      customerId: 'cust-1',
      productCode: 'prod4k2j9x8l7',
      plan: 'pro',
      tags: { team: 'growth' },
      eventId: 'evt-42',
      eventTime: '2026-11-26T10:00:00Z',
      clock: 'producer',
    });
  });

  test('a minimal signup event carries only the customer id', () => {
    const parsed = parseMessageBody(body(signup('cust-1')));
    expect(parsed).toMatchObject({ kind: 'provision', source: 'signup', customerId: 'cust-1' });
    expect(parsed.kind === 'provision' && parsed.eventId).toBeUndefined();
    expect(parsed.kind === 'provision' && parsed.productCode).toBeUndefined();
  });

  test('unknown signup fields are ignored', () => {
    const parsed = parseMessageBody(body(signup('cust-1', { newField: { nested: true } })));
    expect(parsed).toMatchObject({ kind: 'provision', customerId: 'cust-1' });
    expect(parsed).not.toHaveProperty('newField');
  });

  test('a signup in an EventBridge envelope takes the envelope id as event id', () => {
    const envelope = eventBridgeEnvelope(signup('cust-eb', { productCode: 'prodA' }), 'eb-envelope-id');
    const parsed = parseMessageBody(body(envelope));
    expect(parsed).toEqual({
      kind: 'provision',
      source: 'eventbridge',
      customerId: 'cust-eb',
      productCode: 'prodA',
      plan: undefined,
      tags: undefined,
      eventId: 'eb-envelope-id',
      eventTime: envelope.time,
      clock: 'producer',
    });
  });

  test("a signup's own eventId wins over the EventBridge envelope id", () => {
    const parsed = parseMessageBody(body(eventBridgeEnvelope(signup('cust-eb', { eventId: 'own-id' }), 'eb-envelope-id')));
    expect(parsed).toMatchObject({ source: 'eventbridge', eventId: 'own-id' });
  });

  test('a raw Marketplace subscribe-success notification becomes a provision request', () => {
    const parsed = parseMessageBody(body(marketplaceNotification('subscribe-success', 'mp-cust-1', 'prodX')), '2026-11-26T09:00:00.000Z');
    // Raw delivery carries no time: SQS's SentTimestamp (the second argument) stands in, marked as the queue's.
    expect(parsed).toEqual({
      kind: 'provision',
      source: 'marketplace',
      customerId: 'mp-cust-1',
      productCode: 'prodX',
      eventTime: '2026-11-26T09:00:00.000Z',
      clock: 'queue',
    });
  });

  test('a Marketplace subscribe-success notification inside an SNS envelope becomes a provision request', () => {
    const envelope = snsEnvelope(marketplaceNotification('subscribe-success', 'mp-cust-2'));
    const parsed = parseMessageBody(body(envelope), '2000-01-01T00:00:00.000Z');
    // The SNS Timestamp wins over SQS's SentTimestamp.
    expect(parsed).toEqual({
      kind: 'provision',
      source: 'marketplace',
      customerId: 'mp-cust-2',
      productCode: 'prod4k2j9x8l7',
      eventTime: envelope.Timestamp,
      clock: 'producer',
    });
  });

  const otherActions = MARKETPLACE_ACTIONS.filter((action) => action !== 'subscribe-success');

  test('there are four actions besides subscribe-success', () => {
    expect(otherActions).toEqual(['subscribe-fail', 'unsubscribe-pending', 'unsubscribe-success', 'entitlement-updated']);
  });

  const kindOf = {
    'subscribe-fail': 'revoke',
    'unsubscribe-success': 'revoke',
    'unsubscribe-pending': 'notice',
    'entitlement-updated': 'notice',
  } as Record<string, string>;

  test.each(otherActions)('raw Marketplace %s becomes a lifecycle command', (action) => {
    expect(parseMessageBody(body(marketplaceNotification(action, 'mp-cust-3', 'prodY')), '2026-11-26T09:00:00.000Z')).toEqual({
      kind: kindOf[action],
      source: 'marketplace',
      action,
      customerId: 'mp-cust-3',
      productCode: 'prodY',
      eventTime: '2026-11-26T09:00:00.000Z',
      clock: 'queue',
    });
  });

  test.each(otherActions)('Marketplace %s inside an SNS envelope becomes a lifecycle command', (action) => {
    expect(parseMessageBody(body(snsEnvelope(marketplaceNotification(action, 'mp-cust-4'))))).toMatchObject({
      kind: kindOf[action],
      source: 'marketplace',
      action,
      customerId: 'mp-cust-4',
      productCode: 'prod4k2j9x8l7',
    });
  });

  test('a customer id of 256 allowed characters is accepted', () => {
    const id = `${'a'.repeat(250)}_+=.@-`;
    expect(id).toHaveLength(256);
    expect(parseMessageBody(body(signup(id)))).toMatchObject({ kind: 'provision', customerId: id });
  });
});

describe('parseMessageBody: rejections', () => {
  test('a body that is not JSON is invalid-json', () => {
    const error = rejectionOf('{"customerId": "cust-1"');
    expect(error.reason).toBe('invalid-json');
    expect(error.message).toMatch(/not valid JSON/);
  });

  test.each([
    ['an array', '[{"customerId":"cust-1"}]'],
    ['a string', '"cust-1"'],
    ['null', 'null'],
    ['a number', '42'],
  ])('JSON that is %s is unrecognized-event', (_what, raw) => {
    const error = rejectionOf(raw);
    expect(error.reason).toBe('unrecognized-event');
    expect(error.message).toMatch(/not an object/);
  });

  test('an object that matches no source is unrecognized-event', () => {
    const error = rejectionOf(body({ user: 'cust-1' }));
    expect(error.reason).toBe('unrecognized-event');
    expect(error.message).toMatch(/neither a signup event/);
  });

  test('an SNS envelope whose Type is not Notification is unrecognized-event', () => {
    const error = rejectionOf(
      body({ ...snsEnvelope(marketplaceNotification('subscribe-success', 'c')), Type: 'SubscriptionConfirmation' }),
    );
    expect(error.reason).toBe('unrecognized-event');
  });

  test.each<[string, unknown, RejectionReason, string]>([
    ['signup with an invalid eventId', signup('cust-1', { eventId: 'has space' }), 'invalid-signup-event', 'eventId'],
    ['signup with an eventId of 129 characters', signup('cust-1', { eventId: 'e'.repeat(129) }), 'invalid-signup-event', 'eventId'],
    ['signup with an invalid plan', signup('cust-1', { plan: 'pro plan' }), 'invalid-signup-event', 'plan'],
    ['signup with an invalid occurredAt', signup('cust-1', { occurredAt: 'yesterday' }), 'invalid-signup-event', 'occurredAt'],
    ['signup with a numeric customerId', { customerId: 12345 }, 'invalid-customer-id', 'customerId'],
    ['signup with a path customerId', signup('../x'), 'invalid-customer-id', 'customerId'],
    ['signup with an empty customerId', signup(''), 'invalid-customer-id', 'customerId'],
    ['signup with a 257-character customerId', signup('c'.repeat(257)), 'invalid-customer-id', 'customerId'],
    ['signup with a productCode starting with _', signup('cust-1', { productCode: '_prod' }), 'invalid-product-code', 'productCode'],
    ['signup with a 65-character productCode', signup('cust-1', { productCode: 'p'.repeat(65) }), 'invalid-product-code', 'productCode'],
    ['signup with a non-string tag value', signup('cust-1', { tags: { team: 7 } }), 'invalid-tags', 'tags'],
    ['signup with a null tag value', signup('cust-1', { tags: { team: null } }), 'invalid-tags', 'tags'],
    ['signup with tags that are not an object', signup('cust-1', { tags: 'team=growth' }), 'invalid-tags', 'tags'],
  ])('%s', (_what, event, reason, field) => {
    const error = rejectionOf(body(event));
    expect(error.reason).toBe(reason);
    expect(error.message).toContain('signup event');
    expect(error.message).toContain(field);
  });

  test.each<[string, unknown, RejectionReason, string]>([
    [
      'EventBridge event without an id',
      { 'detail-type': 'Customer Signed Up', source: 's', detail: signup('c') },
      'invalid-eventbridge-event',
      'id',
    ],
    [
      'EventBridge event with an empty detail-type',
      { ...eventBridgeEnvelope(signup('c')), 'detail-type': '' },
      'invalid-eventbridge-event',
      'detail-type',
    ],
    ['EventBridge event without a source', { id: '1', 'detail-type': 'x', detail: signup('c') }, 'invalid-eventbridge-event', 'source'],
    ['EventBridge event whose detail is a string', eventBridgeEnvelope('cust-1'), 'invalid-eventbridge-event', 'detail'],
    ['EventBridge event whose detail is an array', eventBridgeEnvelope([signup('c')]), 'invalid-eventbridge-event', 'detail'],
    ['EventBridge detail with an invalid customerId', eventBridgeEnvelope(signup('a/b')), 'invalid-customer-id', 'customerId'],
    ['EventBridge detail with an invalid plan', eventBridgeEnvelope(signup('c', { plan: '!' })), 'invalid-signup-event', 'plan'],
  ])('%s', (_what, event, reason, field) => {
    const error = rejectionOf(body(event));
    expect(error.reason).toBe(reason);
    expect(error.message).toContain(field);
  });

  test.each<[string, unknown, string]>([
    ['without Message', (({ Message: _m, ...rest }) => rest)(snsEnvelope({})), 'Message'],
    ['without MessageId', (({ MessageId: _m, ...rest }) => rest)(snsEnvelope({})), 'MessageId'],
    ['without TopicArn', (({ TopicArn: _t, ...rest }) => rest)(snsEnvelope({})), 'TopicArn'],
    ['whose Message is not JSON', snsEnvelope('subscribe-success for cust-1'), 'Message is not valid JSON'],
    ['whose Message is a JSON array', snsEnvelope('[1,2]'), 'Message is not a JSON object'],
    ['whose Message is JSON null', snsEnvelope('null'), 'Message is not a JSON object'],
    ['whose Message is a JSON string', snsEnvelope('"text"'), 'Message is not a JSON object'],
  ])('an SNS envelope %s is invalid-sns-envelope', (_what, envelope, expected) => {
    const error = rejectionOf(body(envelope));
    expect(error.reason).toBe('invalid-sns-envelope');
    expect(error.message).toContain('SNS envelope');
    expect(error.message).toContain(expected);
  });

  test('an SNS envelope whose Message matches no source is unrecognized-event', () => {
    expect(rejectionOf(body(snsEnvelope({ hello: 'world' }))).reason).toBe('unrecognized-event');
  });

  test.each<[string, unknown, RejectionReason, string]>([
    ['an unknown action', marketplaceNotification('subscribe-maybe', 'c'), 'invalid-marketplace-notification', 'action'],
    [
      'no action',
      (({ action: _a, ...rest }) => rest)(marketplaceNotification('subscribe-success', 'c')),
      'invalid-marketplace-notification',
      'action',
    ],
    [
      'an invalid isFreeTrialTermPresent',
      { ...marketplaceNotification('subscribe-success', 'c'), isFreeTrialTermPresent: 'yes' },
      'invalid-marketplace-notification',
      'isFreeTrialTermPresent',
    ],
    ['a path customer-identifier', marketplaceNotification('subscribe-success', '../x'), 'invalid-customer-id', 'customer-identifier'],
    ['an empty customer-identifier', marketplaceNotification('subscribe-success', ''), 'invalid-customer-id', 'customer-identifier'],
    [
      'a 257-character customer-identifier',
      marketplaceNotification('subscribe-success', 'c'.repeat(257)),
      'invalid-customer-id',
      'customer-identifier',
    ],
    ['an invalid product-code', marketplaceNotification('subscribe-success', 'c', 'prod code'), 'invalid-product-code', 'product-code'],
    ['an empty product-code', marketplaceNotification('subscribe-success', 'c', ''), 'invalid-product-code', 'product-code'],
  ])('a Marketplace notification with %s is rejected', (_what, notification, reason, field) => {
    for (const raw of [body(notification), body(snsEnvelope(notification))]) {
      const error = rejectionOf(raw);
      expect(error.reason).toBe(reason);
      expect(error.message).toContain('Marketplace notification');
      expect(error.message).toContain(field);
    }
  });
});

describe('parseMessageBody: rejection messages never hold the offending value', () => {
  const secret = 'SECRET-VALUE-123';

  test.each<[string, string]>([
    ['signup customerId', body(signup(`${secret}/x`))],
    ['signup productCode', body(signup('cust-1', { productCode: `${secret}/x` }))],
    ['signup plan', body(signup('cust-1', { plan: `${secret}/x` }))],
    ['signup eventId', body(signup('cust-1', { eventId: `${secret}/x` }))],
    ['signup occurredAt', body(signup('cust-1', { occurredAt: secret }))],
    ['signup tag value', body(signup('cust-1', { tags: { team: { nested: secret } } }))],
    ['EventBridge detail customerId', body(eventBridgeEnvelope(signup(`${secret}/x`)))],
    ['EventBridge detail as a string', body(eventBridgeEnvelope(secret))],
    ['Marketplace customer-identifier', body(marketplaceNotification('subscribe-success', `${secret}/x`))],
    ['Marketplace action', body(marketplaceNotification(secret, 'cust-1'))],
    ['Marketplace product-code in SNS', body(snsEnvelope(marketplaceNotification('subscribe-success', 'c', `${secret}/x`)))],
    ['SNS Message that is not JSON', body(snsEnvelope(`not json ${secret}`))],
    ['body that is not JSON', `{"customerId": "${secret}"`],
    ['body that is a JSON string', body(secret)],
    ['unrecognised object', body({ user: secret })],
  ])('%s', (_what, raw) => {
    const error = rejectionOf(raw);
    expect(error.message).not.toContain(secret);
  });

  test("the customerId 'SECRET-VALUE-123/x' is rejected as invalid-customer-id without echoing it", () => {
    const error = rejectionOf(body(signup('SECRET-VALUE-123/x')));
    expect(error.reason).toBe('invalid-customer-id');
    expect(error.message).toContain('customerId');
    expect(error.message).not.toContain('SECRET-VALUE-123');
  });
});

describe('findings of review', () => {
  test('a signup event with an extra `action` field is still a signup', () => {
    expect(parseMessageBody(JSON.stringify({ customerId: 'c', action: 'signup' }))).toMatchObject({ kind: 'provision', customerId: 'c' });
  });

  test('a rejection for a huge tag key does not repeat the key whole', () => {
    const key = 'SECRET'.repeat(50);
    let message = '';
    try {
      parseMessageBody(JSON.stringify({ customerId: 'c', tags: { [key]: 1 } }));
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toMatch(/tags\./);
    expect(message).not.toContain(key);
    expect(message.length).toBeLessThan(200);
  });
});
