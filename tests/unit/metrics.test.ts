import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import '../helpers/metrics-enabled.js';
import { APIGatewayClient, CreateApiKeyCommand, TooManyRequestsException } from '@aws-sdk/client-api-gateway';
import {
  CreateSecretCommand,
  GetSecretValueCommand,
  PutSecretValueCommand,
  ResourceNotFoundException,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import { handler } from '../../functions/provision.js';
import { lambdaContext, marketplaceNotification, signup, snsEnvelope, sqsEvent } from '../helpers/events.js';
import { storeBackedRecords } from '../helpers/secrets-mock.js';

const apigw = mockClient(APIGatewayClient);
const secrets = mockClient(SecretsManagerClient);
const sqs = mockClient(SQSClient);
const recordsClient = mockClient(DynamoDBClient);
const meta = (httpStatusCode: number) => ({ $metadata: { httpStatusCode } });

/** The CloudWatch EMF documents the function printed during `run`: metric name → summed value, per dimension set. */
async function emfOf(run: () => Promise<unknown>) {
  const chunks: string[] = [];
  const out = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: unknown) => chunks.push(String(chunk)) > 0);
  try {
    await run();
  } finally {
    out.mockRestore();
  }
  const docs = chunks
    .join('')
    .split('\n')
    .filter(Boolean)
    .map(
      (line) =>
        JSON.parse(line) as Record<string, unknown> & {
          _aws?: { CloudWatchMetrics: Array<{ Namespace: string; Metrics: Array<{ Name: string }> }> };
        },
    )
    .filter((doc) => doc._aws);
  const value = (name: string, where: Record<string, string> = {}) =>
    docs
      .filter(
        (d) => Object.entries(where).every(([k, v]) => d[k] === v) && d._aws?.CloudWatchMetrics[0]?.Metrics.some((m) => m.Name === name),
      )
      .reduce((sum, d) => sum + [d[name]].flat().reduce((a: number, b) => a + Number(b), 0), 0);
  return { docs, value };
}

beforeEach(() => {
  for (const mock of [apigw, secrets, sqs, recordsClient]) mock.reset();
  storeBackedRecords(recordsClient);
  secrets.on(GetSecretValueCommand).rejects(new ResourceNotFoundException({ message: 'not found', ...meta(400) }));
  secrets.on(CreateSecretCommand).callsFake(async (input: { Name: string }) => ({
    ARN: `arn:aws:secretsmanager:us-east-1:1:secret:${input.Name}-AbCdEf`,
    Name: input.Name,
  }));
  secrets.on(PutSecretValueCommand).resolves({});
  apigw
    .on(CreateApiKeyCommand)
    .rejectsOnce(new TooManyRequestsException({ message: 'slow down', ...meta(429) }))
    .resolves({ id: 'k1' });
  sqs.on(SendMessageBatchCommand).callsFake(async (input: { Entries: Array<{ Id: string }> }) => ({
    Successful: input.Entries.map((e) => ({ Id: e.Id, MessageId: e.Id, MD5OfMessageBody: '' })),
    Failed: [],
  }));
});

test('an invocation emits EMF counts per outcome, failures by reason, throttles and the end-to-end latency', async () => {
  const occurredAt = new Date(Date.now() - 5_000).toISOString();
  const event = sqsEvent(
    signup('acme', { occurredAt }),
    'not json',
    snsEnvelope(marketplaceNotification('unsubscribe-pending', 'QnV5ZXIx')),
  );

  const { docs, value } = await emfOf(() => handler(event, lambdaContext()));

  expect(docs[0]?._aws?.CloudWatchMetrics[0]?.Namespace).toBe('ApiKeyProvisioner');
  expect(value('KeysProvisioned')).toBe(1);
  expect(value('NotificationsAcknowledged')).toBe(1);
  expect(value('ProvisioningFailures', { reason: 'invalid-json' })).toBe(1);
  expect(value('Throttles')).toBe(1);
  expect(value('EndToEndLatency')).toBeGreaterThanOrEqual(5_000);
});
