import { runSimulation, runUnsafeSimulation, type Simulation } from '@cloud-copilot/iam-simulate';

/** An IAM policy document. */
export interface PolicyDocument {
  Version: string;
  Statement: Array<Record<string, unknown>>;
}

export interface NamedPolicy {
  name: string;
  policy: PolicyDocument;
}

/** One authorization AWS makes for a request: an action on a resource, with the request's context keys. */
export interface Authorization {
  action: string;
  resource: string;
  context: Record<string, string | string[]>;
  /** The resource's own policy (queue policy, key policy), if it has one. */
  resourcePolicy?: PolicyDocument;
}

export type Decision = 'Allowed' | 'ImplicitlyDenied' | 'ExplicitlyDenied';

export interface Verdict {
  decision: Decision;
  /** Which kind of policy decided a denial, in IAM's words ("identity-based", "resource-based"). */
  deniedBy?: 'identity-based' | 'resource-based';
}

/** A request the evaluator cannot judge (unknown action, a resource no type of the action matches, a bad policy). */
export class UnevaluableRequestError extends Error {
  constructor(message: string) {
    super(`realistic-aws iam: ${message}`);
    this.name = 'UnevaluableRequestError';
  }
}

/**
 * iam-simulate keeps only the context keys the Service Authorization Reference lists for the action, matching a
 * variable key by the part before its slash (`aws:RequestTag/…`). KMS's `kms:EncryptionContext:<key>` puts its
 * variable after a colon, so `runSimulation` drops it into `ignoredContextKeys` and a condition on it sees nothing
 * (tests/integration/iam.test.ts shows it). Those keys are listed for kms:Decrypt and kms:GenerateDataKey as
 * `kms:EncryptionContext:${EncryptionContextKey}`.
 */
const isEncryptionContextKey = (key: string) => /^kms:encryptioncontext:.+/i.test(key);

/**
 * Identity policies that passed runSimulation's validation once, in iam-policy's `ValidatedPolicy` form (a plain
 * object, which runSimulation and runUnsafeSimulation take without validating again): validation is most of an
 * evaluation's cost, and a principal's policies do not change.
 */
const VALIDATED = new WeakMap<NamedPolicy[], NamedPolicy[]>();
const asValidated = ({ name, policy }: NamedPolicy): NamedPolicy => ({
  name,
  policy: { __validated: true, policyDocument: policy, metadata: { name }, errors: [] } as unknown as PolicyDocument,
});

/**
 * Evaluates one authorization for a principal with iam-simulate: validated first (action, resource type, policies,
 * context keys), and a request it cannot validate throws. When the only keys it dropped are KMS encryption-context
 * keys, the same simulation runs again without the validation that drops them (`runUnsafeSimulation`), with every
 * key given.
 */
export async function evaluate(principal: string, account: string, identityPolicies: NamedPolicy[], auth: Authorization): Promise<Verdict> {
  const validated = VALIDATED.get(identityPolicies);
  const simulation: Simulation = {
    request: { principal, action: auth.action, resource: { resource: auth.resource, accountId: account }, contextVariables: auth.context },
    identityPolicies: validated ?? identityPolicies,
    serviceControlPolicies: [],
    resourceControlPolicies: [],
    ...(auth.resourcePolicy && { resourcePolicy: auth.resourcePolicy }),
  };
  const result = await runSimulation(simulation, { simulationMode: 'Strict' });
  if (result.resultType === 'error')
    throw new UnevaluableRequestError(`${auth.action} on ${auth.resource}: ${JSON.stringify(result.errors)} (as ${principal})`);
  if (!validated) VALIDATED.set(identityPolicies, identityPolicies.map(asValidated));
  if (result.resultType !== 'single')
    throw new UnevaluableRequestError(`${auth.action} on ${auth.resource}: a resource with a wildcard is not a request (as ${principal})`);
  const ignored = result.result.ignoredContextKeys ?? [];
  const unknown = ignored.filter((key) => !isEncryptionContextKey(key));
  if (unknown.length > 0)
    throw new UnevaluableRequestError(`${auth.action} on ${auth.resource}: context keys the action does not have: ${unknown.join(', ')}`);
  // runUnsafeSimulation gives the decision alone; only KMS authorizations take that path, and Secrets Manager words
  // every KMS refusal the same way, so which policy denied does not matter there.
  // (runUnsafeSimulation loads a raw resource policy without a name and then fails reading it: it gets the policy as
  // iam-policy's ValidatedPolicy, a plain object with its name, already validated by runSimulation above.)
  const unsafe = (): string =>
    runUnsafeSimulation(
      {
        ...simulation,
        ...(auth.resourcePolicy && {
          resourcePolicy: { __validated: true, policyDocument: auth.resourcePolicy, metadata: { name: 'resource policy' }, errors: [] },
        }),
      },
      { simulationMode: 'Strict' },
    );
  const decision: string = ignored.length > 0 ? unsafe() : result.result.analysis.result;
  if (decision === 'Allowed') return { decision };
  if (decision === 'ImplicitlyDenied') return { decision, deniedBy: 'identity-based' };
  if (decision === 'ExplicitlyDenied') {
    const explicitInResource = ignored.length === 0 && result.result.analysis.resourceAnalysis?.result === 'ExplicitlyDenied';
    return { decision, deniedBy: explicitInResource ? 'resource-based' : 'identity-based' };
  }
  throw new UnevaluableRequestError(`${auth.action} on ${auth.resource}: unexpected decision ${decision}`);
}
