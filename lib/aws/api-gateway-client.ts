import { APIGatewayClient, BadRequestException, NotFoundException, UnauthorizedException } from '@aws-sdk/client-api-gateway';
import { domainErrorFromSdk, type ServiceErrors, sdkClientSettings } from './errors.js';

/** Only our retry layer retries (see lib/quota/retry.ts), so the SDK makes one attempt per call. */
export function createApiGatewayClient(requestTimeoutMs: number): APIGatewayClient {
  return new APIGatewayClient(sdkClientSettings(requestTimeoutMs));
}

/** BadRequest: the request is malformed. Unauthorized (credentials) and NotFound (a plan or key gone): our side. */
const ERRORS: ServiceErrors = {
  permanent: [[BadRequestException, 'bad-request']],
  environment: [UnauthorizedException, NotFoundException],
};

/** The product's error for an API Gateway SDK error (lib/aws/errors.ts domainErrorFromSdk). */
export const toDomainError = (operation: string, error: unknown) => domainErrorFromSdk(operation, error, ERRORS);

/** Longest page GetApiKeys and GetUsagePlanKeys return. */
export const PAGE_LIMIT = 500;

/**
 * The position of the next page, or undefined to stop: at the end, and at a position already asked for (a service
 * that hands one back again, or pages in a cycle, would otherwise be paged forever, a call and a slot each time).
 */
export function nextPosition(position: string | undefined, seen: Set<string>): string | undefined {
  if (!position || seen.has(position)) return undefined;
  seen.add(position);
  return position;
}
