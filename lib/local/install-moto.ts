/** `npm run local-aws`: makes sure a moto_server is available (on PATH, or installed into .venv) and says which. */
import { spawnSync } from 'node:child_process';
import { EXIT, parseCommandLine, runCommand } from '../command-line.js';
import { ensureMotoServer } from './moto.js';

const USAGE = `Usage: npm run local-aws

Makes sure moto_server, the local AWS of npm start and the tests, is available: on PATH, else in .venv/, else it
installs moto[server] into .venv/ with pip (Python 3 with venv needed). Prints which moto_server it found.

  -h, --help   print this text

Exit code: 0 moto_server is available, 2 it is not and could not be installed (the line says why).`;

async function main(): Promise<number> {
  parseCommandLine(USAGE, {});
  const command = ensureMotoServer((line) => console.log(line));
  const version = spawnSync(command.replace(/moto_server$/, 'python3'), ['-c', 'import moto; print(moto.__version__)'], {
    encoding: 'utf8',
  });
  console.log(`moto_server: ${command}${version.status === 0 ? ` (moto ${version.stdout.trim()})` : ''}`);
  return EXIT.ok;
}

runCommand('local-aws', main);
