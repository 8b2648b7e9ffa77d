/**
 * A sync run of a planned job: every row sent live (or answered from the cache) by the executor
 * in `sync.ts`, the answers merged into the rows in input order, the output written atomically.
 * @module
 */
import { checkPlainAnswer } from "../data/answer-schema.ts";
import { ResponseCache } from "../state/cache.ts";
import { errorMessage, LoomError, LoomInterruptedError, LoomUsageError } from "../base/errors.ts";
import type { RunEventHandler, RunSummary } from "../base/events.ts";
import { writeFileAtomic } from "../data/output.ts";
import { displayPath } from "../base/paths.ts";
import { openJobDataset, type Plan } from "../data/plan.ts";
import { requestBuilder } from "../data/request.ts";
import type { Redactor } from "../base/secrets.ts";
import type { OutputRow } from "../spec/format.ts";
import { addedValues, CostTally } from "./added.ts";
import type { OpenedJob, RunOptions } from "./open.ts";
import { executeSyncBatches, type RowResult } from "./sync.ts";
import { recordEveryMs, RunRecorder } from "./record.ts";
import { machineName } from "../state/lease.ts";
import type { RecordedEstimate } from "../data/prices.ts";

/** Default number of concurrent requests in sync mode. */
export const DEFAULT_WORKERS = 8;

/** Runs a planned job in sync mode; resolves once the output file is in place. */
export async function runSync(
  opened: OpenedJob,
  plan: Plan,
  options: RunOptions,
  redact: Redactor,
  estimate?: RecordedEstimate,
): Promise<RunSummary> {
  const { spec } = opened.job;
  const caching = spec.sync?.cache ?? true;
  const cache = caching ? await openCache(opened, options) : undefined;
  // A store the cache could not open was warned of already: no second warning for the record.
  const recorder = caching && !cache
    ? undefined
    : await startRecord(opened, plan, options, estimate);
  try {
    const summary = await runRows(opened, plan, options, redact, cache, recorder);
    await recorder?.end();
    return summary;
  } catch (error) {
    await recorder?.end(error, redact);
    throw error;
  }
}

/** Sends (or answers from the cache) every row and writes the output. */
async function runRows(
  opened: OpenedJob,
  plan: Plan,
  options: RunOptions,
  redact: Redactor,
  cache: ResponseCache | undefined,
  recorder: RunRecorder | undefined,
): Promise<RunSummary> {
  const { job, provider, answerSchema } = opened;
  const { spec } = job;
  const { signal } = options;
  const started = Date.now();
  const counts = { ok: 0, cached: 0, errors: 0 };
  const cost = new CostTally({ shared: true });
  if (recorder) recorder.usage = cost;
  const onEvent: RunEventHandler = (event) => {
    if (event.type === "row") {
      counts[event.outcome === "error" ? "errors" : event.outcome]++;
      recorder?.row(event.outcome);
    }
    options.onEvent?.(event);
  };

  const reader = await openJobDataset(job, plan.format);
  const build = requestBuilder(spec, answerSchema?.schema);
  const results = executeSyncBatches(reader.rows, {
    provider,
    buildRequest: (row) => build(row.fields),
    check: answerSchema?.check ?? checkPlainAnswer,
    cache,
    workers: spec.sync?.workers ?? DEFAULT_WORKERS,
    idColumn: spec.dataset.id ?? (plan.columns.includes("id") ? "id" : undefined),
    signal,
    onEvent,
    redact,
    retry: options.retry,
    limits: { rpm: spec.sync?.rpm, tpm: spec.sync?.tpm },
  });
  const merged = new MergedRows(
    results,
    (result) => {
      cost.add(result);
      return { row: result.row, added: addedValues(plan, job, result) };
    },
    (rows) => {
      // Thrown before the output is renamed into place, so a changed input leaves no output.
      if (rows !== plan.rows) {
        throw new LoomError(
          `${
            displayPath(plan.input)
          } changed while Loom was running (checked ${plan.rows} rows, then read ${rows}); no output was written`,
        );
      }
    },
  );
  try {
    await writeFileAtomic(
      plan.output,
      plan.format.write(merged, { layout: plan.layout, added: plan.added }),
    );
  } catch (error) {
    if (!signal?.aborted) throw error;
    const done = counts.ok + counts.cached;
    throw new LoomInterruptedError(
      `interrupted after ${done} of ${plan.rows} rows; no output was written. ` +
        (cache
          ? "Finished answers are cached: run the same command again to resume."
          : "The cache is off, so a rerun starts over."),
    );
  }
  const summary: RunSummary = {
    rows: plan.rows,
    ...counts,
    ...(cost.total === undefined ? {} : { cost: cost.total }),
    output: plan.output,
    elapsedMs: Date.now() - started,
  };
  options.onEvent?.({ type: "done", summary });
  return summary;
}

/**
 * Starts the run's record in the state store, when the store keeps run records. A store that
 * cannot be opened or written is a warning: the run goes on unrecorded.
 */
async function startRecord(
  opened: OpenedJob,
  plan: Plan,
  options: RunOptions,
  estimate: RecordedEstimate | undefined,
): Promise<RunRecorder | undefined> {
  const warn = (message: string) => options.onEvent?.({ type: "warning", message });
  let table;
  try {
    table = (await opened.state.get()).runs;
  } catch (error) {
    if (options.signal?.aborted) throw error;
    warn(`cannot record the run in the state store: ${errorMessage(error)}`);
    return undefined;
  }
  if (!table) return undefined;
  const { job } = opened;
  const recorder = new RunRecorder(table, {
    ...(job.file ? { jobFile: job.file } : {}),
    provider: job.spec.provider,
    model: job.spec.model,
    input: plan.input,
    output: plan.output,
    format: plan.formatName,
    host: machineName(opened.context.env),
    rows: plan.rows,
    ...(estimate ? { estimate } : {}),
  }, { warn });
  await recorder.start(recordEveryMs(opened.context.env));
  return recorder;
}

/**
 * The response cache of a sync run. A store that cannot be opened for a fault of the machine (a
 * read-only or full disk) is a warning: the rows are still answered, only a rerun asks again. A
 * store that is configured wrong (a bad `LOOM_STATE`) stops the run before any work.
 */
async function openCache(
  opened: OpenedJob,
  options: RunOptions,
): Promise<ResponseCache | undefined> {
  try {
    return new ResponseCache((await opened.state.get()).cache);
  } catch (error) {
    if (options.signal?.aborted || error instanceof LoomUsageError) throw error;
    options.onEvent?.({
      type: "warning",
      message: `cannot write the cache (answers are kept, but a rerun will ask again): ${
        errorMessage(error)
      }`,
    });
    return undefined;
  }
}

/**
 * The output rows of a run: each result merged into its row, served from the executor's batches.
 * Written as an iterator rather than an async generator: a row already at hand costs one resolved
 * promise, not a generator's suspend and resume. `atEnd` hears how many rows there were (and may
 * throw). Calls to `next` are served one after the other.
 */
class MergedRows implements AsyncIterableIterator<OutputRow> {
  readonly #results: AsyncGenerator<RowResult[]>;
  readonly #merge: (result: RowResult) => OutputRow;
  readonly #atEnd: (rows: number) => void;
  #batch: readonly RowResult[] = [];
  #at = 0;
  #rows = 0;
  #waiting?: Promise<unknown>; // a `next` waiting for the next batch

  constructor(
    results: AsyncGenerator<RowResult[]>,
    merge: (result: RowResult) => OutputRow,
    atEnd: (rows: number) => void,
  ) {
    this.#results = results;
    this.#merge = merge;
    this.#atEnd = atEnd;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  next(): Promise<IteratorResult<OutputRow>> {
    if (this.#waiting) return this.#waiting.then(() => this.next());
    if (this.#at < this.#batch.length) {
      try {
        return Promise.resolve({ done: false, value: this.#take() });
      } catch (error) {
        return Promise.reject(error);
      }
    }
    const waiting = this.#refill();
    const clear = () => {
      this.#waiting = undefined;
    };
    this.#waiting = waiting.then(clear, clear);
    return waiting;
  }

  /** Stops early: ends the executor (which waits for the cache's writes). */
  async return(): Promise<IteratorResult<OutputRow>> {
    this.#batch = [];
    await this.#results.return(undefined);
    return { done: true, value: undefined };
  }

  #take(): OutputRow {
    this.#rows++;
    return this.#merge(this.#batch[this.#at++]);
  }

  async #refill(): Promise<IteratorResult<OutputRow>> {
    for (;;) {
      const next = await this.#results.next();
      if (next.done) {
        this.#atEnd(this.#rows);
        return { done: true, value: undefined };
      }
      this.#batch = next.value;
      this.#at = 0;
      if (this.#batch.length) return { done: false, value: this.#take() };
    }
  }
}
