import type { NamedPolicy, PolicyDocument } from './evaluate.js';
import { isObject, type JsonObject, Stack, type StackSettings, type Template, UnresolvableTemplateError } from './template.js';

/** A caller: the ARN IAM names it by, the role behind it (aws:PrincipalArn) and its identity policies. */
export interface Principal {
  name: string;
  /** The session ARN in error messages (`arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`). */
  arn: string;
  /** aws:PrincipalArn: for a role session, the role's ARN. */
  principalArn: string;
  policies: NamedPolicy[];
}

/** A statement to leave out (the per-statement check): the policy holder's logical id (or principal name) and the Sid. */
export interface Omission {
  holder: string;
  sid: string;
}

export interface WorldSettings extends StackSettings {
  /** Principals not in the template: the operator (docs/operator-policy.json), the seller's producers. */
  extraPrincipals?: Array<{ name: string; roleArn: string; session: string; policies: NamedPolicy[] }>;
  /** Which principal each role of the template is, with the session name Lambda gives it (the function's name). */
  roles: Array<{ name: string; roleId: string; session: string }>;
  /** Key policies of KMS keys the stack does not create (a seller's `secretsKmsKeyArn`), by key ARN. */
  externalKeyPolicies?: Record<string, PolicyDocument>;
  omit?: Omission[];
}

/** AWS managed key aws/secretsmanager: its key policy as AWS writes it (every principal of the account, through Secrets Manager). */
function awsManagedSecretsKeyPolicy(account: string, region: string): PolicyDocument {
  return {
    Version: '2012-10-17',
    Statement: [
      {
        Sid: 'Allow access through AWS Secrets Manager for all principals in the account that are authorized to use AWS Secrets Manager',
        Effect: 'Allow',
        Principal: { AWS: '*' },
        Action: ['kms:Encrypt', 'kms:Decrypt', 'kms:ReEncrypt*', 'kms:GenerateDataKey*', 'kms:CreateGrant', 'kms:DescribeKey'],
        Resource: '*',
        Condition: { StringEquals: { 'kms:CallerAccount': account, 'kms:ViaService': `secretsmanager.${region}.amazonaws.com` } },
      },
    ],
  };
}

const asDocument = (value: unknown, what: string): PolicyDocument => {
  if (!isObject(value) || !Array.isArray(value.Statement)) throw new UnresolvableTemplateError(`${what} is not a policy document`);
  return value as unknown as PolicyDocument;
};

const list = (value: unknown): unknown[] => (Array.isArray(value) ? value : value === undefined ? [] : [value]);

/**
 * The IAM world of one stack: its roles as principals (inline policies and the AWS::IAM::Policy resources attached
 * to them), the queue policies, the key policies and the key aliases, all read from the packaged template; plus the
 * principals outside it. Statements named in `omit` are left out, and an omission naming nothing throws.
 */
export class IamWorld {
  readonly stack: Stack;
  readonly principals = new Map<string, Principal>();
  /** Queue ARN → its queue policy. */
  readonly queuePolicies = new Map<string, PolicyDocument>();
  /** Key ARN → its key policy. */
  readonly keyPolicies = new Map<string, PolicyDocument>();
  /** Alias name (`alias/…`) → key ARN. */
  readonly aliases = new Map<string, string>();
  readonly #omitted = new Set<string>();

  constructor(
    template: Template,
    readonly settings: WorldSettings,
  ) {
    this.stack = new Stack(template, settings);
    const { account, region } = settings;
    const p = this.stack.partition;
    for (const role of settings.roles) {
      const properties = this.stack.properties(role.roleId);
      const roleName = String(properties.RoleName);
      const inline = list(properties.Policies).map((policy) => {
        const named = policy as JsonObject;
        return {
          name: `${role.roleId}/${String(named.PolicyName)}`,
          policy: this.#without(role.roleId, asDocument(named.PolicyDocument, role.roleId)),
        };
      });
      const attached = this.stack
        .ofType('AWS::IAM::Policy')
        .map((id) => [id, this.stack.properties(id)] as const)
        .filter(([, policy]) => list(policy.Roles).includes(roleName))
        .map(([id, policy]) => ({ name: id, policy: this.#without(id, asDocument(policy.PolicyDocument, id)) }));
      this.principals.set(role.name, {
        name: role.name,
        arn: `arn:${p}:sts::${account}:assumed-role/${roleName}/${role.session}`,
        principalArn: `arn:${p}:iam::${account}:role/${roleName}`,
        policies: [...inline, ...attached],
      });
    }
    for (const extra of settings.extraPrincipals ?? []) {
      const roleName = extra.roleArn.split(':role/')[1] ?? '';
      this.principals.set(extra.name, {
        name: extra.name,
        arn: `arn:${p}:sts::${account}:assumed-role/${roleName.split('/').pop()}/${extra.session}`,
        principalArn: extra.roleArn,
        policies: extra.policies.map((named) => ({ name: named.name, policy: this.#without(extra.name, named.policy) })),
      });
    }
    for (const id of this.stack.ofType('AWS::SQS::QueuePolicy')) {
      const properties = this.stack.properties(id);
      const policy = this.#without(id, asDocument(properties.PolicyDocument, id));
      for (const url of list(properties.Queues)) {
        const [, owner, name] = new URL(String(url)).pathname.split('/');
        this.queuePolicies.set(`arn:${p}:sqs:${region}:${owner}:${name}`, policy);
      }
    }
    for (const id of this.stack.ofType('AWS::KMS::Key')) {
      this.keyPolicies.set(this.stack.getAtt(id, 'Arn'), this.#without(id, asDocument(this.stack.properties(id).KeyPolicy, id)));
    }
    for (const [arn, policy] of Object.entries(settings.externalKeyPolicies ?? {})) this.keyPolicies.set(arn, policy);
    for (const id of this.stack.ofType('AWS::KMS::Alias')) {
      const properties = this.stack.properties(id);
      const target = String(properties.TargetKeyId);
      this.aliases.set(
        String(properties.AliasName),
        target.startsWith('arn:') ? target : `arn:${p}:kms:${region}:${account}:key/${target}`,
      );
    }
    const managed = `arn:${p}:kms:${region}:${account}:key/aws-secretsmanager-managed`;
    this.aliases.set('alias/aws/secretsmanager', managed);
    this.keyPolicies.set(managed, awsManagedSecretsKeyPolicy(account, region));
    const missing = (settings.omit ?? []).filter((o) => !this.#omitted.has(`${o.holder}:${o.sid}`));
    if (missing.length > 0)
      throw new UnresolvableTemplateError(`no statement to omit: ${missing.map((o) => `${o.holder}:${o.sid}`).join(', ')}`);
  }

  #without(holder: string, document: PolicyDocument): PolicyDocument {
    const omit = (this.settings.omit ?? []).filter((o) => o.holder === holder);
    if (omit.length === 0) return document;
    const kept = document.Statement.filter((statement) => {
      const hit = omit.find((o) => o.sid === statement.Sid);
      if (hit) this.#omitted.add(`${hit.holder}:${hit.sid}`);
      return !hit;
    });
    return { ...document, Statement: kept };
  }

  /** Every statement of every policy holder, `holder:Sid` (what the per-statement check removes one at a time). */
  statements(): Omission[] {
    const out: Omission[] = [];
    for (const role of this.settings.roles) {
      const properties = this.stack.properties(role.roleId);
      for (const policy of list(properties.Policies))
        for (const s of asDocument((policy as JsonObject).PolicyDocument, role.roleId).Statement)
          out.push({ holder: role.roleId, sid: String(s.Sid) });
      const roleName = String(properties.RoleName);
      for (const id of this.stack.ofType('AWS::IAM::Policy')) {
        const policy = this.stack.properties(id);
        if (!list(policy.Roles).includes(roleName)) continue;
        for (const s of asDocument(policy.PolicyDocument, id).Statement) out.push({ holder: id, sid: String(s.Sid) });
      }
    }
    for (const extra of this.settings.extraPrincipals ?? [])
      for (const named of extra.policies) for (const s of named.policy.Statement) out.push({ holder: extra.name, sid: String(s.Sid) });
    for (const id of [...this.stack.ofType('AWS::SQS::QueuePolicy'), ...this.stack.ofType('AWS::KMS::Key')]) {
      const properties = this.stack.properties(id);
      const document = asDocument(properties.PolicyDocument ?? properties.KeyPolicy, id);
      for (const s of document.Statement) out.push({ holder: id, sid: String(s.Sid) });
    }
    return out;
  }

  principal(name: string): Principal {
    const found = this.principals.get(name);
    if (!found) throw new Error(`realistic-aws iam: no principal ${name} (known: ${[...this.principals.keys()].join(', ')})`);
    return found;
  }
}
