import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { Template } from './template.js';

// The project's root: npm scripts and Jest run there (a plain path: this file is loaded as CommonJS by Jest and as
// an ES module by tsx).
const ROOT = process.cwd();
const CACHE = join(ROOT, 'node_modules', '.cache', 'realistic-aws-iam');
const PACKAGE_TIMEOUT_MS = 150_000;

export interface PackageOptions {
  stage: string;
  region: string;
  /** `--param name=value` settings (serverless.yml `${param:…}`), e.g. signupPublisherArns. */
  params: Record<string, string>;
}

/** This process's environment without any AWS setting or credential: packaging needs no account. */
function offlineEnv(scratch: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) if (!name.startsWith('AWS_')) env[name] = value;
  env.AWS_SHARED_CREDENTIALS_FILE = join(scratch, 'no-credentials');
  env.AWS_CONFIG_FILE = join(scratch, 'no-config');
  return env;
}

/**
 * The CloudFormation template `serverless package` writes for this stage, Region and parameters. Packaged once per
 * content of serverless.yml and settings, then read from node_modules/.cache/realistic-aws-iam (a package takes
 * ~6 s). A failing package throws with its output: the IAM switch never runs on a template it could not make.
 */
export function packagedTemplate(options: PackageOptions): Template {
  const serverlessYml = readFileSync(join(ROOT, 'serverless.yml'), 'utf8');
  const key = createHash('sha256')
    .update(JSON.stringify([serverlessYml, options.stage, options.region, Object.entries(options.params).sort()]))
    .digest('hex')
    .slice(0, 16);
  const cached = join(CACHE, `${key}.json`);
  if (!existsSync(cached)) {
    mkdirSync(CACHE, { recursive: true });
    const scratch = mkdtempSync(join(CACHE, 'package-'));
    try {
      const packageDir = join(scratch, 'package');
      const args = ['exec', '--', 'serverless', 'package', '--stage', options.stage, '--region', options.region, '--package', packageDir];
      const params = { ...options.params, bundleWorkFolder: relative(ROOT, join(scratch, 'esbuild')) };
      for (const [name, value] of Object.entries(params)) args.push('--param', `${name}=${value}`);
      const run = spawnSync('npm', args, { cwd: ROOT, env: offlineEnv(scratch), encoding: 'utf8', timeout: PACKAGE_TIMEOUT_MS });
      if (run.status !== 0)
        throw new Error(
          `realistic-aws iam: serverless package failed (exit ${run.status} ${run.signal ?? ''}):\n${run.stdout}\n${run.stderr}`,
        );
      // Renamed into place whole, so that a concurrent run never reads half a file.
      renameSync(join(packageDir, 'cloudformation-template-update-stack.json'), cached);
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  }
  return JSON.parse(readFileSync(cached, 'utf8')) as Template;
}
