import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { SQSClient } from '@aws-sdk/client-sqs';
// The local ResolveCustomer is the test layer's (moto has none): the same emulation the integration tests use.
import { NONE, startRealisticAws } from '../../tests/realistic-aws/index.js';
import { runEventSourceMapping, type SqsHandler } from './event-source-mapping.js';
import { type JourneyServer, type SampleBuyer, startJourneyServer, type UrlHandler } from './journey-server.js';
import { ensureKeyRevealsTable, type PipelineQueues } from './resources.js';
import { LOCAL_SIGNING_KEY } from './serve-constants.js';

/** serverless.yml custom.keyRevealsTable for `--stage local`. */
export const LOCAL_REVEALS_TABLE = 'api-key-provisioner-local-key-reveals';

/** The Marketplace stand-in's buyers: a 2026 listing's (account id and license), an older listing's (CustomerIdentifier). */
export const SAMPLE_BUYERS: SampleBuyer[] = [
  {
    label: 'Ana (new listing: account id and license)',
    token: 'local-token-ana',
    customerAWSAccountId: '210987654321',
    productCode: 'prod4k2j9x8l7',
    licenseArn: 'arn:aws:license-manager::386209384616:license:l-0a1b2c3d4e5f60718293a4b5c6d7e8f9',
  },
  {
    label: 'Bo (older listing: customer identifier)',
    token: 'local-token-bo',
    customerAWSAccountId: '321098765432',
    customerIdentifier: 'TG9jYWxCdXllckJv',
    productCode: 'prod4k2j9x8l7',
  },
  {
    label: 'Cy (new listing, free trial)',
    token: 'local-token-cy',
    customerAWSAccountId: '432109876543',
    productCode: 'prod4k2j9x8l7',
  },
];

export interface LocalJourney {
  server: JourneyServer;
  stop(): Promise<void>;
}

/**
 * The buyer journey on the local AWS (`npm start -- --serve`): the Marketplace stand-in, the registration hook and
 * the key page on 127.0.0.1 (lib/local/journey-server.ts), ResolveCustomer answered for the sample buyers' tokens,
 * and the provision function kept running over the signup queue by the event-source-mapping runner, so that a page
 * that says *creating* turns *ready* as it would on AWS. The functions are the production entry points, configured
 * from the environment as a deployment configures them.
 */
export async function serveLocalJourney(options: {
  endpoint: string;
  port: number;
  sqs: SQSClient;
  queues: PipelineQueues;
  provision: SqsHandler;
  functionTimeoutMs: number;
  onError: (message: string) => void;
}): Promise<LocalJourney> {
  const layer = await startRealisticAws(options.endpoint, NONE);
  for (const { token, label: _, ...customer } of SAMPLE_BUYERS) layer.registerToken(token, customer);
  await ensureKeyRevealsTable(new DynamoDBClient({}), LOCAL_REVEALS_TABLE);

  const server = await startJourneyServer({
    port: options.port,
    buyers: SAMPLE_BUYERS,
    handlers: async (url) => {
      // The hook's and the page's clients go through the layer (ResolveCustomer; the rest is moto's).
      Object.assign(process.env, {
        AWS_ENDPOINT_URL: layer.endpoint,
        SIGNUP_QUEUE_URL: options.queues.signupUrl.replace(options.endpoint, layer.endpoint),
        REGISTRATION_PAGE_URL: `${url}/key/`,
        KEY_REVEALS_TABLE: process.env.KEY_REVEALS_TABLE ?? LOCAL_REVEALS_TABLE,
      });
      process.env.REGISTRATION_SIGNING_KEY ??= LOCAL_SIGNING_KEY;
      process.env.SELLER_NAME ??= 'Example Weather API (local)';
      process.env.API_BASE_URL ??= 'https://api.example.com/v1';
      process.env.SUPPORT_CONTACT ??= 'support@example.com';
      const register = (await import('../../functions/register.js')).handler as unknown as UrlHandler;
      const keyPage = (await import('../../functions/key-page.js')).handler as unknown as UrlHandler;
      return { register, keyPage };
    },
  });

  let stopping = false;
  const runner = (async () => {
    while (!stopping) {
      try {
        const run = await runEventSourceMapping({
          sqs: options.sqs,
          queueUrl: options.queues.signupUrl,
          queueArn: options.queues.signupArn,
          handler: options.provision,
          functionTimeoutMs: options.functionTimeoutMs,
          maxDurationMs: 5_000,
        });
        if (run.drained && !stopping) await new Promise((resolve) => setTimeout(resolve, 300));
      } catch (error) {
        if (!stopping) options.onError(`event source mapping: ${error instanceof Error ? error.message : String(error)}`);
        await new Promise((resolve) => setTimeout(resolve, 1_000));
      }
    }
  })();

  return {
    server,
    async stop() {
      stopping = true;
      await server.close();
      await runner;
      await layer.close();
    },
  };
}
