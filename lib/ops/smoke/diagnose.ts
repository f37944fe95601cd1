/**
 * Where the pipeline stopped when an outcome does not come in time, read from what it left behind: the record, the
 * secret, the key. The function makes its calls in a fixed order (lib/customer-key/provision.ts, revoke.ts), so the
 * state names the call that did not happen — and the statements behind it. The AWS error itself is in the
 * function's log: the notes give the command that finds its line.
 */
import type { KeyRecord } from '../../customer-key/key-record.js';
import type { SmokeAws, SmokeSettings } from './model.js';
import { CREATE_API_KEY_UNKNOWNS, type PipelineCall, provisionStatements, type Statement } from './statements.js';

export interface Stopped {
  /** One sentence: what the state shows, and the call that did not happen. */
  where: string;
  lookAt: Statement[];
  notes: string[];
}

interface Names {
  keyName: string;
  secretName: string;
}

const statementsOf = (calls: PipelineCall[], settings: SmokeSettings): Statement[] =>
  calls.flatMap((call) => provisionStatements(call, settings.names));

/**
 * The command that prints the function's log lines about one message (its ERROR line `AWS refused for a reason on
 * our side` names the refused call and the AWS error), and what the queue does with the message meanwhile.
 */
export function logNotes(settings: SmokeSettings, messageId: string, sentAt: number): string[] {
  const { names } = settings;
  return [
    "The function's log has the AWS error (its ERROR line `AWS refused for a reason on our side` names the refused call,",
    'the error and its message; API Gateway and SQS answer a denial with HTTP 403, Secrets Manager and DynamoDB with 400):',
    `  aws logs filter-log-events --region ${names.region} --log-group-name ${names.provisionLogGroup} \\`,
    `    --start-time ${sentAt - 60_000} --filter-pattern '"${messageId}"' --query 'events[].message' --output text`,
    `Until it is fixed the message comes back to the function, then moves to ${names.signupDeadLetterQueue}: do not redrive`,
    'smoke-* messages (a redriven one makes a key nobody removes).',
  ];
}

/** Where a signup that did not end `active` in time stopped. Throws AwsCallError when a look itself fails. */
export async function whereProvisioningStopped(
  aws: SmokeAws,
  settings: SmokeSettings,
  names: Names,
  record: KeyRecord | undefined,
): Promise<Stopped> {
  const plan = settings.usagePlanId ? (['GetUsagePlan'] as const) : [];
  if (!record) {
    const secret = await aws.secret(names.secretName);
    if (secret === undefined)
      return {
        where:
          'no record and no secret: the function has not stored a value for the customer. Either it has not received the ' +
          'signup (is the trigger enabled?), or AWS refused one of its first calls (below, in order), or it rejected the ' +
          `message (a failure event on the completion queue: unknown-product when the stage's USAGE_PLANS has no plan for ` +
          `${settings.productCode}; give it with --usage-plans)`,
        lookAt: statementsOf(['receive', ...plan, 'GetItem', 'GetSecretValue', 'CreateSecret'], settings),
        notes: [],
      };
    return {
      where: `the secret ${names.secretName} exists, the record does not: the record's first write (PutItem) did not happen`,
      lookAt: statementsOf(['PutItem'], settings),
      notes: [],
    };
  }
  const keys = await aws.apiKeyIdsNamed(names.keyName);
  if (keys.length === 0)
    return {
      where: 'the record is pending and its secret holds the value, but no API key exists: CreateApiKey did not succeed',
      lookAt: statementsOf(['CreateApiKey'], settings),
      notes: CREATE_API_KEY_UNKNOWNS,
    };
  return {
    where: `API key ${keys.join(', ')} exists, but the record does not name it yet: ${
      settings.usagePlanId ? 'CreateUsagePlanKey, or the record write after it,' : 'the record write (PutItem)'
    } did not happen`,
    lookAt: statementsOf(settings.usagePlanId ? ['CreateUsagePlanKey', 'PutItem'] : ['GetApiKeys', 'PutItem'], settings),
    notes: [],
  };
}

/** Where an unsubscribe that did not end `revoked` in time stopped (revoke.ts: disable, out of the plan, then the record). */
export async function whereRevokeStopped(aws: SmokeAws, settings: SmokeSettings, record: KeyRecord | undefined): Promise<Stopped> {
  if (!record?.apiKeyId)
    return { where: `the record is ${record ? 'without its key' : 'gone'}: not the smoke's own`, lookAt: [], notes: [] };
  const key = await aws.apiKey(record.apiKeyId);
  if (key?.enabled)
    return {
      where: `the record is still ${record.status ?? 'pending'} and key ${record.apiKeyId} enabled: the unsubscribe was not received, or UpdateApiKey (disable) was refused`,
      lookAt: statementsOf(['receive', 'GetItem', 'UpdateApiKey'], settings),
      notes: [],
    };
  const inPlan = settings.usagePlanId ? await aws.inUsagePlan(settings.usagePlanId, record.apiKeyId) : false;
  return {
    where: inPlan
      ? `key ${record.apiKeyId} is disabled but still in usage plan ${settings.usagePlanId}: DeleteUsagePlanKey did not happen`
      : `key ${record.apiKeyId} is disabled${settings.usagePlanId ? ' and out of its plan' : ''}, but the record is not revoked: PutItem did not happen`,
    lookAt: statementsOf(inPlan ? ['DeleteUsagePlanKey'] : ['PutItem'], settings),
    notes: [],
  };
}
