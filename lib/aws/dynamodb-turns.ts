import { type AttributeValue, ConditionalCheckFailedException, type DynamoDBClient, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import type { Timeline, TimelineStore } from '../quota/usage-plan-turns.js';
import { TURNS_ITEM_KEY } from './dynamodb.js';

/**
 * The timeline of usage-plan write turns (lib/quota/usage-plan-turns.ts) in the coordination table's item
 * {@link TURNS_ITEM_KEY} (the one the function's IAM policy names): `turnSeq`, `claimedBy`, `claimedAt` and
 * `busyUntil` (the claim's end), set together by one UpdateItem conditioned on `turnSeq` alone — no time is
 * compared, so instances whose clocks differ cannot take each other's turns. A failed condition returns the item as
 * it is (ReturnValuesOnConditionCheckFailure), so a lost race costs no extra read; an item that does not read as a
 * timeline (one written before `turnSeq` existed, or broken) answers undefined, and a claim expecting none takes it.
 * Any other error is thrown as the SDK gave it: the turns then write without the store for a while.
 *
 * `busyUntil` keeps its name and meaning (the end, on the claimer's clock) so that instances of the previous version,
 * still running during a deployment, go on reading it; until they are gone their claims and these can overlap, which
 * the 409 handling of lib/aws/api-gateway-usage-plans.ts absorbs.
 */
export function dynamoDbTimelineStore(client: DynamoDBClient, tableName: string): TimelineStore {
  return {
    async claim(expectedSeq, next) {
      const none = expectedSeq === undefined;
      try {
        await client.send(
          new UpdateItemCommand({
            TableName: tableName,
            Key: { pk: { S: TURNS_ITEM_KEY } },
            UpdateExpression: 'SET turnSeq = :seq, claimedBy = :by, claimedAt = :at, busyUntil = :end',
            ConditionExpression: none ? 'attribute_not_exists(turnSeq) OR NOT attribute_type(turnSeq, :number)' : 'turnSeq = :expected',
            ExpressionAttributeValues: {
              ':seq': { N: String(next.seq) },
              ':by': { S: next.by },
              ':at': { N: String(Math.floor(next.claimedAt)) },
              ':end': { N: String(Math.ceil(next.end)) },
              ...(none ? { ':number': { S: 'N' } } : { ':expected': { N: String(expectedSeq) } }),
            },
            ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
          }),
        );
        return { ok: true };
      } catch (error) {
        if (!(error instanceof ConditionalCheckFailedException)) throw error;
        return { ok: false, current: timelineOf(error.Item) };
      }
    },
  };
}

/**
 * The timeline an item holds, or undefined when it has no `turnSeq` that is an integer. Times that do not read as
 * numbers are NaN: the turns count such a claim as ended, and claim over it by its `turnSeq`.
 */
function timelineOf(item: Record<string, AttributeValue> | undefined): Timeline | undefined {
  const seq = Number(item?.turnSeq?.N);
  if (!Number.isSafeInteger(seq)) return undefined;
  return { seq, by: item?.claimedBy?.S ?? '', claimedAt: Number(item?.claimedAt?.N), end: Number(item?.busyUntil?.N) };
}
