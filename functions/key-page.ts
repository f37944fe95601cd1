import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import { loadKeyPageConfig } from '../lib/key-page/config.js';
import { createKeyPageDeps } from '../lib/key-page/deps.js';
import { createKeyPageHandler } from '../lib/key-page/key-page.js';
import { logger } from '../lib/key-page/logger.js';

// Cold start: configuration validated, SDK clients built, the signing key's read started, once per instance.
const keyPage = createKeyPageHandler(createKeyPageDeps(loadKeyPageConfig(process.env)));

// The event is never logged: its cookies hold the buyer's session, its query a reference.
export const handler = middy(keyPage).use(injectLambdaContext(logger, { resetKeys: true }));
