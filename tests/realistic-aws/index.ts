import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FaultRule, Outcome } from './faults.js';
import { type AwsRequest, jsonResponse, readBody } from './http.js';
import { IamSwitch } from './iam/switch.js';
import type { IamWorld } from './iam/world.js';
import type { RegisteredCustomer } from './metering.js';
import { operationOf } from './operations.js';
import { Pipeline } from './pipeline.js';
import type { RotationFunction } from './rotation.js';
import { NONE, type RealisticSettings, validate } from './settings.js';
import { type RealisticStats, StatsRecorder } from './stats.js';

export type { FaultRule } from './faults.js';
export { actingAs, asPrincipal } from './iam/caller.js';
export { HARNESS, type IamDenial, IamSwitch } from './iam/switch.js';
export { IamWorld } from './iam/world.js';
export type { RegisteredCustomer } from './metering.js';
export { type Operation, operationOf } from './operations.js';
export type { RotationFunction, RotationStepEvent } from './rotation.js';
export * from './settings.js';
export type { RealisticStats } from './stats.js';

/**
 * A local AWS that answers like the real one: moto does the work, this HTTP layer in front of it adds the documented
 * behaviours moto lacks (throttling, usage-plan conflicts and rules, eventual consistency, IAM denials, secrets
 * being deleted, partial batch failures, network chaos, Marketplace ResolveCustomer), each behind a switch.
 * It keeps the API of the former fault proxy and the statistics of the former throttling proxy of the benchmark.
 */
export interface RealisticAws {
  /** `http://127.0.0.1:PORT`: point SDK clients (endpoint) here. */
  endpoint: string;
  /** Changes switches at runtime (merged into the current ones; `undefined` turns a switch off). */
  configure(settings: Partial<RealisticSettings>): void;
  settings(): RealisticSettings;
  /** Requests seen: the `X-Amz-Target` of JSON protocols (`secretsmanager.CreateSecret`), else `METHOD path`. */
  seen: string[];
  /** Adds a fault rule; rules are checked before every switch. */
  inject(rule: FaultRule): void;
  /** Removes every rule. */
  clear(): void;
  /** How many requests each rule failed so far, in order of injection. */
  injected(): number[];
  stats(): RealisticStats;
  /** Zeroes the statistics and refills the throttling buckets. */
  resetStats(): void;
  /**
   * The `iam` switch: with a world, every request is evaluated as AWS evaluates it before moto sees it (its caller
   * named by iam/caller.ts); without one, no IAM. Returns the switch (its `denials` and `problems`).
   */
  useIam(world: IamWorld | undefined): IamSwitch | undefined;
  /**
   * The rotation function behind `functionArn`, as Secrets Manager would invoke it: RotateSecret with
   * RotateImmediately false runs its testSecret step (rotation.ts). `undefined` removes it.
   */
  rotationFunction(functionArn: string, fn: RotationFunction | undefined): void;
  /** What went wrong in RotateSecret's configuration tests (each answered with a 500): a suite that sees any fails. */
  rotationProblems(): string[];
  /** Makes ResolveCustomer resolve `token` to this customer (for `expiresInMs`, then ExpiredTokenException). */
  registerToken(token: string, customer: RegisteredCustomer, options?: { expiresInMs?: number }): void;
  close(): Promise<void>;
}

/** Sends an outcome: an answer, nothing at all (the caller's timeout fires), or a TCP reset. */
function deliver(req: IncomingMessage, res: ServerResponse, outcome: Outcome): void {
  if (outcome.kind === 'hold') return;
  if (outcome.kind === 'reset') {
    // An RST, as a load balancer dropping the connection would send; destroy() would close it cleanly instead.
    if (typeof req.socket.resetAndDestroy === 'function') req.socket.resetAndDestroy();
    else req.socket.destroy();
    return;
  }
  if (res.destroyed || res.headersSent) return;
  const { status, headers, body } = outcome.response;
  res.writeHead(status, { ...headers, 'content-length': String(body.length) }).end(body);
}

/**
 * Starts the layer on a free loopback port in front of `target` (moto's endpoint), with every switch off unless
 * `settings` (e.g. {@link REALISTIC}) turns some on.
 */
export async function startRealisticAws(target: string, settings: Partial<RealisticSettings> = {}): Promise<RealisticAws> {
  let current: RealisticSettings = validate({ ...NONE, ...settings });
  const stats = new StatsRecorder();
  const seen: string[] = [];
  const pipeline = new Pipeline(new URL(target), stats, () => current);
  const apply = (changes: Partial<RealisticSettings>) => {
    current = validate({ ...current, ...changes });
    pipeline.throttle.configure(current.throttle);
    // Giving chaos or batch-failure settings restarts their seeded sequences, so that a run can be replayed.
    if ('chaos' in changes) pipeline.chaos.reseed(current.chaos);
    if ('sendMessageBatchFailures' in changes) pipeline.batches.reseed(current.sendMessageBatchFailures);
  };
  apply(current);

  const server: Server = createServer(async (req, res) => {
    try {
      const body = await readBody(req);
      const request: AwsRequest = { method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers, body };
      const op = operationOf(request.method, request.url, req.headers);
      seen.push(op.seen);
      stats.count('requests', op.key);
      deliver(req, res, await pipeline.decide(request, op));
    } catch (error) {
      // moto unreachable or a bug of the layer: say so in a 502, never hang the caller.
      deliver(req, res, { kind: 'respond', response: jsonResponse(502, { message: `realistic-aws: ${(error as Error).message}` }) });
    }
  });
  // SDK clients keep connections alive; do not close them between calls, as AWS does not.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    endpoint: `http://127.0.0.1:${port}`,
    configure: apply,
    settings: () => structuredClone(current),
    seen,
    inject: (rule) => pipeline.rules.inject(rule),
    clear: () => pipeline.rules.clear(),
    injected: () => pipeline.rules.injected(),
    stats: () => stats.snapshot(),
    resetStats() {
      stats.reset();
      pipeline.throttle.reset();
    },
    useIam(world) {
      pipeline.iam = world ? new IamSwitch(world, new URL(target)) : undefined;
      return pipeline.iam;
    },
    registerToken: (token, customer, options) => pipeline.metering.register(token, customer, options),
    rotationFunction: (functionArn, fn) => pipeline.rotation.register(functionArn, fn),
    rotationProblems: () => [...pipeline.rotation.problems],
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Held requests (timeouts) and idle keep-alive connections would keep the server open.
        server.closeAllConnections();
      }),
  };
}
