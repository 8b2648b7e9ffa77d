/**
 * Runs a loaded job end to end: plugins → provider → plan → checks (output, spend cap) → the
 * batch submission (`core/batch/`) or the sync run (`sync-run.ts`). This is what `loom run`
 * calls; it prints nothing and reports through events.
 * @module
 */
import { type BatchRunOptions, runBatch } from "../batch/jobs.ts";
import { SubmissionPlanner } from "../batch/submit.ts";
import { enforceCap, EstimateTally, recordedEstimate } from "./estimate.ts";
import { EXIT, LoomInterruptedError, LoomUsageError } from "../base/errors.ts";
import type { RunSummary } from "../base/events.ts";
import type { LoadedJob } from "../job/load.ts";
import { exists } from "../data/output.ts";
import { planJob } from "../data/plan.ts";
import { requestBuilder } from "../data/request.ts";
import { displayPath } from "../base/paths.ts";
import type { Redactor } from "../base/secrets.ts";
import { type OpenedJob, type RunOptions, withOpenedJob } from "../run/open.ts";
import { runSync } from "../run/sync-run.ts";

export { DEFAULT_WORKERS } from "../run/sync-run.ts";

export type { RunOptions };

/**
 * Runs a job. In sync mode it resolves once the output file is in place; in batch mode once the
 * job is submitted (or, with `wait`, fetched and merged).
 */
export function runJob(
  job: LoadedJob,
  options: RunOptions & BatchRunOptions = {},
): Promise<RunSummary> {
  return withOpenedJob(job, options, (opened) => run(opened, options, opened.redact));
}

async function run(
  opened: OpenedJob,
  options: RunOptions & BatchRunOptions,
  redact: Redactor,
): Promise<RunSummary> {
  const { job, provider, context, answerSchema } = opened;
  const { spec } = job;
  const mode = spec.mode ?? "batch";
  if (mode === "batch" && !provider.batch) {
    throw new LoomUsageError(
      provider.noBatchReason ??
        `provider "${spec.provider}" has no batch mode; run it with --sync (or mode: sync in the job)`,
    );
  }
  // The spend cap is checked against an estimate tallied in the planning pass (one reading);
  // a batch run's shards are cut there by the submission's planner alone. A batch run tallies
  // it anyway, for its record: the pass builds each row's request for the submission already,
  // so the tally adds a sum of lengths a row (a sync run's pass builds none, so it does not).
  const capped = spec.cost?.max_usd !== undefined && !options.overCap;
  const tally = capped || mode === "batch"
    ? new EstimateTally(opened, { shards: false })
    : undefined;
  // A batch submission is fingerprinted and cut into shards in that pass too.
  const submission = mode === "batch"
    ? new SubmissionPlanner({
      job,
      batch: provider.batch!,
      provider: spec.provider,
      responseSchema: answerSchema?.schema,
      home: context.home,
    })
    : undefined;
  try {
    return await planAndRun(opened, options, redact, tally, submission, capped);
  } finally {
    await submission?.dispose();
  }
}

/** Plans the job in one pass (with the spend cap's tally and the submission's planner), then runs it. */
async function planAndRun(
  opened: OpenedJob,
  options: RunOptions & BatchRunOptions,
  redact: Redactor,
  tally: EstimateTally | undefined,
  submission: SubmissionPlanner | undefined,
  capped: boolean,
): Promise<RunSummary> {
  const { job, registry, context, answerSchema } = opened;
  const { spec } = job;
  const mode = spec.mode ?? "batch";
  const { signal } = options;
  // Each row's request is built once in that pass, for both.
  const build = requestBuilder(spec, answerSchema?.schema);
  const plan = await planJob(job, registry, context, {
    signal,
    answerFields: answerSchema?.fields,
    ...(tally || submission
      ? {
        onRow: (row) => {
          const built = build(row.fields);
          tally?.add(row, built);
          submission?.add(row, built);
        },
      }
      : {}),
    ...(submission ? { tap: submission.tap } : {}),
  })
    .catch((error) => {
      if (signal?.aborted) {
        throw new LoomInterruptedError("interrupted while checking the dataset; nothing was sent");
      }
      throw error;
    });
  if (!options.force && (await exists(plan.output))) {
    const shown = displayPath(plan.output);
    if (!options.confirmOverwrite) {
      throw new LoomUsageError(`${shown} exists; pass --force to overwrite it`);
    }
    if (!(await options.confirmOverwrite(plan.output))) {
      throw new LoomUsageError(
        `${shown} was left as it was (answer y, or pass --force, to overwrite it)`,
      );
    }
  }
  // The spend cap is checked before anything is sent, after a row too big for a batch is named.
  // An estimate made only for the record never stops the run.
  const estimate = tally &&
    await tally.finish(plan, { signal }).catch((error) => {
      if (capped) throw error;
      return undefined;
    });
  if (capped) {
    if (submission?.refused !== undefined) throw submission.refused;
    enforceCap(estimate!);
  }
  const recorded = estimate && recordedEstimate(estimate);
  if (signal?.aborted) throw new LoomInterruptedError("interrupted before any row was sent");
  options.onEvent?.({
    type: "plan",
    rows: plan.rows,
    input: plan.input,
    output: plan.output,
    mode,
  });
  if (mode === "batch") {
    return await runBatch(opened, plan, options, await submission!.finish(plan), recorded);
  }
  return await runSync(opened, plan, options, redact, recorded);
}

/** The exit code for a finished run: 1 when every row failed, else 0. */
export function exitCodeFor(summary: RunSummary): number {
  return summary.rows > 0 && summary.errors === summary.rows ? EXIT.failed : EXIT.ok;
}
