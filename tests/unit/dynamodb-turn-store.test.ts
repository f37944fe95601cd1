import {
  ConditionalCheckFailedException,
  DynamoDBClient,
  ProvisionedThroughputExceededException,
  ResourceNotFoundException,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-jest';
import { dynamoDbTurnStore, TURNS_ITEM_KEY } from '../../lib/aws/dynamodb.js';

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
