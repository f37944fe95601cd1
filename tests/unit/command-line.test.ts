/**
 * The flag rules every command shares (lib/command-line.ts) and the commands' refusals that need no AWS: each bad
 * flag or value is named in one line on stderr, exit 2, before anything is started.
 */
import { endpointUrl, isLoopbackUrl, requireAwsSettings, UsageError } from '../../lib/command-line.js';
import { DLQ_REASONS, isDlqReason } from '../../lib/ops/redrive/messages.js';
import { run } from '../helpers/run-command.js';

describe('--endpoint', () => {
  test('an http(s) URL with a host is taken, without a trailing slash', () => {
    expect(endpointUrl(undefined)).toBeUndefined();
    expect(endpointUrl('http://127.0.0.1:45469')).toBe('http://127.0.0.1:45469');
    expect(endpointUrl('http://127.0.0.1:45469/')).toBe('http://127.0.0.1:45469');
    expect(endpointUrl('https://sqs.us-east-1.amazonaws.com')).toBe('https://sqs.us-east-1.amazonaws.com');
  });

  test.each(['127.0.0.1:45469', 'localhost:5000', 'ftp://127.0.0.1:21', '', 'http://', 'not a url'])(
    '%j is refused, naming the flag and the value',
    (value) => {
      expect(() => endpointUrl(value)).toThrow(UsageError);
      expect(() => endpointUrl(value)).toThrow(
        `--endpoint must be an http(s) URL such as http://127.0.0.1:5000, got ${JSON.stringify(value)}`,
      );
    },
  );

  test('loopback URLs: localhost, 127.0.0.1, [::1]; nothing else', () => {
    for (const url of ['http://127.0.0.1:5000/1/q', 'http://localhost', 'https://[::1]:4566/']) expect(isLoopbackUrl(url)).toBe(true);
    for (const url of ['https://sqs.us-east-1.amazonaws.com/1/q', 'http://127.0.0.10:5000', 'http://localhost.example.com'])
      expect(isLoopbackUrl(url)).toBe(false);
  });
});

describe('the AWS settings the SDK lacks are named before any call', () => {
  const ok = async () => 'us-east-1';
  const missing = async (): Promise<string> => {
    throw new Error('Region is missing');
  };
  const noCredentials = async () => {
    throw new Error('Could not load credentials from any providers');
  };

  test('a Region and credentials: nothing to say', async () => {
    await expect(requireAwsSettings({ region: ok, credentials: ok }, undefined)).resolves.toBeUndefined();
  });

  test('no Region: AWS_REGION named, --region only where the command has it, --endpoint suggested without one', async () => {
    await expect(requireAwsSettings({ region: missing, credentials: ok }, undefined, { regionFlag: true })).rejects.toThrow(
      new UsageError('no AWS Region: set AWS_REGION, or give --region REGION; for a local AWS (moto), give --endpoint URL'),
    );
    await expect(requireAwsSettings({ region: missing, credentials: ok }, 'http://127.0.0.1:1')).rejects.toThrow(
      new UsageError('no AWS Region: set AWS_REGION'),
    );
  });

  test('no credentials: said so, with the SDK cause', async () => {
    await expect(requireAwsSettings({ region: ok, credentials: noCredentials }, undefined)).rejects.toThrow(
      /^no AWS credentials \(Could not load credentials from any providers\): set AWS_PROFILE or AWS_ACCESS_KEY_ID; for a local AWS/,
    );
  });
});

test("redrive's --reason values: retries-exhausted and every rejection reason, nothing else", () => {
  expect(DLQ_REASONS).toContain('retries-exhausted');
  expect(DLQ_REASONS).toContain('invalid-json');
  expect(new Set(DLQ_REASONS).size).toBe(DLQ_REASONS.length);
  expect(isDlqReason('unknown-product')).toBe(true);
  for (const bad of ['foo', '', 'Invalid-JSON', 'retries']) expect(isDlqReason(bad)).toBe(false);
});

describe('commands refuse a bad flag or value before starting anything', () => {
  const env = { PATH: process.env.PATH, HOME: process.env.HOME };
  const tsx = (args: string[], extra: NodeJS.ProcessEnv = {}) => run('node_modules/.bin/tsx', args, { ...env, ...extra }, 30_000);

  // Concurrent: each case is a tsx process of a second or two.
  test.concurrent.each<[string, string[], NodeJS.ProcessEnv, string]>([
    [
      'npm start, a FILE that is not there',
      ['lib/local/start.ts', 'events/no-such-file.json'],
      {},
      'npm start: FILE "events/no-such-file.json" is not a file',
    ],
    ['npm start, a directory as FILE', ['lib/local/start.ts', 'events'], {}, 'npm start: FILE "events" is not a file'],
    [
      'npm start, --endpoint without a scheme',
      ['lib/local/start.ts', '--endpoint', '127.0.0.1:5000'],
      {},
      'npm start: --endpoint must be an http(s) URL',
    ],
    [
      'npm start, --usage-plans with USAGE_PLANS',
      ['lib/local/start.ts', '--usage-plans'],
      { USAGE_PLANS: '{"p":"abc"}' },
      'npm start: --usage-plans sets USAGE_PLANS itself',
    ],
    ['invoke:local, no --path', ['lib/local/invoke-local.ts'], {}, 'invoke:local: the event file is required: --path FILE'],
    [
      'invoke:local, an osls option it does not take',
      ['lib/local/invoke-local.ts', '--path', 'events/signup.json', '--env', 'A=b'],
      {},
      "invoke:local: Unknown option '--env'",
    ],
    ['local-aws, an unknown flag', ['lib/local/install-moto.ts', '--bogus'], {}, "local-aws: Unknown option '--bogus'"],
    ['local-aws, an argument', ['lib/local/install-moto.ts', 'now'], {}, "local-aws: Unexpected argument 'now'"],
    [
      'reconcile, --endpoint without a scheme',
      ['lib/ops/reconcile/cli.ts', '--endpoint', '127.0.0.1:5000', '--prefix', 'keyprov/local/'],
      {},
      'reconcile: --endpoint must be an http(s) URL',
    ],
    [
      'reconcile, no Region and no --endpoint',
      ['lib/ops/reconcile/cli.ts', '--prefix', 'keyprov/local/'],
      { AWS_CONFIG_FILE: '/nonexistent', AWS_SHARED_CREDENTIALS_FILE: '/nonexistent' },
      'reconcile: no AWS Region: set AWS_REGION; for a local AWS (moto), give --endpoint URL',
    ],
  ])('%s: one line naming it, exit 2, nothing on stdout', async (_, args, extra, line) => {
    const result = await tsx(args, extra);
    expect({ code: result.code, stdout: result.stdout, lines: result.stderr.trim().split('\n').length }).toEqual({
      code: 2,
      stdout: '',
      lines: 1,
    });
    expect(result.stderr.startsWith(line)).toBe(true);
    expect(result.stderr).toMatch(/\(see --help\)\n$/);
  });

  test('local-aws --help: the usage on stdout, exit 0', async () => {
    const result = await tsx(['lib/local/install-moto.ts', '--help']);
    expect(result).toMatchObject({ code: 0, stderr: '' });
    expect(result.stdout).toMatch(/^Usage: npm run local-aws\n/);
    expect(result.stdout).toContain('Exit code: 0 moto_server is available, 2 it is not');
  });
});
