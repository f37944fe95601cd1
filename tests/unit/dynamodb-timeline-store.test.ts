import { ConditionalCheckFailedException, DynamoDBClient, ResourceNotFoundException, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-jest';
import { dynamoDbTimelineStore } from '../../lib/aws/dynamodb-turns.js';

const ddb = mockClient(DynamoDBClient);
beforeEach(() => {
  ddb.reset();
  ddb.on(UpdateItemCommand).resolves({});
});

const TABLE = 'keyprov-test-coordination';
const store = () => dynamoDbTimelineStore(new DynamoDBClient({}), TABLE);
const claim = { seq: 8, by: 'instance-b', claimedAt: 1_000_000.7, end: 1_000_200.2 };
const sent = () => ddb.commandCalls(UpdateItemCommand).map((call) => call.args[0].input);

function conditionFailed(item?: ConditionalCheckFailedException['Item']) {
  return new ConditionalCheckFailedException({ message: 'The conditional request failed', $metadata: { httpStatusCode: 400 }, Item: item });
}

test('a claim after a known one is conditioned on its seq alone: no time is compared', async () => {
  await expect(store().claim(7, claim)).resolves.toEqual({ ok: true });
  expect(sent()).toEqual([
    {
      TableName: TABLE,
      Key: { pk: { S: 'usage-plan-writes' } },
      UpdateExpression: 'SET turnSeq = :seq, claimedBy = :by, claimedAt = :at, busyUntil = :end',
      ConditionExpression: 'turnSeq = :expected',
      // Whole milliseconds: the claim's time rounded down, its end up.
      ExpressionAttributeValues: {
        ':seq': { N: '8' },
        ':by': { S: 'instance-b' },
        ':at': { N: '1000000' },
        ':end': { N: '1000201' },
        ':expected': { N: '7' },
      },
      ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
    },
  ]);
});

test('a first claim is taken only where there is no timeline: no turnSeq, or one that is not a number', async () => {
  await store().claim(undefined, { ...claim, seq: 1 });
  expect(sent()[0]).toMatchObject({
    ConditionExpression: 'attribute_not_exists(turnSeq) OR NOT attribute_type(turnSeq, :number)',
    ExpressionAttributeValues: expect.objectContaining({ ':seq': { N: '1' }, ':number': { S: 'N' } }),
  });
  expect(sent()[0]?.ExpressionAttributeValues).not.toHaveProperty(':expected');
});

test('a lost race answers the timeline the item holds, from the failed condition (no extra read)', async () => {
  ddb.on(UpdateItemCommand).rejects(
    conditionFailed({
      pk: { S: 'usage-plan-writes' },
      turnSeq: { N: '9' },
      claimedBy: { S: 'instance-a' },
      claimedAt: { N: '999000' },
      busyUntil: { N: '999400' },
    }),
  );
  await expect(store().claim(7, claim)).resolves.toEqual({
    ok: false,
    current: { seq: 9, by: 'instance-a', claimedAt: 999_000, end: 999_400 },
  });
  expect(ddb).toHaveReceivedCommandTimes(UpdateItemCommand, 1);
});

test.each([
  ['an item of the previous version (busyUntil only)', { pk: { S: 'usage-plan-writes' }, busyUntil: { N: '999400' } }],
  ['a turnSeq that is not an integer', { pk: { S: 'usage-plan-writes' }, turnSeq: { N: '1.5' } }],
  ['no item (deleted meanwhile)', undefined],
])('%s holds no timeline: undefined', async (_what, item) => {
  ddb.on(UpdateItemCommand).rejects(conditionFailed(item));
  await expect(store().claim(7, claim)).resolves.toEqual({ ok: false, current: undefined });
});

test('times that do not read as numbers are NaN, the seq kept (the turns claim over it)', async () => {
  ddb.on(UpdateItemCommand).rejects(conditionFailed({ pk: { S: 'usage-plan-writes' }, turnSeq: { N: '9' }, busyUntil: { S: 'soon' } }));
  await expect(store().claim(7, claim)).resolves.toEqual({
    ok: false,
    current: { seq: 9, by: '', claimedAt: Number.NaN, end: Number.NaN },
  });
});

test('any other error is thrown as the SDK gave it', async () => {
  const error = new ResourceNotFoundException({ message: 'Requested resource not found', $metadata: {} });
  ddb.on(UpdateItemCommand).rejects(error);
  await expect(store().claim(7, claim)).rejects.toBe(error);
});
