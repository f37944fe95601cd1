import { type AwsRequest, type AwsResponse, awsError, jsonMember, jsonResponse } from './http.js';
import type { Operation } from './operations.js';
import type { ResolveCustomerSettings } from './settings.js';

/** What a registration token resolves to (the 2026 model: account id and license, identifier optional). */
export interface RegisteredCustomer {
  customerAWSAccountId: string;
  productCode: string;
  licenseArn?: string;
  /** Only integrations older than Concurrent Agreements get one: for new ones it "is not populated". */
  customerIdentifier?: string;
}

interface Registration {
  customer: RegisteredCustomer;
  expiresAt: number;
}

/**
 * AWS Marketplace Metering's ResolveCustomer, which moto does not have: JSON 1.1, X-Amz-Target
 * `AWSMPMeteringService.ResolveCustomer`, request `{RegistrationToken}`, result `{CustomerIdentifier, ProductCode,
 * CustomerAWSAccountId, LicenseArn}` (service model meteringmarketplace 2016-01-14). Its errors carry no HTTP status
 * in the model, so they are 400 as for every JSON-protocol client error. Tokens are registered by the test; the
 * call is never forwarded to moto.
 */
export class Metering {
  #tokens = new Map<string, Registration>();

  register(token: string, customer: RegisteredCustomer, options: { expiresInMs?: number } = {}): void {
    this.#tokens.set(token, {
      customer: { ...customer },
      expiresAt: performance.now() + (options.expiresInMs ?? Number.POSITIVE_INFINITY),
    });
  }

  /** Answers one Metering call; `outcome` names it for the statistics. */
  answer(op: Operation, req: AwsRequest, settings: ResolveCustomerSettings | undefined): { response: AwsResponse; outcome: string } {
    const error = (type: string, message: string) => ({ response: awsError(op, 400, type, message), outcome: type });
    if (op.name !== 'ResolveCustomer')
      return error('UnknownOperationException', `The layer emulates only ResolveCustomer, not ${op.name}.`);
    if (settings?.disabled) return error('DisabledApiException', 'The API is disabled in the Region.');
    if (settings?.throttle) return error('ThrottlingException', 'Rate exceeded');
    const token = jsonMember(req.body, 'RegistrationToken');
    const registration = token === undefined ? undefined : this.#tokens.get(token);
    if (!registration) return error('InvalidTokenException', 'Registration token is invalid.');
    if (performance.now() >= registration.expiresAt) return error('ExpiredTokenException', 'The submitted registration token has expired.');
    const { customerIdentifier, productCode, customerAWSAccountId, licenseArn } = registration.customer;
    const result: Record<string, string> = {};
    if (customerIdentifier !== undefined) result.CustomerIdentifier = customerIdentifier;
    result.ProductCode = productCode;
    result.CustomerAWSAccountId = customerAWSAccountId;
    if (licenseArn !== undefined) result.LicenseArn = licenseArn;
    return {
      response: jsonResponse(200, result, { 'x-amzn-RequestId': crypto.randomUUID() }, 'application/x-amz-json-1.1'),
      outcome: 'resolved',
    };
  }
}
