import '../helpers/debug-logging.js';
import { APIGatewayClient, CreateApiKeyCommand, TooManyRequestsException } from '@aws-sdk/client-api-gateway';
import { CreateSecretCommand, ResourceExistsException, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import { handler } from '../../functions/provision.js';
import { lambdaContext, signup, sqsEvent } from '../helpers/events.js';

const KEY_VALUE = 'k3yV4lu3ThatMustNeverLeak0123456789abcd';
const apigw = mockClient(APIGatewayClient);
const secrets = mockClient(SecretsManagerClient);
const sqs = mockClient(SQSClient);

test('at DEBUG, no log line holds the key value; every line has the Lambda context, every record line a correlation id', async () => {
  apigw
    .on(CreateApiKeyCommand)
    .rejectsOnce(new TooManyRequestsException({ message: 'x', $metadata: { httpStatusCode: 429 } }))
    .resolves({ id: 'k', value: KEY_VALUE });
  secrets
    .on(CreateSecretCommand)
    .rejectsOnce(new ResourceExistsException({ message: 'exists', $metadata: { httpStatusCode: 400 } }))
    .resolves({ ARN: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:x-AbCdEf', Name: 'x' });
  sqs.on(SendMessageBatchCommand).resolves({ Successful: [], Failed: [] });
  const chunks: string[] = [];
  const capture = (chunk: unknown) => chunks.push(String(chunk)) > 0;
  const out = jest.spyOn(process.stdout, 'write').mockImplementation(capture);
  const err = jest.spyOn(process.stderr, 'write').mockImplementation(capture);
  try {
    await handler(sqsEvent(signup('acme', { eventId: 'evt-7' }), signup('globex'), 'garbage'), lambdaContext());
  } finally {
    out.mockRestore();
    err.mockRestore();
  }

  const text = chunks.join('');
  const lines = text.split('\n').filter(Boolean).map((line) => JSON.parse(line) as Record<string, unknown>);
  expect(lines.some((l) => l.level === 'DEBUG')).toBe(true);
  expect(lines.length).toBeGreaterThan(5);
  expect(text).not.toContain(KEY_VALUE);
  for (const line of lines) expect(line).toHaveProperty('function_request_id');
  const recordLines = lines.filter((l) => l.message !== 'Batch processed' && l.level !== 'DEBUG');
  for (const line of recordLines) expect(line).toHaveProperty('correlationId');
  expect(recordLines.some((l) => l.correlationId === 'evt-7')).toBe(true);
});
