import { type IncomingHttpHeaders, type IncomingMessage, type OutgoingHttpHeaders, request } from 'node:http';
import type { Operation } from './operations.js';

/** A request as the layer sees it: read once, whole, so that every switch can look at the body. */
export interface AwsRequest {
  method: string;
  /** The request target as received (path and query). */
  url: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** A response, buffered: switches may rewrite moto's JSON before the caller sees it. */
export interface AwsResponse {
  status: number;
  headers: OutgoingHttpHeaders;
  body: Buffer;
}

/**
 * Hop-by-hop headers are not forwarded. moto (Werkzeug) answers `connection: close`: passing it on would make every
 * SDK call open a new connection, which real AWS does not force; the layer keeps its own connections alive.
 */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'te',
  'trailer',
  'content-length',
  // The layer's own header naming the caller (iam/caller.ts): not AWS's, so not moto's either.
  'x-realistic-aws-principal',
]);

const withoutHopByHop = (headers: IncomingHttpHeaders | OutgoingHttpHeaders): OutgoingHttpHeaders =>
  Object.fromEntries(Object.entries(headers).filter(([name, value]) => value !== undefined && !HOP_BY_HOP.has(name.toLowerCase())));

export const readBody = (req: IncomingMessage) =>
  new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });

/** Parses JSON, or gives undefined: moto answers some calls with HTML content-types, callers may send anything. */
export function parseJson(body: Buffer | string): unknown {
  try {
    return JSON.parse(body.toString());
  } catch {
    return undefined;
  }
}

export const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** A string member of a JSON request body, if there is one. */
export function jsonMember(body: Buffer, member: string): string | undefined {
  const parsed = parseJson(body);
  const value = isRecord(parsed) ? parsed[member] : undefined;
  return typeof value === 'string' ? value : undefined;
}

/**
 * Sends a request to moto and buffers the answer. The Host header is kept: moto builds SQS queue URLs from it, so
 * they keep naming the layer.
 */
export function forward(target: URL, req: AwsRequest, body: Buffer = req.body): Promise<AwsResponse> {
  return new Promise((resolve, reject) => {
    const headers = { ...withoutHopByHop(req.headers), 'content-length': String(body.length) };
    const upstream = request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 502, headers: withoutHopByHop(res.headers), body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    upstream.on('error', reject);
    upstream.end(body);
  });
}

/** A GET of moto's own state, signed like the caller's request so that moto picks the same Region. */
export async function motoGet(target: URL, like: AwsRequest, path: string): Promise<{ status: number; json: unknown }> {
  const headers: IncomingHttpHeaders = { host: like.headers.host, accept: 'application/json' };
  if (like.headers.authorization) headers.authorization = like.headers.authorization;
  const response = await forward(target, { method: 'GET', url: path, headers, body: Buffer.alloc(0) });
  return { status: response.status, json: parseJson(response.body) };
}

/**
 * A JSON-protocol call to moto (X-Amz-Target `target`), signed like the caller's request (same Region): for the state
 * a switch needs, or for what the layer does itself. The answer, its status and its JSON (an empty object when none).
 */
export async function motoJson(
  moto: URL,
  like: AwsRequest,
  target: string,
  version: string,
  body: unknown,
): Promise<{ status: number; response: AwsResponse; json: Record<string, unknown> }> {
  const headers: IncomingHttpHeaders = {
    host: like.headers.host,
    'content-type': `application/x-amz-json-${version}`,
    'x-amz-target': target,
    ...(like.headers.authorization && { authorization: like.headers.authorization }),
  };
  const response = await forward(moto, { method: 'POST', url: '/', headers, body: Buffer.from(JSON.stringify(body)) });
  const parsed = parseJson(response.body);
  return { status: response.status, response, json: isRecord(parsed) ? parsed : {} };
}

/** A JSON response with the given body. */
export function jsonResponse(
  status: number,
  body: unknown,
  headers: OutgoingHttpHeaders = {},
  contentType = 'application/json',
): AwsResponse {
  return { status, headers: { 'content-type': contentType, ...headers }, body: Buffer.from(JSON.stringify(body)) };
}

/** Replaces the body of a response with new JSON (the length is set when it is sent). */
export const withJson = (response: AwsResponse, body: unknown): AwsResponse => ({ ...response, body: Buffer.from(JSON.stringify(body)) });

/**
 * An error in the shape of the operation's protocol. REST-JSON (API Gateway): `x-amzn-ErrorType` header and
 * `{message}`. JSON 1.0/1.1: `{__type, message}` plus the header; SQS, being awsQuery-compatible, also gets the
 * `x-amzn-query-error` header its SDK reads the error code from.
 */
export function awsError(op: Operation, status: number, type: string, message: string, extra: OutgoingHttpHeaders = {}): AwsResponse {
  const headers: OutgoingHttpHeaders = { 'x-amzn-ErrorType': type, 'x-amzn-RequestId': crypto.randomUUID(), ...extra };
  if (op.jsonVersion === undefined) return jsonResponse(status, { message }, headers);
  if (op.service === 'sqs') headers['x-amzn-query-error'] = `${type};${status < 500 ? 'Sender' : 'Receiver'}`;
  return jsonResponse(status, { __type: type, message }, headers, `application/x-amz-json-${op.jsonVersion}`);
}
