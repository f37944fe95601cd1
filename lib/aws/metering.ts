import {
  DisabledApiException,
  ExpiredTokenException,
  InvalidTokenException,
  MarketplaceMeteringClient,
  ResolveCustomerCommand,
} from '@aws-sdk/client-marketplace-metering';
import { printable } from '../customer-key/naming.js';
import { TokenRejectedError } from '../registration/errors.js';
import { domainErrorFromSdk, type ServiceErrors, sdkClientSettings } from './errors.js';

/**
 * What ResolveCustomer says about the buyer, as sent (every member is optional in the service model). For listings
 * created for Concurrent Agreements (2026) `customerIdentifier` "is not populated": absent or empty.
 */
export interface ResolvedCustomer {
  customerIdentifier?: string;
  customerAWSAccountId?: string;
  productCode?: string;
  licenseArn?: string;
}

export interface CustomerResolver {
  /**
   * Redeems a registration token (ResolveCustomer), one attempt. Throws {@link TokenRejectedError} for an invalid or
   * expired token; ThrottledError (ThrottlingException, HTTP 400) and TransientError (InternalServiceErrorException,
   * 5xx, timeouts, network) to be retried; EnvironmentError when the API is disabled in the Region or IAM denies the call.
   */
  resolveCustomer(registrationToken: string): Promise<ResolvedCustomer>;
}

/** The Marketplace Metering client of the hook: one attempt per call (lib/quota/retry.ts retries), calls time out. */
export function createMeteringClient(requestTimeoutMs: number): MarketplaceMeteringClient {
  return new MarketplaceMeteringClient(sdkClientSettings(requestTimeoutMs));
}

/** DisabledApiException: "The API is disabled in the Region" — a deployment problem, never the buyer's. */
const ERRORS: ServiceErrors = { permanent: [], environment: [DisabledApiException] };

/** Marketplace Metering adapter: ResolveCustomer only, SDK errors turned into the product's errors. */
export function meteringAdapter(client: MarketplaceMeteringClient): CustomerResolver {
  return {
    async resolveCustomer(registrationToken) {
      try {
        const result = await client.send(new ResolveCustomerCommand({ RegistrationToken: registrationToken }));
        return {
          customerIdentifier: result.CustomerIdentifier,
          customerAWSAccountId: result.CustomerAWSAccountId,
          productCode: result.ProductCode,
          licenseArn: result.LicenseArn,
        };
      } catch (error) {
        if (error instanceof InvalidTokenException)
          throw new TokenRejectedError('invalid-token', `ResolveCustomer: ${printable(error.message, 200)}`, { cause: error });
        if (error instanceof ExpiredTokenException)
          throw new TokenRejectedError('expired-token', `ResolveCustomer: ${printable(error.message, 200)}`, { cause: error });
        throw domainErrorFromSdk('ResolveCustomer', error, ERRORS);
      }
    },
  };
}
