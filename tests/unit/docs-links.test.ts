/**
 * Every relative link and heading anchor of every Markdown file of the repository resolves, checked offline
 * (tests/docs/check-links.ts: remark-validate-links without git or network). The fixture proves the check fails
 * when it should.
 */
import { run } from '../helpers/run-command.js';

const check = (dir?: string) =>
  run(
    'node_modules/.bin/tsx',
    ['tests/docs/check-links.ts', ...(dir ? [dir] : [])],
    { PATH: process.env.PATH, HOME: process.env.HOME },
    30_000,
  );

test('every relative link and heading anchor of the Markdown files resolves', async () => {
  const result = await check();
  expect({ code: result.code, problems: result.stdout.trim().split('\n'), stderr: result.stderr }).toEqual({
    code: 0,
    problems: ['links: no problem'],
    stderr: '',
  });
});

test('the check finds a missing file, a missing heading in another file and one in the same file', async () => {
  const result = await check('tests/docs/fixtures/dead-links');
  expect(result.code).toBe(1);
  expect(result.stdout.trim().split('\n')).toEqual([
    'README.md:5:3: Cannot find file `missing.md`',
    'README.md:6:3: Cannot find heading for `#no-such-heading` in `sub/page.md`',
    'README.md:7:3: Cannot find heading for `#nowhere`',
    'links: 3 problem(s)',
  ]);
});
