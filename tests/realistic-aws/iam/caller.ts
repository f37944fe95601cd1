import { AsyncLocalStorage } from 'node:async_hooks';
import type { IncomingHttpHeaders } from 'node:http';
import http from 'node:http';

/**
 * Who makes a request. On AWS the SigV4 signature names the caller; moto checks no signature, so the layer names it
 * in one of two ways, first match wins:
 *
 * 1. In this process: code run inside {@link asPrincipal} (the provision function's invocations, the registration
 *    hook's, an operator tool called as a function) sends the header `x-realistic-aws-principal`, added to every
 *    outgoing HTTP request made in that async context. Both functions share one process and one environment in the
 *    suites, so the environment's credentials cannot tell them apart; the async context can.
 * 2. Anywhere (child processes, clients a test builds): the SigV4 access key id, when it is the name of a principal
 *    of the IAM world (`AWS_ACCESS_KEY_ID=operator tsx lib/ops/redrive/cli.ts …`).
 *
 * The header is added after signing, so it is not among the signed headers; moto ignores it, the layer removes it
 * before forwarding.
 */
export const PRINCIPAL_HEADER = 'x-realistic-aws-principal';

// One storage and one wrapper per process, kept on node:http itself: Jest gives each test file its own module
// registry and its own globalThis, but node:http (whose request the SDK calls) is the process's.
const SHARED = Symbol.for('realistic-aws.iam.caller');
const httpModule = http as typeof http & { [SHARED]?: AsyncLocalStorage<string> };
if (!httpModule[SHARED]) {
  const storage = new AsyncLocalStorage<string>();
  const original = http.request;
  // The SDK's Node handler calls http.request(options) with an options object; only those get the header.
  httpModule.request = function request(this: unknown, ...args: Parameters<typeof http.request>) {
    const principal = storage.getStore();
    const options: unknown = args[0];
    if (principal !== undefined && typeof options === 'object' && options !== null && !(options instanceof URL)) {
      const { headers } = options as http.RequestOptions;
      const withPrincipal: http.RequestOptions = {
        ...(options as http.RequestOptions),
        headers: { ...(headers as Record<string, string>), [PRINCIPAL_HEADER]: principal },
      };
      (args as unknown[])[0] = withPrincipal;
    }
    return original.apply(this, args as never);
  } as typeof http.request;
  httpModule[SHARED] = storage;
}
const storage: AsyncLocalStorage<string> = httpModule[SHARED];

/** Runs `work` as the named principal: every AWS call it makes (in its async context) is evaluated as that caller. */
export const asPrincipal = <T>(principal: string, work: () => T): T => storage.run(principal, work);

/** Wraps a function so that each of its calls runs as the named principal (a Lambda handler, a tool's entry). */
export const actingAs =
  <A extends unknown[], R>(principal: string, fn: (...args: A) => R) =>
  (...args: A): R =>
    asPrincipal(principal, () => fn(...args));

const ACCESS_KEY = /Credential=([^/,\s]+)\//;

/** The principal a request names: the header, else the SigV4 access key id; undefined when unsigned. */
export function callerOf(headers: IncomingHttpHeaders): { via: 'header' | 'access key id'; name: string } | undefined {
  const header = headers[PRINCIPAL_HEADER];
  const named = Array.isArray(header) ? header[0] : header;
  if (named) return { via: 'header', name: named };
  const key = ACCESS_KEY.exec(headers.authorization ?? '')?.[1];
  return key ? { via: 'access key id', name: key } : undefined;
}
