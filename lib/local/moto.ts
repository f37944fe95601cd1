import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';

/** The project-local virtualenv used where `moto_server` is not on PATH (npm runs scripts from the project root). */
const VENV = join(process.cwd(), '.venv');
const VENV_MOTO = join(VENV, 'bin', 'moto_server');

const runs = (command: string, args: string[]) => spawnSync(command, args, { stdio: 'ignore' }).status === 0;

/**
 * Finds `moto_server`: on PATH, else in the project's .venv, else installs `moto[server]` there with pip.
 * Throws with a clear message when Python 3 is missing or the install fails.
 */
export function ensureMotoServer(log: (line: string) => void = () => undefined): string {
  if (runs('moto_server', ['--help'])) return 'moto_server';
  if (existsSync(VENV_MOTO)) return VENV_MOTO;
  if (!runs('python3', ['--version'])) {
    throw new Error('moto_server is not on PATH and Python 3 is missing: install python3 (with venv), or moto[server], then retry.');
  }
  log(`moto_server not found: installing moto[server] into ${VENV}`);
  const steps: Array<[string, string[]]> = [
    ['python3', ['-m', 'venv', VENV]],
    [join(VENV, 'bin', 'pip'), ['install', '--quiet', 'moto[server]']],
  ];
  for (const [command, args] of steps) {
    const result = spawnSync(command, args, { stdio: 'inherit' });
    if (result.status !== 0) throw new Error(`Installing moto failed at: ${command} ${args.join(' ')}`);
  }
  return VENV_MOTO;
}

/** A free TCP port on the loopback interface. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

export interface MotoServer {
  endpoint: string;
  process: ChildProcess;
  stop(): Promise<void>;
}

async function waitUntilUp(endpoint: string, child: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`moto_server exited with code ${child.exitCode} before it was ready`);
    try {
      const response = await fetch(`${endpoint}/moto-api/`);
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`moto_server did not answer on ${endpoint} within ${timeoutMs} ms`);
}

/** Starts moto in server mode on a free loopback port and waits until it answers. */
export async function startMoto(options: { log?: (line: string) => void; timeoutMs?: number } = {}): Promise<MotoServer> {
  const command = ensureMotoServer(options.log);
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  const child = spawn(command, ['-H', '127.0.0.1', '-p', String(port)], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  try {
    await waitUntilUp(endpoint, child, options.timeoutMs ?? 30_000);
  } catch (error) {
    child.kill('SIGKILL');
    throw new Error(`${(error as Error).message}\n${stderr}`);
  }
  return {
    endpoint,
    process: child,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

/** Clears every resource of every service (POST /moto-api/reset). */
export async function resetMoto(endpoint: string): Promise<void> {
  const response = await fetch(`${endpoint}/moto-api/reset`, { method: 'POST' });
  if (!response.ok) throw new Error(`moto reset failed: HTTP ${response.status}`);
}
