/**
 * A pacer: each call resolves no earlier than `1 / ratePerSecond` after the previous one's slot, so a loop that
 * awaits it before each send keeps to the rate. Throws when the rate is not above 0.
 */
export function createPacer(
  ratePerSecond: number,
  clock: { now?: () => number; sleep?: (ms: number) => Promise<void> } = {},
): () => Promise<void> {
  if (!(ratePerSecond > 0)) throw new Error(`rate must be above 0, got ${ratePerSecond}`);
  const now = clock.now ?? Date.now;
  const sleep = clock.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const interval = 1000 / ratePerSecond;
  let next = 0;
  return async () => {
    const at = Math.max(next, now());
    next = at + interval;
    const wait = at - now();
    if (wait > 0) await sleep(wait);
  };
}
