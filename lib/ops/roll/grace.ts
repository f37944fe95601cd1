import { UsageError } from '../../command-line.js';
import { MAX_GRACE_SECONDS } from '../../messages/index.js';
import { parseDuration } from '../redrive/messages.js';

/** `--grace`: whole seconds, or a duration (90s, 15m, 24h, 7d), 0 to 7 days. */
export function parseGrace(raw: string): number {
  let seconds: number;
  if (/^\d+$/.test(raw.trim())) seconds = Number(raw);
  else {
    try {
      seconds = parseDuration(raw) / 1000;
    } catch {
      throw new UsageError(`--grace must be seconds or a duration such as 90s, 15m, 24h, got ${JSON.stringify(raw)}`);
    }
  }
  if (!Number.isInteger(seconds) || seconds > MAX_GRACE_SECONDS)
    throw new UsageError(`--grace must be a whole number of seconds from 0 to ${MAX_GRACE_SECONDS} (7d), got ${JSON.stringify(raw)}`);
  return seconds;
}
