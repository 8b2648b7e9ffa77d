/**
 * The emulator's clock. Batch lifecycles and timestamps read it, so tests drive time with a
 * manual clock (`advance(ms)`) and never sleep; the launcher uses the real one.
 * @module
 */

/** A source of time in milliseconds since the epoch. */
export interface Clock {
  now(): number;
}

/** Real wall-clock time. */
export const realClock: Clock = { now: () => Date.now() };

/** A clock that moves only when told to. */
export class ManualClock implements Clock {
  #now: number;

  /** Starts at `start` (default 2026-11-27T10:00:00Z, so outputs are reproducible). */
  constructor(start: number = Date.UTC(2026, 10, 27, 10, 0, 0)) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  /** Moves time forward. */
  advance(ms: number): void {
    if (!(ms >= 0)) throw new RangeError("a clock only moves forward");
    this.#now += ms;
  }
}
