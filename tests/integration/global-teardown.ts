import type { MotoServer } from '../../lib/local/moto'; // no '.js': globalSetup is loaded without moduleNameMapper;

export default async function globalTeardown(): Promise<void> {
  await (globalThis as { __moto?: MotoServer }).__moto?.stop();
}
