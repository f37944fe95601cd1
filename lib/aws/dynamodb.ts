import {
  type AttributeValue,
  ConditionalCheckFailedException,
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  ResourceNotFoundException,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import type { KeyRecord } from '../customer-key/key-record.js';
import type { RecordStore } from '../customer-key/record-store.js';
import { EnvironmentError } from '../errors.js';
import type { DueIndex } from '../maintenance/sweep.js';
import type { CallTable } from '../quota/call-path.js';
import type { FleetStore } from '../quota/fleet.js';
import { domainErrorFromSdk, type ServiceErrors, sdkClientSettings } from './errors.js';

export function createDynamoDbClient(requestTimeoutMs: number): DynamoDBClient {
  return new DynamoDBClient(sdkClientSettings(requestTimeoutMs));
}

/** The item of the turns table that holds the turns: its partition key (`pk`), which the function's IAM policy also names. */
export const TURNS_ITEM_KEY = 'usage-plan-writes';
/** The item of the same table that holds the instances' heartbeats (lib/quota/fleet.ts); IAM names it too. */
export const FLEET_ITEM_KEY = 'instances';
/** Each instance's beat is an attribute of its own (a top-level attribute needs no map to exist first). */
const MEMBER_PREFIX = 'i_';

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

/** The record table's index of what the maintenance sweep must look at: revoked keys and old keys of rolls, by when they are due. */
export const DUE_INDEX = 'due';

/** The partitions of the index {@link DUE_INDEX} (its `due`): revoked keys, by when they were revoked; old keys, by when their overlap ends. */
export const DUE_REVOKED = 'revoked';
export const DUE_OVERLAP = 'overlap';
export type DuePartition = typeof DUE_REVOKED | typeof DUE_OVERLAP;

/** `dueAt` of a retirement under way: before any as-of, so every run lists it first, whatever RETIRE_AFTER_DAYS says. */
const UNFINISHED_DUE_AT = '1970-01-01T00:00:00.000Z';

/**
 * Where and since when the record is in the index {@link DUE_INDEX}, or undefined when the sweep has nothing to do
 * with it. Old keys first (a roll's overlap: `overlap`, at the earliest end): a record is in one partition at a time,
 * and its retirement waits until they are deleted. Then `revoked`: a retirement under way (a key claimed but not yet
 * recorded deleted: lib/maintenance/retire.ts), whatever the record became meanwhile, so that a crashed sweep's next
 * run finishes it; a revoked or failed record that still has its key, since it was revoked. A retired record leaves.
 */
export function dueSince(record: KeyRecord): { partition: DuePartition; at: string } | undefined {
  const ends = (record.endingKeys ?? []).map((key) => key.endsAt).sort();
  if (ends[0]) return { partition: DUE_OVERLAP, at: ends[0] };
  if (record.retiredKeyId && !record.retiredAt) return { partition: DUE_REVOKED, at: UNFINISHED_DUE_AT };
  if (record.status !== 'active' && record.apiKeyId && record.revokedAt) return { partition: DUE_REVOKED, at: record.revokedAt };
  return undefined;
}

export function dynamoDbDueIndex(client: DynamoDBClient, tableName: string): DueIndex {
  return {
    async page(until, start, limit = 100, partition = DUE_REVOKED) {
      try {
        const answer = await client.send(
          new QueryCommand({
            TableName: tableName,
            IndexName: DUE_INDEX,
            KeyConditionExpression: '#due = :due AND #dueAt <= :until',
            ExpressionAttributeNames: { '#due': 'due', '#dueAt': 'dueAt' },
            ExpressionAttributeValues: { ':due': { S: partition }, ':until': { S: until } },
            ExclusiveStartKey: start as Record<string, AttributeValue> | undefined,
            Limit: limit,
          }),
        );
        const keys = (answer.Items ?? []).flatMap((item) => (item.pk?.S ? [item.pk.S] : []));
        return { keys, ...(answer.LastEvaluatedKey && { next: answer.LastEvaluatedKey }) };
      } catch (error) {
        throw domainErrorFromSdk('Query', error, RECORD_ERRORS);
      }
    },
  };
}

/** The operation of the due index's one method, for the call path (lib/quota/call-path.ts). */
export const DUE_INDEX_CALLS: CallTable<DueIndex> = { page: 'Query' };

/** A missing table is the deployment's to fix, not the message's. */
const RECORD_ERRORS: ServiceErrors = { permanent: [], environment: [ResourceNotFoundException] };

/**
 * The customers' records in the record table (KEY_RECORDS_TABLE), one item per (product, customer): `pk`, `version`
 * (a number, one more at each write) and `record` (the record as JSON; never a key value). A revoked record with a key
 * (or a retirement under way, or old keys of a roll: {@link dueSince}) also carries `due` and `dueAt`, the keys of the sparse index {@link DUE_INDEX}
 * through which the sweep finds what is due without reading every record. Reads are strongly consistent; writes are
 * PutItem conditioned on the version read, so a writer that lost a race gets `false` and decides again.
 * An item that does not parse, or a version that is not a positive integer: EnvironmentError naming its key.
 */
export function dynamoDbRecordStore(client: DynamoDBClient, tableName: string): RecordStore {
  return {
    async get(key) {
      let item: Record<string, AttributeValue> | undefined;
      try {
        ({ Item: item } = await client.send(new GetItemCommand({ TableName: tableName, Key: { pk: { S: key } }, ConsistentRead: true })));
      } catch (error) {
        throw domainErrorFromSdk('GetItem', error, RECORD_ERRORS);
      }
      if (!item) return undefined;
      const version = Number(item.version?.N);
      let record: KeyRecord | undefined;
      try {
        record = JSON.parse(item.record?.S ?? '') as KeyRecord;
      } catch {
        record = undefined;
      }
      if (!Number.isSafeInteger(version) || version < 1 || typeof record?.customerId !== 'string' || typeof record.apiKeyName !== 'string')
        throw new EnvironmentError(
          `record ${key} in table ${tableName} is not a record of this product (version ${item.version?.N ?? 'missing'})`,
        );
      return { record, version };
    },

    async put(key, record, expected) {
      const since = dueSince(record);
      const due: Record<string, AttributeValue> = since ? { due: { S: since.partition }, dueAt: { S: since.at } } : {};
      try {
        await client.send(
          new PutItemCommand({
            TableName: tableName,
            Item: {
              pk: { S: key },
              version: { N: String((expected ?? 0) + 1) },
              status: { S: record.status ?? 'pending' },
              record: { S: JSON.stringify(record) },
              ...due,
            },
            ConditionExpression: expected === undefined ? 'attribute_not_exists(pk)' : 'version = :expected',
            ...(expected !== undefined && { ExpressionAttributeValues: { ':expected': { N: String(expected) } } }),
          }),
        );
        return true;
      } catch (error) {
        if (error instanceof ConditionalCheckFailedException) return false;
        throw domainErrorFromSdk('PutItem', error, RECORD_ERRORS);
      }
    },
  };
}

/** The operation each method of the record store makes, for the call path (lib/quota/call-path.ts). */
export const RECORD_CALLS: CallTable<RecordStore> = { get: 'GetItem', put: 'PutItem' };
