/**
 * The jobs page's data: each batch job in the state store as the viewer shows it. Only the fields
 * named here leave the server (never the whole record), so nothing a record may gain later goes
 * out by accident.
 * @module
 */
import { existsSync } from "node:fs";
import { STATE_MEANING } from "../../core/batch/fetch.ts";
import { phaseOf } from "../../core/batch/shard.ts";
import type { JobRecord, JobStore } from "../../core/batch/store.ts";
import { displayPath } from "../../core/base/paths.ts";
import type { RecordedEstimate } from "../../core/data/prices.ts";
import { jobState, PHASE_NAMES } from "../commands/batch.ts";

/** One batch (shard) of a job. */
export interface ShownShard {
  readonly n: number;
  readonly batch: string | null;
  /** Loom's phase of it (`submitted`, `fetched`, `in doubt`…). */
  readonly phase: string;
  /** The provider's state as last seen (`in_progress`, `completed`…), or null before it has one. */
  readonly state: string | null;
  /** The provider's own word for it, when it differs. */
  readonly providerState: string | null;
  readonly meaning: string;
  readonly requests: number;
  readonly succeeded: number | null;
  readonly failed: number | null;
  readonly message: string | null;
  readonly checkedAt: string | null;
}

/** A job as the jobs page shows it. */
export interface ShownJob {
  readonly id: string;
  readonly provider: string;
  readonly model: string;
  readonly input: string;
  readonly output: string;
  /** Whether the output file exists (its rows can be viewed). */
  readonly outputReady: boolean;
  readonly rows: number;
  readonly status: string;
  /** Whether the job may still change (its batches run, or it is not merged yet). */
  readonly active: boolean;
  /** Requests the provider has finished (answered or failed), of `requests`. */
  readonly done: number;
  readonly requests: number;
  /** Rows answered and failed: from the merge, else what the batches report so far. */
  readonly answered: number;
  readonly failed: number;
  readonly createdAt: string;
  readonly updatedAt: string;
  readonly mergedAt: string | null;
  /** Tokens of the merged answers, and what the provider reported they cost (null until merged). */
  readonly inputTokens: number | null;
  readonly outputTokens: number | null;
  readonly cost: number | null;
  /** What the job was estimated to cost when submitted (null without a price for its model). */
  readonly estimate: RecordedEstimate | null;
  readonly shards: readonly ShownShard[];
}

function shardOf(s: JobRecord["shards"][number]): ShownShard {
  const phase = phaseOf(s);
  const state = s.state ?? null;
  const fetched = s.fetched;
  return {
    n: s.index + 1,
    batch: s.handle?.id ?? null,
    phase: PHASE_NAMES[phase],
    state,
    providerState: s.providerState && s.providerState !== state ? s.providerState : null,
    meaning: state ? STATE_MEANING[state] ?? "" : "",
    requests: s.requests,
    succeeded: fetched?.ok ?? s.counts?.succeeded ?? null,
    failed: fetched?.errors ?? s.counts?.failed ?? null,
    message: s.message ?? null,
    checkedAt: s.checkedAt ?? null,
  };
}

/** A job record as the viewer shows it, its paths relative to `cwd`. */
export function showJob(record: JobRecord, cwd: string): ShownJob {
  const shards = record.shards.map(shardOf);
  const sum = (pick: (s: ShownShard) => number | null) =>
    shards.reduce((n, s) => n + (pick(s) ?? 0), 0);
  const requests = sum((s) => s.requests);
  const done = Math.min(requests, sum((s) => s.succeeded) + sum((s) => s.failed));
  return {
    id: record.id,
    provider: record.spec.provider,
    model: record.spec.model,
    input: displayPath(record.input.path, cwd),
    output: displayPath(record.output, cwd),
    outputReady: existsSync(record.output),
    rows: record.rows,
    status: jobState(record),
    active: record.status !== "merged",
    done,
    requests,
    answered: record.merged?.ok ?? sum((s) => s.succeeded),
    failed: record.merged?.errors ?? sum((s) => s.failed),
    createdAt: record.createdAt,
    updatedAt: record.updatedAt,
    mergedAt: record.merged?.at ?? null,
    inputTokens: record.merged?.inputTokens ?? null,
    outputTokens: record.merged?.outputTokens ?? null,
    cost: record.merged?.cost ?? null,
    estimate: record.estimate
      ? {
        cost: record.estimate.cost,
        inputTokens: record.estimate.inputTokens,
        outputTokens: record.estimate.outputTokens,
        price: record.estimate.price,
      }
      : null,
    shards,
  };
}

/** Every job in the store, newest first, and the records that could not be read. */
export async function listShownJobs(
  store: JobStore,
  cwd: string,
): Promise<{ jobs: ShownJob[]; problems: string[] }> {
  const { records, problems } = await store.list();
  return { jobs: records.map((r) => showJob(r, cwd)).reverse(), problems };
}
