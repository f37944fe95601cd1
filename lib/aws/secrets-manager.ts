import {
  CancelRotateSecretCommand,
  CreateSecretCommand,
  DecryptionFailure,
  DescribeSecretCommand,
  GetSecretValueCommand,
  InvalidParameterException,
  InvalidRequestException,
  ListSecretsCommand,
  PutSecretValueCommand,
  ResourceExistsException,
  ResourceNotFoundException,
  RotateSecretCommand,
  SecretsManagerClient,
  UpdateSecretVersionStageCommand,
} from '@aws-sdk/client-secrets-manager';
import { EnvironmentError, SecretVersionTakenError } from '../errors.js';
import type { CallTable } from '../quota/call-path.js';
import { domainErrorFromSdk, type ServiceErrors, sdkClientSettings } from './errors.js';

export interface NewSecret {
  name: string;
  description: string;
  /** JSON holding the key value: never logged. */
  secretString: string;
  tags: Record<string, string>;
  kmsKeyId?: string;
  /** The first version's ClientRequestToken (its VersionId); the SDK makes one up when absent. */
  token?: string;
}

export interface StoredSecret {
  arn: string;
  name: string;
  /** The value: never logged. */
  secretString: string;
}

export interface SecretStore {
  /** The secret's current value (or that of version `versionId`, or of the stage `versionStage`), or undefined when no secret (or version) has that name. */
  getSecret(name: string, versionId?: string, versionStage?: string): Promise<StoredSecret | undefined>;
  /** Creates the secret; returns undefined, creating nothing, when a secret of that name exists already. */
  createSecret(secret: NewSecret): Promise<StoredSecret | undefined>;
  /**
   * Writes a new version, current unless `stages` says otherwise (a roll writes its value as AWSPENDING). `token` is the version's ClientRequestToken: a repeat with the same token and
   * value is ignored by Secrets Manager, so retries and concurrent writers of the same content are idempotent; with
   * another value it is refused: {@link SecretVersionTakenError}, nothing written.
   */
  putSecretValue(name: string, secretString: string, token: string, stages?: string[]): Promise<void>;
  /**
   * What DescribeSecret says of the secret: its versions' staging labels and its rotation configuration; undefined
   * when there is no secret.
   */
  describeSecret(name: string): Promise<SecretDescription | undefined>;
  /**
   * Moves the staging label `stage` to version `to` (UpdateSecretVersionStage), from version `from` that holds it
   * (Secrets Manager refuses a move that does not name the version holding the label); `to` undefined: only removes
   * it from `from`. Moving AWSCURRENT puts AWSPREVIOUS on the version that held it.
   */
  moveStage(name: string, stage: string, to: string | undefined, from: string | undefined): Promise<void>;
  /**
   * Puts a rotation schedule on the secret, rotated by `functionArn` (RotateSecret with RotateImmediately false: no
   * rotation now; Secrets Manager tests the configuration with the function's testSecret step). A schedule it refuses
   * (InvalidParameterException) is an EnvironmentError: the deployment's setting, not the message, is wrong.
   */
  scheduleRotation(name: string, functionArn: string, scheduleExpression: string): Promise<void>;
  /**
   * Turns the secret's automatic rotation off (CancelRotateSecret: "Turns off automatic rotation, and if a rotation is
   * currently in progress, cancels the rotation", API reference); nothing when there is no secret. It leaves the
   * staging labels as they are: a cancelled rotation's AWSPENDING stays where it was.
   */
  cancelRotation(name: string): Promise<void>;
  /**
   * Every secret whose name starts with `namePrefix`, those scheduled for deletion included (ListSecrets with a name
   * filter, pages of 100). Read-only; for the operations tools (reconcile), not called by the function. ListSecrets
   * is eventually consistent ("might not reflect changes from the last five minutes", API reference): a secret
   * missing here may exist, so confirm an absence with {@link SecretStore.getSecret}.
   */
  listSecrets(namePrefix: string): Promise<ListedSecret[]>;
}

/** A secret as DescribeSecret describes it: its versions' labels and its rotation configuration. */
export interface SecretDescription {
  /**
   * The versions and their staging labels (`VersionIdsToStages`): which holds AWSCURRENT, and where a rotation left
   * incomplete keeps AWSPENDING.
   */
  stages: Record<string, string[]>;
  /** Automatic rotation is on (`RotationEnabled`). */
  enabled: boolean;
  functionArn?: string;
  scheduleExpression?: string;
}

/** A secret as ListSecrets describes it (no value). */
export interface ListedSecret {
  arn: string;
  name: string;
  /** Set when the secret is scheduled for deletion. */
  deletedDate?: Date;
}

export function createSecretsManagerClient(requestTimeoutMs: number): SecretsManagerClient {
  return new SecretsManagerClient(sdkClientSettings(requestTimeoutMs));
}

/**
 * InvalidParameter: the request is malformed (our names come from the message). InvalidRequest: the secret's state
 * forbids the call — above all a secret scheduled for deletion, whose force deletion completes asynchronously
 * (DeleteSecret API reference) — which a later replay gets past; DecryptionFailure: the KMS key.
 */
const ERRORS: ServiceErrors = {
  permanent: [[InvalidParameterException, 'bad-request']],
  environment: [InvalidRequestException, DecryptionFailure],
};

const toDomainError = (operation: string, error: unknown) => domainErrorFromSdk(operation, error, ERRORS);

/** Secrets Manager adapter: one SDK call per method, SDK errors turned into the product's errors. */
export function secretsManagerAdapter(client: SecretsManagerClient): SecretStore {
  return {
    async getSecret(name, versionId, versionStage) {
      try {
        const found = await client.send(new GetSecretValueCommand({ SecretId: name, VersionId: versionId, VersionStage: versionStage }));
        if (!found.ARN || found.SecretString === undefined) throw new Error('GetSecretValue answered without an ARN or a SecretString');
        return { arn: found.ARN, name: found.Name ?? name, secretString: found.SecretString };
      } catch (error) {
        if (error instanceof ResourceNotFoundException) return undefined;
        throw toDomainError('GetSecretValue', error);
      }
    },

    async createSecret(secret) {
      try {
        const created = await client.send(
          new CreateSecretCommand({
            Name: secret.name,
            Description: secret.description,
            SecretString: secret.secretString,
            KmsKeyId: secret.kmsKeyId,
            ClientRequestToken: secret.token,
            Tags: Object.entries(secret.tags).map(([Key, Value]) => ({ Key, Value })),
          }),
        );
        if (!created.ARN) throw new Error('CreateSecret answered without an ARN');
        return { arn: created.ARN, name: created.Name ?? secret.name, secretString: secret.secretString };
      } catch (error) {
        if (error instanceof ResourceExistsException) return undefined;
        throw toDomainError('CreateSecret', error);
      }
    },

    async putSecretValue(name, secretString, token, stages) {
      try {
        await client.send(
          new PutSecretValueCommand({ SecretId: name, SecretString: secretString, ClientRequestToken: token, VersionStages: stages }),
        );
      } catch (error) {
        if (error instanceof ResourceExistsException)
          throw new SecretVersionTakenError(`PutSecretValue on ${name}: version ${token} holds another value already`, { cause: error });
        throw toDomainError('PutSecretValue', error);
      }
    },

    async moveStage(name, stage, to, from) {
      try {
        await client.send(
          new UpdateSecretVersionStageCommand({ SecretId: name, VersionStage: stage, MoveToVersionId: to, RemoveFromVersionId: from }),
        );
      } catch (error) {
        throw toDomainError('UpdateSecretVersionStage', error);
      }
    },

    async describeSecret(name) {
      try {
        const described = await client.send(new DescribeSecretCommand({ SecretId: name }));
        return {
          enabled: described.RotationEnabled === true,
          functionArn: described.RotationLambdaARN,
          scheduleExpression: described.RotationRules?.ScheduleExpression,
          stages: described.VersionIdsToStages ?? {},
        };
      } catch (error) {
        if (error instanceof ResourceNotFoundException) return undefined;
        throw toDomainError('DescribeSecret', error);
      }
    },

    async scheduleRotation(name, functionArn, scheduleExpression) {
      try {
        await client.send(
          new RotateSecretCommand({
            SecretId: name,
            RotationLambdaARN: functionArn,
            RotationRules: { ScheduleExpression: scheduleExpression },
            RotateImmediately: false,
          }),
        );
      } catch (error) {
        if (error instanceof InvalidParameterException)
          throw new EnvironmentError(`RotateSecret on ${name} refused the schedule ${scheduleExpression}: check ROTATION_SCHEDULE`, {
            cause: error,
          });
        throw toDomainError('RotateSecret', error);
      }
    },

    async cancelRotation(name) {
      try {
        await client.send(new CancelRotateSecretCommand({ SecretId: name }));
      } catch (error) {
        if (error instanceof ResourceNotFoundException) return;
        // InvalidRequestException (a secret scheduled for deletion, among the API reference's causes): environment.
        throw toDomainError('CancelRotateSecret', error);
      }
    },

    async listSecrets(namePrefix) {
      const listed: ListedSecret[] = [];
      let token: string | undefined;
      try {
        do {
          const page = await client.send(
            new ListSecretsCommand({
              Filters: [{ Key: 'name', Values: [namePrefix] }],
              IncludePlannedDeletion: true,
              MaxResults: 100,
              NextToken: token,
            }),
          );
          // The name filter is a case-sensitive prefix match (API reference, Filter); the check keeps that a guarantee here.
          for (const entry of page.SecretList ?? [])
            if (entry.ARN && entry.Name?.startsWith(namePrefix))
              listed.push({ arn: entry.ARN, name: entry.Name, deletedDate: entry.DeletedDate });
          token = page.NextToken;
        } while (token);
      } catch (error) {
        throw toDomainError('ListSecrets', error);
      }
      return listed;
    },
  };
}

/** The operation each method makes, for the call path (lib/quota/call-path.ts); listSecrets (the operations tools') pages inside its one entry. */
export const SECRET_CALLS: CallTable<SecretStore> = {
  getSecret: 'GetSecretValue',
  createSecret: 'CreateSecret',
  putSecretValue: 'PutSecretValue',
  describeSecret: 'DescribeSecret',
  moveStage: 'UpdateSecretVersionStage',
  scheduleRotation: 'RotateSecret',
  cancelRotation: 'CancelRotateSecret',
  listSecrets: 'ListSecrets',
};
