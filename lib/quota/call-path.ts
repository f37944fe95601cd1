/**
 * The call path: every AWS call of the use cases goes through one runner — the retry policy, and for API Gateway the
 * instance's rate limiter and the usage-plan write turns (lib/quota/retry.ts) — put around every method of an adapter
 * once, where the dependencies are built (lib/pipeline/process-record.ts, lib/maintenance/deps.ts). The use cases
 * call the adapters (`deps.apiKeys.createApiKey(…)`) and never name an operation: each method's AWS operation is
 * named once, in a table beside its adapter ({@link CallTable}), whose type lists every method of the port, so a
 * method added without an entry does not compile, and no call can miss the retries or the quota.
 */

/** Runs one AWS call of `operation` under the call path's policy (lib/quota/retry.ts withRetry). */
export type CallRunner = <T>(operation: string, call: () => Promise<T>) => Promise<T>;

type Method = (...args: never[]) => Promise<unknown>;

/**
 * How a port's method reaches AWS: the name of the operation of its one call — the whole method is one attempt,
 * retried as a whole (a follow-up look it makes after a 409 included) — or, for a method that makes several calls
 * each of which takes its own limiter slot and is retried on its own (the pages of GetApiKeys), the method given the
 * runner, through which it makes each of those calls.
 */
export type CallPlan<Port, M> = string | ((port: Port, run: CallRunner) => M);

/** A plan for every method of `Port`. */
export type CallTable<Port> = { readonly [K in keyof Port]-?: Port[K] extends Method ? CallPlan<Port, Port[K]> : never };

/**
 * `port` with every method of `table` going through `run`: a plain object (its methods its own properties, so a test
 * can replace one with a spread). The method is looked up on `port` at each call.
 */
export function throughRunner<Port extends object>(port: Port, table: CallTable<Port>, run: CallRunner): Port {
  const routed: Record<string, unknown> = {};
  for (const [name, plan] of Object.entries(table) as Array<[string, CallPlan<Port, Method>]>) {
    const method = () => (port as Record<string, Method>)[name] as (...args: unknown[]) => Promise<unknown>;
    routed[name] = typeof plan === 'string' ? (...args: unknown[]) => run(plan, () => method().apply(port, args)) : plan(port, run);
  }
  return routed as Port;
}
