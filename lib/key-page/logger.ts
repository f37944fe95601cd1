import { Logger } from '@aws-lambda-powertools/logger';

/**
 * The key page's logger (level from POWERTOOLS_LOG_LEVEL). Its own, without the provision function's metrics: the page
 * is on the buyer's path and its cold start counts. Never given a key value, a reference, a cookie or a CSRF token.
 */
export const logger = new Logger({ serviceName: 'api-key-provisioner' });
