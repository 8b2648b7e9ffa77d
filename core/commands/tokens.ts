/**
 * Counting a job's input tokens with the provider's own counting (`loom tokens`): every prompt,
 * system prompt included, `workers` at a time, without generating anything. The input is read
 * once: the job is checked against it (as planning does) in the pass that counts. A row whose
 * count fails is an error in the tally, named, and its tokens are estimated locally instead; the
 * count goes on. A refused key ends it, and so does the same refusal for many rows in a row (the
 * job's model or params, not a row's prompt), as in sync runs (see run/refusals.ts).
 * @module
 */
import { stat } from "node:fs/promises";
import { errorMessage, isFatal, LoomError, LoomUsageError } from "../base/errors.ts";
import type { LoadedJob } from "../job/load.ts";
import { type Plan, readPlan } from "../data/plan.ts";
import { type BuiltRequest, requestBuilder } from "../data/request.ts";
import type { DatasetRow } from "../spec/format.ts";
import type { GenerateRequest } from "../spec/provider.ts";
import { estimateTokens } from "../run/limits.ts";
import { orderedBatchPool } from "../run/ordered-pool.ts";
import { refusalOf, RefusalStreak } from "../run/refusals.ts";
import { type OpenedJob, type RunOptions, withOpenedJob } from "../run/open.ts";
import { retryPolicy, withRetries } from "../run/retry.ts";

/** Default number of counting calls at once. */
export const DEFAULT_COUNT_WORKERS = 8;

/** Progress of a count. */
export interface CountProgress {
  /**
   * Rows in the input. The count reads the input once, so until that reading ends this is an
   * estimate from the share of the file read (see `totalKnown`); then it is exact.
   */
  readonly total: number;
  /** Whether the input has been read to its end, and so `total` is exact. */
  readonly totalKnown: boolean;
  readonly done: number;
  readonly errors: number;
  /** Tokens counted so far. */
  readonly tokens: number;
}

/** The outcome of a count. */
export interface TokenCount {
  readonly provider: string;
  readonly model: string;
  /** Input tokens: the provider's count, plus the local estimate of the prompts it did not count. */
  readonly total: number;
  /** Prompts counted (rows with a prompt), by the provider or, for `estimated` of them, locally. */
  readonly prompts: number;
  /** Prompts whose count failed, estimated locally (4 characters a token) instead. */
  readonly estimated: number;
  /** The local estimate of those prompts, included in `total`. */
  readonly estimatedTokens: number;
  /** Rows in error: no prompt could be built, or the provider did not count it. */
  readonly errors: number;
  /** The first few row errors, for the user to see why. */
  readonly samples: readonly string[];
}

/** Rows read and handed to the counting pool at a time. */
const CHUNK_ROWS = 250;

/** A row ready to count: its request, or why it has none. */
interface Prepared {
  readonly index: number;
  readonly built: BuiltRequest;
}

/** A row's count, or its error (and, when the provider failed, its local estimate). */
interface Counted {
  readonly row: number;
  readonly tokens?: number;
  readonly error?: string;
  readonly estimate?: number;
}

/** Options of a count. */
export interface CountOptions extends RunOptions {
  readonly workers?: number;
  readonly onProgress?: (progress: CountProgress) => void;
}

/** Why a provider cannot count, as the CLI prints it after "Token counting not available: ". */
export class TokensUnavailableError extends LoomUsageError {
  constructor(reason: string) {
    super(`Token counting not available: ${reason}`);
    this.name = "TokensUnavailableError";
  }
}

/** Counts the input tokens of every prompt of a job. */
export function countJobTokens(job: LoadedJob, options: CountOptions = {}): Promise<TokenCount> {
  return withOpenedJob(job, options, (opened) => count(opened, options, opened.redact));
}

/** What else a count's one reading does: `loom plan --count-tokens` plans and estimates in it. */
export interface CountReadingOptions {
  /** Check the output path as planning does (default false: `loom tokens` writes no output). */
  readonly checkOutput?: boolean;
  /** Sees every row read, with the request built for it (or why none could be), before its count. */
  readonly onRow?: (row: DatasetRow, built: BuiltRequest) => void;
}

/** Whether a provider can count tokens (else {@link count} throws {@link TokensUnavailableError}). */
export function canCount(provider: OpenedJob["provider"]): boolean {
  return Boolean(provider.countTokens && provider.capabilities.tokens);
}

/** Counts with an opened job's provider. */
export async function count(
  opened: OpenedJob,
  options: CountOptions,
  redact: (text: string) => string = (t) => t,
): Promise<TokenCount> {
  return (await countPlanned(opened, { ...options, checkOutput: false }, redact)).count;
}

/**
 * Counts as {@link count} does, and returns the plan made in the same reading of the input (the
 * job checked against it as `planJob` checks it, the output path too with `checkOutput`).
 */
export async function countPlanned(
  opened: OpenedJob,
  options: CountOptions & CountReadingOptions,
  redact: (text: string) => string = (t) => t,
): Promise<{ plan: Plan; count: TokenCount }> {
  const { job, provider } = opened;
  const counter = provider.countTokens?.bind(provider);
  if (!counter || !canCount(provider)) {
    throw new TokensUnavailableError(
      provider.noTokensReason ?? `provider "${provider.name}" cannot count tokens`,
    );
  }
  // One reading of the input: it is checked (as `planJob` checks it) and counted in the same pass.
  let bytesRead = 0;
  const reading = await readPlan(job, opened.registry, opened.context, {
    answerFields: opened.answerSchema?.fields,
    checkOutput: options.checkOutput ?? false,
    tap: (chunk) => void (bytesRead += chunk.length),
  });
  const { onRow } = options;
  // The bytes the tap sees are the file's own (compressed for `.gz`), as is this size.
  const size = (await stat(job.spec.dataset.path)).size;
  const tally = { total: 0, totalKnown: false, done: 0, errors: 0, tokens: 0 };
  const build = requestBuilder(job.spec, opened.answerSchema?.schema);
  let rowsRead = 0;
  /**
   * The rows in chunks with their requests, for the pool. A chunk is handed on only once the row
   * after it (or the end) is read, so the end is known before the last rows are counted.
   */
  async function* chunks(): AsyncGenerator<Prepared[]> {
    let chunk: Prepared[] = [];
    for await (const row of reading.reader.rows) {
      if (chunk.length === CHUNK_ROWS) {
        yield chunk;
        chunk = [];
      }
      rowsRead++;
      const built = build(row.fields);
      onRow?.(row, built);
      reading.see(row);
      chunk.push({ index: row.index, built });
    }
    tally.totalKnown = true;
    if (chunk.length) yield chunk;
  }
  /** The total: the rows, or while they are read, as many as the share of bytes read suggests. */
  const total = () =>
    tally.totalKnown || bytesRead === 0
      ? rowsRead
      : Math.max(rowsRead, Math.round(rowsRead * size / bytesRead));
  const samples: string[] = [];
  const fail = (message: string) => {
    tally.errors++;
    if (samples.length < 5) samples.push(redact(message));
  };
  const workers = options.workers ?? job.spec.sync?.workers ?? DEFAULT_COUNT_WORKERS;
  // Read once: retryPolicy() reads the environment, which costs more than a row's other work.
  const policy = options.retry ?? retryPolicy();
  // The same refusal for many rows in a row stops the count, and the calls in flight with it.
  const refusals = new RefusalStreak();
  const stop = new AbortController();
  let stopped: unknown;
  const signal = options.signal ? AbortSignal.any([options.signal, stop.signal]) : stop.signal;
  const callOptions = { signal };
  /** A row with no prompt to count is an error at once, with no task. */
  const ready = ({ index, built }: Prepared): Counted | undefined => {
    if (stopped !== undefined) throw stopped;
    options.signal?.throwIfAborted();
    return "error" in built ? { row: index, error: built.error } : undefined;
  };
  const countRow = async ({ index, built }: Prepared): Promise<Counted> => {
    if (stopped !== undefined) throw stopped;
    options.signal?.throwIfAborted();
    const { request } = built as { request: GenerateRequest };
    try {
      let n: number;
      // The first attempt outside withRetries: most counts need no other.
      try {
        n = await counter(request, callOptions);
      } catch (error) {
        const attempt = () => counter(request, callOptions);
        n = await withRetries(attempt, { signal, policy, firstFailure: { error } });
      }
      if (!Number.isInteger(n) || n < 0) {
        throw new LoomError(
          `provider ${provider.name} counted ${n} tokens (a bug in the provider plugin)`,
        );
      }
      refusals.reset();
      return { row: index, tokens: n };
    } catch (error) {
      if (stopped !== undefined) throw stopped;
      // A refused key fails every row alike: the count stops.
      if (options.signal?.aborted || isFatal(error)) throw error;
      const message = redact(errorMessage(error));
      const refusal = refusalOf(error);
      if (!refusal) refusals.reset();
      else if (refusals.refused(refusal)) {
        stopped = refusals.countStopError({ ...refusal, message });
        stop.abort(stopped);
        throw stopped;
      }
      const estimate = estimateTokens(
        [request.system ?? "", ...request.messages.map((m) => m.content)],
        0,
      );
      return { row: index, error: message, estimate };
    }
  };
  const batches = orderedBatchPool(chunks(), countRow, {
    concurrency: workers,
    window: workers * 64,
    ready,
  });
  let prompts = 0;
  let estimated = 0;
  let estimatedTokens = 0;
  for await (const batch of batches) {
    for (const result of batch) {
      tally.done++;
      if (result.tokens !== undefined) {
        prompts++;
        tally.tokens += result.tokens;
      } else if (result.estimate !== undefined) {
        estimated++;
        estimatedTokens += result.estimate;
        fail(`row ${result.row + 1}: ${result.error} (estimated locally instead)`);
      } else fail(`row ${result.row + 1}: ${result.error}`);
      tally.total = total();
      // Not before the job is known to fit (JSON, JSONL): a job that does not fails as it did
      // when planning came first, with nothing reported.
      if (reading.columnsFound) options.onProgress?.({ ...tally });
    }
  }
  // JSON and JSONL learn their columns from the rows, so only now is the job checked against
  // them. A check this late costs no money: counting is free at Anthropic ("free to use but
  // subject to requests per minute rate limits", its token-counting docs) and at Gemini (no
  // pricing or quota restriction on CountTokens, Google's count-tokens docs for Gemini models).
  // unverified: OpenAI's guide to /v1/responses/input_tokens states no price (its community
  // forum says the calls are free).
  const plan = reading.finish();
  return {
    plan,
    count: {
      provider: job.spec.provider,
      model: job.spec.model,
      total: tally.tokens + estimatedTokens,
      prompts: prompts + estimated,
      estimated,
      estimatedTokens,
      errors: tally.errors,
      samples,
    },
  };
}
