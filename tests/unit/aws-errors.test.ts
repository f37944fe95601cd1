import {
  BadRequestException,
  ConflictException,
  LimitExceededException,
  NotFoundException,
  ServiceUnavailableException,
  TooManyRequestsException,
} from '@aws-sdk/client-api-gateway';
import { InvalidParameterException, InvalidRequestException } from '@aws-sdk/client-secrets-manager';
import { domainErrorFromSdk, parseRetryAfter, retryableFromSdk } from '../../lib/aws/errors.js';
import { EnvironmentError, RejectedError, ThrottledError, TransientError } from '../../lib/errors.js';

const meta = (httpStatusCode: number) => ({ httpStatusCode, requestId: 'req-1', attempts: 1, totalRetryDelay: 0 });

describe('parseRetryAfter', () => {
  const now = Date.parse('2026-11-26T10:00:00Z');

  test.each([
    ['2', 2_000],
    ['0', 0],
    ['120', 120_000],
    ['1.5', 1_500],
    [' 3 ', 3_000],
  ])('delta-seconds %j is %i ms', (value, expected) => {
    expect(parseRetryAfter(value, now)).toBe(expected);
  });

  test('an HTTP date in the future is the time until then', () => {
    expect(parseRetryAfter('Thu, 26 Nov 2026 10:00:05 GMT', now)).toBe(5_000);
  });

  test('an HTTP date in the past is 0', () => {
    expect(parseRetryAfter('Thu, 26 Nov 2026 09:59:00 GMT', now)).toBe(0);
  });

  test('defaults now to the current time', () => {
    const inOneMinute = new Date(Date.now() + 60_000).toUTCString();
    const ms = parseRetryAfter(inOneMinute);
    expect(ms).toBeGreaterThan(55_000);
    expect(ms).toBeLessThanOrEqual(60_000);
  });

  test.each([
    ['garbage', 'soon'],
    ['empty', ''],
    ['blank', '   '],
    ['negative', '-1'],
    ['infinite', 'Infinity'],
    ['undefined', undefined],
  ])('%s is undefined', (_what, value) => {
    expect(parseRetryAfter(value, now)).toBeUndefined();
  });
});

describe('retryableFromSdk', () => {
  test('TooManyRequestsException with retryAfterSeconds is a ThrottledError with retryAfterMs', () => {
    const sdkError = new TooManyRequestsException({ message: 'x', $metadata: { httpStatusCode: 429 }, retryAfterSeconds: '2' });
    const error = retryableFromSdk('CreateApiKey', sdkError);
    expect(error).toBeInstanceOf(ThrottledError);
    expect((error as ThrottledError).retryAfterMs).toBe(2_000);
    expect(error?.cause).toBe(sdkError);
    expect(error?.message).toBe('CreateApiKey failed with TooManyRequestsException (HTTP 429): x');
  });

  test('TooManyRequestsException without Retry-After is a ThrottledError without retryAfterMs', () => {
    const error = retryableFromSdk('CreateApiKey', new TooManyRequestsException({ message: 'x', $metadata: meta(429) }));
    expect(error).toBeInstanceOf(ThrottledError);
    expect((error as ThrottledError).retryAfterMs).toBeUndefined();
  });

  test('reads Retry-After from the response headers when the exception has no retryAfterSeconds', () => {
    const sdkError = Object.assign(new TooManyRequestsException({ message: 'x', $metadata: meta(429) }), {
      $response: { headers: { 'retry-after': '7' } },
    });
    expect((retryableFromSdk('Op', sdkError) as ThrottledError).retryAfterMs).toBe(7_000);
  });

  test('an unreadable retryAfterSeconds gives no retryAfterMs', () => {
    const sdkError = new TooManyRequestsException({ message: 'x', $metadata: meta(429), retryAfterSeconds: 'later' });
    const error = retryableFromSdk('Op', sdkError);
    expect(error).toBeInstanceOf(ThrottledError);
    expect((error as ThrottledError).retryAfterMs).toBeUndefined();
  });

  test.each([
    ['with HTTP 429', meta(429)],
    ['without a status code', {}],
  ])('LimitExceededException %s is a ThrottledError', (_what, $metadata) => {
    const error = retryableFromSdk('CreateUsagePlanKey', new LimitExceededException({ message: 'x', $metadata, retryAfterSeconds: '1' }));
    expect(error).toBeInstanceOf(ThrottledError);
    expect((error as ThrottledError).retryAfterMs).toBe(1_000);
  });

  test('any error with HTTP 429 is a ThrottledError', () => {
    const error = Object.assign(new Error('slow'), { name: 'SomethingElse', $metadata: { httpStatusCode: 429 } });
    expect(retryableFromSdk('Op', error)).toBeInstanceOf(ThrottledError);
  });

  test('ServiceUnavailableException (503) is a TransientError', () => {
    const sdkError = new ServiceUnavailableException({ message: 'x', $metadata: meta(503) });
    const error = retryableFromSdk('CreateApiKey', sdkError);
    expect(error).toBeInstanceOf(TransientError);
    expect(error).not.toBeInstanceOf(ThrottledError);
    expect(error?.cause).toBe(sdkError);
    expect(error?.message).toBe('CreateApiKey failed with ServiceUnavailableException (HTTP 503): x');
  });

  test.each([500, 501, 502, 504, 599])('an error with HTTP %i is a TransientError', (status) => {
    const error = Object.assign(new Error('server'), { name: 'InternalFailure', $metadata: { httpStatusCode: status } });
    expect(retryableFromSdk('Op', error)).toBeInstanceOf(TransientError);
  });

  test("an Error named 'TimeoutError' is a TransientError", () => {
    const timeout = new Error('Request timed out');
    timeout.name = 'TimeoutError';
    const error = retryableFromSdk('CreateSecret', timeout);
    expect(error).toBeInstanceOf(TransientError);
    expect(error?.message).toBe('CreateSecret failed with TimeoutError: Request timed out');
  });

  test.each(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'EAI_AGAIN', 'ENOTFOUND'])(
    'a network error %s is a TransientError',
    (code) => {
      const error = Object.assign(new Error(`connect ${code} 127.0.0.1:1`), { code });
      const transient = retryableFromSdk('Op', error);
      expect(transient).toBeInstanceOf(TransientError);
      // What a person reads names the cause, not just `Error`.
      expect(transient?.message).toBe(`Op failed with Error ${code}: connect ${code} 127.0.0.1:1`);
    },
  );

  test.each([
    ['BadRequestException', () => new BadRequestException({ message: 'x', $metadata: meta(400) })],
    ['ConflictException', () => new ConflictException({ message: 'x', $metadata: meta(409) })],
    ['NotFoundException', () => new NotFoundException({ message: 'x', $metadata: meta(404) })],
    ['a plain Error', () => new Error('bug')],
    ['an AbortError', () => Object.assign(new Error('aborted'), { name: 'AbortError' })],
  ])('%s is not retryable', (_what, make) => {
    expect(retryableFromSdk('Op', make())).toBeUndefined();
  });

  test.each([
    ['a string', 'TooManyRequestsException'],
    ['an object shaped like an SDK error', { name: 'TooManyRequestsException', $metadata: { httpStatusCode: 429 } }],
    ['null', null],
    ['undefined', undefined],
  ])('a non-Error (%s) is not retryable', (_what, value) => {
    expect(retryableFromSdk('Op', value)).toBeUndefined();
  });
});

describe('domainErrorFromSdk: both adapters classify IAM, KMS and quota errors the same way', () => {
  const serviceError = (name: string, status: number, message = 'x') =>
    Object.assign(new Error(message), { name, $metadata: meta(status) });
  const none = { permanent: [], environment: [] };

  test.each([
    [
      'Secrets Manager IAM denial (HTTP 400)',
      serviceError('AccessDeniedException', 400, 'User: arn:aws:sts::1:assumed-role/r is not authorized'),
    ],
    ['KMS key policy denial through Secrets Manager', serviceError('AccessDeniedException', 400, 'Access to KMS is not allowed')],
    ['API Gateway IAM denial (HTTP 403)', serviceError('AccessDeniedException', 403)],
    ['a quota-type LimitExceededException (HTTP 400)', serviceError('LimitExceededException', 400, 'You have exceeded the quota')],
  ])('%s is an EnvironmentError: retried by SQS and dead-lettered, never a rejection', (_what, error) => {
    const mapped = domainErrorFromSdk('PutSecretValue', error, none);
    expect(mapped).toBeInstanceOf(EnvironmentError);
    expect(mapped).not.toBeInstanceOf(RejectedError);
    // Not a throttle: the rate limiter is not halved for a quota or a denial.
    expect(mapped).not.toBeInstanceOf(ThrottledError);
    expect((mapped as Error).message).toContain(error.message);
  });

  test("API Gateway's LimitExceededException (HTTP 429) stays a throttle", () => {
    expect(domainErrorFromSdk('CreateApiKey', serviceError('LimitExceededException', 429), none)).toBeInstanceOf(ThrottledError);
  });

  test('Secrets Manager InvalidRequest (a secret scheduled for deletion) is an EnvironmentError, InvalidParameter a rejection', () => {
    const classes = {
      permanent: [[InvalidParameterException, 'bad-request']] as Array<[typeof InvalidParameterException, 'bad-request']>,
      environment: [InvalidRequestException],
    };
    const deleting = new InvalidRequestException({
      message: "You can't perform this operation on the secret because it was marked for deletion.",
      $metadata: meta(400),
    });
    expect(domainErrorFromSdk('GetSecretValue', deleting, classes)).toBeInstanceOf(EnvironmentError);
    const bad = new InvalidParameterException({ message: 'bad name', $metadata: meta(400) });
    expect(domainErrorFromSdk('GetSecretValue', bad, classes)).toBeInstanceOf(RejectedError);
  });
});
