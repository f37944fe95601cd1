import { APIGatewayClient, CreateApiKeyCommand, GetApiKeyCommand, NotFoundException } from '@aws-sdk/client-api-gateway';
import { DynamoDBClient, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { dynamoDbRecordStore } from '../../lib/aws/dynamodb.js';
import type { KeyRecord } from '../../lib/customer-key/key-record.js';
import { resetMoto } from '../../lib/local/moto.js';
import { ensureKeyRecordsTable } from '../../lib/local/resources.js';
import { type Run, run } from '../helpers/run-command.js';

/*
 * `npm start` ends with one run of the maintenance sweep (issue 21), the scheduled function's code: against the test
 * run's moto (`--endpoint`), a leaver's key revoked 40 days ago is retired and the run prints it in its summary; a
 * record the sweep cannot read is reported with why, and the command exits 1.
 */

const RUN_TIMEOUT_MS = 90_000;
jest.setTimeout(RUN_TIMEOUT_MS + 10_000);

/** The record table `npm start` uses (lib/local/start.ts, serverless.yml's name for `--stage local`). */
const TABLE = 'api-key-provisioner-local-key-records';
const PRODUCT = 'prod4k2j9x8l7';
const DAY_MS = 86_400_000;

const endpoint = process.env.MOTO_ENDPOINT ?? '';
const apigw = new APIGatewayClient({ endpoint });
const dynamodb = new DynamoDBClient({ endpoint });

/** `npm start -- --endpoint URL events/signup.json` in a reader's shell (no settings of this test run). */
const npmStart = (): Promise<Run> =>
  run(
    'npm',
    ['start', '--', '--endpoint', endpoint, 'events/signup.json'],
    { PATH: process.env.PATH, HOME: process.env.HOME },
    RUN_TIMEOUT_MS,
  );

const output = (r: Run) => `exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;

/** A leaver as the pipeline leaves one: a disabled key, and its record revoked `daysAgo` days ago. */
async function leaver(customer: string, daysAgo: number): Promise<string> {
  const name = `keyprov/local/${PRODUCT}/${customer}`;
  const key = await apigw.send(new CreateApiKeyCommand({ name, enabled: false, customerId: customer }));
  const revokedAt = new Date(Date.now() - daysAgo * DAY_MS).toISOString();
  const record: KeyRecord = {
    customerId: customer,
    productCode: PRODUCT,
    plan: null,
    apiKeyName: name,
    createdAt: new Date(Date.now() - (daysAgo + 10) * DAY_MS).toISOString(),
    apiKeyId: key.id,
    status: 'revoked',
    lastEventAt: revokedAt,
    revokedAt,
  };
  expect(await dynamoDbRecordStore(dynamodb, TABLE).put(`${PRODUCT}/${customer}`, record, undefined)).toBe(true);
  return key.id as string;
}

async function keyExists(id: string): Promise<boolean> {
  try {
    await apigw.send(new GetApiKeyCommand({ apiKey: id }));
    return true;
  } catch (error) {
    if (error instanceof NotFoundException) return false;
    throw error;
  }
}

beforeAll(async () => {
  await resetMoto(endpoint);
  await ensureKeyRecordsTable(dynamodb, TABLE);
});

test('after the queue drains, the sweep retires a key revoked 40 days ago and prints what it did', async () => {
  const old = await leaver('leaver-40d', 40);
  const young = await leaver('leaver-10d', 10);

  const result = await npmStart();

  expect({ code: result.code, output: result.code === 0 ? '' : output(result) }).toEqual({ code: 0, output: '' });
  const lines = result.stdout.split('\n');
  const at = lines.findIndex((l) => l.startsWith('Maintenance sweep, as of '));
  expect(at).toBeGreaterThan(lines.findIndex((l) => l.startsWith('Queue drained after ')));
  expect(lines[at]).toMatch(/^Maintenance sweep, as of \S+Z: roll overlaps ended by then, and keys revoked at or before \S+Z, are due$/);
  expect(lines.slice(at + 1, at + 4).map((l) => l.split(/\s{2,}/))).toEqual([
    ['record', 'outcome'],
    [expect.stringMatching(/^-+$/), expect.stringMatching(/^-+$/)],
    [`${PRODUCT}/leaver-40d`, 'retired'],
  ]);
  // One page of each partition of the index: roll overlaps, revoked keys.
  expect(lines).toContain('Sweep totals: 1 record(s) listed: 1 retired; 2 index pages read');
  // Two leavers' keys, the signup sample's two new keys, less the one retired.
  expect(lines).toContain('API keys in the Region: 3 of 10000 (0.0 %)');
  expect(await keyExists(old)).toBe(false);
  expect(await keyExists(young)).toBe(true);
});

test('a record the sweep cannot read: reported with why, exit 1; the messages still all final', async () => {
  await dynamodb.send(
    new PutItemCommand({
      TableName: TABLE,
      Item: {
        pk: { S: `${PRODUCT}/broken` },
        version: { N: '1' },
        record: { S: 'not json' },
        due: { S: 'revoked' },
        dueAt: { S: '2026-01-01T00:00:00.000Z' },
      },
    }),
  );

  const result = await npmStart();

  expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 1, stderr: expect.any(String) });
  expect(result.stdout).toContain(`${PRODUCT}/broken  failed`);
  expect(result.stdout).toMatch(
    new RegExp(`Failed, and why \\(still due: the next run tries again\\):\\n {2}${PRODUCT}/broken: \\w*Error: record ${PRODUCT}/broken`),
  );
  expect(result.stdout).toContain('Every message reached a final outcome.');
  expect(result.stdout).toContain('The sweep left work undone (see above): npm run sweep runs it again.');
});
