import { Logger } from '@aws-lambda-powertools/logger';

/** The one logger of the function. Level from POWERTOOLS_LOG_LEVEL; service name from POWERTOOLS_SERVICE_NAME. */
export const logger = new Logger({ serviceName: 'api-key-provisioner' });
