/**
 * The documentation's commands run as written: every shell block of README.md and docs/ marked `run`
 * (tests/helpers/doc-blocks.ts) is executed with bash (-e -u -o pipefail) from the repository root, in a shell
 * without this test run's settings, and must exit as its mark says. Blocks that need the local AWS of
 * `npm start -- --keep` name it `$ENDPOINT`, as the docs tell the reader to set it: one `npm start -- --keep` starts
 * it here (its embedded moto, not the test run's), and it is stopped at the end with the `kill` it prints. The
 * blocks not run are listed with their reasons.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type DocumentedBlock, documentedShellBlocks } from '../helpers/doc-blocks.js';
import { type Run, run } from '../helpers/run-command.js';

const BLOCK_TIMEOUT_MS = 90_000;
// The project's testTimeout does not reach here (Jest reads it globally).
jest.setTimeout(BLOCK_TIMEOUT_MS + 10_000);

const blocks = documentedShellBlocks();
const runnable = blocks.flatMap((b) => (b.mark.mode === 'run' ? [{ ...b, exitCode: b.mark.exitCode }] : []));

/** What a reader's shell has: no AWS settings, none of this test run's function settings. */
const shellEnv = (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => ({ PATH: process.env.PATH, HOME: process.env.HOME, ...extra });

const output = (r: Run) => `exit ${r.code} ${r.signal ?? ''}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;

let endpoint = '';
let motoPid: number | undefined;
/** The commands `npm start -- --keep` prints under `Next:` (README shows them). */
let nextCommands: string[] = [];
/** What `npm start -- --keep` printed. */
let keptOutput = '';

beforeAll(async () => {
  const kept = await run('npm', ['start', '--', '--keep'], shellEnv(), BLOCK_TIMEOUT_MS);
  const local = /^Local AWS: +(http:\/\/\S+) \(stop it with: kill (\d+)\)$/m.exec(kept.stdout);
  motoPid = local ? Number(local[2]) : undefined;
  if (kept.code !== 0 || !local) throw new Error(`npm start -- --keep did not leave a local AWS running:\n${output(kept)}`);
  endpoint = local[1] ?? '';
  keptOutput = kept.stdout;
  nextCommands = (kept.stdout.split('\nNext:\n')[1] ?? '').split('\n').flatMap((line) => (/^ {2}npm run /.test(line) ? [line.trim()] : []));
}, BLOCK_TIMEOUT_MS + 10_000);

afterAll(() => {
  if (motoPid) process.kill(motoPid, 'SIGTERM');
});

test('the blocks not run, each with its reason', () => {
  const notRun = blocks.flatMap((b: DocumentedBlock) =>
    b.mark.mode === 'aws' || b.mark.mode === 'manual' ? [`${b.where}: not run (${b.mark.mode}): ${b.mark.reason}`] : [],
  );
  console.log(`Documentation blocks not run here:\n${notRun.join('\n')}`);
  expect(blocks.filter((b) => b.mark.mode === 'unmarked').map((b) => b.where)).toEqual([]);
  for (const line of notRun) expect(line).toMatch(/: not run \((aws|manual)\): \S.{9,}$/);
});

test.each(runnable.map((b) => [b.where, b] as const))('%s runs as written', async (_, block) => {
  // A run block names the local AWS as $ENDPOINT, never by a port that only existed on the writer's machine.
  expect(block.script).not.toMatch(/127\.0\.0\.1:\d+/);
  const result = await run('bash', ['-euo', 'pipefail', '-c', block.script], shellEnv({ ENDPOINT: endpoint }), BLOCK_TIMEOUT_MS);
  expect({ code: result.code, output: result.code === block.exitCode ? '' : output(result) }).toEqual({ code: block.exitCode, output: '' });
});

test('the redrive, reconcile and sweep commands npm start -- --keep prints under "Next:" run as printed', async () => {
  expect(nextCommands.map((c) => c.split(' -- ')[0])).toEqual(['npm run redrive', 'npm run reconcile', 'npm run sweep']);
  for (const command of nextCommands) {
    const result = await run('bash', ['-euo', 'pipefail', '-c', command], shellEnv(), BLOCK_TIMEOUT_MS);
    expect({ command, code: result.code, output: result.code === 0 ? '' : output(result) }).toEqual({ command, code: 0, output: '' });
  }
});

/**
 * The output of `npm start` the docs show (unlabelled blocks starting with its table's header or its `--keep` part),
 * each line but the message rows and the totals (the lifecycle samples come out either way round, docs/lifecycle.md)
 * as the command prints it: times, ports, process ids and counts read as any.
 */
test.each(['README.md', 'docs/local.md'])('the npm start output %s shows is what npm start prints', (file) => {
  const same = (line: string) =>
    line
      .replace(/\d{4}-\d{2}-\d{2}T[\d:.]+Z/g, '<time>')
      .replace(/\d+/g, 'N')
      .trimEnd();
  const printed = new Set(keptOutput.split('\n').map(same));
  const shown = unlabelledBlocks(readFileSync(join(__dirname, '..', '..', file), 'utf8')).filter((block) =>
    /^(message {2,}outcome|Local AWS: |Maintenance sweep, as of )/.test(block[0] ?? ''),
  );
  expect(shown.length).toBeGreaterThan(0);
  const lines = shown.flat().filter((l) => l !== '' && l !== '...' && !/^(events\/|Totals: )/.test(l));
  expect(lines.filter((l) => !printed.has(same(l)))).toEqual([]);
});

/** The lines of each fenced block without an info string (output, not commands) of a Markdown text. */
function unlabelledBlocks(markdown: string): string[][] {
  const blocks: string[][] = [];
  let open: { info: string; lines: string[] } | undefined;
  for (const line of markdown.split('\n')) {
    const fence = /^```(.*)$/.exec(line);
    if (!open) {
      if (fence) open = { info: (fence[1] ?? '').trim(), lines: [] };
    } else if (line === '```') {
      if (open.info === '') blocks.push(open.lines);
      open = undefined;
    } else open.lines.push(line);
  }
  return blocks;
}
