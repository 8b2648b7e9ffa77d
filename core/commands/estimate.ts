/**
 * What a job will cost, before any money is spent (`loom plan`, `--dry-run`, the spend cap):
 * rows and requests, the batch shards, input tokens (estimated, or counted by the provider's
 * counting endpoint on request), the output-token assumption, and the cost in batch and in sync
 * mode from the price table. Nothing here calls a paid endpoint.
 * @module
 */
import { ShardCutter } from "../batch/submit.ts";
import { LoomUsageError } from "../base/errors.ts";
import { openJobDataset, type Plan, planJob } from "../data/plan.ts";
import {
  batchRates,
  costOf,
  priceOf,
  type PriceSource,
  type RecordedEstimate,
} from "../data/prices.ts";
import { type BuiltRequest, requestBuilder } from "../data/request.ts";
import { estimateTokens } from "../run/limits.ts";
import { type OpenedJob, type RunOptions, withOpenedJob } from "../run/open.ts";
import type { LoadedJob } from "../job/load.ts";
import type { DatasetRow } from "../spec/format.ts";
import { canCount, count, countPlanned, type CountProgress, type TokenCount } from "./tokens.ts";

/** Output tokens assumed per row when neither the job nor the provider sets `max_tokens`. */
export const ASSUMED_OUTPUT_TOKENS = 1024;

/** A cost in US dollars. */
export interface Cost {
  readonly input: number;
  readonly output: number;
  readonly total: number;
}

/** A job's estimate. */
export interface JobEstimate {
  readonly provider: string;
  readonly model: string;
  readonly mode: "batch" | "sync";
  readonly rows: number;
  /** Rows that would be sent (the others have no prompt). */
  readonly requests: number;
  /** Batch shards as Loom would submit them (when the provider has a batch API). */
  readonly shards?: ReadonlyArray<
    {
      readonly requests: number;
      readonly bytes: number;
      readonly firstRow: number;
      readonly lastRow: number;
    }
  >;
  readonly inputTokens: number;
  /** `estimate` (4 characters a token) or `counted` (the provider's counting). */
  readonly inputSource: "estimate" | "counted";
  /** Rows whose count failed (counted only), estimated instead. */
  readonly countErrors?: number;
  /** The first few of those rows, each named with the provider's message (counted only). */
  readonly countSamples?: readonly string[];
  readonly outputTokensPerRow: number;
  /** Where the per-row output figure comes from: the job's `max_tokens`, the provider's default, or Loom's assumption. */
  readonly outputSource: "max_tokens" | "provider default" | "assumed";
  readonly outputTokens: number;
  readonly price?: PriceSource;
  /**
   * The rates the batch cost is at (US dollars per million tokens), with the batch cost; `given`
   * says which are the price's own (`cost.prices` batch_input, batch_output) rather than half the
   * sync rate.
   */
  readonly batchPrice?: ReturnType<typeof batchRates>;
  readonly cost?: { readonly batch?: Cost; readonly sync: Cost };
  /** The job's spend cap and whether the estimate for its mode exceeds it. */
  readonly cap?: { readonly maxUsd: number; readonly exceeded: boolean };
  /** The provider's notes on how the job will be sent (structured-output mode, deprecations). */
  readonly notes?: readonly string[];
}

/** Options of an estimate. */
export interface EstimateOptions {
  /** Count input tokens with the provider's counting endpoint instead of estimating them. */
  readonly count?: boolean;
  readonly workers?: number;
  readonly signal?: AbortSignal;
  readonly onProgress?: (progress: CountProgress) => void;
}

/** Estimates a planned job, reading its dataset again (see `planJobCost` for one pass). */
export async function estimateJob(
  opened: OpenedJob,
  plan: Plan,
  options: EstimateOptions = {},
): Promise<JobEstimate> {
  const tally = new EstimateTally(opened);
  const reader = await openJobDataset(opened.job, plan.format);
  for await (const row of reader.rows) {
    options.signal?.throwIfAborted();
    tally.add(row);
  }
  return tally.finish(plan, options);
}

/**
 * A job's estimate built row by row: requests, estimated input tokens and batch shards. Fed by
 * the planning pass (`PlanOptions.onRow`) or by a reading of its own.
 */
export class EstimateTally {
  readonly #opened: OpenedJob;
  readonly #build: (fields: DatasetRow["fields"]) => BuiltRequest;
  readonly #cutter?: ShardCutter;
  #requests = 0;
  #estimated = 0;
  /** The first row the shard cutter refused, reported by `finish` (after the plan's checks). */
  #refused?: unknown;

  /**
   * `shards: false` leaves the shards to whoever else cuts them in the same pass (a batch run's
   * `SubmissionPlanner`, which also names a row too big for a batch): the estimate has none.
   */
  constructor(opened: OpenedJob, { shards = true }: { shards?: boolean } = {}) {
    this.#opened = opened;
    const { provider, job: { spec }, answerSchema } = opened;
    this.#build = requestBuilder(spec, answerSchema?.schema);
    // Shards only matter to a batch run (a row too big for a batch is no problem in sync mode).
    if (shards && provider.batch && (spec.mode ?? "batch") === "batch") {
      // An estimate shows each shard's first and last row only: no row lists to keep.
      this.#cutter = new ShardCutter(provider.batch, spec.provider, spec.batch, {
        rowLists: false,
      });
    }
  }

  /**
   * Counts one row. `built` is its request when the pass built it already for other work (the
   * submission's shards, the token count), so that it is built once.
   */
  add(row: DatasetRow, built: BuiltRequest = this.#build(row.fields)): void {
    if ("error" in built) return;
    this.#requests++;
    const { request } = built;
    this.#estimated += estimateTokens(
      [request.system ?? "", ...request.messages.map((m) => m.content)],
      0,
    );
    if (this.#refused !== undefined) return;
    try {
      this.#cutter?.add(row.index, { customId: `row-${row.index}`, request });
    } catch (error) {
      this.#refused = error;
    }
  }

  /**
   * The estimate of every row added, for the job `plan` describes. `counted` is the provider's
   * count made in the same reading; without it, `options.count` counts in a reading of its own.
   */
  async finish(
    plan: Plan,
    options: EstimateOptions = {},
    counted?: TokenCount,
  ): Promise<JobEstimate> {
    if (this.#refused !== undefined) throw this.#refused;
    const cutter = this.#cutter;
    cutter?.close();
    return await priced(this.#opened, plan, options, {
      requests: this.#requests,
      estimated: this.#estimated,
      cutter,
      counted,
    });
  }
}

/** The estimate's totals and prices, from what the rows added up to. */
async function priced(
  opened: OpenedJob,
  plan: Plan,
  options: EstimateOptions,
  { requests, estimated, cutter, counted: given }: {
    requests: number;
    estimated: number;
    cutter?: ShardCutter;
    counted?: TokenCount;
  },
): Promise<JobEstimate> {
  const { provider } = opened;
  const { spec } = opened.job;
  const maxTokens = typeof spec.params?.max_tokens === "number"
    ? spec.params.max_tokens
    : undefined;
  const outputTokensPerRow = maxTokens ?? provider.defaultMaxTokens ?? ASSUMED_OUTPUT_TOKENS;
  const outputSource = maxTokens !== undefined
    ? "max_tokens"
    : provider.defaultMaxTokens !== undefined
    ? "provider default"
    : "assumed";
  let inputTokens = estimated;
  let inputSource: JobEstimate["inputSource"] = "estimate";
  let countErrors: number | undefined;
  let countSamples: readonly string[] | undefined;
  if (given || options.count) {
    const counted = given ?? await count(opened, {
      signal: options.signal,
      workers: options.workers,
      onProgress: options.onProgress,
    });
    // A row whose count failed is in the total by its local estimate.
    inputTokens = counted.total;
    inputSource = "counted";
    countErrors = counted.estimated;
    countSamples = counted.samples;
  }
  const outputTokens = outputTokensPerRow * requests;
  const price = priceOf(
    spec.provider,
    spec.model,
    spec.cost?.prices && {
      input: spec.cost.prices.input,
      output: spec.cost.prices.output,
      ...(spec.cost.prices.batch_input === undefined
        ? {}
        : { batchInput: spec.cost.prices.batch_input }),
      ...(spec.cost.prices.batch_output === undefined
        ? {}
        : { batchOutput: spec.cost.prices.batch_output }),
    },
  );
  const mode = spec.mode ?? "batch";
  const cost = price && {
    ...(provider.batch ? { batch: costOf(price.price, "batch", inputTokens, outputTokens) } : {}),
    sync: costOf(price.price, "sync", inputTokens, outputTokens),
  };
  const maxUsd = spec.cost?.max_usd;
  const modeCost = cost && (mode === "batch" ? cost.batch : cost.sync);
  return {
    provider: spec.provider,
    model: spec.model,
    mode,
    rows: plan.rows,
    requests,
    ...(cutter
      ? {
        shards: cutter.shards.map((s) => ({
          requests: s.requests,
          bytes: s.bytes,
          firstRow: s.first,
          lastRow: s.last,
        })),
      }
      : {}),
    inputTokens,
    inputSource,
    ...(countErrors === undefined ? {} : { countErrors }),
    ...(countSamples?.length ? { countSamples } : {}),
    outputTokensPerRow,
    outputSource,
    outputTokens,
    ...(price ? { price } : {}),
    ...(price && cost?.batch ? { batchPrice: batchRates(price.price) } : {}),
    ...(cost ? { cost } : {}),
    ...(maxUsd === undefined
      ? {}
      : { cap: { maxUsd, exceeded: modeCost === undefined || modeCost.total > maxUsd } }),
  };
}

/** What a job or run record keeps of an estimate; undefined when Loom has no price for the model. */
export function recordedEstimate(estimate: JobEstimate): RecordedEstimate | undefined {
  const cost = estimate.mode === "batch" ? estimate.cost?.batch : estimate.cost?.sync;
  if (!cost || !estimate.price) return undefined;
  return {
    cost: cost.total,
    inputTokens: estimate.inputTokens,
    outputTokens: estimate.outputTokens,
    price: estimate.price.from,
  };
}

/**
 * Formats dollars for people: cents from a dollar up, more digits for small sums, and at least two
 * significant digits for the smallest (one cheap request's reported cost is a few millionths or
 * less), never `$0.000000`.
 */
export function usd(amount: number): string {
  const digits = amount >= 1 || amount === 0
    ? 2
    : amount >= 0.01
    ? 4
    : Math.min(20, Math.max(6, 1 - Math.floor(Math.log10(Math.abs(amount)))));
  return `$${amount.toFixed(digits)}`;
}

/**
 * Stops a run whose estimate exceeds the job's spend cap (or cannot be priced against it).
 * @throws LoomUsageError naming the estimate, the cap and the way past it.
 */
export function enforceCap(estimate: JobEstimate): void {
  if (!estimate.cap?.exceeded) return;
  const cost = estimate.cost &&
    (estimate.mode === "batch" ? estimate.cost.batch : estimate.cost.sync);
  if (!cost) {
    throw new LoomUsageError(
      `the job has a spend cap (cost.max_usd ${
        usd(estimate.cap.maxUsd)
      }) but Loom has no price for ${estimate.provider} ${estimate.model}; ` +
        "give the model's prices in cost.prices, or pass --over-cap to run anyway",
    );
  }
  throw new LoomUsageError(
    `the estimated cost, ${
      usd(cost.total)
    } in ${estimate.mode} mode (${estimate.inputTokens} input tokens ${
      estimate.inputSource === "counted" ? "counted" : "estimated"
    }, ` +
      `up to ${estimate.outputTokens} output tokens), exceeds the spend cap of ${
        usd(estimate.cap.maxUsd)
      } (cost.max_usd); ` +
      "see it with loom plan, raise the cap, or pass --over-cap to run anyway",
  );
}

/** Plans and estimates a job without running it (`loom plan`, `--dry-run`). */
export function planJobCost(
  job: LoadedJob,
  options: RunOptions & EstimateOptions = {},
): Promise<{ plan: Plan; estimate: JobEstimate }> {
  // A plan sends nothing unless it counts tokens: only then does it need the key.
  return withOpenedJob(job, { ...options, keyOptional: !options.count }, async (opened) => {
    // One reading of the dataset: the estimate is tallied in the planning pass, and tokens are
    // counted in it too (a provider that cannot count fails as before, once the job is planned).
    const tally = new EstimateTally(opened);
    const { plan, count: counted } = options.count && canCount(opened.provider)
      ? await countPlanned(opened, {
        ...options,
        checkOutput: true,
        onRow: (row, built) => tally.add(row, built),
      }, opened.redact)
      : {
        plan: await planJob(job, opened.registry, opened.context, {
          signal: options.signal,
          answerFields: opened.answerSchema?.fields,
          onRow: (row) => tally.add(row),
        }),
        count: undefined,
      };
    const estimate = await tally.finish(plan, options, counted);
    return {
      plan,
      estimate: opened.notes.length ? { ...estimate, notes: opened.notes } : estimate,
    };
  });
}
