import type { AwsRequest, AwsResponse } from '../http.js';
import { jsonResponse } from '../http.js';
import type { Operation } from '../operations.js';
import { callerOf } from './caller.js';
import { denial } from './denial.js';
import { evaluate, type Verdict } from './evaluate.js';
import { type Check, checksFor } from './requests.js';
import type { IamWorld, Principal } from './world.js';

/** The identity that bypasses evaluation: the test's own setup and verification calls (creating queues, reading moto). */
export const HARNESS = 'harness';

/** One denial, for tests and reports (no request body: a secret's value never reaches it). */
export interface IamDenial {
  principal: string;
  operation: string;
  action: string;
  resource: string;
  decision: string;
}

/**
 * The `iam` switch: every signed request is evaluated as AWS would before it reaches moto — its caller's identity
 * policies, the resource's policy, the request's context — and a denied one gets the service's AccessDenied answer.
 * A request without a known caller, or one the evaluator cannot judge, is answered with a 500 naming the problem
 * and recorded in `problems`: it is never let through.
 */
export class IamSwitch {
  readonly denials: IamDenial[] = [];
  readonly problems: string[] = [];

  constructor(
    /** Replaceable: a redeployment with other settings (a new usage plan) is a new world. */
    public world: IamWorld,
    readonly moto: URL,
  ) {}

  /** Verdicts by world, principal and authorization: an evaluation is deterministic, and costs milliseconds. */
  readonly #verdicts = new WeakMap<IamWorld, Map<string, Verdict>>();

  async #evaluate(principal: Principal, check: Check): Promise<Verdict> {
    let verdicts = this.#verdicts.get(this.world);
    if (!verdicts) {
      verdicts = new Map();
      this.#verdicts.set(this.world, verdicts);
    }
    const key = JSON.stringify([principal.name, check.auth]);
    const known = verdicts.get(key);
    if (known) return known;
    const verdict = await evaluate(principal.arn, this.world.settings.account, principal.policies, check.auth);
    verdicts.set(key, verdict);
    return verdict;
  }

  async check(req: AwsRequest, op: Operation): Promise<AwsResponse | undefined> {
    if (!op.aws) return undefined;
    const caller = callerOf(req.headers);
    if (caller?.name === HARNESS) return undefined;
    try {
      if (!caller) throw new Error(`unsigned request ${op.seen}: no caller`);
      const principal = this.world.principals.get(caller.name);
      if (!principal)
        throw new Error(
          `${op.seen} by unknown principal "${caller.name}" (from the ${caller.via}; known: ${[...this.world.principals.keys(), HARNESS].join(', ')})`,
        );
      for (const check of await checksFor(this.moto, op, req, this.world, principal)) {
        const verdict = await this.#evaluate(principal, check);
        if (verdict.decision === 'Allowed') continue;
        this.denials.push({
          principal: principal.name,
          operation: op.name,
          action: check.auth.action,
          resource: check.named,
          decision: verdict.decision,
        });
        return denial(op, principal.arn, check, verdict);
      }
      return undefined;
    } catch (error) {
      // Errors of the layer itself (not of the request) keep their stack's first frames: where to look.
      const known = error instanceof Error && /^realistic-aws iam|by unknown principal|^unsigned request/.test(error.message);
      const message = known ? (error as Error).message : `${op.seen}: ${(error as Error).stack?.split('\n').slice(0, 4).join(' | ')}`;
      this.problems.push(message);
      return jsonResponse(500, { __type: 'RealisticAwsIamError', message: `realistic-aws iam: ${message}` });
    }
  }
}
