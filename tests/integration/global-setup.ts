import { startMoto } from '../../lib/local/moto'; // no '.js': globalSetup is loaded without moduleNameMapper;

/** One moto server for the whole integration run; suites reset it (POST /moto-api/reset) before they start. */
export default async function globalSetup(): Promise<void> {
  const moto = await startMoto();
  process.env.MOTO_ENDPOINT = moto.endpoint;
  (globalThis as { __moto?: typeof moto }).__moto = moto;
}
