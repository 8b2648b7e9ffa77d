/**
 * When the cache's pending sets are committed. A commit has a cost of its own besides its rows
 * (the pages of the slot index it touched are written again, and the index is written at random),
 * so at echo pace, thousands of answers a second, larger commits make a cold run faster; at a
 * network provider's pace a row may wait for its answer's commit (`CommitPacing` in
 * `core/state/cache.ts`), and then nothing may wait longer than it does today.
 *
 * So: a set commits on the next turn of the event loop, as it always did, unless the last commit
 * was a large one (sets came faster than they were committed, and nobody is likely to wait for
 * each); then the next commit comes at most every {@link GroupCommitOptions.windowMs}, or as soon
 * as {@link GroupCommitOptions.maxRows} entries wait. A commit of few rows ends the grouping, so
 * the first set after a quiet spell, or of a few writers each waiting for its commit, commits at
 * once.
 * @module
 */
import { clearImmediate, clearTimeout, setImmediate, setTimeout } from "node:timers";

/** Options of {@link GroupCommit}; the defaults are measured (scripts/bench/cache-rerun.ts). */
export interface GroupCommitOptions {
  /**
   * The least time from one commit's start to the next one's while sets keep coming fast (ms).
   * Default 50.
   */
  readonly windowMs?: number;
  /** Rows of a commit from which the next one waits for the window. Default 64. */
  readonly groupRows?: number;
  /** Entries waiting that are committed without waiting for the window. Default 20,000. */
  readonly maxRows?: number;
  /** The clock (ms). */
  readonly now?: () => number;
  /** Runs `work` after `ms` (on the next turn when `ms` ≤ 0); answers a function that cancels. */
  readonly schedule?: (work: () => void, ms: number) => () => void;
}

/**
 * Defaults, measured with `scripts/bench/cache-rerun.ts` (100k rows through echo, Node 22 and
 * Deno 2): see the numbers beside each.
 */
export const GROUP_COMMIT_DEFAULTS = {
  windowMs: 50,
  groupRows: 64,
  maxRows: 20_000,
} as const;

const realSchedule = (work: () => void, ms: number): () => void => {
  if (ms <= 0) {
    const handle = setImmediate(work);
    return () => clearImmediate(handle);
  }
  const handle = setTimeout(work, ms);
  return () => clearTimeout(handle);
};

/** Decides when to call `commit` (which writes what waits and answers how many rows it wrote). */
export class GroupCommit {
  readonly #commit: () => number;
  readonly #windowMs: number;
  readonly #groupRows: number;
  readonly #maxRows: number;
  readonly #now: () => number;
  readonly #schedule: (work: () => void, ms: number) => () => void;
  /** Cancels the commit scheduled, if one is; `#soon` tells whether it is for the next turn. */
  #cancel: (() => void) | undefined;
  #soon = false;
  /** When the last commit started, and whether it was large enough to group the next one. */
  #lastAt = -Infinity;
  #grouping = false;

  constructor(commit: () => number, options: GroupCommitOptions = {}) {
    this.#commit = commit;
    this.#windowMs = options.windowMs ?? GROUP_COMMIT_DEFAULTS.windowMs;
    this.#groupRows = options.groupRows ?? GROUP_COMMIT_DEFAULTS.groupRows;
    this.#maxRows = options.maxRows ?? GROUP_COMMIT_DEFAULTS.maxRows;
    this.#now = options.now ?? (() => performance.now());
    this.#schedule = options.schedule ?? realSchedule;
  }

  /** An entry was set; `waiting` entries now wait for a commit. */
  added(waiting: number): void {
    if (this.#cancel && (this.#soon || waiting < this.#maxRows)) return;
    const wait = waiting >= this.#maxRows || !this.#grouping
      ? 0
      : this.#lastAt + this.#windowMs - this.#now();
    this.#cancel?.();
    this.#soon = wait <= 0;
    this.#cancel = this.#schedule(() => this.#run(), wait);
  }

  /** Commits what waits now, and cancels the commit scheduled (closing the store). */
  flush(): void {
    this.#cancel?.();
    this.#run();
  }

  #run(): void {
    this.#cancel = undefined;
    this.#lastAt = this.#now();
    this.#grouping = this.#commit() >= this.#groupRows;
  }
}
