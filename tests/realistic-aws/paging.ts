import { type AwsRequest, type AwsResponse, isRecord, parseJson, withJson } from './http.js';
import type { Operation } from './operations.js';

/** GetApiKeys' page size when the caller gives no `limit`, and the largest it honours (API reference, GetApiKeys). */
export const API_KEYS_PAGE = { default: 25, max: 500 } as const;

/**
 * GetApiKeys in pages, as AWS answers it: at most `limit` keys (default 25, at most 500) from `position`, and the
 * `position` of the next page while keys remain. moto answers every key in one page whatever the limit, which hides
 * what listing or counting the Region's keys costs (20 calls for 10,000 keys at 500 a page). The position is the
 * offset into moto's (stable, creation-ordered) listing, opaque to the caller; AWS's own positions are opaque too and
 * its order is not documented. A position this layer did not hand out reads from the start (AWS's answer to one is not
 * documented).
 */
export function pagedApiKeys(op: Operation, req: AwsRequest, response: AwsResponse): AwsResponse {
  if (op.service !== 'apigateway' || op.name !== 'GetApiKeys' || response.status >= 300) return response;
  const json = parseJson(response.body);
  if (!isRecord(json)) return response;
  const member = Array.isArray(json.item) ? 'item' : Array.isArray(json.items) ? 'items' : undefined;
  if (!member) return response;
  const all = json[member] as unknown[];
  const query = new URL(req.url, 'http://layer').searchParams;
  const limit = Math.min(API_KEYS_PAGE.max, Math.max(1, Number(query.get('limit')) || API_KEYS_PAGE.default));
  const start = offsetOf(query.get('position'));
  const page = all.slice(start, start + limit);
  const next = start + page.length < all.length ? positionOf(start + page.length) : undefined;
  const { position: _, ...rest } = json;
  return withJson(response, { ...rest, [member]: page, ...(next && { position: next }) });
}

const positionOf = (offset: number) => Buffer.from(`layer:${offset}`).toString('base64url');

function offsetOf(position: string | null): number {
  if (!position) return 0;
  const match = /^layer:(\d+)$/.exec(Buffer.from(position, 'base64url').toString());
  return match ? Number(match[1]) : 0;
}
