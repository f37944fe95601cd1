import {
  ConditionalCheckFailedException,
  DynamoDBClient,
  ProvisionedThroughputExceededException,
  ResourceNotFoundException,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-jest';
import { dynamoDbFleetStore, dynamoDbTurnStore, FLEET_ITEM_KEY, TURNS_ITEM_KEY } from '../../lib/aws/dynamodb.js';

const ddb = mockClient(DynamoDBClient);
beforeEach(() => {
  ddb.reset();
  ddb.on(UpdateItemCommand).resolves({});
});

const TABLE = 'keyprov-test-usage-plan-turns';
const store = () => dynamoDbTurnStore(new DynamoDBClient({}), TABLE);
const IDLE_CONDITION = 'attribute_not_exists(busyUntil) OR NOT attribute_type(busyUntil, :number) OR busyUntil <= :now';

/** The answer DynamoDB gives a failed condition with ReturnValuesOnConditionCheckFailure ALL_OLD. */
function conditionFailed(item?: ConditionalCheckFailedException['Item']) {
  return new ConditionalCheckFailedException({ message: 'The conditional request failed', $metadata: { httpStatusCode: 400 }, Item: item });
}

const sent = () => ddb.commandCalls(UpdateItemCommand).map((call) => call.args[0].input);

test('the item is the one IAM names: pk usage-plan-writes', () => {
  expect(TURNS_ITEM_KEY).toBe('usage-plan-writes');
});

test('an idle claim sets busyUntil if it is absent, not a number, or at most now', async () => {
  await expect(store().claim('idle', 1_000_000, 1_000_200)).resolves.toEqual({ ok: true });

  expect(ddb).toHaveReceivedCommandTimes(UpdateItemCommand, 1);
  expect(sent()).toEqual([
    {
      TableName: TABLE,
      Key: { pk: { S: 'usage-plan-writes' } },
      UpdateExpression: 'SET busyUntil = :end',
      ConditionExpression: IDLE_CONDITION,
      ExpressionAttributeValues: { ':end': { N: '1000200' }, ':now': { N: '1000000' }, ':number': { S: 'N' } },
      ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
    },
  ]);
});

test('times are sent as whole milliseconds: now rounded down, the end rounded up', async () => {
  await store().claim('idle', 1_000_000.7, 1_000_200.2);

  expect(ddb).toHaveReceivedCommandWith(UpdateItemCommand, {
    ExpressionAttributeValues: { ':end': { N: '1000201' }, ':now': { N: '1000000' }, ':number': { S: 'N' } },
  });
});

test('a claim behind a known end sets busyUntil only if it is still that end', async () => {
  await expect(store().claim(1_000_200, 1_000_000, 1_000_400)).resolves.toEqual({ ok: true });

  expect(sent()).toEqual([
    {
      TableName: TABLE,
      Key: { pk: { S: 'usage-plan-writes' } },
      UpdateExpression: 'SET busyUntil = :end',
      ConditionExpression: 'busyUntil = :expected',
      ExpressionAttributeValues: { ':end': { N: '1000400' }, ':expected': { N: '1000200' } },
      ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
    },
  ]);
});

test('a lost race answers the end the item holds, from the failed condition (no extra read)', async () => {
  ddb.on(UpdateItemCommand).rejects(conditionFailed({ pk: { S: 'usage-plan-writes' }, busyUntil: { N: '1000400' } }));

  await expect(store().claim(1_000_200, 1_000_000, 1_000_400)).resolves.toEqual({ ok: false, current: 1_000_400 });
  expect(ddb).toHaveReceivedCommandTimes(UpdateItemCommand, 1);
});

test.each([
  ['a busyUntil that is a string', { pk: { S: 'usage-plan-writes' }, busyUntil: { S: '1000400' } }],
  ['a busyUntil N that is not a number', { pk: { S: 'usage-plan-writes' }, busyUntil: { N: 'soon' } }],
  ['an item without busyUntil', { pk: { S: 'usage-plan-writes' } }],
  ['no item (deleted meanwhile)', undefined],
])('a failed condition with %s answers now: the timeline counts as idle', async (_what, item) => {
  ddb.on(UpdateItemCommand).rejects(conditionFailed(item));

  await expect(store().claim(1_000_200, 1_000_000, 1_000_400)).resolves.toEqual({ ok: false, current: 1_000_000 });
});

test.each([
  ['a throttle', () => new ProvisionedThroughputExceededException({ message: 'Rate exceeded', $metadata: {} })],
  ['a missing table', () => new ResourceNotFoundException({ message: 'Requested resource not found', $metadata: {} })],
  ['a network error', () => Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' })],
])('any other error (%s) is thrown as the SDK gave it', async (_what, make) => {
  const error = make();
  ddb.on(UpdateItemCommand).rejects(error);

  await expect(store().claim('idle', 1_000_000, 1_000_200)).rejects.toBe(error);
});

describe('dynamoDbFleetStore: the heartbeats item', () => {
  const fleet = () => dynamoDbFleetStore(new DynamoDBClient({}), TABLE);

  test('the item is the one IAM names: pk instances', () => {
    expect(FLEET_ITEM_KEY).toBe('instances');
  });

  test("a beat sets this instance's attribute (i_<id>) to now, in whole milliseconds, and asks for the whole item back", async () => {
    await fleet().beat('3f2a-b', 1_000_000.7, []);

    expect(ddb).toHaveReceivedCommandTimes(UpdateItemCommand, 1);
    expect(sent()).toEqual([
      {
        TableName: TABLE,
        Key: { pk: { S: FLEET_ITEM_KEY } },
        UpdateExpression: 'SET #me = :now',
        ExpressionAttributeNames: { '#me': 'i_3f2a-b' },
        ExpressionAttributeValues: { ':now': { N: '1000000' } },
        ReturnValues: 'ALL_NEW',
      },
    ]);
  });

  test('forgotten instances are removed in the same update, each by an attribute name of its own', async () => {
    await fleet().beat('me', 1_000_000, ['gone-1', 'gone-2']);

    expect(sent()).toEqual([
      {
        TableName: TABLE,
        Key: { pk: { S: 'instances' } },
        UpdateExpression: 'SET #me = :now REMOVE #f0, #f1',
        ExpressionAttributeNames: { '#me': 'i_me', '#f0': 'i_gone-1', '#f1': 'i_gone-2' },
        ExpressionAttributeValues: { ':now': { N: '1000000' } },
        ReturnValues: 'ALL_NEW',
      },
    ]);
  });

  test('the answer holds only the i_ attributes with a number, by id without the prefix', async () => {
    ddb.on(UpdateItemCommand).resolves({
      Attributes: {
        pk: { S: 'instances' },
        i_me: { N: '1000000' },
        i_other: { N: '999500' },
        'i_a-string': { S: '999000' },
        'i_not-a-number': { N: 'soon' },
        busyUntil: { N: '1000200' },
        other_x: { N: '5' },
      },
    });

    const beats = await fleet().beat('me', 1_000_000, []);

    expect(beats).toEqual(
      new Map([
        ['me', 1_000_000],
        ['other', 999_500],
      ]),
    );
    expect([...beats.keys()]).toEqual(['me', 'other']);
  });

  test('an answer without attributes is an empty map', async () => {
    await expect(fleet().beat('me', 1_000_000, [])).resolves.toEqual(new Map());
  });

  test.each([
    ['a throttle', () => new ProvisionedThroughputExceededException({ message: 'Rate exceeded', $metadata: {} })],
    ['a missing table', () => new ResourceNotFoundException({ message: 'Requested resource not found', $metadata: {} })],
    ['a network error', () => Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' })],
  ])('an error (%s) is thrown as the SDK gave it', async (_what, make) => {
    const error = make();
    ddb.on(UpdateItemCommand).rejects(error);

    await expect(fleet().beat('me', 1_000_000, ['gone'])).rejects.toBe(error);
    await expect(fleet().leave('me')).rejects.toBe(error);
  });

  test("leaving removes this instance's attribute and nothing else", async () => {
    await fleet().leave('3f2a-b');

    expect(sent()).toEqual([
      {
        TableName: TABLE,
        Key: { pk: { S: FLEET_ITEM_KEY } },
        UpdateExpression: 'REMOVE #me',
        ExpressionAttributeNames: { '#me': 'i_3f2a-b' },
      },
    ]);
  });
});
