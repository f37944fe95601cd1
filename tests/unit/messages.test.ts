import { RejectedError, type RejectionReason } from '../../lib/errors.js';
import { MARKETPLACE_ACTIONS, parseMessageBody } from '../../lib/messages/index.js';
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
    // SQS got it a second after SNS stamped it: the SNS Timestamp wins over SQS's SentTimestamp.
    const parsed = parseMessageBody(body(envelope), new Date(Date.parse(envelope.Timestamp) + 1_000).toISOString());
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
    ['whose MessageId is not a string', { ...snsEnvelope({}), MessageId: 42 }, 'MessageId'],
    ['whose TopicArn is not a string', { ...snsEnvelope({}), TopicArn: ['arn'] }, 'TopicArn'],
    ['whose Message is a JSON number', { ...snsEnvelope({}), Message: 7 }, 'Message must be a JSON string or an object'],
    ['whose Message is an array', { ...snsEnvelope({}), Message: [marketplaceNotification('subscribe-success', 'c')] }, 'Message must be'],
    ['whose Message is null', { ...snsEnvelope({}), Message: null }, 'Message must be a JSON string or an object'],
    ['whose Timestamp is not ISO 8601', { ...snsEnvelope({}), Timestamp: 'Thu, 26 Nov 2026 09:30:00 GMT' }, 'Timestamp'],
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
      'an action in upper case (actions are read exactly)',
      marketplaceNotification('SUBSCRIBE-SUCCESS', 'c'),
      'invalid-marketplace-notification',
      'action',
    ],
    ['an action with a trailing space', marketplaceNotification('subscribe-success ', 'c'), 'invalid-marketplace-notification', 'action'],
    [
      'a customer-identifier with an inner space',
      marketplaceNotification('subscribe-success', 'X01 EXAMPLEX'),
      'invalid-customer-id',
      'customer-identifier',
    ],
    [
      'a customer-identifier of spaces only',
      marketplaceNotification('subscribe-success', '   '),
      'invalid-customer-id',
      'customer-identifier',
    ],
    [
      'a customer-identifier with a surrounding no-break space (only ASCII whitespace is trimmed)',
      marketplaceNotification('subscribe-success', '\u00a0X01EXAMPLEX'),
      'invalid-customer-id',
      'customer-identifier',
    ],
    [
      'a customer-identifier with a trailing zero-width space',
      marketplaceNotification('subscribe-success', 'X01EXAMPLEX\u200b'),
      'invalid-customer-id',
      'customer-identifier',
    ],
    [
      'a customer-identifier with a leading control character',
      marketplaceNotification('subscribe-success', '\u0000X01EXAMPLEX'),
      'invalid-customer-id',
      'customer-identifier',
    ],
    [
      'a numeric customer-identifier',
      { ...marketplaceNotification('subscribe-success', 'c'), 'customer-identifier': 42 },
      'invalid-customer-id',
      'must be a string',
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

describe('tolerant reading of Marketplace SNS notifications', () => {
  const at = '2026-11-26T09:00:00.000Z';
  const parse = (value: unknown) => parseMessageBody(body(value), at);

  test.each([' X01EXAMPLEX', 'X01EXAMPLEX ', '\tX01EXAMPLEX\r\n', '  X01EXAMPLEX  '])(
    'surrounding ASCII whitespace of customer-identifier is trimmed: %j → X01EXAMPLEX',
    (id) => {
      expect(parse(marketplaceNotification('subscribe-success', id))).toMatchObject({ customerId: 'X01EXAMPLEX' });
      expect(parse(snsEnvelope(marketplaceNotification('unsubscribe-success', id)))).toMatchObject({
        kind: 'revoke',
        customerId: 'X01EXAMPLEX',
      });
    },
  );

  test('surrounding whitespace of product-code is trimmed too', () => {
    expect(parse(marketplaceNotification('subscribe-success', 'c', ' prodX\n'))).toMatchObject({ productCode: 'prodX' });
  });

  test.each<[unknown, boolean | undefined]>([
    ['true', true],
    ['false', false],
    ['TRUE', true],
    ['False', false],
    [true, true],
    [false, false],
    ['yes', undefined],
    ['', undefined],
    [1, undefined],
    [null, undefined],
    [{ value: 'true' }, undefined],
  ])('isFreeTrialTermPresent %j is read as %j and never rejects', (value, freeTrial) => {
    const parsed = parse({ ...marketplaceNotification('subscribe-success', 'c'), isFreeTrialTermPresent: value });
    expect(parsed.kind).toBe('provision');
    expect(parsed.kind === 'provision' && parsed.freeTrial).toBe(freeTrial ?? undefined);
  });

  test('isFreeTrialTermPresent on another action is informational: never on the request', () => {
    const parsed = parse({ ...marketplaceNotification('subscribe-fail', 'c'), isFreeTrialTermPresent: 'true' });
    expect(parsed).toEqual({
      kind: 'revoke',
      action: 'subscribe-fail',
      source: 'marketplace',
      customerId: 'c',
      productCode: 'prod4k2j9x8l7',
      eventTime: at,
      clock: 'queue',
    });
  });

  test.each<[string, unknown]>([
    ['offer-identifier of another type', { 'offer-identifier': 42 }],
    ['offer-identifier null', { 'offer-identifier': null }],
    ['unknown fields', { 'customer-aws-account-id': '123456789012', licenseArn: 'x', future: { nested: [1] } }],
  ])('%s never rejects, and nothing unknown reaches the request', (_what, extra) => {
    const parsed = parse({ ...marketplaceNotification('subscribe-success', 'c'), ...(extra as object) });
    expect(parsed).toEqual({
      kind: 'provision',
      source: 'marketplace',
      customerId: 'c',
      productCode: 'prod4k2j9x8l7',
      eventTime: at,
      clock: 'queue',
    });
  });

  test('the 2020 key names CustomerIdentifier and ProductCode are read when the current ones are absent', () => {
    expect(parse({ action: 'subscribe-success', CustomerIdentifier: ' X01EXAMPLEX', ProductCode: 'n0123EXAMPLEXXXXXXXXXXXX' })).toEqual({
      kind: 'provision',
      source: 'marketplace',
      customerId: 'X01EXAMPLEX',
      productCode: 'n0123EXAMPLEXXXXXXXXXXXX',
      eventTime: at,
      clock: 'queue',
    });
  });

  test('current and 2020 names both present and equal (once trimmed) are one value', () => {
    expect(
      parse({ ...marketplaceNotification('subscribe-success', ' c1'), CustomerIdentifier: 'c1 ', ProductCode: 'prod4k2j9x8l7' }),
    ).toMatchObject({
      customerId: 'c1',
      productCode: 'prod4k2j9x8l7',
    });
  });

  test.each<[string, Record<string, unknown>, string, string]>([
    ['customer', { CustomerIdentifier: 'other' }, 'customer-identifier', 'CustomerIdentifier'],
    ['product', { ProductCode: 'prodOther' }, 'product-code', 'ProductCode'],
  ])('current and 2020 %s names that differ are rejected as ambiguous, naming both', (_what, extra, current, alias) => {
    const error = rejectionOf(body({ ...marketplaceNotification('subscribe-success', 'c'), ...extra }));
    expect(error.reason).toBe('ambiguous-field');
    expect(error.message).toContain(current);
    expect(error.message).toContain(alias);
    expect(error.message).not.toContain('other');
  });

  test('an invalid 2020 name is named in the rejection', () => {
    const error = rejectionOf(body({ action: 'subscribe-success', CustomerIdentifier: 'a/b', ProductCode: 'p' }));
    expect(error.reason).toBe('invalid-customer-id');
    expect(error.message).toContain('CustomerIdentifier');
  });

  test('a notification with neither name of the customer is invalid-customer-id', () => {
    const error = rejectionOf(body({ action: 'subscribe-success', 'product-code': 'p' }));
    expect(error.reason).toBe('invalid-customer-id');
    expect(error.message).toContain('customer-identifier is required');
  });
});

describe('SNS envelopes as delivery and replay paths produce them', () => {
  test('an envelope whose Message is an object (AWS sample code), without MessageId, TopicArn or Timestamp', () => {
    const parsed = parseMessageBody(
      body({ Type: 'Notification', Message: marketplaceNotification('entitlement-updated', 'X01EXAMPLEX', 'prodE') }),
      '2026-11-26T09:00:00.000Z',
    );
    expect(parsed).toEqual({
      kind: 'notice',
      action: 'entitlement-updated',
      source: 'marketplace',
      customerId: 'X01EXAMPLEX',
      productCode: 'prodE',
      eventTime: '2026-11-26T09:00:00.000Z',
      clock: 'queue',
    });
  });

  test('SignatureVersion "2", no Subject, unknown envelope fields: read as any other envelope', () => {
    const envelope = { ...snsEnvelope(marketplaceNotification('subscribe-success', 'c')), SignatureVersion: '2', MessageAttributes: {} };
    expect(parseMessageBody(body(envelope))).toMatchObject({
      kind: 'provision',
      customerId: 'c',
      clock: 'producer',
      eventTime: envelope.Timestamp,
    });
  });

  test('an EventBridge event inside an SNS envelope is not documented, and not read', () => {
    const inner = {
      version: '0',
      id: 'e',
      'detail-type': 'License Updated - Manufacturer',
      source: 'aws.agreement-marketplace',
      detail: {},
    };
    expect(rejectionOf(body(snsEnvelope(inner))).reason).toBe('unrecognized-event');
  });
});

describe('Marketplace EventBridge events', () => {
  const licenseEvent = (kind: 'Updated' | 'Deprovisioned', detail: Record<string, unknown> = {}) => ({
    version: '0',
    id: 'a7c9e1f3-4b6d-4e80-a2c4-6e8f0a2c4e61',
    'detail-type': `License ${kind} - Manufacturer`,
    source: 'aws.agreement-marketplace',
    account: '123456789012',
    time: '2026-11-26T10:16:12Z',
    region: 'us-east-1',
    resources: [],
    detail: {
      agreement: { id: 'agmt-1' },
      product: { code: 'prodL', id: 'prod-x' },
      license: { arn: 'arn:aws:license-manager::386209384616:license:l-1' },
      acceptor: { accountId: '731245098716' },
      ...detail,
    },
  });
  const agreementEvent = (detailType: string, detail: Record<string, unknown>) => ({
    ...licenseEvent('Updated'),
    'detail-type': detailType,
    detail,
  });

  test('License Updated: the account id is the customer, plus customerAccountId, productCode and licenseArn', () => {
    expect(parseMessageBody(body(licenseEvent('Updated')))).toEqual({
      kind: 'provision',
      source: 'eventbridge',
      customerId: '731245098716',
      customerAccountId: '731245098716',
      productCode: 'prodL',
      licenseArn: 'arn:aws:license-manager::386209384616:license:l-1',
      eventId: 'a7c9e1f3-4b6d-4e80-a2c4-6e8f0a2c4e61',
      eventTime: '2026-11-26T10:16:12Z',
      clock: 'producer',
    });
  });

  test('License Deprovisioned - Proposer (AWS sample code subscribes to it) revokes', () => {
    const event = { ...licenseEvent('Deprovisioned'), 'detail-type': 'License Deprovisioned - Proposer' };
    expect(parseMessageBody(body(event))).toMatchObject({ kind: 'revoke', action: 'unsubscribe-success', customerId: '731245098716' });
  });

  test.each([
    ['aws:license-manager:us-east-1:123456789012:l-e5', 'arn:aws:license-manager:us-east-1:123456789012:l-e5'],
    [' aws-cn:license-manager::123456789012:license:l-1 ', 'arn:aws-cn:license-manager::123456789012:license:l-1'],
    ['aws-eusc:license-manager::123456789012:license:l-1', 'arn:aws-eusc:license-manager::123456789012:license:l-1'],
    ['arn:aws:license-manager::123456789012:license:l-1\n', 'arn:aws:license-manager::123456789012:license:l-1'],
  ])('license ARN %j is read as %j', (arn, expected) => {
    expect(parseMessageBody(body(licenseEvent('Updated', { license: { arn } })))).toMatchObject({ licenseArn: expected });
  });

  test('a license event without a license (or license null) has no licenseArn', () => {
    for (const license of [undefined, null]) {
      const parsed = parseMessageBody(body(licenseEvent('Updated', { license })));
      expect(parsed).toMatchObject({ kind: 'provision', customerId: '731245098716' });
      expect(parsed.licenseArn).toBeUndefined();
    }
  });

  test.each<[string, Record<string, unknown>, RejectionReason, string]>([
    [
      'a license ARN of another service without arn:',
      { license: { arn: 'aws:s3:::bucket' } },
      'invalid-marketplace-notification',
      'detail.license.arn',
    ],
    [
      'a license ARN with an inner space',
      { license: { arn: 'arn:aws:license-manager::1:license:l 1' } },
      'invalid-marketplace-notification',
      'detail.license.arn',
    ],
    [
      'a license ARN of 257 characters',
      { license: { arn: `arn:aws:license-manager::1:license:l-${'a'.repeat(220)}` } },
      'invalid-marketplace-notification',
      'detail.license.arn',
    ],
    [
      'a license that is a string',
      { license: 'arn:aws:license-manager::1:license:l-1' },
      'invalid-marketplace-notification',
      'detail.license',
    ],
    [
      'a numeric account id (leading zeros would be lost)',
      { acceptor: { accountId: 731245098716 } },
      'invalid-customer-id',
      'detail.acceptor.accountId',
    ],
    ['an account id of 11 digits', { acceptor: { accountId: '73124509871' } }, 'invalid-customer-id', 'detail.acceptor.accountId'],
    ['an account id with an inner space', { acceptor: { accountId: '731245 098716' } }, 'invalid-customer-id', 'detail.acceptor.accountId'],
    ['no acceptor', { acceptor: undefined }, 'invalid-customer-id', 'detail.acceptor.accountId is required'],
    ['no product code', { product: { id: 'prod-x' } }, 'invalid-product-code', 'detail.product.code is required'],
    ['a product code with a slash', { product: { code: 'prod/1' } }, 'invalid-product-code', 'detail.product.code'],
  ])('a license event with %s is rejected', (_what, detail, reason, field) => {
    const error = rejectionOf(body(licenseEvent('Updated', detail)));
    expect(error.reason).toBe(reason);
    expect(error.message).toContain('Marketplace event License Updated');
    expect(error.message).toContain(field);
  });

  test('a license event account id with surrounding spaces is trimmed', () => {
    expect(parseMessageBody(body(licenseEvent('Updated', { acceptor: { accountId: ' 731245098716 ' } })))).toMatchObject({
      customerId: '731245098716',
      customerAccountId: '731245098716',
    });
  });

  test('an agreement event is a notice with the buyer account id and the agreement status', () => {
    const parsed = parseMessageBody(
      body(
        agreementEvent('Purchase Agreement Ended - Manufacturer', {
          agreement: { id: 'agmt-1', status: 'EXPIRED' },
          acceptor: { accountId: '731245098716' },
        }),
      ),
    );
    expect(parsed).toMatchObject({
      kind: 'notice',
      action: 'Purchase Agreement Ended (EXPIRED)',
      customerId: '731245098716',
      customerAccountId: '731245098716',
    });
    expect(parsed.productCode).toBeUndefined();
  });

  test('a cancellation-request event takes the buyer from detail.agreement.acceptorId', () => {
    const parsed = parseMessageBody(
      body(
        agreementEvent('Agreement Cancellation Request Approved - Proposer', { agreement: { id: 'agmt-1', acceptorId: '123465789012' } }),
      ),
    );
    expect(parsed).toMatchObject({
      kind: 'notice',
      action: 'Agreement Cancellation Request Approved',
      customerId: '123465789012',
      customerAccountId: '123465789012',
    });
  });

  test('an event that names no buyer is a notice for its agreement id; without one, for "_"', () => {
    const billing = 'Purchase Agreement Billing Adjustment Completed - Proposer';
    const withAgreement = parseMessageBody(body(agreementEvent(billing, { agreement: { id: 'agmt-abcdexampleid' } })));
    expect(withAgreement).toMatchObject({ kind: 'notice', customerId: 'agmt-abcdexampleid' });
    expect(withAgreement.customerAccountId).toBeUndefined();
    expect(parseMessageBody(body(agreementEvent(billing, {})))).toMatchObject({ kind: 'notice', customerId: '_' });
    expect(parseMessageBody(body(agreementEvent(billing, { agreement: { id: 'bad id/x' } })))).toMatchObject({ customerId: '_' });
  });

  test('detail-types AWS may add later are notices, not rejections', () => {
    expect(
      parseMessageBody(body(agreementEvent('License Suspended - Manufacturer', { acceptor: { accountId: '731245098716' } }))),
    ).toMatchObject({
      kind: 'notice',
      action: 'License Suspended',
    });
  });

  test('a status that is not an upper-case word is left out of the action, not rejected', () => {
    const parsed = parseMessageBody(
      body(
        agreementEvent('Purchase Agreement Ended - Proposer', {
          agreement: { status: 'ended\u202e' },
          acceptor: { accountId: '731245098716' },
        }),
      ),
    );
    expect(parsed).toMatchObject({ kind: 'notice', action: 'Purchase Agreement Ended' });
  });

  test('an agreement event with a buyer id that is present but broken is invalid-customer-id', () => {
    const error = rejectionOf(body(agreementEvent('Purchase Agreement Created - Proposer', { acceptor: { accountId: '../x' } })));
    expect(error.reason).toBe('invalid-customer-id');
    expect(error.message).toContain('detail.acceptor.accountId');
  });

  test('a detail-type with control or bidi characters is rejected without echoing it', () => {
    const error = rejectionOf(body(agreementEvent('License Updated\u202e - Manufacturer', {})));
    expect(error.reason).toBe('invalid-eventbridge-event');
    expect(error.message).toContain('detail-type');
    expect(error.message).not.toContain('\u202e');
  });

  test('an event id that is not a well-formed id is not used as eventId', () => {
    const parsed = parseMessageBody(body({ ...licenseEvent('Updated'), id: 'has space\u0000' }));
    expect(parsed.kind).toBe('provision');
    expect(parsed.eventId).toBeUndefined();
  });
});

describe('signup events carrying a resolved registration', () => {
  test('customerAccountId and licenseArn are read', () => {
    const parsed = parseMessageBody(
      body(
        signup('731245098716', {
          customerAccountId: '731245098716',
          licenseArn: 'arn:aws:license-manager::1:license:l-1',
          productCode: 'p',
        }),
      ),
    );
    expect(parsed).toMatchObject({ customerAccountId: '731245098716', licenseArn: 'arn:aws:license-manager::1:license:l-1' });
  });

  test.each([
    ['customerAccountId', '7312'],
    ['licenseArn', 'license-1'],
  ])('a signup with a broken %s is invalid-signup-event naming it', (field, value) => {
    const error = rejectionOf(body(signup('c', { [field]: value })));
    expect(error.reason).toBe('invalid-signup-event');
    expect(error.message).toContain(field);
  });

  test('a signup customerId is not trimmed: the product defines that contract', () => {
    expect(rejectionOf(body(signup(' c'))).reason).toBe('invalid-customer-id');
  });
});
