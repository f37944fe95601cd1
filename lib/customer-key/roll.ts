/**
 * Roll: a new key for the customer's product — new value; the same customerId, tags and usage plan — while the old
 * key keeps working for a grace period. One code path for every way in: a roll request on the signup queue (`npm run
 * roll`, the buyer's key page) runs every step; Secrets Manager rotation runs one step per call (lib/customer-key/rotation.ts).
 * The steps follow Secrets Manager's rotation protocol:
 * 0. claim: the record names the roll (`rolling`, conditional on the version read): every delivery, and rotation's
 *    four calls, finish the same roll; a repeat of a roll already done (`lastRollId`) or older than it rolls nothing.
 * 1. createSecret: the new value as version `token` of the secret, labelled AWSPENDING (a second writer of that token
 *    is refused and reads the first one's value back).
 * 2. setSecret: CreateApiKey with that value, enabled, in the old key's plan (409: the key exists, found by value);
 *    the record notes its id.
 * 3. testSecret: GetApiKey: the new key exists, is enabled and carries the customer's id. Rotation's testSecret never
 *    claims: for a token with no roll under way (Secrets Manager's test of a rotation configuration) nothing is written.
 * 4. finishSecret: the record names the new key as its own and the old one as ending (`endingKeys`, at now + grace;
 *    grace 0: the old key is disabled and out of its plan first), then AWSCURRENT moves to the new value (AWSPREVIOUS
 *    to the old one), then the roll is done (`rolling` removed).
 * A revoke that comes in before step 4 takes the roll's key down with the others (lib/customer-key/revoke.ts); a roll
 * never makes or re-enables a key for a buyer who left: it is rejected (`customer-left`), and a key this delivery
 * made before the revoke won the record is taken back. Idempotent and crash-safe: every step is safe to repeat.
 */
import { randomUUID } from 'node:crypto';
import { RejectedError, SecretVersionTakenError, TransientError } from '../errors.js';
import { deterministicId } from '../ids.js';
import type { RollRequest } from '../messages/index.js';
import { createApiKeyOrCapacity } from './capacity.js';
import {
  type EndingKey,
  generateKeyValue,
  type KeyRecord,
  type KeyResult,
  keyResult,
  NOT_YET_RETRY_MS,
  type ProvisionDeps,
  type Rolling,
  readSecretContent,
  secretContent,
} from './key-record.js';
import { apiKeyName, keyDescription, ownedTags, secretName } from './naming.js';
import { CONFLICT, loadRecord, recordKey, untilWritten, type Versioned } from './record-store.js';

/** Secrets Manager's rotation steps, in order. */
export const ROLL_STEPS = ['createSecret', 'setSecret', 'testSecret', 'finishSecret'] as const;
export type RollStep = (typeof ROLL_STEPS)[number];

export interface RollOptions {
  /** Run the roll up to and including this step (rotation: one per call). Default: all of them. */
  through?: RollStep;
  /** The secret version of the new value (rotation: Secrets Manager's ClientRequestToken). Default: derived from the roll id. */
  token?: string;
  /**
   * Whether this call may start the roll (claim it) when none of its id is under way. Default true. Rotation's
   * testSecret does not: Secrets Manager also calls it alone, with a token of its own, to test a rotation
   * configuration (RotateSecret with RotateImmediately false), and that test must change nothing.
   */
  claim?: boolean;
}

/** A roll that is not a roll's own: a repeat, or older than the last roll done. */
const isDone = (record: KeyRecord, request: RollRequest) =>
  record.lastRollId === request.rollId || (record.lastRollAt !== undefined && request.eventTime <= record.lastRollAt);

interface RollContext {
  deps: ProvisionDeps;
  request: RollRequest;
  key: string;
  keyName: string;
  name: string;
  through: RollStep;
  /** The key this delivery made or enabled: taken back if a revoke wins the record before the roll switches. */
  touched: { newKeyId?: string; plan?: string; version?: number };
}

/** Rolls the customer's key (see the file's comment). Throws RejectedError (`no-key`, `customer-left`) or RetryableError. */
export async function rollKey(request: RollRequest, deps: ProvisionDeps, options: RollOptions = {}): Promise<KeyResult> {
  const { namePrefix } = deps.config;
  const ctx: RollContext = {
    deps,
    request,
    key: recordKey(request.customerId, request.productCode),
    keyName: apiKeyName(namePrefix, request.customerId, request.productCode),
    name: secretName(namePrefix, request.customerId, request.productCode),
    through: options.through ?? 'finishSecret',
    touched: {},
  };
  return untilWritten(ctx.key, 'being rolled', () => rollOnce(ctx, options.token, options.claim ?? true));
}

async function rollOnce(ctx: RollContext, token: string | undefined, mayClaim: boolean): Promise<KeyResult | typeof CONFLICT> {
  const { deps, request, key, name } = ctx;
  const found = await loadRecord(deps, key, name, true, ctx.touched);
  if (!found)
    throw new RejectedError(
      'no-key',
      `customer ${request.customerId} has no key${request.productCode ? ` for product ${request.productCode}` : ''} to roll`,
    );
  const { record, version } = found;
  const { rolling } = record;
  if (!mayClaim && rolling?.rollId !== request.rollId) {
    // Nothing of this id under way (a configuration test, or a step of a roll already finished): read, not written.
    return result(ctx, isDone(record, request) ? 'already-rolled' : 'unchanged', record);
  }
  if (rolling && rolling.rollId !== request.rollId) {
    // Another roll under way (a delivery that stopped, or rotation between its calls): finish it, then decide on this one.
    await advance({ ...ctx, through: 'finishSecret' }, found, rolling);
    return CONFLICT;
  }
  if (rolling) return advance(ctx, found, rolling);
  if (isDone(record, request)) return result(ctx, 'already-rolled', record);
  if (record.status === 'revoked' || record.status === 'failed') {
    if (!(await takeBack(ctx, found))) return CONFLICT;
    throw new RejectedError('customer-left', `customer ${request.customerId} left (${record.status}): no key is rolled for them`);
  }
  if (!record.apiKeyId)
    throw new TransientError(`the key of ${ctx.keyName} is still being made: roll it once it exists`, { retryAfterMs: NOT_YET_RETRY_MS });
  const claim: Rolling = {
    rollId: request.rollId,
    token: token ?? deterministicId('roll', key, request.rollId),
    graceSeconds: request.graceSeconds ?? deps.config.rollGraceSeconds ?? 86_400,
    requestedAt: request.eventTime,
  };
  const claimed: KeyRecord = { ...record, rolling: claim };
  if (!(await write(ctx, claimed, version))) return CONFLICT;
  return advance(ctx, { record: claimed, version: version + 1 }, claim);
}

/** Steps 1 to 4 of the roll `rolling`, from wherever it stands, up to `ctx.through`. */
async function advance(ctx: RollContext, current: Versioned, rolling: Rolling): Promise<KeyResult | typeof CONFLICT> {
  let { record, version } = current;
  if (!rolling.switching) {
    const value = await pendingValue(ctx, record, rolling.token);
    if (ctx.through === 'createSecret') return result(ctx, 'unchanged', record);
    let newKeyId = rolling.newKeyId;
    if (!newKeyId) {
      newKeyId = await makeNewKey(ctx, record, value);
      ctx.touched.newKeyId = newKeyId;
      const noted: KeyRecord = { ...record, rolling: { ...rolling, newKeyId } };
      if (!(await write(ctx, noted, version))) return CONFLICT;
      record = noted;
      version += 1;
    }
    if (ctx.through === 'setSecret') return result(ctx, 'unchanged', record);
    await testNewKey(ctx, newKeyId);
    if (ctx.through === 'testSecret') return result(ctx, 'unchanged', record);
    const switched = await switchKeys(ctx, record, { ...rolling, newKeyId });
    if (!(await write(ctx, switched, version))) return CONFLICT;
    record = switched;
    version += 1;
  }
  await moveCurrent(ctx, rolling.token);
  const done: KeyRecord = { ...record, rolling: undefined };
  if (!(await write(ctx, done, version))) return CONFLICT;
  return result(ctx, 'rolled', done);
}

/** Step 1: the new value, as version `token` labelled AWSPENDING; the first writer's value when the version exists. */
async function pendingValue(ctx: RollContext, record: KeyRecord, token: string): Promise<string> {
  const { deps, name } = ctx;
  const stored = async () => {
    const found = await deps.secrets.getSecret(name, token);
    return found && readSecretContent(found).value;
  };
  const existing = await stored();
  if (existing) return existing;
  const value = generateKeyValue();
  try {
    await deps.secrets.putSecretValue(name, secretContent(value, record), token, ['AWSPENDING']);
    return value;
  } catch (error) {
    if (!(error instanceof SecretVersionTakenError)) throw error;
  }
  const taken = await stored();
  if (!taken) throw new TransientError(`secret ${name} has version ${token} but it cannot be read yet`, { retryAfterMs: NOT_YET_RETRY_MS });
  return taken;
}

/**
 * Step 2: the new key with the old one's tags and customer id, enabled, in the record's plan. A 409 means a key with
 * this value exists (an earlier delivery made it, or a revoke made it disabled: keyOfValue): found, and enabled.
 */
async function makeNewKey(ctx: RollContext, record: KeyRecord, value: string): Promise<string> {
  const { deps, request, keyName } = ctx;
  const oldKeyId = record.apiKeyId ?? '';
  const old = await deps.apiKeys.getApiKey(oldKeyId);
  const tags = old?.tags ?? ownedTags(deps.config.namePrefix, deps.config.defaultTags, undefined, request);
  const made = await createApiKeyOrCapacity(deps, {
    name: keyName,
    value,
    description: keyDescription(request.customerId, request.productCode),
    customerId: old?.customerId ?? request.customerId,
    tags,
  });
  let apiKeyId = made;
  if (!apiKeyId) {
    apiKeyId = await deps.apiKeys.findApiKey(keyName, value);
    if (!apiKeyId)
      throw new TransientError(`a key with the roll's value exists but ${keyName} is not listed yet`, { retryAfterMs: NOT_YET_RETRY_MS });
    const id = apiKeyId;
    await deps.apiKeys.setEnabled(id, true);
  }
  const plan = record.usagePlanId;
  const id = apiKeyId;
  ctx.touched.plan = plan;
  if (plan) await deps.apiKeys.addToUsagePlan(plan, id);
  return apiKeyId;
}

/** Step 3: the new key exists, is enabled and is the customer's (GetApiKey lags behind CreateApiKey: "not yet" is retried soon). */
async function testNewKey(ctx: RollContext, newKeyId: string): Promise<void> {
  const { deps, request } = ctx;
  const key = await deps.apiKeys.getApiKey(newKeyId);
  if (!key) throw new TransientError(`the rolled key ${newKeyId} is not readable yet`, { retryAfterMs: NOT_YET_RETRY_MS });
  if (!key.enabled) await deps.apiKeys.setEnabled(newKeyId, true);
  if (key.customerId !== undefined && key.customerId !== request.customerId)
    throw new RejectedError('bad-request', `the rolled key ${newKeyId} carries another customer id`);
}

/**
 * Step 4's record: the new key is the record's; the old one ends at now + grace. At most two keys work at once: the
 * old keys of earlier rolls still in their overlap end now (disabled and out of the plan; the sweep deletes them), as
 * does the old key itself when the grace is 0.
 */
async function switchKeys(ctx: RollContext, record: KeyRecord, rolling: Rolling & { newKeyId: string }): Promise<KeyRecord> {
  const now = ctx.deps.now();
  const endsAt = new Date(now.getTime() + rolling.graceSeconds * 1000).toISOString();
  const earlier = record.endingKeys ?? [];
  const endNow = earlier.filter((key) => new Date(key.endsAt) > now);
  const oldKeyId = record.apiKeyId;
  if (oldKeyId && oldKeyId !== rolling.newKeyId && rolling.graceSeconds === 0) endNow.push({ apiKeyId: oldKeyId, endsAt });
  await takeDown(ctx.deps, endNow, record.usagePlanId);
  const ending: EndingKey[] = [
    ...earlier.map((key) => (new Date(key.endsAt) > now ? { ...key, endsAt: now.toISOString() } : key)),
    ...(oldKeyId && oldKeyId !== rolling.newKeyId ? [{ apiKeyId: oldKeyId, endsAt }] : []),
  ];
  return {
    ...record,
    apiKeyId: rolling.newKeyId,
    endingKeys: ending,
    lastRollId: rolling.rollId,
    lastRollAt: rolling.requestedAt,
    rolling: { ...rolling, switching: true },
  };
}

/** Keys out of service at once: disabled (a key already gone is skipped) and out of the plan. */
export async function takeDown(deps: ProvisionDeps, keys: EndingKey[], plan: string | undefined): Promise<void> {
  for (const { apiKeyId } of keys) {
    const found = await deps.apiKeys.getApiKey(apiKeyId);
    if (!found) continue;
    if (found.enabled) await deps.apiKeys.setEnabled(apiKeyId, false);
    if (plan) await deps.apiKeys.removeFromUsagePlan(plan, apiKeyId);
  }
}

/** Step 4's secret: AWSCURRENT onto version `token` (AWSPREVIOUS onto the old value), then AWSPENDING off it. */
async function moveCurrent(ctx: RollContext, token: string): Promise<void> {
  const { deps, name } = ctx;
  const stages = (await deps.secrets.describeSecret(name))?.stages;
  if (!stages?.[token])
    throw new TransientError(`secret ${name} does not list the roll's version ${token} yet`, { retryAfterMs: NOT_YET_RETRY_MS });
  const current = Object.keys(stages).find((id) => stages[id]?.includes('AWSCURRENT'));
  if (current !== token) await deps.secrets.moveStage(name, 'AWSCURRENT', token, current);
  if (stages[token]?.includes('AWSPENDING')) await deps.secrets.moveStage(name, 'AWSPENDING', undefined, token);
}

/**
 * A key this delivery made for a buyer whose revoke then won the record (it did not see the key: it was not noted
 * yet): disabled, out of the plan, and ending now, so the sweep deletes it. False when the write lost a race.
 */
async function takeBack(ctx: RollContext, current: Versioned): Promise<boolean> {
  const { record, version } = current;
  const id = ctx.touched.newKeyId;
  if (!id || record.apiKeyId === id) return true;
  // Even when the revoke recorded it (it made the key disabled, then this delivery found and enabled it): down again.
  await takeDown(ctx.deps, [{ apiKeyId: id, endsAt: '' }], ctx.touched.plan);
  const noted = record.endingKeys?.some((key) => key.apiKeyId === id);
  const ending = [...(record.endingKeys ?? []), { apiKeyId: id, endsAt: ctx.deps.now().toISOString() }];
  if (!noted && !(await write(ctx, { ...record, endingKeys: ending }, version))) return false;
  ctx.touched.newKeyId = undefined;
  return true;
}

const write = (ctx: RollContext, record: KeyRecord, expected: number) => ctx.deps.records.put(ctx.key, record, expected);

function result(ctx: RollContext, outcome: KeyResult['outcome'], record: KeyRecord): KeyResult {
  const previous = record.endingKeys?.at(-1);
  return {
    ...keyResult(outcome, ctx.keyName, ctx.name, record),
    ...(previous && { previousApiKeyId: previous.apiKeyId, overlapEndsAt: previous.endsAt }),
  };
}

/** A roll id for a request that carries none of its own (a command line): unique per request. */
export const newRollId = (): string => `roll-${randomUUID()}`;
