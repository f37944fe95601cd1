import type { BatchDeps } from '../../lib/pipeline/process-batch.js';

/** The function's dependencies with one port method that does its work and then throws: a crash right after that step. */
export function crashAfter(port: 'secrets' | 'apiKeys' | 'completions', method: string) {
  return (deps: BatchDeps): BatchDeps => {
    const original = deps[port] as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
    const wrapped = {
      ...original,
      [method]: async (...args: unknown[]) => {
        await original[method]?.(...args);
        throw new Error(`injected crash after ${method}`);
      },
    };
    return { ...deps, [port]: wrapped };
  };
}
