/**
 * Runs a loaded job end to end: plugins → provider → plan → execute → merge → output. This is
 * what `loom run` calls; it prints nothing and reports through events.
 * @module
 */
import { checkPlainAnswer } from "../answer-schema.ts";
import { type BatchRunOptions, runBatch } from "../batch/jobs.ts";
import { ResponseCache } from "../cache.ts";
import { enforceCap, estimateJob } from "../estimate.ts";
import { EXIT, LoomError, LoomInterruptedError, LoomUsageError } from "../errors.ts";
import type { RunEventHandler, RunSummary } from "../events.ts";
import type { LoadedJob } from "../job/load.ts";
import { exists, writeFileAtomic } from "../output.ts";
import { openJobDataset, planJob } from "../plan.ts";
import { buildRequest } from "../request.ts";
import { displayPath } from "../paths.ts";
import type { Redactor } from "../secrets.ts";
import type { OutputRow } from "../spec/format.ts";
import { addedValues } from "./added.ts";
import { type OpenedJob, type RunOptions, withOpenedJob } from "./open.ts";
import { executeSync } from "./sync.ts";

/** Default number of concurrent requests in sync mode. */
export const DEFAULT_WORKERS = 8;

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
  const { job, provider, registry, context, answerSchema } = opened;
  const { spec } = job;
  const mode = spec.mode ?? "batch";
  const { signal } = options;
  if (mode === "batch" && !provider.batch) {
    throw new LoomUsageError(
      provider.noBatchReason ??
        `provider "${spec.provider}" has no batch mode; run it with --sync (or mode: sync in the job)`,
    );
  }
  const plan = await planJob(job, registry, context, { signal, answerFields: answerSchema?.fields })
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
  // The spend cap is checked against an estimate before anything is sent.
  if (spec.cost?.max_usd !== undefined && !options.overCap) {
    enforceCap(await estimateJob(opened, plan, { signal }));
  }
  if (signal?.aborted) throw new LoomInterruptedError("interrupted before any row was sent");
  options.onEvent?.({
    type: "plan",
    rows: plan.rows,
    input: plan.input,
    output: plan.output,
    mode,
  });
  if (mode === "batch") return await runBatch(opened, plan, options);
  const started = Date.now();

  const cacheOn = spec.sync?.cache ?? true;
  const cache = cacheOn ? new ResponseCache((await opened.state.get()).cache) : undefined;
  const counts = { ok: 0, cached: 0, errors: 0 };
  const onEvent: RunEventHandler = (event) => {
    if (event.type === "row") counts[event.outcome === "error" ? "errors" : event.outcome]++;
    options.onEvent?.(event);
  };

  const reader = await openJobDataset(job, plan.format);
  const results = executeSync(reader.rows, {
    provider,
    buildRequest: (row) => buildRequest(spec, row.fields, answerSchema?.schema),
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
  async function* merged(): AsyncGenerator<OutputRow> {
    let rows = 0;
    for await (const result of results) {
      rows++;
      yield { row: result.row, added: addedValues(plan, job, result) };
    }
    // Thrown before the output is renamed into place, so a changed input leaves no output.
    if (rows !== plan.rows) {
      throw new LoomError(
        `${
          displayPath(plan.input)
        } changed while Loom was running (checked ${plan.rows} rows, then read ${rows}); no output was written`,
      );
    }
  }
  try {
    await writeFileAtomic(
      plan.output,
      plan.format.write(merged(), { layout: plan.layout, added: plan.added }),
    );
  } catch (error) {
    if (!signal?.aborted) throw error;
    const done = counts.ok + counts.cached;
    throw new LoomInterruptedError(
      `interrupted after ${done} of ${plan.rows} rows; no output was written. ` +
        (cacheOn
          ? "Finished answers are cached: run the same command again to resume."
          : "The cache is off, so a rerun starts over."),
    );
  }
  const summary: RunSummary = {
    rows: plan.rows,
    ...counts,
    output: plan.output,
    elapsedMs: Date.now() - started,
  };
  options.onEvent?.({ type: "done", summary });
  return summary;
}

/** The exit code for a finished run: 1 when every row failed, else 0. */
export function exitCodeFor(summary: RunSummary): number {
  return summary.rows > 0 && summary.errors === summary.rows ? EXIT.failed : EXIT.ok;
}
