/**
 * Cold-start benchmark (prints figures; not a test). Reports the size of the function's bundle as
 * `serverless package` builds it, and the module init time of its handler next to, in the same run,
 * a bundle that only builds the four SDK clients (tests/bench/sdk-only-entry.ts).
 *
 *   npm exec -- tsx tests/bench/cold-start.ts [--samples 20] [--out FILE]
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { deflateRawSync } from 'node:zlib';
import { build } from 'esbuild';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
/** serverless.yml's handler `functions/provision.handler`: the bundle is this path plus the output extension. */
const HANDLER_PATH = 'functions/provision';

/**
 * What the function needs at init (lib/config.ts validates it when the module loads), with fake
 * credentials: nothing is called, but the init must not depend on the caller's AWS setup.
 */
const INIT_ENV: Record<string, string> = {
  COMPLETION_QUEUE_URL: 'https://sqs.us-east-1.amazonaws.com/123456789012/x',
  NAME_PREFIX: 'keyprov/bench/',
  AWS_REGION: 'us-east-1',
  AWS_ACCESS_KEY_ID: 'AKIAIOSFODNN7EXAMPLE',
  AWS_SECRET_ACCESS_KEY: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
};

/**
 * Run by a fresh Node per sample, loading the bundle as Lambda's Node runtime loads a handler
 * (aws-lambda-nodejs-runtime-interface-client, src/UserFunction.js): `require(file)` for a .cjs, `await import(file)`
 * for an .mjs. The runtime is itself ESM, so its module loader is already up; the data: import warms ours the same
 * way, leaving only the bundle's own load, parse and top-level code inside the timing.
 */
const CHILD = `
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
await import('data:text/javascript,');
const file = process.argv[1];
const require = createRequire(import.meta.url);
const t0 = performance.now();
const mod = file.endsWith('.cjs') ? require(fileURLToPath(file)) : await import(file);
const ms = performance.now() - t0;
if (typeof mod.handler !== 'function') throw new Error('the bundle exports no handler');
console.log('INIT_MS ' + ms);
`;

export interface Stats {
  min: number;
  median: number;
  p90: number;
}

export interface BundleFigures {
  zipBytes: number;
  bundleBytes: number;
  initMs: Stats;
}

/** Runs a command in the repo root; throws with its output if it fails. */
function run(command: string, args: string[], env: NodeJS.ProcessEnv = process.env): string {
  const result = spawnSync(command, args, { cwd: ROOT, env, encoding: 'utf8' });
  if (result.error) throw result.error;
  if (result.status !== 0) {
    throw new Error(`${command} ${args.join(' ')} exited with ${result.status}\n${result.stdout}${result.stderr}`);
  }
  return result.stdout;
}

/**
 * Packages the service exactly as a deploy would (`serverless package`, offline, no credentials) into
 * `outDir`, and extracts the zip next to it. Returns the zip, the extraction directory and the bundle's path in it.
 */
export function packageOurs(outDir: string): { zip: string; dir: string; bundle: string; entries: string[] } {
  const env = { ...process.env };
  delete env.AWS_ACCESS_KEY_ID;
  delete env.AWS_SECRET_ACCESS_KEY;
  run('serverless', ['package', '--package', outDir], env);
  const zipName = readdirSync(outDir).find((name) => name.endsWith('.zip'));
  if (!zipName) throw new Error(`serverless package wrote no zip to ${outDir}`);
  const zip = join(outDir, zipName);
  const dir = join(outDir, 'unzipped');
  run('unzip', ['-q', zip, '-d', dir]);
  const entries = run('unzip', ['-Z1', zip]).split('\n').filter(Boolean);
  // The extension is configurable in serverless.yml (outputFileExtension); take whichever bundle is there.
  const bundle = entries.find((name) => name.startsWith(`${HANDLER_PATH}.`) && !name.endsWith('.map'));
  if (!bundle) throw new Error(`no ${HANDLER_PATH}.* bundle in ${zip}: ${entries.join(', ')}`);
  return { zip, dir, bundle, entries };
}

/**
 * Settings lib/config.ts requires that serverless.yml may not set yet (API_GATEWAY_RATE_PER_SECOND became
 * required in 3a55a04). Used only when the packaged template lacks them, and then named in the output.
 * Any positive rate builds the limiter at init as production does; its value does not change the init cost.
 */
const FALLBACK_ENV: Record<string, string> = { API_GATEWAY_RATE_PER_SECOND: '5' };

/**
 * The function's environment as packaged (NODE_OPTIONS=--enable-source-maps, Powertools settings), read
 * from the generated template so it follows serverless.yml, with {@link INIT_ENV} over it: source-map
 * support changes what an import costs, so the bench must load the bundles the way Lambda will.
 * Returns the env and the names taken from {@link FALLBACK_ENV}.
 */
export function lambdaEnv(outDir: string): { env: Record<string, string>; fallbacks: string[] } {
  const template = JSON.parse(readFileSync(join(outDir, 'cloudformation-template-update-stack.json'), 'utf8'));
  const fn = Object.values<{ Type: string; Properties: { Environment?: { Variables?: object } } }>(template.Resources).find(
    (r) => r.Type === 'AWS::Lambda::Function',
  );
  const vars = Object.entries(fn?.Properties.Environment?.Variables ?? {});
  // Values that are CloudFormation expressions (the queue's !Ref) only exist once deployed.
  const packaged = Object.fromEntries(vars.filter((entry): entry is [string, string] => typeof entry[1] === 'string'));
  const fallbacks = Object.keys(FALLBACK_ENV).filter((name) => !(name in packaged) && !(name in INIT_ENV));
  return { env: { ...FALLBACK_ENV, ...packaged, ...INIT_ENV }, fallbacks };
}

/** Builds the SDK-only baseline with serverless.yml's custom.esbuild options; returns the bundle's path. */
export function buildSdkOnly(outDir: string): Promise<string> {
  return buildLikeTheFunctions('tests/bench/sdk-only-entry.ts', join(outDir, 'sdk-only.cjs'));
}

/** Bundles `entry` (relative to the repository) into `outfile` with serverless.yml's custom.esbuild options; returns `outfile`. */
export async function buildLikeTheFunctions(entry: string, outfile: string): Promise<string> {
  await build({
    entryPoints: [join(ROOT, entry)],
    outfile,
    bundle: true,
    minify: true,
    sourcemap: 'linked',
    sourcesContent: false,
    target: 'node22',
    platform: 'node',
    mainFields: ['module', 'main'],
    format: 'cjs',
    logLevel: 'warning',
  });
  return outfile;
}

/**
 * Size of a zip of `names` (paths in `dir`) as serverless-esbuild's zipper (archiver) writes one: per file,
 * the data deflated at level 1 (compress-commons' default), a local header (30 B + name), a data descriptor
 * (16 B) and a central-directory entry (46 B + name); then a 22-byte end record. For the baseline, which is
 * never packaged; main() prints the same computation for ours next to its real zip as a check.
 */
export function zipSize(dir: string, names: string[]): number {
  return names.reduce((sum, name) => {
    const nameBytes = Buffer.byteLength(name);
    return sum + 30 + nameBytes + deflateRawSync(readFileSync(join(dir, name)), { level: 1 }).length + 16 + 46 + nameBytes;
  }, 22);
}

/** One init sample: a fresh Node imports the bundle; returns the milliseconds the import took. */
export function sampleInit(bundle: string, env: Record<string, string>): number {
  const out = run(process.execPath, ['--input-type=module', '-e', CHILD, pathToFileURL(bundle).href], env);
  const match = /^INIT_MS (\S+)$/m.exec(out);
  if (!match?.[1]) throw new Error(`no INIT_MS line from the child:\n${out}`);
  return Number(match[1]);
}

/** Min, median and 90th percentile (nearest rank) of the samples. */
export function stats(samples: number[]): Stats {
  const s = [...samples].sort((a, b) => a - b);
  const at = (i: number) => s[Math.min(s.length - 1, Math.max(0, i))] ?? Number.NaN;
  const mid = s.length / 2;
  const median = s.length % 2 ? at(Math.floor(mid)) : (at(mid - 1) + at(mid)) / 2;
  return { min: at(0), median, p90: at(Math.ceil(0.9 * s.length) - 1) };
}

const round = (n: number, digits: number) => Number(n.toFixed(digits));
const rounded = ({ min, median, p90 }: Stats): Stats => ({ min: round(min, 2), median: round(median, 2), p90: round(p90, 2) });
const size = (bytes: number) => `${bytes.toLocaleString('en-US')} B (${(bytes / 1024).toFixed(1)} KiB)`;
const ms = ({ min, median, p90 }: Stats) => `${min.toFixed(1)} / ${median.toFixed(1)} / ${p90.toFixed(1)}`;

/** The figures as `--out` writes them (and as {@link coldStartFigures} returns them). */
export interface ColdStartFigures {
  ours: BundleFigures;
  sdkOnly: BundleFigures;
  /** How much longer ours takes to init than SDK-only, in % of the SDK-only median. */
  overheadPct: number;
}

/**
 * Runs the whole cold-start bench (package, baseline build, alternating init samples), prints the figures
 * through `log` and returns them. Temp files are removed before it returns. Also used by tests/bench/run.ts.
 */
export async function coldStartFigures({
  samples = 20,
  log = console.log,
}: {
  samples?: number;
  log?: (line: string) => void;
} = {}): Promise<ColdStartFigures> {
  if (!Number.isInteger(samples) || samples < 1) throw new Error('samples must be a positive integer');
  // The function runs on nodejs22.x: another Node would time another V8.
  if (!process.version.startsWith('v22.')) {
    throw new Error(`Node ${process.version}: run through npm exec / npm run so node_modules' Node 22 is used`);
  }

  const tmp = mkdtempSync(join(tmpdir(), 'cold-start-'));
  try {
    const t0 = performance.now();
    const ours = packageOurs(join(tmp, 'package'));
    const oursBundle = join(ours.dir, ours.bundle);
    const sdkOnlyBundle = await buildSdkOnly(join(tmp, 'sdk-only'));
    const { env, fallbacks } = lambdaEnv(join(tmp, 'package'));

    // One discarded pair first (disk cache, first-run effects); then A B A B … so drift hits both alike.
    sampleInit(oursBundle, env);
    sampleInit(sdkOnlyBundle, env);
    const times = { ours: [] as number[], sdkOnly: [] as number[] };
    for (let i = 0; i < samples; i++) {
      times.ours.push(sampleInit(oursBundle, env));
      times.sdkOnly.push(sampleInit(sdkOnlyBundle, env));
    }

    const oursInit = stats(times.ours);
    const sdkOnlyInit = stats(times.sdkOnly);
    const figures: ColdStartFigures = {
      ours: { zipBytes: statSync(ours.zip).size, bundleBytes: statSync(oursBundle).size, initMs: rounded(oursInit) },
      sdkOnly: {
        zipBytes: zipSize(dirname(sdkOnlyBundle), ['sdk-only.cjs', 'sdk-only.cjs.map']),
        bundleBytes: statSync(sdkOnlyBundle).size,
        initMs: rounded(sdkOnlyInit),
      },
      overheadPct: round((oursInit.median / sdkOnlyInit.median - 1) * 100, 1),
    };

    log(`Cold start: Node ${process.version}, ${samples} samples each, alternating, fresh process per sample`);
    log(`init env: NODE_OPTIONS=${env.NODE_OPTIONS ?? '(none)'}; ${Object.keys(env).join(', ')}`);
    for (const name of fallbacks) log(`  note: ${name} is not in the packaged env; the bench sets ${name}=${env[name]}`);
    for (const [label, f] of [
      ['ours (serverless package)', figures.ours],
      ['SDK-only (esbuild, same options)', figures.sdkOnly],
    ] as const) {
      log(label);
      log(`  zip    ${size(f.zipBytes)}`);
      log(`  bundle ${size(f.bundleBytes)}`);
      log(`  init   min / median / p90 = ${ms(f.initMs)} ms`);
    }
    const extraMs = oursInit.median - sdkOnlyInit.median;
    const sign = figures.overheadPct >= 0 ? '+' : '';
    log(`overhead of ours over SDK-only (median init): ${extraMs.toFixed(1)} ms, ${sign}${figures.overheadPct}%`);
    // The baseline is never packaged: its zip size is computed the way archiver writes one (see zipSize).
    const check = zipSize(ours.dir, [ours.bundle, `${ours.bundle}.map`]).toLocaleString('en-US');
    log(`SDK-only zip size is computed; for ours the computation gives ${check} B (real zip above)`);
    // serverless-esbuild builds in the repo's .esbuild/, shared with any `serverless package` running at the
    // same time: its files can end up in our zip, so show what the zip holds and say when it is not just the
    // functions' bundles and maps (the zip holds the registration function's too).
    log(`zip entries: ${ours.entries.join(', ')}`);
    if (ours.entries.some((name) => !/^functions\/[\w-]+\.[cm]?js(\.map)?$/.test(name))) {
      log("  warning: the zip holds more than the functions' bundles and maps (a concurrent serverless package?)");
    }
    log(`cold-start bench took ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    return figures;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

// Run as a script, not when run.ts imports coldStartFigures.
if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { samples: { type: 'string', default: '20' }, out: { type: 'string' } } });
  const figures = await coldStartFigures({ samples: Number(values.samples) });
  if (values.out) {
    writeFileSync(values.out, `${JSON.stringify(figures, null, 2)}\n`);
    console.log(`figures written to ${values.out}`);
  }
}
