import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import '../helpers/debug-logging.js';
import '../helpers/metrics-enabled.js';
import { APIGatewayClient, CreateApiKeyCommand, TooManyRequestsException } from '@aws-sdk/client-api-gateway';
import {
  CreateSecretCommand,
  GetSecretValueCommand,
  PutSecretValueCommand,
  ResourceExistsException,
  ResourceNotFoundException,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import { handler } from '../../functions/provision.js';
import { lambdaContext, signup, sqsEvent } from '../helpers/events.js';
import { storeBackedRecords } from '../helpers/secrets-mock.js';

const apigw = mockClient(APIGatewayClient);
const secrets = mockClient(SecretsManagerClient);
const sqs = mockClient(SQSClient);
const recordsClient = mockClient(DynamoDBClient);
storeBackedRecords(recordsClient);

/** What `run` printed on stdout and stderr (the log lines), printing nothing. */
async function printedBy(run: () => Promise<unknown>): Promise<string> {
  const chunks: string[] = [];
  const capture = (chunk: unknown) => chunks.push(String(chunk)) > 0;
  const out = jest.spyOn(process.stdout, 'write').mockImplementation(capture);
  const err = jest.spyOn(process.stderr, 'write').mockImplementation(capture);
  try {
    await run();
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
  return chunks.join('');
}

test('at DEBUG, no log line holds the key value; every line has the Lambda context, every record line a correlation id', async () => {
  const winner = {
    value: 'W1nn3rV4lu3ThatMustNeverLeak0123456789ab',
    customerId: 'acme',
    productCode: null,
    apiKeyName: 'n',
  };
  apigw
    .on(CreateApiKeyCommand)
    .rejectsOnce(new TooManyRequestsException({ message: 'x', $metadata: { httpStatusCode: 429 } }))
    .resolves({ id: 'k' });
  // acme loses the CreateSecret race and uses the winner's value; globex creates its own.
  secrets
    .on(GetSecretValueCommand)
    .rejects(new ResourceNotFoundException({ message: 'not found', $metadata: { httpStatusCode: 400 } }))
    .on(GetSecretValueCommand, { SecretId: 'keyprov/test/_/acme/api-key' })
    .resolves({ ARN: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:a-AbCdEf', Name: 'a', SecretString: JSON.stringify(winner) });
  secrets
    .on(CreateSecretCommand)
    .resolves({ ARN: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:x-AbCdEf', Name: 'x' })
    .on(CreateSecretCommand, { Name: 'keyprov/test/_/acme/api-key' })
    .rejects(new ResourceExistsException({ message: 'exists', $metadata: { httpStatusCode: 400 } }));
  secrets.on(PutSecretValueCommand).resolves({});
  sqs.on(SendMessageBatchCommand).resolves({ Successful: [], Failed: [] });
  const text = await printedBy(() => handler(sqsEvent(signup('acme', { eventId: 'evt-7' }), signup('globex'), 'garbage'), lambdaContext()));
  const values = apigw.commandCalls(CreateApiKeyCommand).map((call) => call.args[0].input.value ?? '');
  expect(new Set(values)).toEqual(new Set([winner.value, expect.stringMatching(/^[A-Za-z0-9]{40}$/)]));
  const lines = text
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as Record<string, unknown>);
  expect(lines.some((l) => l.level === 'DEBUG')).toBe(true);
  expect(lines.length).toBeGreaterThan(5);
  for (const value of values) expect(text).not.toContain(value);
  // EMF metric lines (`_aws`) are checked for the value above; they carry dimensions, not the Lambda context.
  const logLines = lines.filter((l) => !('_aws' in l));
  expect(lines.some((l) => '_aws' in l)).toBe(true);
  for (const line of logLines) expect(line).toHaveProperty('function_request_id');
  const recordLines = logLines.filter((l) => l.message !== 'Batch processed' && l.level !== 'DEBUG');
  for (const line of recordLines) expect(line).toHaveProperty('correlationId');
  expect(recordLines.some((l) => l.correlationId === 'evt-7')).toBe(true);
});

test('errors are logged as Error objects — name, message, stack and causes — and still without the key value', async () => {
  apigw.reset();
  secrets.reset();
  sqs.reset();
  apigw
    .on(CreateApiKeyCommand)
    .rejectsOnce(new TooManyRequestsException({ message: 'Too Many Requests', $metadata: { httpStatusCode: 429 } }))
    // API Gateway's 403 AccessDeniedException has no modeled class: the SDK builds a plain error named after it.
    .rejects(Object.assign(new Error('not allowed to create keys'), { name: 'AccessDeniedException', $metadata: { httpStatusCode: 403 } }));
  secrets.on(GetSecretValueCommand).rejects(new ResourceNotFoundException({ message: 'not found', $metadata: { httpStatusCode: 400 } }));
  secrets.on(CreateSecretCommand).resolves({ ARN: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:x-AbCdEf', Name: 'x' });
  sqs.on(SendMessageBatchCommand).resolves({ Successful: [], Failed: [] });
  const text = await printedBy(() => handler(sqsEvent(signup('denied'), 'garbage'), lambdaContext()));
  const lines = text
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as { message?: string; error?: Record<string, unknown> });
  const errorOf = (message: string) => lines.find((line) => line.message?.startsWith(message))?.error;
  const stack = expect.stringContaining('\n    at ');
  expect(errorOf('Retrying AWS call')).toMatchObject({
    name: 'ThrottledError',
    stack,
    cause: { name: 'TooManyRequestsException', message: 'Too Many Requests', stack },
  });
  expect(errorOf('AWS refused for a reason on our side')).toMatchObject({
    name: 'EnvironmentError',
    message: expect.stringContaining('CreateApiKey was refused: AccessDeniedException'),
    stack,
    cause: { name: 'AccessDeniedException', stack },
  });
  expect(errorOf('Message rejected')).toMatchObject({ name: 'RejectedError', reason: 'invalid-json', stack });
  const values = apigw.commandCalls(CreateApiKeyCommand).map((call) => call.args[0].input.value ?? '');
  expect(values[0]).toMatch(/^[A-Za-z0-9]{40}$/);
  for (const value of values) expect(text).not.toContain(value);
});
