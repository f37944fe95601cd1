import { ConditionalCheckFailedException, DynamoDBClient, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import type { TurnStore } from '../usage-plan-turns.js';
import { type SdkRetryMode, sdkClientSettings } from './errors.js';

export function createDynamoDbClient(requestTimeoutMs: number, retryMode: SdkRetryMode = 'off'): DynamoDBClient {
  return new DynamoDBClient(sdkClientSettings(requestTimeoutMs, retryMode));
}

/** The one item of the turns table: its partition key (`pk`), which the function's IAM policy also names. */
export const TURNS_ITEM_KEY = 'usage-plan-writes';

/**
 * The usage-plan write turns (lib/usage-plan-turns.ts) in one DynamoDB item: `busyUntil` (a number, epoch ms), set by
 * a conditional UpdateItem. A failed condition returns the item as it is (ReturnValuesOnConditionCheckFailure), so
 * a lost race costs no extra read. An item whose `busyUntil` is not a number counts as idle.
 * Any other error is thrown as the SDK gave it: the turns then write without the store for a while.
 */
export function dynamoDbTurnStore(client: DynamoDBClient, tableName: string): TurnStore {
  return {
    async claim(expected, now, end) {
      const idle = expected === 'idle';
      try {
        await client.send(
          new UpdateItemCommand({
            TableName: tableName,
            Key: { pk: { S: TURNS_ITEM_KEY } },
            UpdateExpression: 'SET busyUntil = :end',
            ConditionExpression: idle
              ? 'attribute_not_exists(busyUntil) OR NOT attribute_type(busyUntil, :number) OR busyUntil <= :now'
              : 'busyUntil = :expected',
            ExpressionAttributeValues: {
              ':end': { N: String(Math.ceil(end)) },
              ...(idle ? { ':now': { N: String(Math.floor(now)) }, ':number': { S: 'N' } } : { ':expected': { N: String(expected) } }),
            },
            ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
          }),
        );
        return { ok: true };
      } catch (error) {
        if (!(error instanceof ConditionalCheckFailedException)) throw error;
        const current = Number(error.Item?.busyUntil?.N);
        // Not a number (or gone again): idle, so the next claim asks for an idle timeline.
        return { ok: false, current: Number.isFinite(current) ? current : now };
      }
    },
  };
}
