/** A pace of `rate()` calls per second with a burst: generic cell rate algorithm, `due` is the next even slot. */
export class Schedule {
  #due = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly rate: () => number,
    private readonly burst: () => number,
  ) {}

  /** When the next call may start. */
  earliest(t: number): number {
    return Math.max(t, this.#due - (this.burst() - 1) * (1000 / this.rate()));
  }

  take(t: number): void {
    this.#due = Math.max(this.#due, t) + 1000 / this.rate();
  }
}
