/** The marks of the documentation's shell blocks (tests/helpers/doc-blocks.ts), and that every block carries one. */
import { documentedShellBlocks, parseMark, shellBlocksOf } from '../helpers/doc-blocks.js';

test('info strings: run, run exit=N, aws: and manual: with a reason; anything else is unmarked', () => {
  expect(parseMark('run')).toEqual({ mode: 'run', exitCode: 0 });
  expect(parseMark('run exit=1')).toEqual({ mode: 'run', exitCode: 1 });
  expect(parseMark('aws: deploys to the seller account')).toEqual({ mode: 'aws', reason: 'deploys to the seller account' });
  expect(parseMark('manual: takes 12 minutes')).toEqual({ mode: 'manual', reason: 'takes 12 minutes' });
  for (const meta of ['', 'aws', 'aws:', 'manual:   ', 'runs', 'run exit=x']) expect(parseMark(meta).mode).toBe('unmarked');
});

test('blocks: only shell languages, ``` and ~~~ fences, a longer fence holding a shorter one, line numbers', () => {
  const text = [
    '# t',
    '```sh run',
    'echo one',
    '```',
    '```json',
    '{}',
    '```',
    '````bash manual: holds a fence',
    '```',
    'echo two',
    '````',
    '~~~shell aws: needs AWS',
    'aws sts get-caller-identity',
    '~~~',
    '```',
    'plain output',
    '```',
    '```` ```sh run ```` is inline code, not a fence',
    '```sh run',
    'echo three',
    '```',
  ].join('\n');
  expect(shellBlocksOf('x.md', text)).toEqual([
    { where: 'x.md:2', mark: { mode: 'run', exitCode: 0 }, script: 'echo one' },
    { where: 'x.md:8', mark: { mode: 'manual', reason: 'holds a fence' }, script: '```\necho two' },
    { where: 'x.md:12', mark: { mode: 'aws', reason: 'needs AWS' }, script: 'aws sts get-caller-identity' },
    { where: 'x.md:19', mark: { mode: 'run', exitCode: 0 }, script: 'echo three' },
  ]);
});

test('every shell block of README.md and docs/ says whether it runs, and why not when it does not', () => {
  const blocks = documentedShellBlocks();
  expect(blocks.filter((b) => b.mark.mode === 'unmarked').map((b) => b.where)).toEqual([]);
  // The blocks not run, each with its reason, as the docs test reports them.
  const notRun = blocks.flatMap((b) =>
    b.mark.mode === 'aws' || b.mark.mode === 'manual' ? [`${b.where}: ${b.mark.mode}: ${b.mark.reason}`] : [],
  );
  for (const line of notRun) expect(line).toMatch(/^\S+:\d+: (aws|manual): \S.{9,}$/);
  expect(blocks.filter((b) => b.mark.mode === 'run').length).toBeGreaterThanOrEqual(6);
});
