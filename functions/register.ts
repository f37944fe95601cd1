import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import { logger } from '../lib/pipeline/observability.js';
import { loadRegistrationConfig } from '../lib/registration/config.js';
import { createRegistrationDeps } from '../lib/registration/deps.js';
import { createRegistrationHandler } from '../lib/registration/register.js';

// Cold start: configuration validated, SDK clients built, the signing key's read started, once per instance.
const register = createRegistrationHandler(createRegistrationDeps(loadRegistrationConfig(process.env)));

// The event is never logged: its body holds the registration token.
export const handler = middy(register).use(injectLambdaContext(logger, { resetKeys: true }));
