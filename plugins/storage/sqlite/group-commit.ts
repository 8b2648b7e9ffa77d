/**
 * When the cache's pending sets are committed. A commit has a cost of its own besides its rows
 * (the pages of the slot index it touched are written again, and the index is written at random),
 * so at echo pace, thousands of answers a second, larger commits make a cold run faster; at a
 * network provider's pace a row may wait for its answer's commit (`CommitPacing` in
 * `core/state/cache.ts`), and then nothing may wait longer than it does today.
 *
 * So: a set commits on the next turn of the event loop, as it always did, unless the last commit
 * was a large one (sets came faster than they were committed, and nobody is likely to wait for
 * each). Then the next one waits a while after it: {@link GroupCommitOptions.pause} times as long
 * as it took, at least {@link GroupCommitOptions.minWaitMs} and at most
 * {@link GroupCommitOptions.maxWaitMs}, or until {@link GroupCommitOptions.maxRows} entries wait.
 * The wait grows with what a commit costs, and a commit's cost is mostly its pages: in a large
 * cache a commit of any size rewrites most pages of the slot index, so commits then grow until
 * committing takes at most a quarter of the time. A commit of few rows ends the grouping, so the
 * first set after a quiet spell, or of a few writers each waiting for its commit, commits at once.
 * @module
 */
import { clearImmediate, clearTimeout, setImmediate, setTimeout } from "node:timers";

/** Options of {@link GroupCommit}; the defaults are {@link GROUP_COMMIT_DEFAULTS}. */
export interface GroupCommitOptions {
  /** The wait after a large commit, as a multiple of the time it took. */
  readonly pause?: number;
  /** The least and the most wait after a large commit (ms). */
  readonly minWaitMs?: number;
  readonly maxWaitMs?: number;
  /** Rows of a commit from which the next one waits. */
  readonly groupRows?: number;
  /** Entries waiting that are committed without waiting more. */
  readonly maxRows?: number;
  /** The clock (ms). */
  readonly now?: () => number;
  /** Runs `work` after `ms` (on the next turn when `ms` is 0); answers a function that cancels. */
  readonly schedule?: (work: () => void, ms: number) => () => void;
}

/**
 * Measured on a 2-core machine (100k sets of 300-byte answers at echo pace, the commits' sizes
 * varied): into an empty cache 2,500 or 10,000 rows per commit cost about the same (0.6–0.9 s
 * per 100k, noise between); into one of 500,000 entries 2,500 a commit cost 4.4–5.4 s and 10,000
 * 2.1–2.6 s, each commit rewriting most of the slot index either way. So the wait follows the
 * commit's cost (pause 3: committing takes a quarter of the time at most); 25 ms at least, so
 * commits of a cold run into a fresh cache hold some thousand rows, not the few hundred of one
 * turn; 1 s at most, and 20,000 rows (6 MB of answers) at most, since a killed process loses
 * the answers that wait (a rerun asks for them again).
 */
export const GROUP_COMMIT_DEFAULTS = {
  pause: 3,
  minWaitMs: 25,
  maxWaitMs: 1_000,
  groupRows: 64,
  maxRows: 20_000,
} as const;

const realSchedule = (work: () => void, ms: number): () => void => {
  if (ms === 0) {
    const handle = setImmediate(work);
    return () => clearImmediate(handle);
  }
  const handle = setTimeout(work, ms);
  return () => clearTimeout(handle);
};

/** Decides when to call `commit` (which writes what waits and answers how many rows it wrote). */
export class GroupCommit {
  readonly #commit: () => number;
  readonly #options: Required<Omit<GroupCommitOptions, "now" | "schedule">>;
  readonly #now: () => number;
  readonly #schedule: (work: () => void, ms: number) => () => void;
  /** Cancels the commit scheduled, if one is; `#soon` tells whether it is for the next turn. */
  #cancel: (() => void) | undefined;
  #soon = false;
  /** When the next commit may start (ms on the clock); 0 after a small commit: at once. */
  #notBefore = 0;

  constructor(commit: () => number, options: GroupCommitOptions = {}) {
    this.#commit = commit;
    this.#options = { ...GROUP_COMMIT_DEFAULTS, ...options };
    this.#now = options.now ?? (() => performance.now());
    this.#schedule = options.schedule ?? realSchedule;
  }

  /** An entry was set; `waiting` entries now wait for a commit. */
  added(waiting: number): void {
    const full = waiting >= this.#options.maxRows;
    if (this.#cancel && (this.#soon || !full)) return;
    const wait = full ? 0 : Math.max(0, this.#notBefore - this.#now());
    this.#cancel?.();
    this.#soon = wait === 0;
    this.#cancel = this.#schedule(() => this.#run(), wait);
  }

  /** Commits what waits now, and cancels the commit scheduled (closing the store). */
  flush(): void {
    this.#cancel?.();
    this.#run();
  }

  #run(): void {
    this.#cancel = undefined;
    const started = this.#now();
    const rows = this.#commit();
    const ended = this.#now();
    const { pause, minWaitMs, maxWaitMs, groupRows } = this.#options;
    this.#notBefore = rows < groupRows
      ? 0
      : ended + Math.min(maxWaitMs, Math.max(minWaitMs, pause * (ended - started)));
  }
}
