/**
 * When the cache's pending sets are committed. A commit has a cost of its own besides its rows
 * (the pages of the slot index it touched are written again, and the index is written at random),
 * so at echo pace, thousands of answers a second, larger commits make a cold run faster; at a
 * network provider's pace a row may wait for its answer's commit (`CommitPacing` in
 * `core/state/cache.ts`), and then nothing may wait longer than it does today.
 *
 * So: a set commits on the next turn of the event loop, as it always did, unless the last commit
 * was a large one (sets came faster than they were committed). Then the next one waits while
 * entries keep coming every turn: {@link GroupCommitOptions.pause} times as long as the last one
 * took, at least {@link GroupCommitOptions.minWaitMs} and at most
 * {@link GroupCommitOptions.maxWaitMs}, or until {@link GroupCommitOptions.maxRows} entries wait.
 * The wait grows with what a commit costs, and a commit's cost is mostly its pages: in a large
 * cache a commit of any size rewrites most pages of the slot index, so commits then grow until
 * committing takes at most a quarter of the time.
 *
 * A turn that brings no entry commits at once: the run then waits for something, maybe for this
 * very commit (a row `CommitPacing` lets wait for its answer's commit, which holds up the run's
 * ordered output). With a plain timer of 25–50 ms instead, a cold 100k-row run sat idle 0.8–1.5 s
 * (measured with the event loop's utilisation, when pacing still let 100 rows a second wait at
 * echo pace); with this rule 0.1–0.2 s, as without grouping. A commit of few rows ends
 * the grouping, so the first set after a quiet spell, or of a few writers each waiting for its
 * commit, commits at once.
 * @module
 */
import { clearImmediate, setImmediate } from "node:timers";

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
  /** Runs `work` on the next turn of the event loop; answers a function that cancels it. */
  readonly schedule?: (work: () => void) => () => void;
}

/**
 * Measured on a 2-core machine (100k sets of 300-byte answers, the commits' sizes varied): into
 * an empty cache 2,500 or 10,000 rows per commit cost about the same (0.6–0.9 s per 100k, noise
 * between); into one of 500,000 entries 2,500 a commit cost 4.4–5.4 s and 10,000 2.1–2.6 s, each
 * commit rewriting most of the slot index either way. So the wait follows the commit's cost
 * (pause 3: committing takes a quarter of the time at most), 25 ms at least; 1 s and 20,000
 * rows (6 MB of answers) at most, since a killed process loses the answers that wait (a rerun
 * asks for them again). `scripts/bench/cache-table.ts` ("250 a turn") shows the effect: 100k
 * sets in 1 s against 5.8 s with a commit every turn, and 0.9 s against 10.7 s into a cache of
 * 100k entries.
 */
export const GROUP_COMMIT_DEFAULTS = {
  pause: 3,
  minWaitMs: 25,
  maxWaitMs: 1_000,
  groupRows: 64,
  maxRows: 20_000,
} as const;

/** Runs `work` on the next turn of the event loop; answers a function that cancels it. */
const nextTurn = (work: () => void): () => void => {
  const handle = setImmediate(work);
  return () => clearImmediate(handle);
};

/** Decides when to call `commit` (which writes what waits and answers how many rows it wrote). */
export class GroupCommit {
  readonly #commit: () => number;
  readonly #options: Required<Omit<GroupCommitOptions, "now" | "schedule">>;
  readonly #now: () => number;
  readonly #schedule: (work: () => void) => () => void;
  /** Cancels the check scheduled for the next turn, if one is. */
  #cancel: (() => void) | undefined;
  /** Whether an entry was set since the last check, and whether `maxRows` wait. */
  #fresh = false;
  #full = false;
  /** When the next commit may start (ms on the clock); 0 after a small commit: at once. */
  #notBefore = 0;

  constructor(commit: () => number, options: GroupCommitOptions = {}) {
    this.#commit = commit;
    this.#options = { ...GROUP_COMMIT_DEFAULTS, ...options };
    this.#now = options.now ?? (() => performance.now());
    this.#schedule = options.schedule ?? nextTurn;
  }

  /** An entry was set; `waiting` entries now wait for a commit. */
  added(waiting: number): void {
    this.#fresh = true;
    if (waiting >= this.#options.maxRows) this.#full = true;
    this.#cancel ??= this.#schedule(this.#check);
  }

  /** Commits what waits now, and cancels the check scheduled (closing the store). */
  flush(): void {
    this.#cancel?.();
    this.#run();
  }

  /**
   * Runs on each turn while entries wait: commits unless the wait goes on (after a large commit,
   * not yet over) and entries keep coming. A turn that brought none commits at once: then the
   * run is waiting for something, maybe for this very commit (a row whose answer must be durable
   * before its worker moves on), and a longer wait would only stall it.
   */
  readonly #check = (): void => {
    this.#cancel = undefined;
    if (this.#full || !this.#fresh || this.#now() >= this.#notBefore) {
      this.#run();
      return;
    }
    this.#fresh = false;
    this.#cancel = this.#schedule(this.#check);
  };

  #run(): void {
    this.#cancel = undefined;
    this.#fresh = this.#full = false;
    const started = this.#now();
    const rows = this.#commit();
    const ended = this.#now();
    const { pause, minWaitMs, maxWaitMs, groupRows } = this.#options;
    this.#notBefore = rows < groupRows
      ? 0
      : ended + Math.min(maxWaitMs, Math.max(minWaitMs, pause * (ended - started)));
  }
}
