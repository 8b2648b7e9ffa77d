/**
 * How emulated batches move through their states, so tests never sleep: at once, one state per
 * N polls, one state per span of the emulator's clock, or only when a test says so.
 * @module
 */
import type { Clock } from "./clock.ts";

/** The pace of batch lifecycles. */
export type BatchSchedule =
  /** A batch reaches its end state before anyone looks at it. */
  | { advance: "instant" }
  /** Each state lasts this many polls (retrievals) of the batch. */
  | { advance: "polls"; polls: number }
  /** Each state lasts this long on the emulator's clock. */
  | { advance: "clock"; stepMs: number }
  /** States move only through `Emulator.step()`. */
  | { advance: "manual" };

interface Tracked {
  created: number;
  polls: number;
  manual: number;
}

/** Counts, per batch, how many state steps have elapsed under the schedule. */
export class BatchProgress {
  readonly #schedule: BatchSchedule;
  readonly #clock: Clock;
  readonly #batches = new Map<string, Tracked>();

  constructor(schedule: BatchSchedule, clock: Clock) {
    this.#schedule = schedule;
    this.#clock = clock;
  }

  /** Starts tracking a new batch. */
  track(id: string): void {
    this.#batches.set(id, { created: this.#clock.now(), polls: 0, manual: 0 });
  }

  /** Records one retrieval of the batch (the SDK polling it). */
  poll(id: string): void {
    const b = this.#batches.get(id);
    if (b) b.polls++;
  }

  /** Moves a batch on by `n` steps by hand (works under every schedule). */
  step(id: string, n = 1): void {
    const b = this.#batches.get(id);
    if (b) b.manual += n;
  }

  /** Moves every tracked batch on by `n` steps. */
  stepAll(n = 1): void {
    for (const b of this.#batches.values()) b.manual += n;
  }

  /** State steps elapsed for a batch. */
  steps(id: string): number {
    const b = this.#batches.get(id);
    if (!b) return 0;
    const s = this.#schedule;
    const auto = s.advance === "instant"
      ? Number.POSITIVE_INFINITY
      : s.advance === "polls"
      ? Math.floor(b.polls / Math.max(1, s.polls))
      : s.advance === "clock"
      ? Math.floor((this.#clock.now() - b.created) / Math.max(1, s.stepMs))
      : 0;
    return auto + b.manual;
  }
}

/**
 * When lifecycle step `k` of a batch created at `createdMs` happens: its due time on a `clock`
 * schedule (one step per `stepMs`), else now; never before the batch's last step (`lastMs`).
 */
export function stepTime(
  schedule: BatchSchedule | undefined,
  clock: Clock,
  batch: { readonly createdMs: number; readonly lastMs: number },
  k: number,
): number {
  const now = clock.now();
  const due = schedule?.advance === "clock"
    ? Math.min(now, batch.createdMs + k * Math.max(1, schedule.stepMs))
    : now;
  return Math.max(batch.lastMs, due);
}

/** A batch as {@link catchUp} moves it: its steps taken and the time of its last one. */
export interface SteppedBatch {
  readonly id: string;
  readonly createdMs: number;
  step: number;
  lastMs: number;
}

/** What {@link catchUp} asks of an emulator about one of its batches. */
export interface BatchSteps<B extends SteppedBatch> {
  readonly schedule: BatchSchedule | undefined;
  readonly clock: Clock;
  readonly progress: BatchProgress;
  /** Whether the batch has ended (no step moves it any more). */
  ended(b: B): boolean;
  /** When the batch expires, if it can in its present state (validating, in progress…). */
  expiresAt(b: B): number | undefined;
  /** Ends the batch as expired by the clock. */
  expire(b: B): void;
  /** Moves the batch one state on, at time `t`. */
  advance(b: B, t: number): void;
}

/**
 * Applies every lifecycle step due for a batch, in time order: the schedule's steps, and its
 * expiry when the clock passes it before the next step.
 */
export function catchUp<B extends SteppedBatch>(b: B, steps: BatchSteps<B>): B {
  const target = steps.progress.steps(b.id);
  while (!steps.ended(b)) {
    const due = b.step < target;
    const t = due ? stepTime(steps.schedule, steps.clock, b, b.step + 1) : Number.POSITIVE_INFINITY;
    const expiresMs = steps.expiresAt(b);
    if (expiresMs !== undefined && expiresMs <= Math.min(t, steps.clock.now())) {
      steps.expire(b);
      break;
    }
    if (!due) break;
    b.step++;
    b.lastMs = t;
    steps.advance(b, t);
  }
  return b;
}
