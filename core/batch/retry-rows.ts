/**
 * The reading of a retry: one pass over a batch job's input picks the rows that have no good
 * answer and cuts them into shards, plans the job (rows, columns, output), and fingerprints the
 * input as it goes. Nothing is recorded or sent until that fingerprint proves the input the one
 * the job was submitted with; the sending pass is the only other reading.
 * @module
 */
import { stat } from "node:fs/promises";
import { FileHash } from "../data/dataset.ts";
import { type Plan, readPlan } from "../data/plan.ts";
import { requestBuilder } from "../data/request.ts";
import type { PluginContext } from "../plugins/plugin.ts";
import type { Registry } from "../plugins/registry.ts";
import type { JobRecord } from "./store.ts";
import {
  customIdOf,
  type CutShard,
  fingerprintInput,
  inputChanged,
  ShardCutter,
  type SubmitContext,
} from "./submit.ts";

/** What a retry's reading needs besides the submission's own context. */
export interface RetryReading {
  readonly registry: Registry;
  readonly context: PluginContext;
  /** The job's answer schema's fields, which decide the plan's added columns. */
  readonly answerFields?: readonly string[];
  /** Whether a row has a good answer already (asked in ascending order): it is never sent again. */
  readonly isGood: (index: number) => Promise<boolean>;
}

/** The rows a retry sends again, cut into shards (row lists), with the job's plan. */
export interface RetryRows {
  readonly plan: Plan;
  readonly shards: readonly CutShard[];
  /** How many rows are sent again. */
  readonly rows: number;
}

/** Said when the input changed: the retry sent nothing. */
const HELD_BACK = "nothing was submitted again";

/**
 * Picks the rows of `record` to send again in one reading of the input (see the module). Throws
 * the input-changed error when the input is not the job's, found before or after the reading, or
 * instead of an error the reading met on a changed input.
 */
export async function pickRetryRows(
  ctx: Pick<SubmitContext, "job" | "batch" | "provider" | "responseSchema" | "signal">,
  record: JobRecord,
  reading: RetryReading,
): Promise<RetryRows> {
  const path = ctx.job.spec.dataset.path;
  // A changed size is refused before a byte is read (a missing file is the planning's to tell).
  const size = (await stat(path).catch(() => undefined))?.size;
  if (size !== undefined && size !== record.input.size) throw inputChanged(path, record, HELD_BACK);
  const hash = new FileHash();
  const cutter = new ShardCutter(ctx.batch, ctx.provider, ctx.job.spec.batch);
  const build = requestBuilder(ctx.job.spec, ctx.responseSchema);
  let plan: Plan;
  let rows = 0;
  try {
    const planning = await readPlan(ctx.job, reading.registry, reading.context, {
      answerFields: reading.answerFields,
      tap: hash.tap,
    });
    for await (const row of planning.reader.rows) {
      ctx.signal?.throwIfAborted();
      planning.see(row);
      if (await reading.isGood(row.index)) continue;
      const built = build(row.fields);
      // A row that cannot be built fails the same way every time: nothing to retry.
      if ("error" in built) continue;
      cutter.add(row.index, { customId: customIdOf(row.index), request: built.request });
      rows++;
    }
    plan = planning.finish();
  } catch (error) {
    // What a changed input made the reading fail on (a row that no longer parses, a column
    // gone, a row too big) is not the news: that it changed is. A file that cannot be read any
    // more is the error's to tell.
    const now = ctx.signal?.aborted
      ? undefined
      : await fingerprintInput(path).catch(() => undefined);
    if (now && now.sha256 !== record.input.sha256) throw inputChanged(path, record, HELD_BACK);
    throw error;
  }
  // Every byte was read (the formats read to the end, as a merge's check needs too).
  if (hash.digest().sha256 !== record.input.sha256) throw inputChanged(path, record, HELD_BACK);
  cutter.close();
  return { plan, shards: cutter.shards, rows };
}
