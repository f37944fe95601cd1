/**
 * The packaged CloudFormation template read as CloudFormation would for one stack: parameters (their defaults, which
 * `--param` sets, or overrides), conditions, and the intrinsic functions the policies use — Ref, Fn::GetAtt, Fn::Sub,
 * Fn::Join, Fn::Split, Fn::Select, Fn::If, AWS::NoValue and the pseudo parameters — resolved to the names and ARNs
 * the stack's resources get. Anything it cannot resolve throws, naming it: a policy is never evaluated half-read.
 */

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

export interface Template {
  Parameters?: Record<string, { Type: string; Default?: string }>;
  Conditions?: Record<string, Json>;
  Resources: Record<string, { Type: string; Condition?: string; Properties?: JsonObject }>;
}

export interface StackSettings {
  account: string;
  region: string;
  partition?: string;
  stackName: string;
  /** Parameter values over the template's defaults (e.g. UsagePlanIds, known only once the plans exist). */
  parameters?: Record<string, string>;
  /**
   * Physical ids CloudFormation generates and the template cannot tell: a KMS key's id. Keyed by logical id;
   * a reference to such a resource without one here throws.
   */
  physicalIds?: Record<string, string>;
}

const NO_VALUE = Symbol('AWS::NoValue');
type Value = Json | typeof NO_VALUE;

export const isObject = (value: unknown): value is JsonObject => typeof value === 'object' && value !== null && !Array.isArray(value);

export class UnresolvableTemplateError extends Error {
  constructor(message: string) {
    super(`realistic-aws iam: the template cannot be resolved: ${message}`);
    this.name = 'UnresolvableTemplateError';
  }
}

/** The stack: conditions decided, resources' names and ARNs derived as AWS derives them for their type. */
export class Stack {
  readonly parameters: Record<string, string> = {};
  readonly #conditions: Record<string, boolean> = {};
  readonly partition: string;

  constructor(
    readonly template: Template,
    readonly settings: StackSettings,
  ) {
    this.partition = settings.partition ?? 'aws';
    for (const [name, parameter] of Object.entries(template.Parameters ?? {})) this.parameters[name] = parameter.Default ?? '';
    for (const [name, value] of Object.entries(settings.parameters ?? {})) {
      if (!(name in this.parameters)) throw new UnresolvableTemplateError(`no parameter ${name}`);
      this.parameters[name] = value;
    }
  }

  /** Whether the resource exists in this stack (its Condition holds). */
  exists(id: string): boolean {
    const resource = this.template.Resources[id];
    return resource !== undefined && (resource.Condition === undefined || this.condition(resource.Condition));
  }

  /** The logical ids of the resources of a type that this stack creates. */
  ofType(type: string): string[] {
    return Object.entries(this.template.Resources)
      .filter(([id, resource]) => resource.Type === type && this.exists(id))
      .map(([id]) => id);
  }

  /** A resource's properties, evaluated. */
  properties(id: string): JsonObject {
    const resource = this.template.Resources[id];
    if (!resource) throw new UnresolvableTemplateError(`no resource ${id}`);
    if (!this.exists(id)) throw new UnresolvableTemplateError(`${id} is not created (its condition ${resource.Condition} is false)`);
    const value = this.evaluate(resource.Properties ?? {});
    if (!isObject(value)) throw new UnresolvableTemplateError(`the properties of ${id} are not an object`);
    return value;
  }

  condition(name: string): boolean {
    const known = this.#conditions[name];
    if (known !== undefined) return known;
    const definition = this.template.Conditions?.[name];
    if (definition === undefined) throw new UnresolvableTemplateError(`no condition ${name}`);
    const value = this.#conditionValue(definition);
    this.#conditions[name] = value;
    return value;
  }

  #conditionValue(node: Json): boolean {
    if (!isObject(node)) throw new UnresolvableTemplateError(`not a condition: ${JSON.stringify(node)}`);
    const [fn, args] = Object.entries(node)[0] ?? [];
    if (fn === 'Condition') return this.condition(String(args));
    if (!Array.isArray(args)) throw new UnresolvableTemplateError(`${fn} takes a list`);
    if (fn === 'Fn::Equals') return JSON.stringify(this.evaluate(args[0] ?? null)) === JSON.stringify(this.evaluate(args[1] ?? null));
    if (fn === 'Fn::Not') return !this.#conditionValue(args[0] ?? null);
    if (fn === 'Fn::And') return args.every((arg) => this.#conditionValue(arg));
    if (fn === 'Fn::Or') return args.some((arg) => this.#conditionValue(arg));
    throw new UnresolvableTemplateError(`unknown condition function ${fn}`);
  }

  #name(id: string, property: string): string {
    // That property alone: a function's others (Code's S3Bucket, a Ref to the deployment bucket) need not resolve.
    const resource = this.template.Resources[id];
    if (!resource || !this.exists(id)) throw new UnresolvableTemplateError(`no resource ${id} in this stack`);
    const value = this.evaluate(resource.Properties?.[property] ?? null);
    if (typeof value !== 'string') throw new UnresolvableTemplateError(`${id} has no ${property}: its generated name is not known`);
    return value;
  }

  #physicalId(id: string): string {
    const value = this.settings.physicalIds?.[id];
    if (value === undefined)
      throw new UnresolvableTemplateError(`${id}'s physical id is generated by CloudFormation: give it in physicalIds`);
    return value;
  }

  /** `Ref` of a resource, as the resource type's documentation gives it. */
  ref(id: string): string {
    const { account, region } = this.settings;
    const p = this.partition;
    const type = this.template.Resources[id]?.Type;
    switch (type) {
      case 'AWS::SQS::Queue':
        return `https://sqs.${region}.amazonaws.com/${account}/${this.#name(id, 'QueueName')}`;
      case 'AWS::DynamoDB::Table':
        return this.#name(id, 'TableName');
      case 'AWS::IAM::Role':
        return this.#name(id, 'RoleName');
      case 'AWS::Logs::LogGroup':
        return this.#name(id, 'LogGroupName');
      case 'AWS::KMS::Key':
        return this.#physicalId(id);
      case 'AWS::KMS::Alias':
        return this.#name(id, 'AliasName');
      case 'AWS::SecretsManager::Secret':
        // The ARN, whose last six characters Secrets Manager draws at random: `?` matches each in IAM's ARN
        // matching, so a policy naming this secret matches whatever suffix it got.
        return `arn:${p}:secretsmanager:${region}:${account}:secret:${this.#name(id, 'Name')}-??????`;
      case 'AWS::Lambda::Function':
        return this.#name(id, 'FunctionName');
      default:
        throw new UnresolvableTemplateError(`Ref to ${id} (${type ?? 'no such resource'})`);
    }
  }

  /** `Fn::GetAtt`, for the attributes the policies use. */
  getAtt(id: string, attribute: string): string {
    const { account, region } = this.settings;
    const p = this.partition;
    const type = this.template.Resources[id]?.Type;
    const at = `${type}.${attribute}`;
    switch (at) {
      case 'AWS::SQS::Queue.Arn':
        return `arn:${p}:sqs:${region}:${account}:${this.#name(id, 'QueueName')}`;
      case 'AWS::SQS::Queue.QueueName':
        return this.#name(id, 'QueueName');
      case 'AWS::DynamoDB::Table.Arn':
        return `arn:${p}:dynamodb:${region}:${account}:table/${this.#name(id, 'TableName')}`;
      case 'AWS::IAM::Role.Arn':
        return `arn:${p}:iam::${account}:role/${this.#name(id, 'RoleName')}`;
      // The log group's Arn attribute ends in `:*` (AWS::Logs::LogGroup return values).
      case 'AWS::Logs::LogGroup.Arn':
        return `arn:${p}:logs:${region}:${account}:log-group:${this.#name(id, 'LogGroupName')}:*`;
      case 'AWS::KMS::Key.Arn':
        return `arn:${p}:kms:${region}:${account}:key/${this.#physicalId(id)}`;
      case 'AWS::KMS::Key.KeyId':
        return this.#physicalId(id);
      case 'AWS::Lambda::Function.Arn':
        return `arn:${p}:lambda:${region}:${account}:function:${this.#name(id, 'FunctionName')}`;
      default:
        throw new UnresolvableTemplateError(`Fn::GetAtt ${id}.${attribute} (${type ?? 'no such resource'})`);
    }
  }

  #pseudoOrParameter(name: string): Value {
    if (name === 'AWS::NoValue') return NO_VALUE;
    if (name === 'AWS::Region') return this.settings.region;
    if (name === 'AWS::AccountId') return this.settings.account;
    if (name === 'AWS::Partition') return this.partition;
    if (name === 'AWS::StackName') return this.settings.stackName;
    if (name === 'AWS::URLSuffix') return 'amazonaws.com';
    if (name in this.parameters) return this.parameters[name] ?? '';
    return this.ref(name);
  }

  #sub(text: string, variables: Record<string, Value>): string {
    return text.replace(/\$\{([^}]+)\}/g, (_whole, name: string) => {
      if (name.startsWith('!')) return `\${${name.slice(1)}}`;
      if (name in variables) return String(variables[name]);
      const dot = name.indexOf('.');
      if (dot > 0 && !name.startsWith('AWS::')) return this.getAtt(name.slice(0, dot), name.slice(dot + 1));
      return String(this.#pseudoOrParameter(name));
    });
  }

  evaluate(node: Json): Value {
    if (Array.isArray(node)) return node.map((item) => this.evaluate(item)).filter((item): item is Json => item !== NO_VALUE);
    if (!isObject(node)) return node;
    const keys = Object.keys(node);
    const [fn] = keys;
    if (keys.length === 1 && fn !== undefined && (fn === 'Ref' || fn === 'Condition' || fn.startsWith('Fn::'))) {
      const args = node[fn] ?? null;
      switch (fn) {
        case 'Ref':
          return this.#pseudoOrParameter(String(args));
        case 'Condition':
          return this.condition(String(args));
        case 'Fn::GetAtt': {
          const [id, attribute] = Array.isArray(args) ? args.map(String) : String(args).split('.');
          return this.getAtt(String(id), String(attribute));
        }
        case 'Fn::Sub': {
          if (typeof args === 'string') return this.#sub(args, {});
          if (!Array.isArray(args) || typeof args[0] !== 'string' || !isObject(args[1] ?? null))
            throw new UnresolvableTemplateError('bad Fn::Sub');
          const variables: Record<string, Value> = {};
          for (const [name, value] of Object.entries(args[1] as JsonObject)) variables[name] = this.evaluate(value);
          return this.#sub(args[0], variables);
        }
        case 'Fn::Join': {
          if (!Array.isArray(args) || typeof args[0] !== 'string') throw new UnresolvableTemplateError('bad Fn::Join');
          const items = this.evaluate(args[1] ?? null);
          if (!Array.isArray(items)) throw new UnresolvableTemplateError('Fn::Join needs a list');
          return items.map(String).join(args[0]);
        }
        case 'Fn::Split': {
          if (!Array.isArray(args) || typeof args[0] !== 'string') throw new UnresolvableTemplateError('bad Fn::Split');
          return String(this.evaluate(args[1] ?? null)).split(args[0]);
        }
        case 'Fn::Select': {
          if (!Array.isArray(args)) throw new UnresolvableTemplateError('bad Fn::Select');
          const list = this.evaluate(args[1] ?? null);
          if (!Array.isArray(list)) throw new UnresolvableTemplateError('Fn::Select needs a list');
          return list[Number(this.evaluate(args[0] ?? null))] ?? null;
        }
        case 'Fn::If': {
          if (!Array.isArray(args) || typeof args[0] !== 'string') throw new UnresolvableTemplateError('bad Fn::If');
          return this.evaluate((this.condition(args[0]) ? args[1] : args[2]) ?? null);
        }
        default:
          throw new UnresolvableTemplateError(`intrinsic function ${fn}`);
      }
    }
    const result: JsonObject = {};
    for (const [key, value] of Object.entries(node)) {
      const evaluated = this.evaluate(value);
      if (evaluated !== NO_VALUE) result[key] = evaluated;
    }
    return result;
  }
}
