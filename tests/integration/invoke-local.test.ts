import { APIGatewayClient, GetApiKeysCommand } from '@aws-sdk/client-api-gateway';
import { DynamoDBClient, GetItemCommand } from '@aws-sdk/client-dynamodb';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { GetQueueUrlCommand, SQSClient } from '@aws-sdk/client-sqs';
import { resetMoto } from '../../lib/local/moto.js';
import { peekQueue } from '../../lib/local/queues.js';
import type { CompletionEvent, ProvisionedEvent } from '../../lib/pipeline/completion.js';
import { type Run, run } from '../helpers/run-command.js';

const COMMAND_TIMEOUT_MS = 150_000;

/** invoke local prints the function's logs (JSON lines), then its result, pretty-printed: the last block that opens with a lone `{`. */
function printedResult(stdout: string): unknown {
  const lines = stdout.trimEnd().split('\n');
  const start = lines.lastIndexOf('{');
  if (start < 0) throw new Error(`no result printed:\n${stdout}`);
  return JSON.parse(lines.slice(start).join('\n'));
}

describe('npm run invoke:local (serverless invoke local through lib/local/invoke-local.ts) against moto', () => {
  const moto = process.env.MOTO_ENDPOINT ?? '';
  const sqs = new SQSClient({ endpoint: moto });
  const apigw = new APIGatewayClient({ endpoint: moto });
  const secrets = new SecretsManagerClient({ endpoint: moto });
  const dynamodb = new DynamoDBClient({ endpoint: moto });
  let completionUrl: string;
  let result: Run;

  beforeAll(async () => {
    if (!moto) throw new Error('MOTO_ENDPOINT is not set: run the integration project (its global setup starts moto)');
    await resetMoto(moto);

    // What a user's shell would give: no AWS account, fake credentials, none of this test run's function settings.
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      AWS_ACCESS_KEY_ID: 'local',
      AWS_SECRET_ACCESS_KEY: 'local',
    };
    // The queues and tables are the command's to create (stage local: the names npm start uses).
    result = await run('npm', ['run', 'invoke:local', '--', '--endpoint', moto, '--path', 'events/signup.json'], env, COMMAND_TIMEOUT_MS);
    ({ QueueUrl: completionUrl = '' } = await sqs.send(new GetQueueUrlCommand({ QueueName: 'api-key-provisioner-local-completions' })));
  }, COMMAND_TIMEOUT_MS + 30_000);

  const output = () => `exit ${result.code} ${result.signal ?? ''}\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`;

  test('the command exits 0 and prints the handler result: no batch item failures', () => {
    expect({ code: result.code, output: result.code === 0 ? '' : output() }).toEqual({ code: 0, output: '' });
    expect(printedResult(result.stdout)).toEqual({ batchItemFailures: [] });
  });

  test('the completion queue holds two api-key.provisioned events, one per customer of the sample', async () => {
    const events = (await peekQueue(sqs, completionUrl)).map((m) => JSON.parse(m.Body ?? '{}') as CompletionEvent);
    expect(events.map((e) => e.type)).toEqual(['api-key.provisioned', 'api-key.provisioned']);
    const provisioned = events as ProvisionedEvent[];
    expect(provisioned.map((e) => e.customerId).sort()).toEqual(['acme-corp', 'globex-42']);
    expect(provisioned.map((e) => e.outcome)).toEqual(['provisioned', 'provisioned']);
    // NAME_PREFIX came from serverless.yml's provider.environment (stage local, the command's default).
    for (const event of provisioned) expect(event.secretName.startsWith('keyprov/local/')).toBe(true);
  });

  test('API Gateway has the two keys, Secrets Manager holds their values, the record table their records', async () => {
    const keys = (await apigw.send(new GetApiKeysCommand({ includeValues: true, limit: 500 }))).items ?? [];
    expect(keys.map((k) => k.customerId).sort()).toEqual(['acme-corp', 'globex-42']);
    const events = (await peekQueue(sqs, completionUrl)).map((m) => JSON.parse(m.Body ?? '{}') as ProvisionedEvent);
    for (const key of keys) {
      expect(key.enabled).toBe(true);
      expect(key.value).toMatch(/^[A-Za-z0-9]{20,}$/);
      const event = events.find((e) => e.customerId === key.customerId);
      expect(event).toMatchObject({ apiKeyId: key.id, apiKeyName: key.name });
      const { SecretString } = await secrets.send(new GetSecretValueCommand({ SecretId: event?.secretName }));
      expect(JSON.parse(SecretString ?? '{}')).toMatchObject({ value: key.value, customerId: key.customerId });
      // The record (stage local: the table npm start uses) names the key, and holds no value.
      const { Item } = await dynamodb.send(
        new GetItemCommand({
          TableName: 'api-key-provisioner-local-key-records',
          Key: { pk: { S: `${key.name?.slice('keyprov/local/'.length)}` } },
        }),
      );
      expect(JSON.parse(Item?.record?.S ?? '{}')).toMatchObject({ apiKeyId: key.id, status: 'active', customerId: key.customerId });
      expect(Item?.record?.S).not.toContain(key.value);
    }
  });
});
