/**
 * Fetching a batch job: check each shard's status; once every shard has ended, save each
 * shard's results locally (so a killed fetch never downloads or pays twice), then merge them
 * into the rows by `custom_id` and write the output atomically. Results of expired or cancelled
 * batches are kept (they were paid for); every row without an answer gets its reason.
 * @module
 */
import { stat } from "node:fs/promises";
import type { AnswerVerdict } from "../data/answer-schema.ts";
import {
  errorMessage,
  isFatal,
  LoomError,
  LoomIncompleteResultsError,
  LoomUsageError,
} from "../base/errors.ts";
import type { RunEventHandler, RunSummary } from "../base/events.ts";
import type { LoadedJob } from "../job/load.ts";
import { sameFile, writeFileAtomic } from "../data/output.ts";
import { displayPath } from "../base/paths.ts";
import { openJobDataset, type Plan } from "../data/plan.ts";
import { FileHash } from "../data/dataset.ts";
import { buildRequest } from "../data/request.ts";
import { rowChunksOf, writeRowChunks } from "../data/row-chunks.ts";
import { failpoint } from "../base/failpoints.ts";
import { isRetryable, type RetryPolicy, withRetries } from "../run/retry.ts";
import type { RowResult } from "../run/sync.ts";
import { CostTally } from "../run/added.ts";
import type { DatasetRow, OutputRow } from "../spec/format.ts";
import type {
  BatchApi,
  BatchOutcome,
  BatchState,
  GenerateRequest,
  GenerateResult,
} from "../spec/provider.ts";
import {
  better,
  identityOf,
  isSameFile,
  type JobRecord,
  type JobStore,
  type SavedOutcome,
  type ShardRecord,
} from "./store.ts";
import { fingerprintInput, retryOf, rowOfCustomId, shardFinder } from "./submit.ts";
import { releaseUploads } from "./uploads.ts";
import type { SavedOutcomeReader } from "./saved-results.ts";
import {
  fetched,
  observed,
  phaseOf,
  type ShardPhase,
  type ShardUsage,
  unobserved,
} from "./shard.ts";
import { merged as markMerged } from "./job-state.ts";

/** Phases of a shard that has nothing more to wait for. */
const ENDED: ReadonlySet<ShardPhase> = new Set<ShardPhase>([
  "ended",
  "fetched",
  "cancelled-unsent",
]);

/** One sentence for each state, shown by `fetch`, `status` and `list`. */
export const STATE_MEANING: Readonly<Record<BatchState | "unknown", string>> = {
  validating: "The provider is checking the batch's input before running it.",
  in_progress: "The provider is running the requests; fetch again later.",
  completed: "The batch has ended and its results are ready.",
  failed: "The provider rejected the batch as a whole; none of its requests ran.",
  expired:
    "The batch ran out of time; the requests that finished are kept, the rest can be retried.",
  cancelled:
    "The batch was cancelled; the requests that finished are kept, the rest can be retried.",
  unknown: "Loom could not check this batch just now; the next fetch tries again.",
};

/** What fetching needs. */
export interface FetchContext {
  readonly store: JobStore;
  readonly batch: BatchApi;
  readonly signal?: AbortSignal;
  readonly onEvent?: RunEventHandler;
  /** How transient provider errors are retried (default `DEFAULT_RETRY`). */
  readonly retry?: RetryPolicy;
  /** Scrubs secrets from provider messages before they are saved or merged. */
  readonly redact?: (text: string) => string;
}

/** A status check that failed: `permanent` when no retry was worth trying (not a transient error). */
export interface StatusFailure {
  readonly shard: number;
  readonly error: string;
  readonly permanent: boolean;
}

/**
 * Asks the provider for the status of every shard that has not ended; saves the record. Returns
 * the checks that failed (those shards are `unknown` until a later check succeeds).
 */
export async function refreshShards(
  ctx: FetchContext,
  record: JobRecord,
): Promise<StatusFailure[]> {
  const failures: StatusFailure[] = [];
  for (const shard of record.shards) {
    if (phaseOf(shard) !== "submitted") continue;
    try {
      const status = await withRetries(
        () => ctx.batch.status(shard.handle!, { signal: ctx.signal }),
        retryOf(ctx),
      );
      observed(shard, {
        ...status,
        message: status.message === undefined ? undefined : (ctx.redact ?? String)(status.message),
      });
      // OpenAI calls a batch whose every request failed "completed": say what it is.
      const { total, succeeded, failed } = status.counts ?? {};
      if (status.state === "completed" && total && failed === total && !succeeded) {
        shard.message = `every request of this batch failed${
          status.message ? `: ${status.message}` : ""
        }`;
      }
    } catch (error) {
      // A key that stopped working stops the fetch; anything else is "unknown" until next time.
      if (ctx.signal?.aborted || isFatal(error)) throw error;
      const message = (ctx.redact ?? String)(errorMessage(error));
      unobserved(shard, message);
      failures.push({
        shard: shard.index,
        error: message,
        permanent: !isRetryable(error),
      });
    }
  }
  await ctx.store.save(record);
  return failures;
}

/** Whether every shard has ended (and so the job can be merged). */
export function allEnded(record: JobRecord): boolean {
  return record.shards.every((s) => ENDED.has(phaseOf(s)));
}

/** Saves the results of every ended shard not saved yet. */
export async function saveShardResults(ctx: FetchContext, record: JobRecord): Promise<void> {
  const todo = record.shards.filter((s) => phaseOf(s) === "ended");
  if (!todo.length) {
    await releaseUploads(ctx, record);
    return;
  }
  for (const shard of todo) {
    // Saved before the shard was submitted (or adopted).
    const ids: readonly string[] | undefined = await ctx.store.readIds(record.id, shard.index);
    if (!ids) {
      throw new LoomError(
        `job ${record.id}: the custom ids of batch ${
          shard.index + 1
        } are missing from the state store; its results cannot be joined to rows`,
      );
    }
    let ok = 0;
    let errors = 0;
    let usage: { -readonly [K in keyof ShardUsage]: number } = {};
    let unreadable: string | undefined;
    const batch = ctx.batch;
    /** An outcome as saved, or undefined when it is not one of Loom's requests. */
    const saved = (outcome: BatchOutcome): SavedOutcome | undefined => {
      const i = rowOfCustomId(outcome.customId);
      if (i === undefined) return undefined;
      failpoint("fetch:saving");
      if ("result" in outcome) {
        ok++;
        const reported = outcome.result.usage ?? {};
        for (const key of ["inputTokens", "outputTokens", "cost"] as const) {
          const n = reported[key];
          if (typeof n === "number" && Number.isFinite(n)) usage[key] = (usage[key] ?? 0) + n;
        }
        return { i, r: outcome.result };
      }
      errors++;
      return { i, e: (ctx.redact ?? String)(outcome.error), k: outcome.kind };
    };
    const outcomes = async function* (): AsyncGenerator<SavedOutcome | SavedOutcome[]> {
      ok = errors = 0;
      usage = {};
      unreadable = undefined;
      try {
        const options = { signal: ctx.signal };
        if (batch.resultChunks) {
          // A chunk of outcomes a step (see `BatchApi.resultChunks`).
          for await (const got of batch.resultChunks(shard.handle!, ids!, options)) {
            const chunk: SavedOutcome[] = [];
            for (const outcome of got) {
              const one = saved(outcome);
              if (one) chunk.push(one);
            }
            yield chunk;
          }
        } else {
          for await (const outcome of batch.results(shard.handle!, ids!, options)) {
            const one = saved(outcome);
            if (one) yield one;
          }
        }
      } catch (error) {
        // Results the provider says are incomplete are kept as far as they go; anything else
        // (a download that broke off, a plugin's bug) saves nothing (a retryable one is tried again).
        if (ctx.signal?.aborted || !LoomIncompleteResultsError.isInstance(error)) throw error;
        unreadable = (ctx.redact ?? String)(errorMessage(error));
      }
    };
    try {
      await withRetries(
        () => ctx.store.saveResults(record.id, shard.index, outcomes()),
        retryOf(ctx),
      );
    } catch (error) {
      if (ctx.signal?.aborted || isFatal(error)) throw error;
      // Answers may exist: never merge around them. The next fetch checks the shard and reads it again.
      const why = (ctx.redact ?? String)(errorMessage(error));
      unobserved(shard, `its results could not be read (${why}); the next fetch reads them again`);
      await ctx.store.save(record);
      throw new LoomError(
        `job ${record.id}: the results of batch ${shard.index + 1} could not be read: ${why}. ` +
          `Nothing was merged and the job is intact: \`loom fetch --id ${record.id}\` tries again`,
        { cause: error },
      );
    }
    failpoint("fetch:saved");
    fetched(shard, ok, errors, usage);
    if (unreadable) shard.message = `some results could not be read: ${unreadable}`;
    await ctx.store.save(record);
  }
  await releaseUploads(ctx, record);
}

/** Why a row of a shard has no outcome, by the shard's state. */
function missingReason(shard: ShardRecord): string {
  const why = shard.message ? `: ${shard.message}` : "";
  switch (shard.state) {
    case "failed":
      return `the batch failed${why}`;
    case "expired":
      return "the batch expired before this row ran; `loom retry` submits it again";
    case "cancelled":
      return "the batch was cancelled before this row ran; `loom retry` submits it again";
    default:
      return `the provider returned no result for this row${why}`;
  }
}

/** What {@link savedOutcomes} answers for a row. */
interface SavedAt {
  readonly outcome?: SavedOutcome;
  readonly holding: readonly ShardRecord[];
}

/** Walks a shard's saved outcomes (by row) as the merge asks for rows in ascending order. */
class ResultCursor {
  readonly #store: JobStore;
  readonly #job: string;
  readonly #shard: number;
  #reader: SavedOutcomeReader | undefined;
  #next: SavedOutcome | undefined;
  #done = false;

  constructor(store: JobStore, job: string, shard: number) {
    this.#store = store;
    this.#job = job;
    this.#shard = shard;
  }

  /**
   * The outcome saved for row `index`, if any: at once while the shard's reader answers at once
   * (see {@link SavedOutcomeReader.next}), else a promise.
   */
  at(index: number): SavedOutcome | undefined | Promise<SavedOutcome | undefined> {
    const reader = this.#reader;
    if (!reader) return this.#atLater(index);
    while (!this.#done && (this.#next === undefined || this.#next.i < index)) {
      const next = reader.next();
      if (next instanceof Promise) return this.#atLater(index, next);
      this.#next = next;
      this.#done = next === undefined;
    }
    return this.#next?.i === index ? this.#next : undefined;
  }

  async #atLater(
    index: number,
    pending?: Promise<SavedOutcome | undefined>,
  ): Promise<SavedOutcome | undefined> {
    if (pending) {
      this.#next = await pending;
      this.#done = this.#next === undefined;
    }
    this.#reader ??= await this.#store.outcomes(this.#job, this.#shard);
    while (!this.#done && (this.#next === undefined || this.#next.i < index)) {
      this.#next = await this.#reader.next();
      this.#done = this.#next === undefined;
    }
    return this.#next?.i === index ? this.#next : undefined;
  }

  async close(): Promise<void> {
    await this.#reader?.close();
  }
}

/**
 * Reads every fetched shard's saved results alongside the input's rows (asked for in ascending
 * order). Each shard's results are sorted by row, so one cursor a shard walks them: nothing is
 * held in memory, whatever the job's size, and a shard's reader is closed once the merge is past
 * its rows. A row's outcome is the best among the shards holding it.
 */
export function savedOutcomes(store: JobStore, record: JobRecord) {
  const owners = shardFinder(record.shards);
  const cursors = new Map<number, ResultCursor>();
  const cursorOf = (shard: ShardRecord) => {
    let cursor = cursors.get(shard.index);
    if (!cursor) cursors.set(shard.index, cursor = new ResultCursor(store, record.id, shard.index));
    return cursor;
  };
  /** The first row past an open range shard's rows: the merge closes readers only then. */
  let nextEnd = Infinity;
  /** Closes the readers of range shards the merge has gone past: one open reader per shard would hold a connection (and its memory) each. */
  const closePassed = async (index: number) => {
    nextEnd = Infinity;
    for (const [shard, cursor] of cursors) {
      const rows = record.shards[shard]?.rows;
      if (!rows || "list" in rows) continue;
      if (rows.end <= index) {
        cursors.delete(shard);
        await cursor.close();
      } else nextEnd = Math.min(nextEnd, rows.end);
    }
  };
  /** Looks for row `index` in its shards from the `from`th on, `outcome` the best so far. */
  const find = (
    index: number,
    from: number,
    outcome: SavedOutcome | undefined,
  ): SavedAt | Promise<SavedAt> => {
    const holding = owners(index);
    // Later shards (retries) come later in the list: their answer wins, an error only over nothing.
    for (let k = from; k < holding.length; k++) {
      const shard = holding[k];
      if (!shard.fetched) continue;
      const isNew = !cursors.has(shard.index);
      const found = cursorOf(shard).at(index);
      const rows = shard.rows;
      if (isNew && !("list" in rows)) nextEnd = Math.min(nextEnd, rows.end);
      if (found instanceof Promise) {
        return found.then((got) => find(index, k + 1, got && better(got, outcome) ? got : outcome));
      }
      if (found && better(found, outcome)) outcome = found;
    }
    return { outcome, holding };
  };
  return {
    /**
     * The best saved outcome of row `index`, and the shards that hold the row: at once when every
     * cursor answers at once, else a promise.
     */
    at(index: number): SavedAt | Promise<SavedAt> {
      if (index >= nextEnd) return closePassed(index).then(() => find(index, 0, undefined));
      return find(index, 0, undefined);
    },
    async close(): Promise<void> {
      for (const cursor of cursors.values()) await cursor.close();
    },
  };
}

/** How an existing output is dealt with: as `loom run` does. */
export interface OverwriteRule {
  /** Overwrite without asking (`--force`). */
  readonly overwrite?: boolean;
  /** Asked when the output exists; absent (not a terminal) means refuse. */
  readonly confirmOverwrite?: (path: string) => Promise<boolean>;
}

/**
 * Checks, before a merge, that it may write `plan.output`: never over the input (a link to it
 * included); over an existing file only when it is the job's own last output, with `overwrite`,
 * or once the user agreed. A refusal leaves the job as it was, fetchable again.
 */
export async function checkMergeTarget(
  record: JobRecord,
  plan: Plan,
  rule: OverwriteRule,
): Promise<void> {
  const shown = displayPath(plan.output);
  await refuseOutputIsInput(record, plan.output, plan.input);
  const existing = await stat(plan.output).catch(() => undefined);
  if (!existing || rule.overwrite) return;
  if (isSameFile(record.written, existing)) return;
  const keep = `job ${record.id} stays fetchable`;
  if (!rule.confirmOverwrite) {
    throw new LoomUsageError(`${shown} exists; pass --force to overwrite it (${keep})`);
  }
  if (!(await rule.confirmOverwrite(plan.output))) {
    throw new LoomUsageError(
      `${shown} was left as it was (answer y, or pass --force, to overwrite it; ${keep})`,
    );
  }
}

/**
 * Refuses a merge into the input: the output was made a link to it (symbolic or hard) since the
 * job was submitted. Checked before the job is planned again (whose own check would call the job
 * invalid and say to choose another path); the job stays as it was.
 */
export async function refuseOutputIsInput(
  record: JobRecord,
  output = record.output,
  input = record.input.path,
): Promise<void> {
  if (await sameFile(output, input)) {
    throw new LoomUsageError(
      `${
        displayPath(output)
      } is now the input (a link to it): the output would overwrite the input; job ${record.id} stays fetchable once it is moved`,
    );
  }
}

/** What merging needs besides the fetch context. */
export interface MergeOptions {
  readonly job: LoadedJob;
  readonly plan: Plan;
  readonly responseSchema?: GenerateRequest["responseSchema"];
  /** Checks each answer (the answer schema, or the plain check). */
  readonly check: (result: GenerateResult) => AnswerVerdict | undefined;
  /** The columns Loom adds for a row. */
  readonly added: (result: RowResult) => OutputRow["added"];
  /** Merge even though the input changed since submission. */
  readonly force?: boolean;
}

/**
 * Merges the saved results into the input's rows and writes the output atomically. Refuses when
 * the input changed since submission (unless forced): rows are joined by position.
 */
export async function mergeJob(
  ctx: FetchContext,
  record: JobRecord,
  options: MergeOptions,
): Promise<RunSummary> {
  const started = Date.now();
  const { job, plan } = options;
  const changed = () =>
    new LoomUsageError(
      `${plan.input} changed since job ${record.id} was submitted (rows are matched by position, so answers could land on the wrong rows); ` +
        "restore it, or pass --input-changed to merge anyway",
    );
  // The input is fingerprinted as the merge reads it, and checked before the output takes its
  // place (a changed size is refused at once); nothing is written over when it changed.
  const hash = options.force ? undefined : new FileHash();
  if (hash && (await stat(plan.input)).size !== record.input.size) throw changed();
  const saved = savedOutcomes(ctx.store, record);
  const counts = { ok: 0, errors: 0, unsent: 0 };
  const cost = new CostTally();
  /** A row's result from what was saved for it. */
  const resultFrom = (row: DatasetRow, { outcome, holding }: SavedAt): RowResult => {
    // A row with an outcome was sent, so its request was built: on the same input (unless forced)
    // it builds again, and building it a million times more is a merge's largest cost.
    const built = outcome && !options.force
      ? undefined
      : buildRequest(job.spec, row.fields, options.responseSchema);
    if (built && "error" in built) {
      counts.unsent++;
      return { row, outcome: "error", error: built.error };
    }
    if (!outcome) {
      const shard = holding.at(-1);
      return {
        row,
        outcome: "error",
        error: shard ? missingReason(shard) : "this row was never submitted",
      };
    }
    if ("e" in outcome) return { row, outcome: "error", error: outcome.e };
    const verdict = options.check(outcome.r);
    if (verdict && "error" in verdict) {
      return { row, outcome: "error", error: verdict.error, result: outcome.r };
    }
    return { row, outcome: "ok", result: outcome.r, ...(verdict ? { value: verdict.value } : {}) };
  };
  /** A row's result: at once, unless its shard's saved results must be read further first. */
  const resultOf = (row: DatasetRow): RowResult | Promise<RowResult> => {
    const found = saved.at(row.index);
    return found instanceof Promise
      ? found.then((got) => resultFrom(row, got))
      : resultFrom(row, found);
  };
  /** The output's rows, an array of input rows at a time. */
  async function* merged(): AsyncGenerator<OutputRow[]> {
    const reader = await openJobDataset(job, plan.format, hash?.tap);
    for await (const rows of rowChunksOf(reader)) {
      const out: OutputRow[] = [];
      for (const row of rows) {
        failpoint("fetch:merging");
        const got = resultOf(row);
        const result = got instanceof Promise ? await got : got;
        counts[result.outcome === "error" ? "errors" : "ok"]++;
        cost.add(result);
        ctx.onEvent?.({
          type: "row",
          index: row.index,
          outcome: result.outcome,
          ...(result.outcome === "error" ? { error: result.error } : {}),
        });
        out.push({ row, added: options.added(result) });
      }
      yield out;
    }
  }
  // The file's identity is saved before it takes the output's place: a merge killed after the
  // rename still knows the output as its own, and the next fetch replaces it without asking.
  const beforeRename = async (tmp: string) => {
    if (hash && hash.digest().sha256 !== record.input.sha256) throw changed();
    record.written = identityOf(await stat(tmp));
    await ctx.store.save(record);
  };
  try {
    await writeFileAtomic(
      plan.output,
      writeRowChunks(plan.format, merged(), { layout: plan.layout, added: plan.added }),
      { beforeRename },
    );
  } catch (error) {
    // A changed input may fail to read before its end (a format's LoomDataError, by name: it
    // may come from another copy of Loom): that it changed is what to say.
    if (hash && LoomError.isInstance(error) && error.name === "LoomDataError") {
      if ((await fingerprintInput(plan.input)).sha256 !== record.input.sha256) throw changed();
    }
    throw error;
  } finally {
    await saved.close();
  }
  failpoint("fetch:merged");
  markMerged(record, {
    ok: counts.ok,
    errors: counts.errors,
    retryable: counts.errors - counts.unsent,
    ...(cost.total === undefined ? {} : { cost: cost.total }),
    inputTokens: cost.inputTokens,
    outputTokens: cost.outputTokens,
  });
  return {
    rows: plan.rows,
    ok: counts.ok,
    cached: 0,
    errors: counts.errors,
    ...(cost.total === undefined ? {} : { cost: cost.total }),
    output: plan.output,
    elapsedMs: Date.now() - started,
  };
}
