/**
 * The numbers behind `loom view`'s charts, from a row index's per-row arrays (one pass over them,
 * and one sort a column for its percentiles): the distribution of input and output tokens, the
 * failed rows by kind of error, the totals, and for a batch job the usage of each of its batches
 * as its record keeps it. Computed again only when more rows were indexed since.
 * @module
 */
import { setTimeout as delay } from "node:timers/promises";
import type { Context } from "hono";
import type { JobRecord } from "../../core/batch/store.ts";
import type { ViewSources } from "./app.ts";
import { ERROR_KINDS } from "./error-kinds.ts";
import type { RowIndex, RowNumbers } from "./row-index.ts";
import { indexedTarget, refOf } from "./targets.ts";

/** One bar of a histogram: the values in [from, to). */
export interface Bin {
  readonly from: number;
  readonly to: number;
  readonly count: number;
}

/** How one number column is spread over the rows that have it. */
export interface Distribution {
  /** Rows with a value; the others (a failed row, no usage column) are left out. */
  readonly count: number;
  readonly sum: number;
  readonly min: number | null;
  readonly max: number | null;
  /** Nearest-rank percentiles: the smallest value that many percent of the rows do not pass. */
  readonly p50: number | null;
  readonly p90: number | null;
  readonly p99: number | null;
  /** Bins of one round width (1, 2 or 5 times a power of ten) from min to max. */
  readonly bins: Bin[];
}

/** A batch's usage (null where its record does not say: not fetched yet, or an older Loom). */
export interface ShardStats {
  /** 1-based, as `loom status` names it. */
  readonly n: number;
  readonly requests: number;
  readonly ok: number | null;
  readonly errors: number | null;
  readonly inputTokens: number | null;
  readonly outputTokens: number | null;
  readonly cost: number | null;
}

/** What the charts of one output show. */
export interface OutputStats {
  readonly indexed: number;
  /** True while the file is still being indexed: the numbers are of the rows read so far. */
  readonly indexing: boolean;
  readonly inputTokens: Distribution;
  readonly outputTokens: Distribution;
  /** Failed rows by kind (`error-kinds.ts`), the kinds no row has left out, most first. */
  readonly errors: { readonly kind: string; readonly count: number }[];
  /** What the rows' `llm_cost` adds up to (null when no row has one), and how many have one. */
  readonly cost: { readonly total: number | null; readonly rows: number };
  /** A batch job's batches, in order. */
  readonly shards?: ShardStats[];
}

/** The most bins a histogram has. */
export const MAX_BINS = 24;

/** The smallest round width (1, 2, 5 × 10^k, at least 1) putting [min, max] in `maxBins` bins. */
function binWidth(min: number, max: number, maxBins: number): number {
  for (let power = 1;; power *= 10) {
    for (const step of [1, 2, 5]) {
      const width = step * power;
      const start = Math.floor(min / width) * width;
      if (Math.floor((max - start) / width) + 1 <= maxBins) return width;
    }
  }
}

/** The widest span of whole numbers counted value by value rather than sorted (16 MiB of counts). */
const MAX_COUNTED_SPAN = 1 << 22;

/**
 * The distribution of `values[0..length)`, leaving out the negative ones (no value). Whole numbers
 * (tokens) are assumed: a bin [from, to) holds from..to-1. Tokens span little: each value is
 * counted (one pass, not a sort of a million rows); a wider or fractional column is sorted.
 */
export function distribution(
  values: readonly number[],
  length = values.length,
  maxBins = MAX_BINS,
): Distribution {
  let count = 0;
  let sum = 0;
  let min = Infinity;
  let max = -Infinity;
  let whole = true;
  for (let i = 0; i < length; i++) {
    const v = values[i];
    if (!(v >= 0)) continue;
    count++;
    sum += v;
    if (v < min) min = v;
    if (v > max) max = v;
    if (whole && !Number.isInteger(v)) whole = false;
  }
  if (!count) {
    return { count, sum, min: null, max: null, p50: null, p90: null, p99: null, bins: [] };
  }
  const width = binWidth(min, max, maxBins);
  const start = Math.floor(min / width) * width;
  const counts = new Array<number>(Math.floor((max - start) / width) + 1).fill(0);
  /** The value of each rank asked for (1-based, ascending), by nearest rank. */
  const ranks = [50, 90, 99].map((p) => Math.max(1, Math.ceil((p / 100) * count)));
  let at: number[];
  if (whole && max - min < MAX_COUNTED_SPAN) {
    const each = new Uint32Array(max - min + 1);
    for (let i = 0; i < length; i++) if (values[i] >= 0) each[values[i] - min]++;
    at = [];
    let seen = 0;
    for (let v = 0; v < each.length; v++) {
      if (!each[v]) continue;
      counts[Math.floor((v + min - start) / width)] += each[v];
      seen += each[v];
      while (at.length < ranks.length && ranks[at.length] <= seen) at.push(v + min);
    }
  } else {
    const sorted = new Float64Array(count);
    let n = 0;
    for (let i = 0; i < length; i++) if (values[i] >= 0) sorted[n++] = values[i];
    sorted.sort();
    for (const v of sorted) counts[Math.floor((v - start) / width)]++;
    at = ranks.map((r) => sorted[r - 1]);
  }
  const bins = counts.map((n, i) => ({
    from: start + i * width,
    to: start + (i + 1) * width,
    count: n,
  }));
  return { count, sum, min, max, p50: at[0], p90: at[1], p99: at[2], bins };
}

/** The failed rows by kind, most first (ties in the kinds' own order). */
export function errorsByKind(kinds: readonly number[], length = kinds.length) {
  const counts = new Array<number>(ERROR_KINDS.length).fill(0);
  for (let i = 0; i < length; i++) if (kinds[i] >= 0) counts[kinds[i]]++;
  return ERROR_KINDS.map((kind, i) => ({ kind, count: counts[i] }))
    .filter((k) => k.count > 0)
    .sort((a, b) => b.count - a.count);
}

/** Each batch of a job as its record keeps it. */
export function shardStats(job: JobRecord): ShardStats[] {
  return job.shards.map((s) => ({
    n: s.index + 1,
    requests: s.requests,
    ok: s.fetched?.ok ?? null,
    errors: s.fetched?.errors ?? null,
    inputTokens: s.fetched?.inputTokens ?? null,
    outputTokens: s.fetched?.outputTokens ?? null,
    cost: s.fetched?.cost ?? null,
  }));
}

/** The stats of the rows `numbers` holds. */
export function outputStats(numbers: RowNumbers): OutputStats {
  const n = numbers.indexed;
  let total = 0;
  let rows = 0;
  for (let i = 0; i < n; i++) {
    if (numbers.cost[i] >= 0) {
      total += numbers.cost[i];
      rows++;
    }
  }
  return {
    indexed: n,
    indexing: numbers.indexing,
    inputTokens: distribution(numbers.inputTokens, n),
    outputTokens: distribution(numbers.outputTokens, n),
    errors: errorsByKind(numbers.kinds, n),
    cost: { total: rows ? total : null, rows },
  };
}

/** The last stats of each index, kept until more rows are indexed. */
const computed = new WeakMap<RowIndex, OutputStats>();

/** How long the stats wait for a small file's index to be finished before answering. */
const WAIT_MS = 300;

/** The route `…/stats` of a file or a job. */
export async function statsRoute(c: Context, sources: ViewSources): Promise<Response> {
  const { title, index, job } = await indexedTarget(sources, refOf(c));
  await Promise.race([index.finished, delay(WAIT_MS)]);
  const numbers = index.numbers();
  let stats = computed.get(index);
  if (!stats || stats.indexed !== numbers.indexed || stats.indexing !== numbers.indexing) {
    stats = outputStats(numbers);
    computed.set(index, stats);
  }
  return c.json({ title, ...stats, ...(job ? { shards: shardStats(job) } : {}) });
}
