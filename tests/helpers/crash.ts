import type { BatchDeps } from '../../lib/pipeline/process-batch.js';

/**
 * The function's dependencies with one port method that does its work and then throws: a crash right after that
 * step — after its `nth` call (the first by default; the record store's second `put` is the final, active record).
 */
export function crashAfter(port: 'secrets' | 'apiKeys' | 'completions' | 'records', method: string, nth = 1) {
  return (deps: BatchDeps): BatchDeps => {
    const original = deps[port] as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
    let calls = 0;
    const wrapped = {
      ...original,
      [method]: async (...args: unknown[]) => {
        const result = await original[method]?.(...args);
        if (++calls === nth) throw new Error(`injected crash after ${method}`);
        return result;
      },
    };
    return { ...deps, [port]: wrapped };
  };
}
