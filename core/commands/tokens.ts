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
import { readPlan } from "../data/plan.ts";
import { buildRequest } from "../data/request.ts";
import { estimateTokens } from "../run/limits.ts";
import { orderedChunkPool } from "../run/ordered-pool.ts";
import { refusalOf, RefusalStreak } from "../run/refusals.ts";
import { type OpenedJob, type RunOptions, withOpenedJob } from "../run/open.ts";
import { withRetries } from "../run/retry.ts";

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

/** Counts with an opened job's provider. */
export async function count(
  opened: OpenedJob,
  options: CountOptions,
  redact: (text: string) => string = (t) => t,
): Promise<TokenCount> {
  const { job, provider } = opened;
  const counter = provider.countTokens?.bind(provider);
  if (!counter || !provider.capabilities.tokens) {
    throw new TokensUnavailableError(
      provider.noTokensReason ?? `provider "${provider.name}" cannot count tokens`,
    );
  }
  // One reading of the input: it is checked (as `planJob` checks it) and counted in the same pass.
  let bytesRead = 0;
  const reading = await readPlan(job, opened.registry, opened.context, {
    answerFields: opened.answerSchema?.fields,
    checkOutput: false,
  }, (chunk) => void (bytesRead += chunk.length));
  // The bytes the tap sees are the file's own (compressed for `.gz`), as is this size.
  const size = (await stat(job.spec.dataset.path)).size;
  const { reader } = reading;
  const tally = { total: 0, totalKnown: false, done: 0, errors: 0, tokens: 0 };
  let rowsRead = 0;
  /** The rows, one at a time, for the pool; the total is known once they end. */
  async function* rows() {
    for await (const row of reader.rows) {
      rowsRead++;
      reading.see(row);
      yield [row];
    }
    tally.totalKnown = true;
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
  // The same refusal for many rows in a row stops the count, and the calls in flight with it.
  const refusals = new RefusalStreak();
  const stop = new AbortController();
  let stopped: unknown;
  const signal = options.signal ? AbortSignal.any([options.signal, stop.signal]) : stop.signal;
  const results = orderedChunkPool(rows(), async (row) => {
    if (stopped !== undefined) throw stopped;
    options.signal?.throwIfAborted();
    const built = buildRequest(job.spec, row.fields, opened.answerSchema?.schema);
    if ("error" in built) return { row: row.index, error: built.error };
    try {
      const n = await withRetries(() => counter(built.request, { signal }), {
        signal,
        policy: options.retry,
      });
      if (!Number.isInteger(n) || n < 0) {
        throw new LoomError(
          `provider ${provider.name} counted ${n} tokens (a bug in the provider plugin)`,
        );
      }
      refusals.reset();
      return { row: row.index, tokens: n };
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
      const { request } = built;
      const estimate = estimateTokens(
        [request.system ?? "", ...request.messages.map((m) => m.content)],
        0,
      );
      return { row: row.index, error: message, estimate };
    }
  }, { concurrency: workers, window: workers * 64 });
  let prompts = 0;
  let estimated = 0;
  let estimatedTokens = 0;
  for await (const result of results) {
    tally.done++;
    if ("tokens" in result) {
      prompts++;
      tally.tokens += result.tokens ?? 0;
    } else if (result.estimate !== undefined) {
      estimated++;
      estimatedTokens += result.estimate;
      fail(`row ${result.row + 1}: ${result.error} (estimated locally instead)`);
    } else fail(`row ${result.row + 1}: ${result.error}`);
    tally.total = total();
    options.onProgress?.({ ...tally });
  }
  // JSON and JSONL learn their columns from the rows, so only now is the job checked against
  // them. A check this late costs no money: counting is free at Anthropic ("free to use but
  // subject to requests per minute rate limits", its token-counting docs) and at Gemini (no
  // pricing or quota restriction on CountTokens, Google's count-tokens docs for Gemini models).
  // unverified: OpenAI's guide to /v1/responses/input_tokens states no price (its community
  // forum says the calls are free).
  reading.finish();
  return {
    provider: job.spec.provider,
    model: job.spec.model,
    total: tally.tokens + estimatedTokens,
    prompts: prompts + estimated,
    estimated,
    estimatedTokens,
    errors: tally.errors,
    samples,
  };
}
