import { setTimeout as sleep } from 'node:timers/promises';
import { ListingLag } from './consistency.js';
import { accessDenied, Chaos, CONCURRENT_MODIFICATION, FaultRules, type Outcome } from './faults.js';
import { type AwsRequest, type AwsResponse, awsError, forward } from './http.js';
import type { IamSwitch } from './iam/switch.js';
import { keyCapReached } from './key-cap.js';
import { Metering } from './metering.js';
import { isUsagePlanWrite, type Operation } from './operations.js';
import { pagedApiKeys } from './paging.js';
import { RotationSchedules } from './rotation.js';
import { currentByDefault, DeletingSecrets } from './secrets.js';
import type { RealisticSettings } from './settings.js';
import { BatchFailures } from './sqs-batch.js';
import type { StatsRecorder } from './stats.js';
import { ApiGatewayThrottle } from './throttling.js';
import { planStageConflict, UsagePlanWriteLock, unknownPlan } from './usage-plans.js';

const respond = (response: AwsResponse): Outcome => ({ kind: 'respond', response });

/**
 * The decisions for one request, in the order a real call meets them: injected rules (explicit test intent) first,
 * then chaos before the service, then the service's own checks (IAM, throttling, state rules, serialisation), then
 * moto does the work and the answer is adjusted (listings, partial failures), then chaos after the service.
 */
export class Pipeline {
  readonly rules = new FaultRules();
  readonly chaos = new Chaos();
  readonly throttle = new ApiGatewayThrottle();
  readonly metering = new Metering();
  readonly batches = new BatchFailures();
  /** RotateSecret with RotateImmediately false, and the rotation configurations it keeps (rotation.ts). */
  readonly rotation = new RotationSchedules();
  readonly #lock = new UsagePlanWriteLock();
  readonly #lag = new ListingLag();
  readonly #deleting = new DeletingSecrets();
  /** The `iam` switch (tests/realistic-aws/iam): off until a test gives the layer an IAM world. */
  iam: IamSwitch | undefined;

  constructor(
    readonly moto: URL,
    readonly stats: StatsRecorder,
    readonly settings: () => RealisticSettings,
  ) {}

  async decide(req: AwsRequest, op: Operation): Promise<Outcome> {
    const rule = this.rules.match(req);
    if (rule) {
      this.stats.add('injectedRules');
      return rule;
    }
    const fault = this.chaos.pick(op, this.settings().chaos);
    if (fault?.phase === 'before') {
      this.stats.count('chaos', `${fault.kind}-before`);
      return this.chaos.outcome(op, fault);
    }
    const response = await this.#answer(req, op);
    if (fault?.phase === 'after') {
      this.stats.count('chaos', `${fault.kind}-after`);
      return this.chaos.outcome(op, fault);
    }
    return respond(response);
  }

  /** What the service answers, faults aside. */
  async #answer(req: AwsRequest, op: Operation): Promise<AwsResponse> {
    const settings = this.settings();
    const refused = await this.iam?.check(req, op);
    if (refused) {
      if (refused.status < 500) this.stats.count('deniedCalls', op.key);
      return refused;
    }
    if (op.service === 'metering') {
      const { response, outcome } = this.metering.answer(op, req, settings.resolveCustomer);
      this.stats.count('resolveCustomer', outcome);
      return response;
    }
    const denied = accessDenied(op, req, settings.accessDenied);
    if (denied) {
      this.stats.count('deniedCalls', op.key);
      return denied;
    }
    if (op.service === 'apigateway') {
      const throttled = this.throttle.take(op.name);
      if (throttled) {
        this.stats.count('throttled', op.key);
        const headers = { 'retry-after': String(throttled.retryAfterSeconds) };
        return awsError(op, 429, 'TooManyRequestsException', 'Too Many Requests', headers);
      }
    }
    if (settings.deletingSecrets) {
      const marked = this.#deleting.check(op, req);
      if (marked) {
        this.stats.count('deletingSecrets', op.key);
        return marked;
      }
    }
    if (isUsagePlanWrite(op) && settings.usagePlanWrites?.serialise) return this.#serialised(req, op, settings.usagePlanWrites.holdMs);
    return this.#checkedForward(req, op);
  }

  /** A usage-plan write with the Region's slot held for at least `holdMs`; an overlapping one gets 409. */
  async #serialised(req: AwsRequest, op: Operation, holdMs: number): Promise<AwsResponse> {
    if (!this.#lock.tryAcquire(op.region)) {
      this.stats.count('conflicts', op.key);
      return awsError(op, 409, 'ConflictException', CONCURRENT_MODIFICATION);
    }
    const started = performance.now();
    try {
      const response = await this.#checkedForward(req, op);
      const remaining = holdMs - (performance.now() - started);
      // Node truncates a timer's delay to whole milliseconds: round up, so that the slot is held at least holdMs.
      if (response.status < 300 && remaining > 0) await sleep(Math.ceil(remaining));
      return response;
    } finally {
      this.#lock.release(op.region);
      this.stats.slotHeld(performance.now() - started);
    }
  }

  /** The state rules moto lacks, then moto itself, then the adjustments of its answer. */
  async #checkedForward(req: AwsRequest, op: Operation): Promise<AwsResponse> {
    const settings = this.settings();
    if (op.service === 'apigateway' && settings.unknownPlan404) {
      const missing = await unknownPlan(this.moto, op, req);
      if (missing) {
        this.stats.count('unknownPlans', op.key);
        return missing;
      }
    }
    const full = await keyCapReached(this.moto, op, req, settings.keyCap);
    if (full) {
      this.stats.count('keyCapRefused', op.key);
      return full;
    }
    if (op.service === 'apigateway' && settings.onePlanPerStage) {
      const conflict = await planStageConflict(this.moto, op, req);
      if (conflict) {
        this.stats.add('planStageConflicts');
        return conflict;
      }
    }
    const batch =
      op.service === 'sqs' && op.name === 'SendMessageBatch' ? this.batches.plan(req.body, settings.sendMessageBatchFailures) : undefined;
    if (batch) this.stats.add('batchEntriesFailed', batch.failed.length);
    let response: AwsResponse;
    if (batch) {
      // Entries failed on purpose are not sent; when all fail, moto is not called at all.
      const forwarded = batch.forwardBody ? await forward(this.moto, req, batch.forwardBody) : undefined;
      response = this.batches.merge(forwarded, batch);
    } else {
      // RotateSecret with RotateImmediately false is the layer's own (moto would start a rotation): never forwarded;
      // so is CancelRotateSecret of a configuration it keeps (moto knows none of them).
      response =
        (await this.rotation.rotate(this.moto, op, req)) ??
        (await this.rotation.cancel(this.moto, op, req)) ??
        (await forward(this.moto, req, currentByDefault(op, req)));
    }
    return this.#afterMoto(req, op, this.rotation.describe(op, response));
  }

  #afterMoto(req: AwsRequest, op: Operation, response: AwsResponse): AwsResponse {
    const settings = this.settings();
    if (op.service === 'apigateway' && op.name === 'CreateApiKey' && response.status < 300) this.stats.created();
    if (settings.deletingSecrets) this.#deleting.record(op, req, response, settings.deletingSecrets.ms);
    if (settings.listingLagMs > 0) this.#lag.record(op, response);
    const { response: listed, hidden } = this.#lag.filter(op, response, settings.listingLagMs);
    if (hidden > 0) this.stats.count('listingHidden', op.key, hidden);
    return settings.apiKeyPaging ? pagedApiKeys(op, req, listed) : listed;
  }
}
