import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Context, SQSEvent, SQSRecord } from 'aws-lambda';
import { lambdaContext as localLambdaContext } from '../../lib/local/lambda-context.js';

/** An SQS record as Lambda delivers it, with `body` verbatim (objects are JSON-encoded). */
export function sqsRecord(body: unknown, overrides: Partial<SQSRecord> = {}): SQSRecord {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  return {
    messageId: randomUUID(),
    receiptHandle: `AQEB${randomUUID()}`,
    body: text,
    attributes: {
      ApproximateReceiveCount: '1',
      SentTimestamp: String(Date.now()),
      SenderId: 'AIDAIENQZJOLO23YVJ4VO',
      ApproximateFirstReceiveTimestamp: String(Date.now()),
    },
    messageAttributes: {},
    md5OfBody: '',
    eventSource: 'aws:sqs',
    eventSourceARN: 'arn:aws:sqs:us-east-1:123456789012:api-key-provisioner-test-signups',
    awsRegion: 'us-east-1',
    ...overrides,
  };
}

export const sqsEvent = (...bodies: unknown[]): SQSEvent => ({ Records: bodies.map((b) => sqsRecord(b)) });

/** A sample event from events/. */
export function sampleEvent(name: string): SQSEvent {
  return JSON.parse(readFileSync(join(__dirname, '..', '..', 'events', `${name}.json`), 'utf8')) as SQSEvent;
}

/** A Lambda context whose deadline is `remainingMs` from now (the local runner's, lib/local/lambda-context.ts). */
export const lambdaContext = (remainingMs = 30_000): Context => localLambdaContext(remainingMs, 'api-key-provisioner-test-provision');

export const signup = (customerId: string, extra: Record<string, unknown> = {}) => ({ customerId, ...extra });

export const marketplaceNotification = (action: string, customer: string, productCode = 'prod4k2j9x8l7') => ({
  action,
  'customer-identifier': customer,
  'product-code': productCode,
});

export const snsEnvelope = (message: unknown) => ({
  Type: 'Notification',
  MessageId: randomUUID(),
  TopicArn: 'arn:aws:sns:us-east-1:287250355862:aws-mp-subscription-notification-prod4k2j9x8l7',
  Message: typeof message === 'string' ? message : JSON.stringify(message),
  Timestamp: new Date().toISOString(),
  SignatureVersion: '1',
  Signature: 'EXAMPLE',
});

export const eventBridgeEnvelope = (detail: unknown, id: string = randomUUID()) => ({
  version: '0',
  id,
  'detail-type': 'Customer Signed Up',
  source: 'com.example.accounts',
  account: '123456789012',
  time: new Date().toISOString(),
  region: 'us-east-1',
  resources: [],
  detail,
});

/**
 * Marketplace's License Updated / Deprovisioned (EventBridge, `aws.agreement-marketplace`), as AWS documents them
 * (lib/messages/marketplace-eventbridge.ts): for the buyer `accountId` and the product; `licenseArn` names one of a
 * buyer's concurrent agreements. `id` defaults to a random one.
 */
export const licenseEvent = (
  kind: 'Updated' | 'Deprovisioned',
  event: { productCode: string; accountId: string; time: string; licenseArn?: string; id?: string },
) => ({
  version: '0',
  id: event.id ?? randomUUID(),
  'detail-type': `License ${kind} - Manufacturer`,
  source: 'aws.agreement-marketplace',
  account: '123456789012',
  time: event.time,
  region: 'us-east-1',
  resources: [],
  detail: {
    product: { code: event.productCode },
    ...(event.licenseArn && { license: { arn: event.licenseArn } }),
    acceptor: { accountId: event.accountId },
  },
});
