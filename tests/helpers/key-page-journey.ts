import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { CreateSecretCommand } from '@aws-sdk/client-secrets-manager';
import { type SampleBuyer, startJourneyServer, type UrlHandler } from '../../lib/local/journey-server.js';
import { ensureKeyRevealsTable } from '../../lib/local/resources.js';
import { actingAs, asPrincipal } from '../realistic-aws/index.js';
import { PRINCIPALS, STACK_NAMES } from './iam.js';
import type { Pipeline } from './pipeline.js';

/**
 * The buyer journey next to a running pipeline (tests/helpers/pipeline.ts), as `npm start -- --serve` serves it
 * (lib/local/journey-server.ts): the Marketplace stand-in, the production registration hook and key page
 * (functions/register.ts, functions/key-page.ts) configured from the environment as deployed, each running as its
 * own role under the IAM switch, their AWS calls through the pipeline's realistic layer. Their signing key is the
 * stack's secret. One per test file: the functions read their configuration once.
 */
export async function startKeyPageJourney(pipeline: Pipeline, buyers: SampleBuyer[]) {
  const moto = process.env.MOTO_ENDPOINT;
  if (!moto) throw new Error('MOTO_ENDPOINT is not set: run the integration project (its global setup starts moto)');
  const aws = pipeline.proxy;
  const signingKey = `it-signing-key-${crypto.randomUUID()}`;
  await pipeline.secrets.send(new CreateSecretCommand({ Name: STACK_NAMES.signingKeySecret, SecretString: signingKey }));
  await ensureKeyRevealsTable(new DynamoDBClient({ endpoint: moto }), STACK_NAMES.keyRevealsTable);
  for (const { token, label: _, ...customer } of buyers) aws.registerToken(token, customer);
  const server = await startJourneyServer({
    port: 0,
    buyers,
    handlers: async (url) => {
      Object.assign(process.env, {
        SIGNUP_QUEUE_URL: pipeline.queues.signupUrl.replace(moto, aws.endpoint),
        REGISTRATION_PAGE_URL: `${url}/key/`,
        REGISTRATION_SIGNING_KEY_SECRET_ID: STACK_NAMES.signingKeySecret,
        KEY_REVEALS_TABLE: STACK_NAMES.keyRevealsTable,
        SELLER_NAME: 'Example Weather API',
        API_BASE_URL: 'https://api.example.com/v1',
        DOCUMENTATION_URL: 'https://docs.example.com/',
        SUPPORT_CONTACT: 'support@example.com',
      });
      // Each loaded as its function's role (the cold start reads the signing key), each request run as it.
      const load = async (principal: string, path: string) => {
        const { handler } = (await asPrincipal(principal, () => import(path))) as { handler: UrlHandler };
        return actingAs(principal, handler);
      };
      return {
        register: await load(PRINCIPALS.register, '../../functions/register.js'),
        keyPage: await load(PRINCIPALS.keyPage, '../../functions/key-page.js'),
      };
    },
  });
  return { server, signingKey, close: () => server.close() };
}
