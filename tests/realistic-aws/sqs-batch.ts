import { type AwsResponse, isRecord, jsonResponse, parseJson, withJson } from './http.js';
import { SeededRandom } from './random.js';
import type { BatchFailureSettings } from './settings.js';

/** A `Failed` entry of SendMessageBatch (model `BatchResultErrorEntry`): a server-side failure, worth retrying. */
export interface BatchFailure {
  Id: string;
  SenderFault: false;
  Code: 'InternalError';
  Message: string;
}

/** The rewritten request: the body to forward (undefined when every entry fails) and the entries failed on purpose. */
export interface BatchPlan {
  forwardBody: Buffer | undefined;
  failed: BatchFailure[];
}

/**
 * SendMessageBatch partial failures. On AWS a batch call can succeed (HTTP 200) while some entries fail: they are
 * listed in `Failed`, and a caller that only checks the status loses them. moto never fails an entry. The chosen
 * entries are not forwarded (so they are really not sent) and are merged into moto's `Failed`.
 */
export class BatchFailures {
  #random = new SeededRandom(1);
  #seen = 0;

  /** Restarts the choice (`configure` calls it whenever the settings are given). */
  reseed(settings: BatchFailureSettings | undefined): void {
    this.#random = new SeededRandom(settings?.seed ?? 1);
    this.#seen = 0;
  }

  #fails(settings: BatchFailureSettings): boolean {
    this.#seen++;
    if (settings.everyNth !== undefined && settings.everyNth > 0) return this.#seen % settings.everyNth === 0;
    return this.#random.next() < settings.rate;
  }

  /** Decides which entries fail; undefined when the body is not a batch or nothing fails. */
  plan(body: Buffer, settings: BatchFailureSettings | undefined): BatchPlan | undefined {
    if (!settings) return undefined;
    const request = parseJson(body);
    if (!isRecord(request) || !Array.isArray(request.Entries)) return undefined;
    const entries: unknown[] = request.Entries;
    const kept: unknown[] = [];
    const failed: BatchFailure[] = [];
    for (const entry of entries) {
      const id = isRecord(entry) && typeof entry.Id === 'string' ? entry.Id : undefined;
      if (id !== undefined && this.#fails(settings))
        failed.push({ Id: id, SenderFault: false, Code: 'InternalError', Message: 'An internal error occurred.' });
      else kept.push(entry);
    }
    if (failed.length === 0) return undefined;
    return { forwardBody: kept.length > 0 ? Buffer.from(JSON.stringify({ ...request, Entries: kept })) : undefined, failed };
  }

  /** moto's answer with our failures added (or a whole answer when nothing was forwarded). */
  merge(response: AwsResponse | undefined, plan: BatchPlan): AwsResponse {
    if (!response) return jsonResponse(200, { Successful: [], Failed: plan.failed }, {}, 'application/x-amz-json-1.0');
    const json = parseJson(response.body);
    if (response.status >= 300 || !isRecord(json)) return response;
    const failed = Array.isArray(json.Failed) ? json.Failed : [];
    return withJson(response, {
      ...json,
      Successful: Array.isArray(json.Successful) ? json.Successful : [],
      Failed: [...failed, ...plan.failed],
    });
  }
}
