import { loadConfig } from '../../lib/config.js';
import { ConfigError } from '../../lib/errors.js';

const QUEUE_URL = 'https://sqs.us-east-1.amazonaws.com/123456789012/completions';

/** The smallest valid environment, plus `extra`. */
const env = (extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv => ({
  COMPLETION_QUEUE_URL: QUEUE_URL,
  NAME_PREFIX: 'keyprov/prod/',
  API_GATEWAY_RATE_PER_SECOND: '1.25',
  KEY_RECORDS_TABLE: 'api-key-provisioner-prod-key-records',
  ...extra,
});

/** Loads `environment` expecting a ConfigError, and returns its message. */
function configErrorOf(environment: NodeJS.ProcessEnv): string {
  try {
    loadConfig(environment);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).message;
  }
  throw new Error('expected loadConfig to throw a ConfigError');
}

describe('loadConfig: required variables', () => {
  test.each(['COMPLETION_QUEUE_URL', 'NAME_PREFIX', 'API_GATEWAY_RATE_PER_SECOND', 'KEY_RECORDS_TABLE'])(
    'a missing %s is required',
    (name) => {
      expect(configErrorOf(env({ [name]: undefined }))).toContain(`${name} is required`);
    },
  );

  test('names every missing variable at once', () => {
    const message = configErrorOf({});
    expect(message).toContain('COMPLETION_QUEUE_URL is required');
    expect(message).toContain('NAME_PREFIX is required');
  });

  test('reads the minimal environment', () => {
    const config = loadConfig(env());
    expect(config.completionQueueUrl).toBe(QUEUE_URL);
    expect(config.namePrefix).toBe('keyprov/prod/');
    expect(config.secretKmsKeyId).toBeUndefined();
    expect(config.defaultTags).toEqual({});
  });

  test('ignores unrelated variables', () => {
    expect(loadConfig(env({ PATH: '/usr/bin', AWS_REGION: 'eu-west-1' }))).not.toHaveProperty('PATH');
  });
});

describe('loadConfig: invalid values are named', () => {
  test.each([
    ['COMPLETION_QUEUE_URL', 'not a url'],
    ['COMPLETION_QUEUE_URL', ''],
    ['NAME_PREFIX', 'has space/'],
    ['NAME_PREFIX', ''],
    ['NAME_PREFIX', 'p'.repeat(129)],
    ['SECRET_KMS_KEY_ID', ''],
    ['AWS_REQUEST_TIMEOUT_MS', '99'],
    ['AWS_REQUEST_TIMEOUT_MS', '60001'],
    ['RETRY_MAX_ATTEMPTS', '0'],
    ['RETRY_MAX_ATTEMPTS', '21'],
    ['RETRY_MAX_ATTEMPTS', 'three'],
    ['RETRY_MAX_ATTEMPTS', '2.5'],
    ['RETRY_BASE_DELAY_MS', '0'],
    ['RETRY_BASE_DELAY_MS', '10001'],
    ['RETRY_MAX_DELAY_MS', '0'],
    ['RETRY_MAX_DELAY_MS', '60001'],
    ['DEADLINE_SAFETY_MARGIN_MS', '-1'],
    ['DEADLINE_SAFETY_MARGIN_MS', '60001'],
  ])('%s=%j is rejected', (name, value) => {
    const message = configErrorOf(env({ [name]: value }));
    expect(message).toContain(`${name}:`);
    expect(message).not.toContain(`${name} is required`);
  });

  test('the message does not echo the invalid value', () => {
    expect(configErrorOf(env({ COMPLETION_QUEUE_URL: 'SECRET-VALUE-123' }))).not.toContain('SECRET-VALUE-123');
  });

  test('names every invalid variable at once', () => {
    const message = configErrorOf(env({ RETRY_MAX_ATTEMPTS: '0', RETRY_BASE_DELAY_MS: 'x', NAME_PREFIX: undefined }));
    expect(message).toContain('RETRY_MAX_ATTEMPTS:');
    expect(message).toContain('RETRY_BASE_DELAY_MS:');
    expect(message).toContain('NAME_PREFIX is required');
  });
});

describe('loadConfig: DEFAULT_TAGS', () => {
  test('parses a JSON object of string values', () => {
    expect(loadConfig(env({ DEFAULT_TAGS: '{"stage":"prod","managed-by":"api-key-provisioner"}' })).defaultTags).toEqual({
      stage: 'prod',
      'managed-by': 'api-key-provisioner',
    });
  });

  test.each(['', '   '])('%j means no default tags', (raw) => {
    expect(loadConfig(env({ DEFAULT_TAGS: raw })).defaultTags).toEqual({});
  });

  test.each([
    ['bad JSON', '{"stage":'],
    ['a non-string value', '{"stage":"prod","replicas":3}'],
    ['a null value', '{"stage":null}'],
    ['a JSON array', '["stage"]'],
    ['a JSON string', '"stage=prod"'],
    ['JSON null', 'null'],
  ])('%s is a ConfigError naming DEFAULT_TAGS', (_what, raw) => {
    expect(configErrorOf(env({ DEFAULT_TAGS: raw }))).toMatch(/^DEFAULT_TAGS must be a JSON object of string values$/);
  });

  test.each([
    ['a reserved key', '{"aws:stage":"prod"}', /must not start with "aws:"/],
    ['a key with a space', '{"cost center":"42"}', /has characters outside/],
    ['a value too long', JSON.stringify({ stage: 'v'.repeat(257) }), /longer than 256/],
    ['too many tags', JSON.stringify(Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`k${i}`, 'v']))), /51 tags given/],
  ])('%s breaks a tag rule and is a ConfigError naming DEFAULT_TAGS', (_what, raw, problem) => {
    const message = configErrorOf(env({ DEFAULT_TAGS: raw }));
    expect(message).toMatch(/^DEFAULT_TAGS: /);
    expect(message).toMatch(problem);
  });
});

describe('loadConfig: numeric settings', () => {
  test('have defaults', () => {
    const config = loadConfig(env());
    expect(config.requestTimeoutMs).toBe(5_000);
    expect(config.retry).toEqual({ maxAttempts: 6, baseDelayMs: 100, maxDelayMs: 10_000, safetyMarginMs: 3_000 });
  });

  test('overrides are parsed as integers', () => {
    const config = loadConfig(
      env({
        AWS_REQUEST_TIMEOUT_MS: '2500',
        RETRY_MAX_ATTEMPTS: '3',
        RETRY_BASE_DELAY_MS: '50',
        RETRY_MAX_DELAY_MS: '8000',
        DEADLINE_SAFETY_MARGIN_MS: '1500',
      }),
    );
    expect(config.requestTimeoutMs).toBe(2_500);
    expect(config.retry).toEqual({ maxAttempts: 3, baseDelayMs: 50, maxDelayMs: 8_000, safetyMarginMs: 1_500 });
  });

  test.each([
    ['AWS_REQUEST_TIMEOUT_MS', '100', 100],
    ['AWS_REQUEST_TIMEOUT_MS', '60000', 60_000],
    ['RETRY_MAX_ATTEMPTS', '1', 1],
    ['RETRY_MAX_ATTEMPTS', '20', 20],
    ['DEADLINE_SAFETY_MARGIN_MS', '0', 0],
  ])('%s=%s is accepted at the edge of its range', (name, raw, expected) => {
    const config = loadConfig(env({ [name]: raw }));
    const read = { ...config.retry, requestTimeoutMs: config.requestTimeoutMs };
    const key = {
      AWS_REQUEST_TIMEOUT_MS: 'requestTimeoutMs',
      RETRY_MAX_ATTEMPTS: 'maxAttempts',
      DEADLINE_SAFETY_MARGIN_MS: 'safetyMarginMs',
    }[name] as keyof typeof read;
    expect(read[key]).toBe(expected);
  });

  test('a KMS key id is passed through', () => {
    expect(loadConfig(env({ SECRET_KMS_KEY_ID: 'alias/keyprov' })).secretKmsKeyId).toBe('alias/keyprov');
  });
});

describe('findings of review', () => {
  const base = {
    COMPLETION_QUEUE_URL: 'https://sqs.us-east-1.amazonaws.com/1/q',
    NAME_PREFIX: 'p/',
    API_GATEWAY_RATE_PER_SECOND: '1',
    KEY_RECORDS_TABLE: 'records',
  };

  test('an empty number setting means its default, not 0', () => {
    expect(loadConfig({ ...base, DEADLINE_SAFETY_MARGIN_MS: '' }).retry.safetyMarginMs).toBe(3000);
  });

  test.each(['0x10', '1e3', '12.5', '-1'])('a number setting of %j is rejected, naming the variable', (value) => {
    expect(() => loadConfig({ ...base, RETRY_MAX_ATTEMPTS: value })).toThrow(/RETRY_MAX_ATTEMPTS/);
  });

  test('a queue URL must be http(s)', () => {
    expect(() => loadConfig({ ...base, COMPLETION_QUEUE_URL: 'javascript:alert(1)' })).toThrow(/COMPLETION_QUEUE_URL/);
  });

  test('RETRY_MAX_DELAY_MS below RETRY_BASE_DELAY_MS is rejected', () => {
    expect(() => loadConfig({ ...base, RETRY_BASE_DELAY_MS: '500', RETRY_MAX_DELAY_MS: '100' })).toThrow(/RETRY_MAX_DELAY_MS/);
  });
});

describe('throughput settings', () => {
  test('the API Gateway rate is a decimal number, 0 turns the limiter off', () => {
    expect(loadConfig(env({ API_GATEWAY_RATE_PER_SECOND: '1.25' })).apiGatewayRatePerSecond).toBe(1.25);
    expect(loadConfig(env({ API_GATEWAY_RATE_PER_SECOND: '0' })).apiGatewayRatePerSecond).toBe(0);
    expect(configErrorOf(env({ API_GATEWAY_RATE_PER_SECOND: 'fast' }))).toContain('API_GATEWAY_RATE_PER_SECOND');
  });

  test('record concurrency has a default', () => {
    expect(loadConfig(env())).toMatchObject({ recordConcurrency: 10 });
    expect(loadConfig(env({ RECORD_CONCURRENCY: '3' }))).toMatchObject({ recordConcurrency: 3 });
  });

  test("the SDK's own retry modes are not a setting of the function: they are the benchmark's baselines", () => {
    expect(loadConfig(env({ SDK_RETRY_MODE: 'adaptive' }))).not.toHaveProperty('sdkRetryMode');
  });
});

describe('lifecycle settings', () => {
  test("defaults: keep the revoked secret's value, acknowledge entitlement-updated", () => {
    expect(loadConfig(env())).toMatchObject({ revokedSecretPolicy: 'keep', onEntitlementUpdated: 'acknowledge' });
  });

  test('the other choices, and a wrong one named', () => {
    expect(loadConfig(env({ REVOKED_SECRET_POLICY: 'delete-value', ON_ENTITLEMENT_UPDATED: 'move-to-configured-plan' }))).toMatchObject({
      revokedSecretPolicy: 'delete-value',
      onEntitlementUpdated: 'move-to-configured-plan',
    });
    expect(configErrorOf(env({ REVOKED_SECRET_POLICY: 'delete' }))).toContain('REVOKED_SECRET_POLICY');
  });
});

describe('ROTATION_SCHEDULE', () => {
  test('absent or empty: none; a schedule Secrets Manager accepts is passed through', () => {
    expect(loadConfig(env()).rotationSchedule).toBeUndefined();
    expect(loadConfig(env({ ROTATION_SCHEDULE: '' })).rotationSchedule).toBeUndefined();
    for (const schedule of ['rate(90 days)', 'rate(1 days)', 'rate(4 hours)', 'cron(0 16 1,15 * ? *)'])
      expect(loadConfig(env({ ROTATION_SCHEDULE: schedule })).rotationSchedule).toBe(schedule);
  });

  test.each([['90 days'], ['rate(3 hours)'], ['rate(0 days)'], ['rate(90 minutes)'], ['rate(1 day)'], ['cron()'], ['rate(90 days) ']])(
    '%j is rejected, the variable named (RotateSecret would refuse it: every new customer handed back)',
    (value) => {
      const message = configErrorOf(env({ ROTATION_SCHEDULE: value }));
      expect(message).toContain('ROTATION_SCHEDULE: must be a Secrets Manager schedule expression');
    },
  );
});
