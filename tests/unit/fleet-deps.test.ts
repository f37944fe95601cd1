/**
 * The instance's heartbeats as the function wires them (lib/pipeline/deps.ts): with the coordination table and the rate
 * limiter on, an invocation beats while it calls API Gateway and leaves the fleet when it ends.
 */
import { APIGatewayClient, CreateApiKeyCommand } from '@aws-sdk/client-api-gateway';
import { DynamoDBClient, UpdateItemCommand, type UpdateItemCommandInput } from '@aws-sdk/client-dynamodb';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-jest';
import { FLEET_ITEM_KEY } from '../../lib/aws/dynamodb.js';
import { loadConfig } from '../../lib/config.js';
import { createDeps } from '../../lib/pipeline/deps.js';
import { createBatchHandler } from '../../lib/pipeline/process-batch.js';
import { lambdaContext, signup, sqsEvent } from '../helpers/events.js';
import { storeBackedRecords, storeBackedSecrets } from '../helpers/secrets-mock.js';

const apigw = mockClient(APIGatewayClient);
const secrets = mockClient(SecretsManagerClient);
const sqs = mockClient(SQSClient);
const ddb = mockClient(DynamoDBClient);

beforeEach(() => {
  for (const mock of [apigw, secrets, sqs, ddb]) mock.reset();
  storeBackedSecrets(secrets);
  storeBackedRecords(ddb);
  apigw.on(CreateApiKeyCommand).resolves({ id: 'key1' });
  sqs.on(SendMessageBatchCommand).callsFake(async (input: { Entries: { Id: string }[] }) => ({
    Successful: input.Entries.map((e) => ({ Id: e.Id, MessageId: `m-${e.Id}`, MD5OfMessageBody: '' })),
    Failed: [],
  }));
  ddb.on(UpdateItemCommand).resolves({ Attributes: {} });
});

const fleetCalls = (): UpdateItemCommandInput[] =>
  ddb
    .commandCalls(UpdateItemCommand)
    .map((call) => call.args[0].input)
    .filter((input) => input.Key?.pk?.S === FLEET_ITEM_KEY);

function handlerWith(env: Record<string, string>) {
  const config = loadConfig({ ...process.env, API_GATEWAY_RATE_PER_SECOND: '5', API_GATEWAY_ACCOUNT_RATE_PER_SECOND: '20', ...env });
  const handler = createBatchHandler(createDeps(config));
  return (customer = 'acme') => handler(sqsEvent(signup(customer)), lambdaContext(30_000));
}

test('an invocation beats as it calls API Gateway, then removes its own beat before it returns', async () => {
  const invoke = handlerWith({ COORDINATION_TABLE: 'keyprov-test-coordination' });

  await invoke();

  const [beat, leave, ...rest] = fleetCalls();
  expect(rest).toEqual([]);
  expect(beat?.UpdateExpression).toBe('SET #me = :now');
  expect(leave?.UpdateExpression).toBe('REMOVE #me');
  expect(leave?.ExpressionAttributeNames).toEqual(beat?.ExpressionAttributeNames);
  expect(leave?.TableName).toBe('keyprov-test-coordination');

  // The next invocation beats again at once (the same instance, the same attribute); one that calls no API Gateway
  // (its customer already has a key) neither beats nor leaves.
  await invoke('globex');
  await invoke('globex');
  expect(fleetCalls().map((c) => c.UpdateExpression)).toEqual(['SET #me = :now', 'REMOVE #me', 'SET #me = :now', 'REMOVE #me']);
  expect(fleetCalls()[2]?.ExpressionAttributeNames).toEqual(beat?.ExpressionAttributeNames);
});

test('without the coordination table, nothing is asked of DynamoDB', async () => {
  await handlerWith({ COORDINATION_TABLE: '' })();

  expect(ddb).not.toHaveReceivedCommand(UpdateItemCommand);
});
