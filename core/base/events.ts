/**
 * Progress events. The core emits them; the CLI renders them (a live bar on a terminal, plain
 * periodic lines otherwise). Nothing in the core prints.
 * @module
 */

/** How one row ended. */
export type RowOutcome = "ok" | "cached" | "error";

/** Totals of a finished (or interrupted) run. */
export interface RunSummary {
  /** Rows in the input. */
  readonly rows: number;
  /** Rows answered by a provider call in this run. */
  readonly ok: number;
  /** Rows answered from the cache. */
  readonly cached: number;
  /** Rows that ended with an error (kept in the output with `llm_error`). */
  readonly errors: number;
  /**
   * What the provider reported the answers cost, in US dollars (OpenRouter's `usage.cost`): in a
   * sync run, its calls (each once; answers from the cache not at all), in a batch merge, the
   * answer of each row in the output (the merge after a retry counts the earlier batches' answers
   * again). Answers the check rejected count: they were paid for. Absent when no answer reported a
   * cost.
   */
  readonly cost?: number;
  /** The output file written (absent when the run was interrupted, or a batch is pending). */
  readonly output?: string;
  /** The batch job submitted, when the run submitted one and did not wait for it. */
  readonly job?: { readonly id: string; readonly shards: number };
  readonly elapsedMs: number;
}

/** An event of a run. */
export type RunEvent =
  | {
    readonly type: "plan";
    readonly rows: number;
    readonly input: string;
    readonly output: string;
    readonly mode: "sync" | "batch";
  }
  | {
    readonly type: "row";
    /** 0-based position of the row in the input. */
    readonly index: number;
    /** The row's id (its `dataset.id` column, default `id`), when it has one. */
    readonly id?: string;
    readonly outcome: RowOutcome;
    readonly error?: string;
  }
  | {
    /** A provider batch of a batch job was submitted, or found again after an interruption. */
    readonly type: "shard";
    readonly shard: number;
    readonly action: "submitted" | "adopted";
    readonly batchId: string;
    readonly requests: number;
  }
  | {
    /** A poll of a batch job (`--wait`, `fetch`): the state of each shard. */
    readonly type: "poll";
    readonly job: string;
    readonly shards: ReadonlyArray<
      {
        readonly shard: number;
        readonly state: string;
        readonly done?: number;
        readonly total?: number;
      }
    >;
  }
  | { readonly type: "warning"; readonly message: string }
  | {
    /** How the provider will send the job (its `jobNotes`): shown once, before any work. */
    readonly type: "note";
    readonly message: string;
  }
  | { readonly type: "done"; readonly summary: RunSummary };

/** Receives events. */
export type RunEventHandler = (event: RunEvent) => void;
