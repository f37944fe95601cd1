/** redrive's reading of a dead letter and the attributes it is sent on with (no network). */
import type { Message, MessageAttributeValue } from '@aws-sdk/client-sqs';
import { attributesToSend, describeMessage, FIRST_SENT_AT_ATTRIBUTE, firstSentAtOf } from '../../lib/ops/redrive/messages.js';

const signupBody = JSON.stringify({ type: 'signup', eventId: 'evt-1', customerId: 'acme', occurredAt: '2026-01-01T00:00:00Z' });
const string = (value: string): MessageAttributeValue => ({ DataType: 'String', StringValue: value });

describe(FIRST_SENT_AT_ATTRIBUTE, () => {
  test('a first redrive sets it from the DLQ copy’s SentTimestamp; the other attributes go on, values only', () => {
    const message = describeMessage(
      {
        MessageId: 'm-1',
        ReceiptHandle: 'r-1',
        Body: signupBody,
        Attributes: { SentTimestamp: '1700000000000', ApproximateReceiveCount: '3' },
        MessageAttributes: { origin: { ...string('ticket-42'), StringListValues: [] } },
      } satisfies Message,
      1_700_000_060_000,
    );
    expect(message).toMatchObject({ sentAt: 1_700_000_000_000, firstSentAt: 1_700_000_000_000, ageMs: 60_000, receiveCount: 3 });
    expect(attributesToSend(message)).toEqual({
      attributes: { origin: string('ticket-42'), [FIRST_SENT_AT_ATTRIBUTE]: string('1700000000000') },
    });
  });

  test('a later redrive keeps it: the first send time, not this copy’s', () => {
    const message = describeMessage(
      {
        MessageId: 'm-2',
        Body: signupBody,
        Attributes: { SentTimestamp: '1700000900000' },
        MessageAttributes: { [FIRST_SENT_AT_ATTRIBUTE]: string('1700000000000') },
      },
      1_700_000_960_000,
    );
    expect(message).toMatchObject({ sentAt: 1_700_000_900_000, firstSentAt: 1_700_000_000_000, ageMs: 60_000 });
    expect(attributesToSend(message).attributes).toEqual({ [FIRST_SENT_AT_ATTRIBUTE]: string('1700000000000') });
  });

  test.each(['', 'yesterday', '-5', '0', '1.5', '99999999999999999999'])(
    'a malformed value (%j) is replaced by this copy’s time',
    (value) => {
      expect(firstSentAtOf({ [FIRST_SENT_AT_ATTRIBUTE]: string(value) })).toBeUndefined();
      const sent = attributesToSend({ messageAttributes: { [FIRST_SENT_AT_ATTRIBUTE]: string(value) }, firstSentAt: 1234 });
      expect(sent.attributes[FIRST_SENT_AT_ATTRIBUTE]).toEqual(string('1234'));
    },
  );

  test('a message with SQS’s maximum of 10 attributes goes on without it, and says so', () => {
    const ten = Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`a${i}`, string(String(i))]));
    const sent = attributesToSend({ messageAttributes: ten, firstSentAt: 1234 });
    expect(sent.attributes).toEqual(ten);
    expect(sent.note).toMatch(new RegExp(`${FIRST_SENT_AT_ATTRIBUTE} not added: .*10 message attributes`));
  });

  test('a body the function cannot read is unreadable, with its rejection reason', () => {
    expect(describeMessage({ MessageId: 'm-3', Body: 'not json', Attributes: { SentTimestamp: '5' } }, 10)).toMatchObject({
      customer: 'unreadable',
      reason: 'invalid-json',
      firstSentAt: 5,
    });
  });
});
