import { ConditionalCheckFailedException, DynamoDBClient, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import type { FleetStore } from '../quota/fleet.js';
import type { TurnStore } from '../quota/usage-plan-turns.js';
import { type SdkRetryMode, sdkClientSettings } from './errors.js';

export function createDynamoDbClient(requestTimeoutMs: number, retryMode: SdkRetryMode = 'off'): DynamoDBClient {
  return new DynamoDBClient(sdkClientSettings(requestTimeoutMs, retryMode));
}

/** The item of the turns table that holds the turns: its partition key (`pk`), which the function's IAM policy also names. */
export const TURNS_ITEM_KEY = 'usage-plan-writes';
/** The item of the same table that holds the instances' heartbeats (lib/quota/fleet.ts); IAM names it too. */
export const FLEET_ITEM_KEY = 'instances';
/** Each instance's beat is an attribute of its own (a top-level attribute needs no map to exist first). */
const MEMBER_PREFIX = 'i_';

/**
 * The usage-plan write turns (lib/quota/usage-plan-turns.ts) in one DynamoDB item: `busyUntil` (a number, epoch ms), set by
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

/**
 * The instances' heartbeats (lib/quota/fleet.ts) in one item of the turns table: one UpdateItem sets this instance's
 * attribute, removes the forgotten ones and returns the item (ReturnValues ALL_NEW); leaving removes the attribute.
 */
export function dynamoDbFleetStore(client: DynamoDBClient, tableName: string): FleetStore {
  return {
    async beat(id, now, forget) {
      const names: Record<string, string> = { '#me': MEMBER_PREFIX + id };
      forget.forEach((member, i) => {
        names[`#f${i}`] = MEMBER_PREFIX + member;
      });
      const remove = forget.length ? ` REMOVE ${forget.map((_, i) => `#f${i}`).join(', ')}` : '';
      const { Attributes = {} } = await client.send(
        new UpdateItemCommand({
          TableName: tableName,
          Key: { pk: { S: FLEET_ITEM_KEY } },
          UpdateExpression: `SET #me = :now${remove}`,
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: { ':now': { N: String(Math.floor(now)) } },
          ReturnValues: 'ALL_NEW',
        }),
      );
      const beats = new Map<string, number>();
      for (const [name, value] of Object.entries(Attributes)) {
        const at = Number(value.N);
        if (name.startsWith(MEMBER_PREFIX) && Number.isFinite(at)) beats.set(name.slice(MEMBER_PREFIX.length), at);
      }
      return beats;
    },
    async leave(id) {
      await client.send(
        new UpdateItemCommand({
          TableName: tableName,
          Key: { pk: { S: FLEET_ITEM_KEY } },
          UpdateExpression: 'REMOVE #me',
          ExpressionAttributeNames: { '#me': MEMBER_PREFIX + id },
        }),
      );
    },
  };
}
