/**
 * `npm run roll -- --customer C [--product P] [--grace DURATION] [--endpoint URL] [--queue-url URL | --stage S]`:
 * sends one roll request to the signup queue (docs/events.md, "Roll request"); the provision function rolls the key.
 * Exit code: 0 sent, 2 could not run.
 */
import { randomUUID } from 'node:crypto';
import { GetQueueUrlCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { EXIT, endpointUrl, parseCommandLine, requireAwsSettings, runCommand, UsageError, useEndpoint } from '../../command-line.js';
import { CUSTOMER_ID_PATTERN, PRODUCT_CODE_PATTERN } from '../../customer-key/naming.js';
import { ROLL_ACTION } from '../../messages/index.js';
import { parseGrace } from './grace.js';

const USAGE = `Usage: npm run roll -- --customer ID [--product CODE] [--grace DURATION] [--endpoint URL] [--queue-url URL | --stage STAGE]

Sends a roll request for the customer's key to the signup queue: the provision function makes a new key (new value;
same customer id, tags and usage plan) and the old key keeps working for the grace period, then is deleted by the
maintenance sweep. A repeat of the same request rolls once.

  --customer ID        the customer whose key is rolled (as in their signup, or Marketplace's customer identifier)
  --product CODE       the product of the key (default: none, a key without product)
  --grace DURATION     how long the old key keeps working: seconds (3600) or 90s, 15m, 24h, 7d; 0: disabled at once;
                       at most 7d (default: the deployment's ROLL_GRACE_SECONDS, 24h unless configured)
  --endpoint URL       an AWS-compatible endpoint (moto); without --queue-url, the local signup queue of npm start
  --queue-url URL      the signup queue (SignupQueueUrl, an output of the stack)
  --stage STAGE        the deployed stage whose signup queue to use (api-key-provisioner-STAGE-signups)
  -h, --help           print this text

Prints the request's eventId; the outcome is the completion event api-key.rolled (or provisioning-failed with a
reason: no-key, customer-left, invalid-roll-request). Key values are never read nor printed.`;

/** The local signup queue of `npm start` (lib/local/start.ts). */
const LOCAL_SIGNUP_QUEUE = 'api-key-provisioner-local-signups';

async function main(): Promise<number> {
  const { values: flags } = parseCommandLine(USAGE, {
    customer: { type: 'string' },
    product: { type: 'string' },
    grace: { type: 'string' },
    endpoint: { type: 'string' },
    'queue-url': { type: 'string' },
    stage: { type: 'string' },
  });
  const customerId = flags.customer;
  if (!customerId || !CUSTOMER_ID_PATTERN.test(customerId))
    throw new UsageError('--customer is required: 1 to 256 characters of A-Z a-z 0-9 _ + = . @ -');
  if (flags.product !== undefined && !PRODUCT_CODE_PATTERN.test(flags.product))
    throw new UsageError('--product must be 1 to 64 characters of A-Z a-z 0-9 . _ -, starting alphanumeric');
  const graceSeconds = flags.grace === undefined ? undefined : parseGrace(flags.grace);
  const endpoint = endpointUrl(flags.endpoint);
  useEndpoint(endpoint);
  if (flags['queue-url'] && flags.stage) throw new UsageError('give --queue-url or --stage, not both');
  const queueName = flags.stage ? `api-key-provisioner-${flags.stage}-signups` : endpoint ? LOCAL_SIGNUP_QUEUE : undefined;
  if (!flags['queue-url'] && !queueName) throw new UsageError('give --queue-url URL or --stage STAGE (or --endpoint URL for npm start)');

  const sqs = new SQSClient(endpoint ? { endpoint } : {});
  try {
    await requireAwsSettings(sqs.config as unknown as Parameters<typeof requireAwsSettings>[0], endpoint);
    const queueUrl = flags['queue-url'] ?? (await sqs.send(new GetQueueUrlCommand({ QueueName: queueName }))).QueueUrl;
    const request = {
      action: ROLL_ACTION,
      customerId,
      ...(flags.product && { productCode: flags.product }),
      ...(graceSeconds !== undefined && { graceSeconds }),
      eventId: `roll-${randomUUID()}`,
      occurredAt: new Date().toISOString(),
    };
    await sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: JSON.stringify(request) }));
    console.log(
      `Roll request sent: eventId ${request.eventId}, customer ${customerId}${flags.product ? `, product ${flags.product}` : ''}`,
    );
    console.log(
      `Grace: ${graceSeconds === undefined ? "the deployment's ROLL_GRACE_SECONDS" : `${graceSeconds} s`}. The outcome is the completion event api-key.rolled.`,
    );
    return EXIT.ok;
  } finally {
    sqs.destroy();
  }
}

runCommand('roll', main);
