/**
 * The fenced shell blocks of the documentation and what each one's info string says about running it:
 * - ```sh run            executed by tests/integration/docs-commands.test.ts; must exit 0
 * - ```sh run exit=N     executed; must exit N
 * - ```sh aws: REASON    needs a real AWS account; not executed, REASON printed
 * - ```sh manual: REASON runs locally but not in the test (too long, or recursive); not executed, REASON printed
 * Renderers read only the info string's first word, so the marks stay invisible on GitHub.
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

const ROOT = resolve(__dirname, '../..');

/** The Markdown files whose shell blocks must be marked: README.md, docs/*.md and the other READMEs. */
export const DOCUMENTED_FILES = [
  'README.md',
  'docs/configuration.md',
  'docs/deployment.md',
  'docs/events.md',
  'docs/guarantees.md',
  'docs/lifecycle.md',
  'docs/local.md',
  'docs/operations.md',
  'docs/registration.md',
  'docs/throughput.md',
  'events/README.md',
  'tests/realistic-aws/README.md',
];

const SHELLS = new Set(['sh', 'bash', 'shell', 'zsh', 'console']);

export type BlockMark = { mode: 'run'; exitCode: number } | { mode: 'aws' | 'manual'; reason: string } | { mode: 'unmarked'; info: string };

export interface ShellBlock {
  /** `docs/local.md:55`: where the block's opening fence is. */
  where: string;
  mark: BlockMark;
  script: string;
}

/** What an info string's words after the language say. */
export function parseMark(meta: string): BlockMark {
  const run = /^run(?:\s+exit=(\d+))?$/.exec(meta);
  if (run) return { mode: 'run', exitCode: Number(run[1] ?? 0) };
  const skipped = /^(aws|manual):\s*(\S.*)$/.exec(meta);
  if (skipped) return { mode: skipped[1] as 'aws' | 'manual', reason: (skipped[2] ?? '').trim() };
  return { mode: 'unmarked', info: meta };
}

/** The shell blocks of one Markdown text (CommonMark fences: ``` or ~~~, closed by a fence at least as long). */
export function shellBlocksOf(file: string, text: string): ShellBlock[] {
  const blocks: ShellBlock[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const open = /^ {0,3}(`{3,}|~{3,})\s*([^`\s]*)\s*(.*)$/.exec(lines[i] ?? '');
    if (!open) continue;
    const [, fence = '```', lang = '', meta = ''] = open;
    // CommonMark: a backtick fence's info string holds no backtick (else the line is inline code, not a fence).
    if (fence[0] === '`' && meta.includes('`')) continue;
    const body: string[] = [];
    let j = i + 1;
    const closes = new RegExp(`^ {0,3}${fence[0] === '`' ? '`' : '~'}{${fence.length},}\\s*$`);
    while (j < lines.length && !closes.test(lines[j] ?? '')) body.push(lines[j++] ?? '');
    if (SHELLS.has(lang.toLowerCase())) blocks.push({ where: `${file}:${i + 1}`, mark: parseMark(meta.trim()), script: body.join('\n') });
    i = j;
  }
  return blocks;
}

/** Every shell block of {@link DOCUMENTED_FILES}. */
export function documentedShellBlocks(): ShellBlock[] {
  return DOCUMENTED_FILES.flatMap((file) => shellBlocksOf(file, readFileSync(join(ROOT, file), 'utf8')));
}

/** A block of {@link documentedShellBlocks}. */
export type DocumentedBlock = ShellBlock;
