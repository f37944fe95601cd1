/** The settings reconcile takes from its flags or the environment, checked by the function's own rules. */
import { UsageError } from '../../command-line.js';
import { parseUsagePlans as parseConfiguredUsagePlans } from '../../config.js';
import { NAME_PREFIX_PATTERN } from '../../customer-key/naming.js';
import { ConfigError } from '../../errors.js';

/** Validates `--prefix` / NAME_PREFIX with lib/customer-key/naming.ts's NAME_PREFIX_PATTERN. Throws {@link UsageError} naming the option. */
export function parsePrefix(raw: string | undefined): string {
  if (raw === undefined || raw === '')
    throw new UsageError('the name prefix is required: --prefix PREFIX, or NAME_PREFIX in the environment');
  if (!NAME_PREFIX_PATTERN.test(raw))
    throw new UsageError('--prefix (or NAME_PREFIX) must be 1 to 128 characters of A-Z a-z 0-9 / _ + = . @ -');
  return raw;
}

/** Parses `--usage-plans` / USAGE_PLANS with lib/config.ts's parser. Throws {@link UsageError} naming the option. */
export function parseUsagePlans(raw: string | undefined): Record<string, string> {
  try {
    return parseConfiguredUsagePlans(raw);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    throw new UsageError(`the usage plans (--usage-plans or USAGE_PLANS): ${error.message}`, { cause: error });
  }
}

/**
 * The record table (`--records-table` / KEY_RECORDS_TABLE): given, or the stack's name for a prefix of the stack's
 * shape (`keyprov/<stage>/` → `api-key-provisioner-<stage>-key-records`, serverless.yml custom.keyRecordsTable).
 * Throws {@link UsageError} naming the option when it is neither.
 */
export function parseRecordsTable(raw: string | undefined, prefix: string): string {
  if (raw !== undefined && raw !== '') {
    if (!/^[A-Za-z0-9_.-]{3,255}$/.test(raw)) throw new UsageError('--records-table (or KEY_RECORDS_TABLE) must be a DynamoDB table name');
    return raw;
  }
  const stage = /^keyprov\/([A-Za-z0-9-]+)\/$/.exec(prefix)?.[1];
  if (!stage) throw new UsageError(`the record table is required for the prefix ${prefix}: --records-table NAME, or KEY_RECORDS_TABLE`);
  return `api-key-provisioner-${stage}-key-records`;
}
