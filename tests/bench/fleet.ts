/** The function instances of one run, each a process of its own (tests/bench/instance.ts). */
import { spawn } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';

export interface Instance {
  ready: Promise<void>;
  go(): void;
  done: Promise<{ maxRssKb: number; drained: boolean }>;
  kill(): void;
}

/** Starts an instance: it loads its modules, says ready, and runs on go. */
export function startInstance(env: NodeJS.ProcessEnv): Instance {
  const child = spawn(join('node_modules', '.bin', 'tsx'), [join('tests', 'bench', 'instance.ts')], {
    env,
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  let out = '';
  let markReady!: () => void;
  let failReady!: (error: Error) => void;
  const ready = new Promise<void>((resolve, reject) => {
    markReady = resolve;
    failReady = reject;
  });
  child.stdout.on('data', (chunk: Buffer) => {
    out += chunk.toString();
    if (out.startsWith('ready\n')) markReady();
  });
  const done = new Promise<{ maxRssKb: number; drained: boolean }>((resolve, reject) => {
    child.once('exit', (code) => {
      // BENCH_LOG_DIR: the instance's log lines (POWERTOOLS_LOG_LEVEL, BENCH_LOG_LEVEL in the bench) kept for a look.
      if (process.env.BENCH_LOG_DIR) appendFileSync(join(process.env.BENCH_LOG_DIR, `instance-${child.pid}.log`), out);
      const last = out.trim().split('\n').pop() ?? '';
      if (code !== 0) {
        const error = new Error(`instance exited with ${code}`);
        failReady(error);
        return reject(error);
      }
      resolve(JSON.parse(last) as { maxRssKb: number; drained: boolean });
    });
  });
  return { ready, done, go: () => child.stdin.end('go\n'), kill: () => child.kill('SIGKILL') };
}

/** Starts `n` instances and waits until every one is ready (or kills them all if one fails). */
export async function startFleet(n: number, env: NodeJS.ProcessEnv): Promise<Instance[]> {
  const fleet = Array.from({ length: n }, () => startInstance(env));
  try {
    await Promise.all(fleet.map((i) => i.ready));
  } catch (error) {
    for (const instance of fleet) instance.kill();
    throw error;
  }
  return fleet;
}
