import { type AwsResponse, isRecord, parseJson, withJson } from './http.js';
import type { Operation } from './operations.js';

/**
 * Eventual consistency of listings. Secrets Manager: "All Secrets Manager operations are eventually consistent.
 * ListSecrets might not reflect changes from the last five minutes" (API reference, ListSecrets); the API Gateway
 * control plane is eventually consistent too. moto lists a new item at once; this hides, from GetApiKeys and
 * ListSecrets, what the layer saw created less than `lagMs` ago. Direct reads (GetApiKey, DescribeSecret) are not
 * affected: the docs point to them for recent changes.
 */
export class ListingLag {
  /** API key ids and secret names, with the time their creation was answered. */
  #created = new Map<string, number>();

  /** Notes what a successful CreateApiKey / CreateSecret created. */
  record(op: Operation, response: AwsResponse): void {
    if (response.status >= 300) return;
    const json = parseJson(response.body);
    if (!isRecord(json)) return;
    if (op.service === 'apigateway' && op.name === 'CreateApiKey' && typeof json.id === 'string')
      this.#created.set(`key:${json.id}`, performance.now());
    if (op.service === 'secretsmanager' && op.name === 'CreateSecret' && typeof json.Name === 'string') {
      this.#created.set(`secret:${json.Name}`, performance.now());
    }
  }

  #recent(id: string, lagMs: number): boolean {
    const at = this.#created.get(id);
    if (at === undefined) return false;
    if (performance.now() - at < lagMs) return true;
    this.#created.delete(id);
    return false;
  }

  /** The listing without the recent items, and how many were left out; other responses unchanged. */
  filter(op: Operation, response: AwsResponse, lagMs: number): { response: AwsResponse; hidden: number } {
    if (lagMs <= 0 || response.status >= 300) return { response, hidden: 0 };
    const json = parseJson(response.body);
    if (!isRecord(json)) return { response, hidden: 0 };
    if (op.service === 'apigateway' && op.name === 'GetApiKeys') {
      // moto names the member `item`, AWS `items`: filter whichever is there.
      for (const member of ['item', 'items'] as const) {
        const list = json[member];
        if (!Array.isArray(list)) continue;
        const kept = list.filter((k) => !(isRecord(k) && typeof k.id === 'string' && this.#recent(`key:${k.id}`, lagMs)));
        return { response: withJson(response, { ...json, [member]: kept }), hidden: list.length - kept.length };
      }
    }
    if (op.service === 'secretsmanager' && op.name === 'ListSecrets' && Array.isArray(json.SecretList)) {
      const list: unknown[] = json.SecretList;
      const kept = list.filter((s) => !(isRecord(s) && typeof s.Name === 'string' && this.#recent(`secret:${s.Name}`, lagMs)));
      return { response: withJson(response, { ...json, SecretList: kept }), hidden: list.length - kept.length };
    }
    return { response, hidden: 0 };
  }
}
