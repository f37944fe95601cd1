/**
 * What every command a person runs shares (`npm start`, `npm run redrive`, `reconcile`, `bench`, …): flags parsed
 * with node:util, `--help` on stdout with exit 0, a bad flag or value as one line on stderr with exit 2, and the
 * same exit codes everywhere. Not used by the Lambda function.
 */
import { type ParseArgsConfig, parseArgs } from 'node:util';

/** The exit codes of every command (README: Commands). */
export const EXIT = {
  /** Done: nothing needs attention. */
  ok: 0,
  /** It ran, and something needs attention: a message still retried, a finding, a failed send. */
  attention: 1,
  /** It could not run: a bad flag or value, or an error that stopped it (the message names the cause). */
  failed: 2,
} as const;

/** A bad flag or flag value: printed as one line, exit 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

type Options = NonNullable<ParseArgsConfig['options']>;

/**
 * Parses `argv` against `options` (a `help`/`-h` flag is added). On `--help` prints `usage` and exits 0; on an
 * unknown flag, a missing value or an unexpected argument throws {@link UsageError} naming it.
 */
export function parseCommandLine<O extends Options>(
  usage: string,
  options: O,
  config: { allowPositionals?: boolean; argv?: string[] } = {},
) {
  let parsed: ReturnType<
    typeof parseArgs<{ options: O & { help: { type: 'boolean'; short: 'h' } }; allowPositionals: boolean; strict: true }>
  >;
  try {
    parsed = parseArgs({
      args: config.argv ?? process.argv.slice(2),
      options: { ...options, help: { type: 'boolean', short: 'h' } },
      allowPositionals: config.allowPositionals ?? false,
      strict: true,
    });
  } catch (error) {
    // node:util's messages name the flag; its error codes (ERR_PARSE_ARGS_*) are not for people.
    const message =
      error instanceof Error ? error.message.split('\n')[0]?.replace(/\. To specify a positional argument.*$/, '') : String(error);
    throw new UsageError(message ?? 'bad arguments');
  }
  if ((parsed.values as { help?: boolean }).help) {
    console.log(usage);
    process.exit(EXIT.ok);
  }
  return parsed;
}

/** A flag's value as a number > 0 (an integer when `integer`); throws {@link UsageError} naming the flag. */
export function positiveNumber(flag: string, value: string | undefined, integer = true): number {
  const n = Number(value);
  if (value === undefined || value.trim() === '' || !(n > 0) || (integer && !Number.isInteger(n))) {
    throw new UsageError(`--${flag} must be a positive ${integer ? 'integer' : 'number'}, got ${JSON.stringify(value)}`);
  }
  return n;
}

/** The error and its causes in one line: `GetSecretValue failed: ECONNREFUSED (connect ECONNREFUSED 127.0.0.1:1)`. */
export function describeError(error: unknown): string {
  const parts: string[] = [];
  let current: unknown = error;
  for (let depth = 0; current !== undefined && depth < 5; depth++) {
    if (!(current instanceof Error)) {
      parts.push(String(current));
      break;
    }
    const code = (current as { code?: unknown }).code;
    const text = current.message || current.name;
    if (!parts.some((p) => p.includes(text))) parts.push(typeof code === 'string' && !text.includes(code) ? `${code}: ${text}` : text);
    current = current.cause;
  }
  return parts.join(' <- ');
}

/** True when `url` is an http(s) URL on this machine (localhost, 127.0.0.1, [::1]): a local AWS such as moto. */
export function isLoopbackUrl(url: string): boolean {
  return /^https?:\/\/(localhost|127\.0\.0\.1|\[::1\])(:|\/|$)/.test(url);
}

/**
 * A `--endpoint` value: an http(s) URL with a host (a trailing `/` dropped), or undefined when not given. Throws
 * {@link UsageError} naming the flag and the value otherwise: without a scheme the SDK would take `127.0.0.1:5000` for
 * something else and fail later with an error that does not say why (issue 24).
 */
export function endpointUrl(value: string | undefined, flag = 'endpoint'): string | undefined {
  if (value === undefined) return undefined;
  let url: URL | undefined;
  try {
    url = new URL(value);
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:') || url.hostname === '')
    throw new UsageError(`--${flag} must be an http(s) URL such as http://127.0.0.1:5000, got ${JSON.stringify(value)}`);
  return value.replace(/\/+$/, '');
}

/**
 * Checks, before any AWS call, that the SDK has a Region and credentials; throws {@link UsageError} saying what to
 * set instead of the SDK's "Region is missing" or "Could not load credentials from any providers" halfway through.
 * `config` is an SDK client's `config`.
 */
export async function requireAwsSettings(
  config: { region: () => Promise<string>; credentials: () => Promise<unknown> },
  endpoint: string | undefined,
  options: { regionFlag?: boolean } = {},
): Promise<void> {
  const local = endpoint ? '' : '; for a local AWS (moto), give --endpoint URL';
  try {
    await config.region();
  } catch {
    throw new UsageError(`no AWS Region: set AWS_REGION${options.regionFlag ? ', or give --region REGION' : ''}${local}`);
  }
  try {
    await config.credentials();
  } catch (error) {
    throw new UsageError(`no AWS credentials (${describeError(error)}): set AWS_PROFILE or AWS_ACCESS_KEY_ID${local}`);
  }
}

/** Loopback endpoints (moto) check no credentials, but the SDK needs some to sign with, and a Region. */
export function useEndpoint(endpoint: string | undefined): void {
  if (!endpoint) return;
  process.env.AWS_REGION ??= 'us-east-1';
  if (isLoopbackUrl(endpoint) && !process.env.AWS_PROFILE) {
    process.env.AWS_ACCESS_KEY_ID ??= 'local';
    process.env.AWS_SECRET_ACCESS_KEY ??= 'local';
  }
}

/**
 * Runs a command's `main` and exits with its code. A {@link UsageError} prints `<name>: <message> (see --help)`, any
 * other error `<name> failed: <error and its causes>`; both exit 2, never with a stack trace.
 */
export function runCommand(name: string, main: () => Promise<number>): void {
  const fail = (error: unknown) => {
    console.error(error instanceof UsageError ? `${name}: ${error.message} (see --help)` : `${name} failed: ${describeError(error)}`);
    process.exit(EXIT.failed);
  };
  try {
    main().then((code) => process.exit(code), fail);
  } catch (error) {
    fail(error);
  }
}
