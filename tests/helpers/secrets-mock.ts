import {
  CreateSecretCommand,
  GetSecretValueCommand,
  PutSecretValueCommand,
  ResourceExistsException,
  ResourceNotFoundException,
  type SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import type { AwsStub } from 'aws-sdk-client-mock';

const meta = (httpStatusCode: number) => ({ $metadata: { httpStatusCode } });
const arnOf = (name: string) => `arn:aws:secretsmanager:us-east-1:123456789012:secret:${name}-AbCdEf`;

/**
 * Makes a mocked Secrets Manager client behave like a name → current value map: CreateSecret and PutSecretValue
 * write, GetSecretValue reads. For unit tests of the use cases' reads and writes; the integration suites run the
 * same cases against moto. Returns the map.
 */
// biome-ignore lint/suspicious/noExplicitAny: aws-sdk-client-mock's stub types its inputs and outputs loosely.
export function storeBackedSecrets(mock: AwsStub<any, any, SecretsManagerClient['config']>): Map<string, string> {
  const stored = new Map<string, string>();
  mock.on(GetSecretValueCommand).callsFake(async ({ SecretId }: { SecretId: string }) => {
    const value = stored.get(SecretId);
    if (value === undefined) throw new ResourceNotFoundException({ message: 'not found', ...meta(400) });
    return { ARN: arnOf(SecretId), Name: SecretId, SecretString: value };
  });
  mock.on(CreateSecretCommand).callsFake(async ({ Name, SecretString }: { Name: string; SecretString: string }) => {
    if (stored.has(Name)) throw new ResourceExistsException({ message: 'exists', ...meta(400) });
    stored.set(Name, SecretString);
    return { ARN: arnOf(Name), Name };
  });
  mock.on(PutSecretValueCommand).callsFake(async ({ SecretId, SecretString }: { SecretId: string; SecretString: string }) => {
    stored.set(SecretId, SecretString);
    return {};
  });
  return stored;
}
