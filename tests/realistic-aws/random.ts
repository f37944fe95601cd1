/**
 * A small seeded pseudo-random generator (xorshift32), so that a chaos run or a partial-failure run can be replayed
 * exactly: same seed, same sequence of calls → same faults. Not for anything that needs real randomness.
 */
export class SeededRandom {
  #state: number;

  constructor(seed = 1) {
    // xorshift must not start at 0; mix the seed so that small seeds (1, 2, 3) do not give similar sequences.
    this.#state = (Math.imul(seed | 0, 0x9e3779b1) ^ 0x5bd1e995) >>> 0 || 0x6d2b79f5;
  }

  /** A number in [0, 1). */
  next(): number {
    let x = this.#state;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.#state = x >>> 0;
    return this.#state / 0x1_0000_0000;
  }

  /** One of the items, uniformly. */
  pick<T>(items: readonly T[]): T | undefined {
    return items[Math.floor(this.next() * items.length)];
  }
}
