/**
 * The sync executor: every row becomes one provider call (or a cache hit), `workers` at a time,
 * and results come out in input order, ready to be written. A failing row never stops the run:
 * its error becomes the row's `llm_error`. Only a fatal provider error (bad key, say), the same
 * refusal for many rows in a row (see refusals.ts) or an abort ends it early, and then every
 * finished answer is already in the cache.
 * @module
 */
import type { AnswerVerdict } from "../data/answer-schema.ts";
import { cacheKey, CommitPacing, type ResponseCache } from "../state/cache.ts";
import { errorMessage, isFatal, LoomProviderError } from "../base/errors.ts";
import type { RowOutcome, RunEventHandler } from "../base/events.ts";
import type { BuiltRequest } from "../data/request.ts";
import type { DatasetRow } from "../spec/format.ts";
import type { GenerateResult, ProviderV1 } from "../spec/provider.ts";
import type { Redactor } from "../base/secrets.ts";
import { orderedBatchPool } from "./ordered-pool.ts";
import { AdaptiveGate, estimateTokens, type RateLimits, RatePacer } from "./limits.ts";
import { isRateLimited, type RetryPolicy, retryPolicy, withRetries } from "./retry.ts";
import { refusalOf, RefusalStreak } from "./refusals.ts";
import { CallSignals, CallsInFlight } from "./in-flight.ts";

/**
 * The outcome of one row. `value` is the parsed answer when the job has an answer schema; an
 * answer the schema check rejected is an error that keeps the `result` (it was paid for).
 */
export type RowResult =
  | {
    readonly row: DatasetRow;
    readonly outcome: "ok" | "cached";
    readonly result: GenerateResult;
    readonly value?: Readonly<Record<string, unknown>>;
  }
  | {
    readonly row: DatasetRow;
    readonly outcome: "error";
    readonly error: string;
    readonly result?: GenerateResult;
  };

/** An answer that came back but failed the answer check: a row error, never cached. */
class AnswerRejected extends Error {
  readonly result: GenerateResult;
  constructor(message: string, result: GenerateResult) {
    super(message);
    this.result = result;
  }
}

/** A provider's answer, and what the answer check made of it. */
interface Answer {
  readonly result: GenerateResult;
  readonly value?: Readonly<Record<string, unknown>>;
}

/** What the sync executor needs. */
export interface SyncExecutorOptions {
  readonly provider: ProviderV1;
  /** Builds a row's request (the shared request builder, bound to the job). */
  readonly buildRequest: (row: DatasetRow) => BuiltRequest;
  /** Absent when the cache is off. */
  readonly cache?: ResponseCache;
  readonly workers: number;
  /** Column holding row ids, reported in row events. */
  readonly idColumn?: string;
  /** Aborting stops new calls and aborts the ones in flight. */
  readonly signal?: AbortSignal;
  readonly onEvent?: RunEventHandler;
  /** Scrubs secrets from error messages before they reach events and outputs. */
  readonly redact?: Redactor;
  /** How transient provider errors are retried (default: `retryPolicy()` in retry.ts). */
  readonly retry?: RetryPolicy;
  /** Requests and tokens per minute not to exceed. */
  readonly limits?: RateLimits;
  /**
   * Checks each answer (the job's answer schema). A rejected answer is the row's error and is
   * not cached, so a rerun asks again.
   */
  readonly check?: (result: GenerateResult) => AnswerVerdict | undefined;
  /** When a row waits for its answer's commit (default: `new CommitPacing()`). */
  readonly pacing?: CommitPacing;
}

/** Rows in a row that waited out their whole budget on rate limits and stop the run. */
const RATE_LIMITED_ROWS = 3;

/** The error that stops a run whose rows keep waiting out rate limits that never lift. */
function rateLimitStop(
  message: string,
  status: number | undefined,
  policy: RetryPolicy,
  cached: boolean,
): LoomProviderError {
  return new LoomProviderError(
    `stopped: ${RATE_LIMITED_ROWS} rows in a row were still refused with ${status} after waiting up to ${
      duration(policy.maxTotalWaitMs)
    } each, ` +
      `the last with "${message}"; ` +
      (cached
        ? "the answers so far are cached, so a rerun resumes from them. "
        : "the cache is off, so a rerun starts over. ") +
      "Check the account's rate limits and quota, or lower sync.workers or sync.rpm, and run again",
    { status, fatal: true },
  );
}

/** A duration for people: `200 ms`, `45 s`, `10 min`. */
function duration(ms: number): string {
  if (ms < 1_000) return `${ms} ms`;
  return ms < 120_000 ? `${Math.round(ms / 1_000)} s` : `${Math.round(ms / 60_000)} min`;
}

/** Rows that may wait finished-but-unwritten behind a slow one, per worker. */
const WINDOW_PER_WORKER = 64;

/**
 * Rows read, keyed and looked up in the cache at once: one lookup for many rows costs far less
 * than one each, and a warm rerun's hits then go straight to the output.
 */
const CHUNK_ROWS = 250;

/** A row ready to run: its request and cache key, or its result when it needs no call. */
interface Prepared {
  readonly row: DatasetRow;
  readonly built?: Extract<BuiltRequest, { request: unknown }>;
  readonly key?: string;
  /** A cache hit, or a row that cannot be sent (set once the chunk is looked up). */
  result?: RowResult;
}

/**
 * Runs every row and yields its result in input order.
 *
 * With the cache on, rows are looked up many at a time before they run: a hit goes straight to
 * the output, and only misses take a worker. An answer is handed to the cache as soon as it
 * arrives. At a network provider's pace (up to about 100 answers a second) its row waits for the
 * commit, so a SIGKILL loses only the calls in flight; faster than that, rows move on and the
 * store commits their answers together (SQLite: those of one turn of the event loop), so a
 * SIGKILL may also lose the answers of the last few milliseconds. Lookups find an answer before
 * its commit, and the generator, ending well or not, returns only once every answer handed to
 * the cache is committed (or its failure warned of).
 */
export async function* executeSync(
  rows: AsyncIterable<DatasetRow>,
  options: SyncExecutorOptions,
): AsyncGenerator<RowResult> {
  for await (const batch of executeSyncBatches(rows, options)) {
    for (const result of batch) yield result;
  }
}

/**
 * {@link executeSync}, yielding the results in batches of those done in order (see
 * `orderedBatchPool`): what a sync run's writer takes, one generator step a batch.
 */
export function executeSyncBatches(
  rows: AsyncIterable<DatasetRow>,
  options: SyncExecutorOptions,
): AsyncGenerator<RowResult[]> {
  const { provider, cache, onEvent, idColumn } = options;
  // A fatal error (a refused key) stops every other row at once: no new call starts, and calls
  // in flight are aborted. Rows then fail with that error, which the pool reports in order.
  const stop = new AbortController();
  let fatal: unknown;
  const signal = options.signal ? AbortSignal.any([options.signal, stop.signal]) : stop.signal;
  const redact = options.redact ?? ((text: string) => text);
  // Read once: retryPolicy() reads the environment, which costs more than a row's other work.
  const policy = options.retry ?? retryPolicy();
  const refusals = new RefusalStreak();
  const pacing = options.pacing ?? new CommitPacing();
  // Rate limits spend a row's waiting budget, not its attempts (retry.ts). So that a limit that
  // never lifts (a spent daily quota) cannot hold every row for that long in turn, the run stops
  // when a few rows in a row, with no answer between them, waited out their budget.
  let rateLimitedRows = 0;
  const pacer = new RatePacer(options.limits ?? {});
  // Calls in flight; shrinks while the provider answers 429 or 529, grows back as calls succeed.
  const gate = new AdaptiveGate(options.workers);
  // Identical requests in flight at the same time share one call.
  const inFlight = new CallsInFlight<Answer>(cache !== undefined);
  // Rows looked up (a miss) but not started yet, by key; and the answers that came meanwhile
  // for those keys, so that a row whose request an earlier row already answered (an identical
  // prompt) takes that answer instead of paying again, even once the cache has committed it.
  const awaited = new Map<string, number>();
  const answered = new Map<string, Answer>();
  // The signals handed to calls, aborted with the run's (see CallSignals).
  const callSignals = new CallSignals(signal);

  const warned = new Set<string>();
  const warnOnce = (kind: string, message: string) => {
    if (!warned.has(kind)) onEvent?.({ type: "warning", message: redact(message) });
    warned.add(kind);
  };
  // Built member by member: spreads made two throw-away objects per row.
  const report = (row: DatasetRow, outcome: RowOutcome, error?: string) => {
    if (!onEvent) return;
    const id = idColumn === undefined ? undefined : row.fields[idColumn];
    const event: { type: "row"; index: number; id?: string; outcome: RowOutcome; error?: string } =
      { type: "row", index: row.index, outcome };
    if (id != null) event.id = String(id);
    if (error !== undefined) event.error = error;
    onEvent(event);
  };
  const cacheWriteFailed = (error: unknown) =>
    warnOnce(
      "cache-write",
      `cannot write the cache (answers are kept, but a rerun will ask again): ${
        errorMessage(error)
      }`,
    );

  const call = (key: string | undefined, built: Extract<BuiltRequest, { request: unknown }>) => {
    const found = inFlight.keyOf(built.request, key);
    let pending = inFlight.get(found, built.request);
    if (!pending) {
      // Added before the call can end (it ends no sooner than the next microtask).
      pending = answerOf(key, built);
      inFlight.add(found, built.request, pending);
    }
    return pending;
  };

  /**
   * Asks the provider (with retries), checks the answer and hands it to the cache (under `key`,
   * when the cache is on).
   */
  const answerOf = async (
    key: string | undefined,
    built: Extract<BuiltRequest, { request: unknown }>,
  ): Promise<Answer> => {
    try {
      // Transient faults (429, 5xx, dropped connections) are retried with backoff here, once
      // for every provider; providers only classify their errors. Every attempt is paced and
      // counts against the limits. Tokens are estimated only when there is a limit to pace by.
      const tokens = pacer.active
        ? estimateTokens(
          [built.request.system ?? "", ...built.request.messages.map((m) => m.content)],
          // The provider's own default when the job sets none (Anthropic sends 1024).
          built.request.params.max_tokens ?? provider.defaultMaxTokens,
        )
        : 0;
      const attempt = async () => {
        // A free slot and nothing to pace (the usual case) cost no promise.
        if (!gate.tryAcquire()) await gate.acquire();
        const controller = callSignals.take();
        try {
          if (pacer.active) await pacer.acquire(tokens, signal);
          signal.throwIfAborted();
          const result = await provider.generate(built.request, { signal: controller.signal });
          gate.succeeded();
          return result;
        } catch (error) {
          // Rate limited, or overloaded (Anthropic's 529): fewer calls at once.
          const status = (error as { status?: unknown }).status;
          if (status === 429 || status === 529) gate.backOff();
          throw error;
        } finally {
          callSignals.release(controller);
          gate.release();
        }
      };
      // The first attempt outside withRetries: most calls need no other.
      let result: GenerateResult;
      try {
        result = await attempt();
      } catch (error) {
        result = await withRetries(attempt, { signal, policy, firstFailure: { error } });
      }
      if (typeof result?.text !== "string") {
        throw new Error(
          `provider ${provider.name} returned no answer text (a bug in the provider plugin)`,
        );
      }
      const verdict = options.check?.(result);
      if (verdict && "error" in verdict) throw new AnswerRejected(verdict.error, result);
      const answer = { result, value: verdict?.value };
      // The answer is paid for: failing to cache it must not lose it, only be reported. The
      // row waits for the commit only at a network provider's pace (see CommitPacing); the
      // run's end waits for every one.
      if (cache && key !== undefined) {
        const write = cache.set(key, result).catch(cacheWriteFailed);
        if (awaited.has(key)) answered.set(key, answer);
        if (pacing.wait()) await write;
      }
      return answer;
    } finally {
      inFlight.delete(built.request);
    }
  };

  /** Reads the next rows' requests and keys, and looks them all up in the cache at once. */
  const prepare = async (chunk: readonly DatasetRow[]): Promise<Prepared[]> => {
    const prepared: Prepared[] = [];
    const keys: string[] = [];
    for (const row of chunk) {
      const built = options.buildRequest(row);
      if ("error" in built) {
        prepared.push({ row, result: { row, outcome: "error", error: built.error } });
        continue;
      }
      // With the cache off there is no key: calls in flight are found by their prompt.
      if (!cache) {
        prepared.push({ row, built });
        continue;
      }
      const key = cacheKey(provider.name, built.request, provider.cacheIdentity);
      prepared.push({ row, built, key });
      keys.push(key);
    }
    if (!cache || keys.length === 0) return prepared;
    // An unreadable cache is a miss, not a failed run.
    const hits = await cache.getMany(keys).catch((error) => {
      warnOnce(
        "cache-read",
        `cannot read the cache (calling the provider instead): ${errorMessage(error)}`,
      );
      return new Map<string, GenerateResult>();
    });
    for (const p of prepared) {
      if (p.key === undefined) continue;
      const hit = hits.get(p.key);
      // A cached answer that fails the check (cached before the check existed) is asked again.
      const verdict = hit && options.check?.(hit);
      if (hit && !(verdict && "error" in verdict)) {
        p.result = rowAnswered(p.row, "cached", hit, verdict);
      } else awaited.set(p.key, (awaited.get(p.key) ?? 0) + 1);
    }
    return prepared;
  };

  async function* chunks(): AsyncGenerator<Prepared[]> {
    let chunk: DatasetRow[] = [];
    for await (const row of rows) {
      chunk.push(row);
      if (chunk.length === CHUNK_ROWS) {
        yield await prepare(chunk);
        chunk = [];
      }
    }
    if (chunk.length > 0) yield await prepare(chunk);
  }

  /** A hit's or an unsendable row's result, reported in its turn. */
  const ready = (p: Prepared): RowResult | undefined => {
    if (p.result === undefined) return undefined;
    if (fatal !== undefined) throw fatal;
    signal.throwIfAborted();
    const { result } = p;
    report(p.row, result.outcome, result.outcome === "error" ? result.error : undefined);
    return result;
  };

  /** Takes an answer an earlier row of this run got for the same request, if any. */
  const earlier = (key: string): Answer | undefined => {
    const left = (awaited.get(key) ?? 1) - 1;
    const answer = answered.get(key);
    if (left > 0) awaited.set(key, left);
    else {
      awaited.delete(key);
      answered.delete(key);
    }
    return answer;
  };

  const runRow = async (p: Prepared): Promise<RowResult> => {
    const { row, key, built } = p as Omit<Required<Prepared>, "key"> & Prepared;
    const before = key !== undefined ? earlier(key) : undefined;
    if (fatal !== undefined) throw fatal;
    signal.throwIfAborted();
    if (before) {
      report(row, "cached");
      return rowAnswered(row, "cached", before.result, before);
    }
    try {
      const { result, value } = await call(key, built);
      refusals.reset();
      rateLimitedRows = 0;
      report(row, "ok");
      return rowAnswered(row, "ok", result, { value });
    } catch (error) {
      if (fatal !== undefined) throw fatal;
      if (signal.aborted) throw signal.reason;
      if (error instanceof AnswerRejected) {
        const message = redact(error.message);
        report(row, "error", message);
        return { row, outcome: "error", error: message, result: error.result };
      }
      // Duck-typed so errors from a plugin's own copy of Loom count too.
      if (isFatal(error)) {
        fatal = error;
        stop.abort(error);
        throw error;
      }
      const message = redact(errorMessage(error));
      if (isRateLimited(error) && ++rateLimitedRows >= RATE_LIMITED_ROWS) {
        fatal = rateLimitStop(
          message,
          (error as { status?: number }).status,
          policy,
          cache !== undefined,
        );
        stop.abort(fatal);
        throw fatal;
      }
      const refusal = refusalOf(error);
      if (!refusal) refusals.reset();
      else if (refusals.refused(refusal)) {
        fatal = refusals.stopError({ ...refusal, message }, cache !== undefined);
        stop.abort(fatal);
        throw fatal;
      }
      report(row, "error", message);
      return { row, outcome: "error", error: message };
    }
  };

  return orderedBatchPool(chunks(), runRow, {
    concurrency: options.workers,
    window: options.workers * WINDOW_PER_WORKER,
    ready,
    // Every answer handed to the cache is committed before the run reports, however it ends.
    finally: cache && (() => cache.settled()),
  });
}

/**
 * A row's answered result, with the parsed answer of `verdict` when it has one (structured
 * output). Built without spreads: the cached path makes one a row.
 */
function rowAnswered(
  row: DatasetRow,
  outcome: "ok" | "cached",
  result: GenerateResult,
  verdict: { value?: Readonly<Record<string, unknown>> } | undefined | false,
): RowResult {
  return verdict && verdict.value
    ? { row, outcome, result, value: verdict.value }
    : { row, outcome, result };
}
