/**
 * `npx tsx tests/docs/check-links.ts [DIR]`: validates the relative links and heading anchors of every Markdown file
 * under DIR (default: the repository root), offline, with remark-validate-links through unified-engine (which is
 * what lets it check `other.md#heading` across files). `repository: false` and `root`: the plugin then runs no
 * `git remote` and builds no hosted-git URL; every link is a path on disk. Prints one line per problem
 * (`file:line:column: message`) and exits 1 when there is any, 0 when there is none, 2 when it could not run.
 * Run by tests/unit/docs-links.test.ts (Jest cannot load these ESM-only packages itself).
 */
import { resolve } from 'node:path';
import { remark } from 'remark';
import remarkValidateLinks from 'remark-validate-links';
import { engine } from 'unified-engine';

const root = resolve(process.argv[2] ?? '.');
const problems: string[] = [];

engine(
  {
    // Through `plugins`, not processor.use(): only then does the engine hand the plugin its file set, which it needs to
    // check a heading in another file.
    processor: remark,
    plugins: [[remarkValidateLinks, { repository: false, root }]] as unknown as NonNullable<Parameters<typeof engine>[0]['plugins']>,
    cwd: root,
    files: ['.'],
    extensions: ['md'],
    ignorePatterns: ['node_modules/**', '.venv/**', '.serverless/**', '.esbuild/**', 'tests/docs/fixtures/**'],
    ignoreName: '.remarkignore',
    silent: true,
    quiet: true,
    output: false,
    out: false,
    color: false,
    reporter: (
      files: Array<{ path: string; messages: Array<{ line?: number; column?: number; reason: string; fatal?: boolean | null }> }>,
    ) => {
      for (const file of files) for (const m of file.messages) problems.push(`${file.path}:${m.line ?? 0}:${m.column ?? 0}: ${m.reason}`);
      return '';
    },
  },
  (error, code) => {
    if (error) {
      console.error(`check-links failed: ${error.message}`);
      process.exit(2);
    }
    for (const line of problems) console.log(line);
    console.log(problems.length === 0 ? 'links: no problem' : `links: ${problems.length} problem(s)`);
    process.exit(problems.length > 0 || code ? 1 : 0);
  },
);
