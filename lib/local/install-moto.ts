/** `npm run local-aws`: makes sure a moto_server is available (on PATH, or installed into .venv) and says which. */
import { spawnSync } from 'node:child_process';
import { ensureMotoServer } from './moto.js';

try {
  const command = ensureMotoServer((line) => console.log(line));
  const version = spawnSync(command.replace(/moto_server$/, 'python3'), ['-c', 'import moto; print(moto.__version__)'], {
    encoding: 'utf8',
  });
  console.log(`moto_server: ${command}${version.status === 0 ? ` (moto ${version.stdout.trim()})` : ''}`);
} catch (error) {
  console.error(error instanceof Error ? error.message : String(error));
  process.exit(1);
}
