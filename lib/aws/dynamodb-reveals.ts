import {
  type AttributeValue,
  ConditionalCheckFailedException,
  type DynamoDBClient,
  GetItemCommand,
  ResourceNotFoundException,
  UpdateItemCommand,
  type UpdateItemCommandInput,
} from '@aws-sdk/client-dynamodb';
import type { KeyMarkers } from '../key-page/markers.js';
import { domainErrorFromSdk, type ServiceErrors } from './errors.js';

/** A missing table is the deployment's to fix. */
const ERRORS: ServiceErrors = { permanent: [], environment: [ResourceNotFoundException] };

/** How long a reference's claim is kept after the reference expired (DynamoDB's TTL deletes it within days anyway). */
const CLAIM_KEPT_SECONDS = 24 * 3600;

const epochSeconds = (date: Date): string => String(Math.floor(date.getTime() / 1000));

/**
 * The key page's table (KEY_REVEALS_TABLE): items keyed `pk` = a reference claim (`ref#<hash>`, with `expiresAt`, the
 * table's TTL attribute) or a key's marker (`<record key>#<apiKeyId>`: `shownAt`/`shownBy`, `rollRequestedAt`). Every
 * write is one UpdateItem with a condition, so that of concurrent writers exactly one wins; reads are strongly
 * consistent. The page's role has dynamodb:GetItem and dynamodb:UpdateItem on this table only.
 */
export function dynamoDbKeyMarkers(client: DynamoDBClient, tableName: string): KeyMarkers {
  /** True when the condition held and the write was made, false when it did not. */
  const update = async (input: Omit<UpdateItemCommandInput, 'TableName'>): Promise<boolean> => {
    try {
      await client.send(new UpdateItemCommand({ TableName: tableName, ...input }));
      return true;
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return false;
      throw domainErrorFromSdk('UpdateItem', error, ERRORS);
    }
  };
  const key = (pk: string): Record<string, AttributeValue> => ({ pk: { S: pk } });
  return {
    claimReference: (claimId, expiresAt) =>
      update({
        Key: key(claimId),
        UpdateExpression: 'SET #expiresAt = :expiresAt',
        ConditionExpression: 'attribute_not_exists(pk)',
        ExpressionAttributeNames: { '#expiresAt': 'expiresAt' },
        ExpressionAttributeValues: { ':expiresAt': { N: epochSeconds(new Date(expiresAt.getTime() + CLAIM_KEPT_SECONDS * 1000)) } },
      }),

    async marker(markerKey) {
      let item: Record<string, AttributeValue> | undefined;
      try {
        ({ Item: item } = await client.send(new GetItemCommand({ TableName: tableName, Key: key(markerKey), ConsistentRead: true })));
      } catch (error) {
        throw domainErrorFromSdk('GetItem', error, ERRORS);
      }
      if (!item) return undefined;
      return {
        ...(item.shownAt?.S && { shownAt: item.shownAt.S }),
        ...(item.rollRequestedAt?.S && { rollRequestedAt: item.rollRequestedAt.S }),
      };
    },

    claimReveal: (markerKey, claimId, now) =>
      update({
        Key: key(markerKey),
        UpdateExpression: 'SET #shownAt = :now, #shownBy = :claim',
        ConditionExpression: 'attribute_not_exists(#shownAt)',
        ExpressionAttributeNames: { '#shownAt': 'shownAt', '#shownBy': 'shownBy' },
        ExpressionAttributeValues: { ':now': { S: now.toISOString() }, ':claim': { S: claimId } },
      }),

    async releaseReveal(markerKey, claimId) {
      await update({
        Key: key(markerKey),
        UpdateExpression: 'REMOVE #shownAt, #shownBy',
        ConditionExpression: '#shownBy = :claim',
        ExpressionAttributeNames: { '#shownAt': 'shownAt', '#shownBy': 'shownBy' },
        ExpressionAttributeValues: { ':claim': { S: claimId } },
      });
    },

    claimRoll: (markerKey, now, staleBefore) =>
      update({
        Key: key(markerKey),
        UpdateExpression: 'SET #rollRequestedAt = :now',
        // ISO-8601 times of one format compare as strings.
        ConditionExpression: 'attribute_not_exists(#rollRequestedAt) OR #rollRequestedAt < :stale',
        ExpressionAttributeNames: { '#rollRequestedAt': 'rollRequestedAt' },
        ExpressionAttributeValues: { ':now': { S: now.toISOString() }, ':stale': { S: staleBefore.toISOString() } },
      }),

    async releaseRoll(markerKey, requestedAt) {
      await update({
        Key: key(markerKey),
        UpdateExpression: 'REMOVE #rollRequestedAt',
        ConditionExpression: '#rollRequestedAt = :at',
        ExpressionAttributeNames: { '#rollRequestedAt': 'rollRequestedAt' },
        ExpressionAttributeValues: { ':at': { S: requestedAt.toISOString() } },
      });
    },
  };
}
