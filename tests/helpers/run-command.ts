import { spawn } from 'node:child_process';

import { resolve } from 'node:path';

const ROOT = resolve(__dirname, '../..');

export interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs a command in its own process group; on timeout kills the whole group (npm, serverless, esbuild). */
export function run(command: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<Run> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, args, { cwd: ROOT, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const timer = setTimeout(() => {
      stderr += `\n[test] killed after ${timeoutMs} ms`;
      if (child.pid) process.kill(-child.pid, 'SIGKILL');
    }, timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolvePromise({ code, signal, stdout, stderr });
    });
  });
}

/**
 * Runs one of the operations tools' entry points (`lib/ops/<tool>/cli.ts`) as `npm run <tool>` does (tsx), in a
 * process of its own, signed as `principal` (its access key id: the realistic layer's IAM switch), with the layer's
 * endpoint taken out of the environment so that only the tool's own `--endpoint` counts.
 */
export function runTool(script: string, principal: string, args: string[], timeoutMs = 50_000): Promise<Run> {
  const { AWS_ENDPOINT_URL: _layer, ...rest } = process.env;
  const env = { ...rest, AWS_ACCESS_KEY_ID: principal, AWS_SECRET_ACCESS_KEY: 'testing', AWS_REGION: 'us-east-1' };
  return run(resolve(ROOT, 'node_modules', '.bin', 'tsx'), [script, ...args], env, timeoutMs);
}
