/**
 * The post-deploy smoke test (`npm run smoke`): one synthetic signup through the deployed pipeline, its key, secret,
 * plan and record checked, then revoked through the pipeline and removed, each step reported as it ends. Talks to
 * AWS only through {@link SmokeAws}; prints nothing itself (cli.ts and report.ts do).
 */
import { createHash } from 'node:crypto';
import type { KeyRecord } from '../../customer-key/key-record.js';
import { apiKeyName, OWNER_TAG, secretName } from '../../customer-key/naming.js';
import { recordKey } from '../../customer-key/record-store.js';
import { ProvisionerError } from '../../errors.js';
import { logNotes, type Stopped, whereProvisioningStopped, whereRevokeStopped } from './diagnose.js';
import { AwsCallError, type SmokeAws, type SmokeReport, type SmokeSettings, type SmokeStep } from './model.js';
import { SMOKE_TAG } from './stack.js';
import { operatorStatements, provisionStatements, type Statement } from './statements.js';

/** A check that did not hold: what was found, and where to look. */
class CheckFailedError extends ProvisionerError {
  override name = 'CheckFailedError';
  constructor(
    message: string,
    readonly lookAt: Statement[] = [],
    readonly notes: string[] = [],
    /** The smoke test's own call that failed, when one did. */
    readonly awsError?: AwsCallError,
  ) {
    super(message);
  }
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

export interface RunOptions {
  /** Called as each step ends (the CLI prints it then). */
  onStep?: (step: SmokeStep) => void;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

/**
 * Runs the smoke test once. Never throws for a failed step: every failure is a step with `ok: false`; the clean-up
 * runs whenever a signup was sent, whatever failed before it, and removes the key, the secret and the record.
 */
export async function runSmoke(aws: SmokeAws, settings: SmokeSettings, options: RunOptions = {}): Promise<SmokeReport> {
  const now = options.now ?? Date.now;
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((done) => setTimeout(done, ms)));
  const { names, customerId, productCode } = settings;
  const keyName = apiKeyName(names.namePrefix, customerId, productCode);
  const secret = secretName(names.namePrefix, customerId, productCode);
  const key = recordKey(customerId, productCode);
  const table = names.keyRecordsTable;
  const steps: SmokeStep[] = [];
  const run: { queueUrl?: string; sentAt?: number; messageIds: string[]; record?: KeyRecord; keyValue?: string } = { messageIds: [] };

  const step = async (name: string, work: () => Promise<string | { detail: string; notes: string[] }>): Promise<boolean> => {
    let done: SmokeStep;
    try {
      const result = await work();
      done = typeof result === 'string' ? { name, ok: true, detail: result } : { name, ok: true, ...result };
    } catch (error) {
      done = failedStep(name, error);
    }
    steps.push(done);
    options.onStep?.(done);
    return done.ok;
  };

  const failedStep = (name: string, error: unknown): SmokeStep => {
    const aws = error instanceof AwsCallError ? error : error instanceof CheckFailedError ? error.awsError : undefined;
    if (aws || error instanceof CheckFailedError) {
      const lookAt = [...(error instanceof CheckFailedError ? error.lookAt : []), ...(aws ? operatorStatements(aws.operation, names) : [])];
      const notes = error instanceof CheckFailedError ? error.notes : [];
      return {
        name,
        ok: false,
        detail: error instanceof CheckFailedError ? error.message : `${aws?.operation} was refused or failed`,
        ...(aws && { error: { operation: aws.operation, name: aws.errorName, message: aws.awsMessage, httpStatus: aws.httpStatus } }),
        ...(lookAt.length > 0 && { lookAt }),
        ...(notes.length > 0 && { notes }),
      };
    }
    return { name, ok: false, detail: error instanceof Error ? `${error.name}: ${error.message}` : String(error) };
  };

  /** Reads the record until `done` holds or the time is up; returns it with the time it took, or the last one read. */
  const waitForRecord = async (done: (record: KeyRecord | undefined) => boolean) => {
    const started = now();
    for (;;) {
      const record = await aws.record(table, key);
      if (done(record)) return { record, elapsedMs: now() - started, timedOut: false };
      if (now() - started >= settings.timeoutMs) return { record, elapsedMs: now() - started, timedOut: true };
      await sleep(settings.pollMs);
    }
  };

  const timedOut = (what: string, stopped: Stopped, messageId: string | undefined): CheckFailedError =>
    new CheckFailedError(`no ${what} within ${seconds(settings.timeoutMs)}: ${stopped.where}`, stopped.lookAt, [
      ...stopped.notes,
      ...(messageId && run.sentAt !== undefined ? logNotes(settings, messageId, run.sentAt) : []),
    ]);

  const send = async (body: Record<string, unknown>, what: string) => {
    run.queueUrl ??= await aws.queueUrl(names.signupQueue);
    run.sentAt ??= now();
    const id = await aws.send(run.queueUrl, JSON.stringify(body));
    run.messageIds.push(id);
    return `${what}: message ${id} to ${names.signupQueue}`;
  };

  const passed = async (): Promise<boolean> => {
    const signup = {
      customerId,
      eventId: `${customerId}.signup`,
      productCode,
      ...(settings.plan && { plan: settings.plan }),
      tags: { [SMOKE_TAG]: customerId },
    };
    if (!(await step('send signup', () => send(signup, `signup of ${customerId}, product ${productCode}`)))) return false;

    const provisioned = await step('provisioned', async () => {
      const waited = await waitForRecord((r) => r?.status === 'active' || r?.status === 'revoked' || r?.status === 'failed');
      const { record } = waited;
      if (!waited.timedOut && record?.status !== 'active')
        throw new CheckFailedError(`the record is ${record?.status}, not active: another message for ${customerId} came first`);
      if (waited.timedOut || !record?.apiKeyId) {
        const stopped = await whereProvisioningStopped(aws, settings, { keyName, secretName: secret }, record);
        throw timedOut('provisioned record', stopped, run.messageIds[0]);
      }
      run.record = record;
      return `record active after ${seconds(waited.elapsedMs)}, API key ${record.apiKeyId}`;
    });
    if (!provisioned || !run.record?.apiKeyId) return false;
    const record = run.record;
    const apiKeyId = record.apiKeyId ?? '';

    const keyOk = await step('API key', async () => {
      const found = await aws.apiKey(apiKeyId);
      if (!found) throw new CheckFailedError(`the record names API key ${apiKeyId}, which does not exist`);
      const problems = [
        !found.enabled && 'it is disabled',
        found.customerId !== customerId && `its customerId is ${JSON.stringify(found.customerId)}, not ${customerId}`,
        found.name !== keyName && `its name is ${JSON.stringify(found.name)}, not ${keyName}`,
        found.tags[OWNER_TAG] !== names.namePrefix &&
          `its ${OWNER_TAG} tag is ${JSON.stringify(found.tags[OWNER_TAG])}, not ${names.namePrefix}`,
        found.tags[SMOKE_TAG] !== customerId && `its ${SMOKE_TAG} tag (the signup's own) is missing`,
        !found.value && 'it has no value',
      ].filter((p): p is string => typeof p === 'string');
      if (problems.length > 0) throw new CheckFailedError(`API key ${apiKeyId}: ${problems.join('; ')}`);
      run.keyValue = found.value;
      return (
        `${apiKeyId} enabled, customerId ${customerId}, name ${keyName}, tags ${OWNER_TAG}=${names.namePrefix} and ` +
        `${SMOKE_TAG}: CreateApiKey with its tags passed CreateOwnedApiKeys and TagNewApiKeys (issue 22's two open IAM questions)`
      );
    });
    if (!keyOk) return false;

    if (settings.usagePlanId) {
      const planId = settings.usagePlanId;
      const inPlan = await step('usage plan', async () => {
        if (!(await aws.inUsagePlan(planId, apiKeyId)))
          throw new CheckFailedError(
            `API key ${apiKeyId} is not in usage plan ${planId}`,
            provisionStatements('CreateUsagePlanKey', names),
          );
        if (record.usagePlanId !== planId)
          throw new CheckFailedError(`the record names usage plan ${JSON.stringify(record.usagePlanId)}, not ${planId}`);
        return `API key ${apiKeyId} is in usage plan ${planId}`;
      });
      if (!inPlan) return false;
    }

    const secretOk = await step('secret', async () => {
      const stored = await aws.secret(secret);
      if (stored === undefined || stored === 'deleted') throw new CheckFailedError(`secret ${secret} does not exist`);
      let value: unknown;
      try {
        value = (JSON.parse(stored.secretString) as { value?: unknown }).value;
      } catch {
        value = undefined;
      }
      if (typeof value !== 'string' || value.length === 0) throw new CheckFailedError(`secret ${secret} holds no key value`);
      if (run.keyValue === undefined || sha256(value) !== sha256(run.keyValue))
        throw new CheckFailedError(
          `secret ${secret} holds a ${value.length}-character value that is not the key's (SHA-256 digests differ)`,
        );
      if (record.secretArn !== stored.arn)
        throw new CheckFailedError(`the record names secret ${JSON.stringify(record.secretArn)}, not ${stored.arn}`);
      return `${secret} holds the key's value: ${value.length} characters, SHA-256 digests equal (neither printed)`;
    });
    if (!secretOk) return false;

    const recordOk = await step('record', async () => {
      const problems = [
        record.customerId !== customerId && `customerId ${record.customerId}`,
        record.productCode !== productCode && `productCode ${record.productCode}`,
        record.apiKeyName !== keyName && `apiKeyName ${record.apiKeyName}`,
      ].filter((p): p is string => typeof p === 'string');
      if (problems.length > 0) throw new CheckFailedError(`record ${key} in ${table} does not match: ${problems.join(', ')}`);
      return `${key} in ${table}: active, API key ${apiKeyId}, the secret's ARN${settings.usagePlanId ? `, usage plan ${settings.usagePlanId}` : ''}`;
    });
    if (!recordOk) return false;

    const unsubscribe = { action: 'unsubscribe-success', 'customer-identifier': customerId, 'product-code': productCode };
    if (!(await step('send revoke', () => send(unsubscribe, `unsubscribe-success of ${customerId}`)))) return false;

    return step('revoked', async () => {
      const waited = await waitForRecord((r) => r?.status === 'revoked');
      if (waited.timedOut) throw timedOut('revoked record', await whereRevokeStopped(aws, settings, waited.record), run.messageIds[1]);
      const found = await aws.apiKey(apiKeyId);
      if (found?.enabled) throw new CheckFailedError(`the record is revoked but API key ${apiKeyId} is enabled`);
      if (settings.usagePlanId && (await aws.inUsagePlan(settings.usagePlanId, apiKeyId)))
        throw new CheckFailedError(`the record is revoked but API key ${apiKeyId} is still in usage plan ${settings.usagePlanId}`);
      return `record revoked after ${seconds(waited.elapsedMs)}; API key ${apiKeyId} disabled${settings.usagePlanId ? ', out of its plan' : ''}`;
    });
  };

  const ok = await passed();
  if (run.messageIds.length > 0) {
    await step('clean up', async () => {
      // Every removal is tried, whatever failed before it: a refused one leaves only its own resource behind.
      const refused: AwsCallError[] = [];
      const attempt = async (work: () => Promise<void>) => {
        try {
          await work();
        } catch (error) {
          if (!(error instanceof AwsCallError)) throw error;
          refused.push(error);
        }
      };
      const ids = new Set([...(run.record?.apiKeyId ? [run.record.apiKeyId] : []), ...(await aws.apiKeyIdsNamed(keyName))]);
      for (const id of ids)
        await attempt(async () => {
          if (settings.usagePlanId && (await aws.inUsagePlan(settings.usagePlanId, id)))
            await aws.removeFromUsagePlan(settings.usagePlanId, id);
          await aws.deleteApiKey(id);
        });
      // Only a secret that exists: the statement that allows the delete is conditioned on the secret's own tag.
      const stored = await aws.secret(secret);
      if (stored !== undefined && stored !== 'deleted') await attempt(() => aws.deleteSecret(secret));
      const hadRecord = (await aws.record(table, key)) !== undefined;
      if (hadRecord) await attempt(() => aws.deleteRecord(table, key));
      const secretLeft = await aws.secret(secret);
      const left = [
        ...(await Promise.all([...ids].map(async (id) => ((await aws.apiKey(id)) ? `API key ${id}` : undefined)))),
        secretLeft === undefined || secretLeft === 'deleted' ? undefined : `secret ${secret}`,
        (await aws.record(table, key)) ? `record ${key}` : undefined,
      ].filter((l): l is string => l !== undefined);
      const [first] = refused;
      if (first)
        throw new CheckFailedError(`${first.operation} was refused or failed; left: ${left.join(', ') || 'nothing'}`, [], [], first);
      if (left.length > 0) throw new CheckFailedError(`still there after the deletes: ${left.join(', ')}`);
      const removed = [
        ...[...ids].map((id) => `API key ${id}`),
        ...(stored === undefined ? [] : [`secret ${secret} (no recovery window)`]),
        ...(hadRecord ? [`record ${key}`] : []),
      ];
      const what = removed.length > 0 ? `removed ${removed.join(', ')}` : 'nothing to remove: no key, secret or record was made';
      if (!ok)
        return {
          detail: what,
          notes: [
            'The signup may still be delivered to the function again until it reaches the dead-letter queue: a delivery after',
            `this clean-up makes a key again. Look once the cause is fixed: npm run reconcile -- --prefix ${names.namePrefix}`,
          ],
        };
      return `${what}: nothing left`;
    });
  }
  return { stage: names.stage, region: names.region, customerId, passed: steps.every((s) => s.ok), steps };
}
