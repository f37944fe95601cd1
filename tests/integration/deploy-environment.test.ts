/**
 * The seller's first deploy, dry: `serverless package` with exactly the parameters the documentation's deploy
 * command gives (README.md's, the shortest; docs/deployment.md's gives at least those), offline. Then every function
 * of the packaged template is configured from its template environment and must load its configuration
 * (lib/config.ts for provision, lib/registration/config.ts for register): a variable a function requires that the
 * documented parameters do not produce fails here, not at the seller's first cold start.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { loadConfig } from '../../lib/config.js';
import { loadKeyPageConfig } from '../../lib/key-page/config.js';
import { loadSweepConfig } from '../../lib/maintenance/config.js';
import { loadRegistrationConfig } from '../../lib/registration/config.js';
import { documentedShellBlocks } from '../helpers/doc-blocks.js';
import { type Run, run } from '../helpers/run-command.js';

const ROOT = resolve(__dirname, '../..');
const PACKAGE_TIMEOUT_MS = 240_000;
const ACCOUNT = '123456789012';
const REGION = 'us-east-1';

type Json = string | number | boolean | null | Json[] | { [key: string]: Json };
interface Template {
  Parameters?: Record<string, { Default?: string }>;
  Resources: Record<string, { Type: string; Properties?: Record<string, Json> }>;
}

/** The `serverless deploy` command of a documentation block: its options, with `<placeholders>` given example values. */
function deployCommand(where: string): string[] {
  const block = documentedShellBlocks().find((b) => b.where.startsWith(where) && /serverless deploy\b/.test(b.script));
  if (!block) throw new Error(`no serverless deploy command in ${where}`);
  const command = block.script
    .replace(/\\\n/g, ' ')
    .split('\n')
    .find((line) => /serverless deploy\b/.test(line));
  const words = (command ?? '').replace(/#.*$/, '').split(/\s+/).filter(Boolean);
  const options = words.slice(words.indexOf('deploy') + 1);
  return options.map((word) =>
    word
      .replace(/<[^>]*account[^>]*>/g, ACCOUNT)
      .replace(/<productCode>/g, 'prod4k2j9x8l7')
      .replace(/<your-domain>/g, 'seller.example.com'),
  );
}

const params = (options: string[]) => options.flatMap((word, i) => (options[i - 1] === '--param' ? [word.split('=')[0]] : []));

/** This process's environment without any AWS setting or credential: packaging must not need an account. */
function offlineEnv(scratch: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) if (!name.startsWith('AWS_')) env[name] = value;
  env.AWS_SHARED_CREDENTIALS_FILE = join(scratch, 'no-credentials');
  env.AWS_CONFIG_FILE = join(scratch, 'no-config');
  return env;
}

/**
 * A function's environment as Lambda would see it once CloudFormation has resolved it: a parameter by its value
 * (the `--param` became its default), a queue by its URL, any other reference or attribute by a stand-in ARN.
 */
function resolvedEnvironment(template: Template, variables: Record<string, Json>): NodeJS.ProcessEnv {
  const resolveValue = (value: Json): string => {
    if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') return String(value);
    if (value && typeof value === 'object' && !Array.isArray(value) && typeof value.Ref === 'string') {
      const name = value.Ref;
      const parameter = template.Parameters?.[name];
      if (parameter) return parameter.Default ?? '';
      const resource = template.Resources[name];
      if (resource?.Type === 'AWS::SQS::Queue')
        return `https://sqs.${REGION}.amazonaws.com/${ACCOUNT}/${String(resource.Properties?.QueueName ?? name)}`;
      return `arn:aws:cloudformation:${REGION}:${ACCOUNT}:${name}`;
    }
    // A function URL (the key page's, the hook's default target) as Lambda gives it.
    const getAtt = value && typeof value === 'object' && !Array.isArray(value) ? value['Fn::GetAtt'] : undefined;
    if (Array.isArray(getAtt) && getAtt[1] === 'FunctionUrl')
      return 'https://abcdefghijklmnopqrstuvwxyz012345.lambda-url.us-east-1.on.aws/';
    return `arn:aws:cloudformation:${REGION}:${ACCOUNT}:resolved`;
  };
  return Object.fromEntries(Object.entries(variables).map(([name, value]) => [name, resolveValue(value)]));
}

/** What each function's handler loads at cold start, by handler. */
const LOADERS: Record<string, (env: NodeJS.ProcessEnv) => unknown> = {
  'functions/provision.handler': loadConfig,
  'functions/register.handler': loadRegistrationConfig,
  'functions/sweep.handler': loadSweepConfig,
  'functions/key-page.handler': loadKeyPageConfig,
};

describe('the documented deploy command, packaged: every function gets every variable it requires', () => {
  const readme = deployCommand('README.md');
  const deployment = deployCommand('docs/deployment.md');
  let scratch: string;
  let result: Run;
  let template: Template;

  beforeAll(async () => {
    scratch = mkdtempSync(join(tmpdir(), 'keyprov-deploy-env-'));
    const packageDir = join(scratch, 'package');
    const workFolder = relative(ROOT, join(scratch, 'esbuild'));
    result = await run(
      'npm',
      ['exec', '--', 'serverless', 'package', ...readme, '--package', packageDir, '--param', `bundleWorkFolder=${workFolder}`],
      offlineEnv(scratch),
      PACKAGE_TIMEOUT_MS,
    );
    if (result.code !== 0)
      throw new Error(`serverless package failed (exit ${result.code} ${result.signal ?? ''}):\n${result.stdout}\n${result.stderr}`);
    template = JSON.parse(readFileSync(join(packageDir, 'cloudformation-template-update-stack.json'), 'utf8')) as Template;
  }, PACKAGE_TIMEOUT_MS + 30_000);

  afterAll(() => {
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  test("README's deploy command needs no registration page (the key page is the default), and docs/deployment.md's gives every parameter README's does", () => {
    expect(params(readme)).not.toContain('registrationPageUrl');
    expect(params(deployment)).toEqual(expect.arrayContaining(params(readme)));
    expect(readme.slice(0, 4)).toEqual(['--stage', 'prod', '--region', REGION]);
  });

  test('every function of the template loads its configuration from its template environment', () => {
    const functions = Object.entries(template.Resources).filter(([, r]) => r.Type === 'AWS::Lambda::Function');
    expect(functions.map(([name]) => name).sort()).toEqual([
      'KeyPageLambdaFunction',
      'ProvisionLambdaFunction',
      'RegisterLambdaFunction',
      'SweepLambdaFunction',
    ]);
    for (const [name, resource] of functions) {
      const handler = String(resource.Properties?.Handler);
      const load = LOADERS[handler];
      expect({ name, handler, known: load !== undefined }).toEqual({ name, handler, known: true });
      const variables = ((resource.Properties?.Environment as { Variables?: Record<string, Json> } | undefined)?.Variables ?? {}) as Record<
        string,
        Json
      >;
      const env = resolvedEnvironment(template, variables);
      let problem = '';
      try {
        load?.(env);
      } catch (error) {
        problem = error instanceof Error ? error.message : String(error);
      }
      expect({ name, problem }).toEqual({ name, problem: '' });
    }
  });

  test('without --param registrationPageUrl the hook sends buyers to the key page; an empty one would stop it: the check above can fail', () => {
    const register = template.Resources.RegisterLambdaFunction;
    const variables = (register?.Properties?.Environment as { Variables?: Record<string, Json> } | undefined)?.Variables ?? {};
    expect(variables.REGISTRATION_PAGE_URL).toEqual({ 'Fn::GetAtt': ['KeyPageLambdaFunctionUrl', 'FunctionUrl'] });
    const env = resolvedEnvironment(template, { ...variables, REGISTRATION_PAGE_URL: '' });
    expect(() => loadRegistrationConfig(env)).toThrow(/REGISTRATION_PAGE_URL is required/);
  });
});
