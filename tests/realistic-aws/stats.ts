/** What the layer saw and what each switch injected. Tables are keyed by operation key (see `Operation.key`). */
export interface RealisticStats {
  /** Requests by operation (`X-Amz-Target` for JSON protocols, the operation name for API Gateway). */
  requests: Record<string, number>;
  /** 429 TooManyRequestsException answered by the throttle, by operation. */
  throttled: Record<string, number>;
  /** Successful CreateApiKey responses, by second since start or `resetStats()`. */
  createdPerSecond: number[];
  /** 409 ConflictException from usage-plan write serialisation, by operation. */
  conflicts: Record<string, number>;
  /** How long each usage-plan write that got the Region's slot held it (ms, in the order they ended). */
  usagePlanSlotMs: number[];
  /** 404 NotFoundException for unknown usage plans, by operation. */
  unknownPlans: Record<string, number>;
  /** CreateUsagePlanKey calls refused because the key is already in a plan with a common API stage. */
  planStageConflicts: number;
  /** AccessDeniedException answers, by operation. */
  deniedCalls: Record<string, number>;
  /** InvalidRequestException answers for secrets marked for deletion, by operation. */
  deletingSecrets: Record<string, number>;
  /** Chaos faults by kind and phase: `5xx-before`, `reset-after`, `timeout-before`, `409-before`, … */
  chaos: Record<string, number>;
  /** Items left out of listings because they were created less than `listingLagMs` ago, by operation. */
  listingHidden: Record<string, number>;
  /** SendMessageBatch entries failed on purpose (not forwarded, reported in `Failed`). */
  batchEntriesFailed: number;
  /** ResolveCustomer outcomes: `resolved`, `InvalidTokenException`, `ExpiredTokenException`, … */
  resolveCustomer: Record<string, number>;
  /** Requests answered by an injected {@link FaultRule}. */
  injectedRules: number;
  /** CreateApiKey refused with 429 LimitExceededException by the key cap (key-cap.ts), by operation. */
  keyCapRefused: Record<string, number>;
}

const empty = (): RealisticStats => ({
  requests: {},
  throttled: {},
  createdPerSecond: [],
  conflicts: {},
  usagePlanSlotMs: [],
  unknownPlans: {},
  planStageConflicts: 0,
  deniedCalls: {},
  deletingSecrets: {},
  chaos: {},
  listingHidden: {},
  batchEntriesFailed: 0,
  resolveCustomer: {},
  injectedRules: 0,
  keyCapRefused: {},
});

type Table = { [K in keyof RealisticStats]: RealisticStats[K] extends Record<string, number> ? K : never }[keyof RealisticStats];

/** The running counters. */
export class StatsRecorder {
  #stats = empty();
  #started = performance.now();

  /** Adds `n` to `table[key]`. */
  count(table: Table, key: string, n = 1): void {
    const counts = this.#stats[table];
    counts[key] = (counts[key] ?? 0) + n;
  }

  add(field: 'planStageConflicts' | 'batchEntriesFailed' | 'injectedRules', n = 1): void {
    this.#stats[field] += n;
  }

  /** Records how long a usage-plan write held the Region's slot. */
  slotHeld(ms: number): void {
    this.#stats.usagePlanSlotMs.push(ms);
  }

  /** Records a successful CreateApiKey in the current second. */
  created(): void {
    const second = Math.floor((performance.now() - this.#started) / 1000);
    this.#stats.createdPerSecond[second] = (this.#stats.createdPerSecond[second] ?? 0) + 1;
  }

  reset(): void {
    this.#stats = empty();
    this.#started = performance.now();
  }

  /** A copy (seconds without a creation read 0). */
  snapshot(): RealisticStats {
    const copy = structuredClone(this.#stats);
    return { ...copy, createdPerSecond: Array.from(copy.createdPerSecond, (n) => n ?? 0) };
  }
}
