import { ProvisionerError } from '../errors.js';

/**
 * Errors of the registration hook (functions/register.ts). The retryable and environment errors it meets are the
 * product's own (lib/errors.ts: ThrottledError, TransientError, DeadlineError, EnvironmentError); these two are the
 * hook's permanent outcomes. Messages never hold the registration token.
 */

/** Why Marketplace refused the token: the buyer has to start again from AWS Marketplace. */
export type TokenRejection = 'invalid-token' | 'expired-token';

/** ResolveCustomer answered InvalidTokenException or ExpiredTokenException: no retry can succeed. */
export class TokenRejectedError extends ProvisionerError {
  override name = 'TokenRejectedError';
  constructor(
    readonly reason: TokenRejection,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** ResolveCustomer answered, but not with a buyer this hook can provision (no account id, no product code, bad characters). */
export class UnusableCustomerError extends ProvisionerError {
  override name = 'UnusableCustomerError';
}

/** Why the browser's request cannot be read as Marketplace's registration form. */
export type FormProblem = 'method-not-allowed' | 'missing-token' | 'malformed-form';

/** The request is not a usable registration form POST (nothing was sent to AWS). */
export class FormError extends ProvisionerError {
  override name = 'FormError';
  constructor(
    readonly reason: FormProblem,
    message: string,
  ) {
    super(message);
  }
}
