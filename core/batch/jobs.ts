/**
 * Batch jobs from start to end: submit (and optionally wait), fetch and merge, status, cancel,
 * retry the failed rows, forget. Each works on the job's saved record under a lock, so two Loom
 * processes never submit or merge the same job at once.
 * @module
 */
import { stat } from "node:fs/promises";
import { dirname } from "node:path";
import process from "node:process";
import { setTimeout as sleep } from "node:timers/promises";
import { checkPlainAnswer } from "../data/answer-schema.ts";
import {
  errorMessage,
  isFatal,
  LoomBusyError,
  LoomError,
  LoomInterruptedError,
  LoomUsageError,
} from "../base/errors.ts";
import { gaveUp, withRetries } from "../run/retry.ts";
import type { RunSummary } from "../base/events.ts";
import type { LoadedJob } from "../job/load.ts";
import { type Plan, planJob } from "../data/plan.ts";
import type { RecordedEstimate } from "../data/prices.ts";
import { addedValues } from "../run/added.ts";
import { type OpenedJob, type RunOptions, withOpenedJob, withState } from "../run/open.ts";
import { pickRetryRows } from "./retry-rows.ts";
import type { BatchApi } from "../spec/provider.ts";
import { failpoint } from "../base/failpoints.ts";
import { exists } from "../data/output.ts";
import {
  allEnded,
  checkMergeTarget,
  type FetchContext,
  mergeJob,
  refreshShards,
  refuseOutputIsInput,
  savedOutcomes,
  saveShardResults,
  type StatusFailure,
} from "./fetch.ts";
import { cancelUnsent, phaseOf } from "./shard.ts";
import { cancelledWhileSubmitting, markedForCleanup, reopenedForRetry } from "./job-state.ts";
import { identityOf, type JobRecord, JobStore } from "./store.ts";
import {
  adoptShard,
  assertSameInput,
  type PlannedSubmission,
  retryOf,
  type SubmitContext,
  submitJob,
  submitPlanned,
} from "./submit.ts";
import {
  describeUploads,
  releaseUploads,
  type UploadContext,
  type UploadLeft,
  uploadsLeft,
} from "./uploads.ts";

/** Batch options of `runJob` and the batch commands. */
export interface BatchRunOptions {
  /** Poll until every batch has ended, then merge. */
  readonly wait?: boolean;
  /** Milliseconds between polls while waiting (default 30 s). */
  readonly pollMs?: number;
  /** Submit even when the same job is already pending (pays again). */
  readonly resubmit?: boolean;
  /** Keep the job's record after a merge (it is removed once every row has an answer). */
  readonly keep?: boolean;
  /** Merge even though the input changed since submission (`fetch --input-changed`). */
  readonly mergeAnyway?: boolean;
  /** Overwrite an existing output without asking (`fetch --force`); else `confirmOverwrite` asks, or the fetch refuses. */
  readonly overwrite?: boolean;
  /**
   * While waiting: polls in a row on which a shard's status check failed permanently (not a
   * transient error) before giving up (default 3); transient failures get ten times as many.
   */
  readonly maxStatusFailures?: number;
}

/** Default time between polls while waiting. */
export const DEFAULT_POLL_MS = 30_000;

/** Default number of polls in a row with a permanent status failure before `wait` gives up. */
export const DEFAULT_MAX_STATUS_FAILURES = 3;

function batchOf(opened: OpenedJob): BatchApi {
  const batch = opened.provider.batch;
  if (!batch) {
    throw new LoomUsageError(
      opened.provider.noBatchReason ?? `provider "${opened.provider.name}" has no batch mode`,
    );
  }
  return batch;
}

/**
 * Submits a planned job; with `wait`, polls until it has ended and merges it. `planned` is what
 * the planning pass found for the submission (`SubmissionPlanner`).
 */
export async function runBatch(
  opened: OpenedJob,
  plan: Plan,
  options: RunOptions & BatchRunOptions,
  planned?: PlannedSubmission,
  estimate?: RecordedEstimate,
): Promise<RunSummary> {
  const started = Date.now();
  const store = new JobStore(
    await opened.state.get(),
    opened.context.env,
    options.cwd ?? process.cwd(),
  );
  const { job, answerSchema } = opened;
  const existedBefore = await exists(plan.output);
  const record = await submitJob({
    // The schema is recorded as sent, so a later fetch checks answers against the same one.
    job: answerSchema
      ? { ...job, spec: { ...job.spec, schema: answerSchema.schema as Record<string, unknown> } }
      : job,
    plan,
    planned,
    ...(estimate ? { estimate } : {}),
    provider: job.spec.provider,
    batch: batchOf(opened),
    store,
    responseSchema: answerSchema?.schema,
    resubmit: options.resubmit,
    signal: options.signal,
    onEvent: options.onEvent,
    retry: options.retry,
  }).catch((error) => {
    if (options.signal?.aborted) {
      throw new LoomInterruptedError(
        "interrupted while submitting; run the same job again to finish submitting it (no batch is paid for twice)",
      );
    }
    throw gaveUp(
      error,
      "the job is recorded: run the same job again later to finish submitting it",
    );
  });
  if (existedBefore) await acceptOutput(store, record.id, plan.output);
  if (!options.wait) {
    const summary: RunSummary = {
      rows: plan.rows,
      ok: 0,
      cached: 0,
      errors: 0,
      elapsedMs: Date.now() - started,
      job: { id: record.id, shards: record.shards.length },
    };
    // The job's id is what a script needs next (`loom fetch --id`): `--json` prints it here.
    options.onEvent?.({ type: "done", summary });
    return summary;
  }
  let outcome;
  try {
    outcome = await fetchOpened(opened, store, record, options, plan);
  } catch (error) {
    if (options.signal?.aborted) {
      throw new LoomInterruptedError(
        `interrupted while waiting; job ${record.id} is submitted and goes on: \`loom fetch --id ${record.id}\` gets it`,
      );
    }
    throw error;
  }
  if (outcome.alreadyMerged) {
    throw new LoomUsageError(
      `job ${record.id} was merged meanwhile by another Loom, into ${outcome.record.output}`,
    );
  }
  if (!outcome.summary) throw new LoomError(`job ${record.id} has not ended`);
  return outcome.summary;
}

/**
 * Records the output that was there when the job was run (the run applied the overwrite rule to
 * it: `--force`, or the user said yes), so that the merge replaces that file without asking again;
 * a file put there later is asked about.
 */
async function acceptOutput(store: JobStore, id: string, output: string): Promise<void> {
  const found = await stat(output).catch(() => undefined);
  if (!found) return;
  await store.withLockedJob(id, async (record) => {
    if (!record || record.status === "merged") return;
    record.written = identityOf(found);
    await store.save(record);
  });
}

/** The job a record describes, as if loaded from its file. */
function jobOf(record: JobRecord): LoadedJob {
  return {
    spec: record.spec,
    ...(record.jobFile ? { file: record.jobFile } : {}),
    dir: dirname(record.jobFile ?? record.input.path),
    where: () => `job ${record.id}`,
  };
}

/** What fetching one job came to. */
export interface FetchOutcome {
  readonly record: JobRecord;
  /** Set once the job was merged. */
  readonly summary?: RunSummary;
  /** True when the record was removed after the merge. */
  readonly removed?: boolean;
  /** True when the job had been merged already (by another fetch): nothing was done. */
  readonly alreadyMerged?: boolean;
  /** Uploads whose delete failed: the record is kept (it remembers them) until they are deleted. */
  readonly uploadsLeft?: number;
}

/**
 * Fetches one opened job: statuses, then (once all ended) results and the merge. The job's lock
 * is held for one poll at a time, never while waiting, so `status` and `cancel` work meanwhile.
 */
async function fetchOpened(
  opened: OpenedJob,
  store: JobStore,
  record: JobRecord,
  options: RunOptions & BatchRunOptions,
  plan?: Plan,
): Promise<FetchOutcome> {
  const batch = batchOf(opened);
  const ctx = {
    store,
    batch,
    signal: options.signal,
    onEvent: options.onEvent,
    retry: options.retry,
    redact: opened.redact,
  };
  const failing = { permanent: 0, any: 0 };
  for (;;) {
    let failures: StatusFailure[] = [];
    let outcome: FetchOutcome | undefined;
    try {
      // Read again under the lease: another process may have moved the job on, or merged it.
      outcome = await store.withLockedJob(record.id, async (fresh) => {
        if (!fresh || fresh.status === "merged") {
          if (fresh) await finishMerged(ctx, fresh); // a clean-up that was cut off, or uploads left
          return { record: fresh ?? record, alreadyMerged: true };
        }
        record = fresh;
        const job = jobOf(record);
        // Work on the input the job was planned on (a merge fingerprints it as it reads it, a
        // submission checks it first) needs no reading of it to plan: its rows are the record's.
        const planned = (rowsKnown: boolean) =>
          planJob(job, opened.registry, opened.context, {
            signal: options.signal,
            answerFields: opened.answerSchema?.fields,
            ...(rowsKnown ? { knownRows: record.rows } : {}),
          });
        // A submission that was interrupted is finished first (adopting what the provider has):
        // the input checked against the fingerprint, then read once more, to send it.
        if (record.status === "submitting") {
          const known = plan ?? await planned(true);
          await assertSameInput(known.input, record, "nothing more was submitted");
          await submitPlanned(submitContext(opened, job, known, store, options), record, true);
          // A merge forced past a changed input counts its rows anew (it may be hours later).
          if (!options.mergeAnyway) plan ??= known;
        }
        failures = await refreshShards(ctx, record);
        options.onEvent?.({
          type: "poll",
          job: record.id,
          shards: record.shards.map((s) => ({
            shard: s.index,
            state: s.state ?? "unknown",
            done: s.counts?.succeeded,
            total: s.counts?.total,
          })),
        });
        if (!allEnded(record)) return undefined;
        await refuseOutputIsInput(record);
        return await mergeEnded(
          opened,
          ctx,
          record,
          job,
          plan ??= await planned(!options.mergeAnyway),
          options,
        );
      });
    } catch (error) {
      // While waiting, a `status` or another fetch holding the lease just now is no reason to stop.
      if (!options.wait || !(error instanceof LoomBusyError)) throw error;
      await sleep(options.pollMs ?? DEFAULT_POLL_MS, undefined, { signal: options.signal });
      continue;
    }
    if (outcome) return outcome;
    if (!options.wait) return { record };
    giveUpOnStatus(
      record,
      failures,
      failing,
      options.maxStatusFailures ?? DEFAULT_MAX_STATUS_FAILURES,
    );
    await sleep(options.pollMs ?? DEFAULT_POLL_MS, undefined, { signal: options.signal });
  }
}

/**
 * Stops a wait that cannot end: a status check failing permanently on `max` polls in a row (a
 * batch the provider no longer knows, a key without access), or transiently on ten times as many.
 */
function giveUpOnStatus(
  record: JobRecord,
  failures: readonly StatusFailure[],
  failing: { permanent: number; any: number },
  max: number,
): void {
  failing.any = failures.length ? failing.any + 1 : 0;
  failing.permanent = failures.some((f) => f.permanent) ? failing.permanent + 1 : 0;
  if (failing.permanent < max && failing.any < max * 10) return;
  const last = failures.find((f) => f.permanent) ?? failures[0];
  throw new LoomError(
    `job ${record.id}: gave up waiting: the status of batch ${
      last.shard + 1
    } could not be checked on ${Math.max(failing.permanent, failing.any)} polls in a row ` +
      `(${last.error}). The job is intact; \`loom status ${record.id}\` checks it again and \`loom fetch --id ${record.id}\` resumes`,
  );
}

/** Saves the results of a job whose batches have all ended, merges them, and cleans up. Under the lock. */
async function mergeEnded(
  opened: OpenedJob,
  ctx: FetchContext,
  record: JobRecord,
  job: LoadedJob,
  plan: Plan,
  options: JobCommandOptions,
): Promise<FetchOutcome> {
  await checkMergeTarget(record, plan, options);
  await saveShardResults(ctx, record);
  const summary = await mergeJob(ctx, record, {
    job,
    plan,
    responseSchema: opened.answerSchema?.schema,
    check: opened.answerSchema?.check ?? checkPlainAnswer,
    added: (result) => addedValues(plan, job, result),
    force: options.mergeAnyway,
  });
  // A job with rows a retry could fix stays, so `loom retry` can send them again.
  const cleanup = !options.keep && (record.merged?.retryable ?? summary.errors) === 0;
  // Marked merged (and what is to be removed) before anything is removed: a kill from here on
  // leaves a merged job, whose clean-up the next fetch finishes.
  if (cleanup) markedForCleanup(record);
  await ctx.store.save(record);
  if (cleanup) failpoint("fetch:cleanup");
  // Uploads whose delete failed (saveShardResults tried) keep the record, which remembers them.
  const removed = await finishMerged(ctx, record, false);
  options.onEvent?.({ type: "done", summary });
  const left = uploadsLeft(record).length;
  return { record, summary, removed, ...(left ? { uploadsLeft: left } : {}) };
}

/**
 * A merged job's clean-up, under its lock: the uploads left behind are deleted (unless `release`
 * is false: just tried), then the record is removed if it is to be and none is left. True when
 * the record was removed.
 */
async function finishMerged(
  ctx: UploadContext,
  record: JobRecord,
  release = true,
): Promise<boolean> {
  if (release && uploadsLeft(record).length) await releaseUploads(ctx, record);
  if (!record.merged?.cleanup || uploadsLeft(record).length) return false;
  await ctx.store.remove(record.id);
  return true;
}

/** The context submissions of a recorded job need. */
function submitContext(
  opened: OpenedJob,
  job: LoadedJob,
  plan: Plan,
  store: JobStore,
  options: JobCommandOptions,
): SubmitContext {
  return {
    job,
    plan,
    provider: job.spec.provider,
    batch: batchOf(opened),
    store,
    responseSchema: opened.answerSchema?.schema,
    signal: options.signal,
    onEvent: options.onEvent,
    retry: options.retry,
  };
}

/** Finds a job by its id, a unique prefix of it, or one of its provider batch ids. */
export async function findJob(store: JobStore, id: string): Promise<JobRecord> {
  const { records } = await store.list();
  const exact = records.find((r) => r.id === id || r.shards.some((s) => s.handle?.id === id));
  if (exact) return exact;
  const prefixed = records.filter((r) => r.id.startsWith(id));
  if (prefixed.length === 1) return prefixed[0];
  if (prefixed.length > 1) {
    throw new LoomUsageError(
      `"${id}" matches several jobs (${prefixed.map((r) => r.id).join(", ")}); give more of the id`,
    );
  }
  throw new LoomUsageError(
    `no batch job "${id}" (see loom list; a job whose every row was answered is removed once merged)`,
  );
}

/** Options of the batch commands. */
export type JobCommandOptions = RunOptions & BatchRunOptions;

/** Runs `work` with the job store `options` select (see {@link withState}). */
function withJobStore<T>(
  options: JobCommandOptions,
  work: (store: JobStore, options: JobCommandOptions) => Promise<T>,
): Promise<T> {
  return withState(
    options,
    (storage, o) =>
      work(new JobStore(storage, options.env ?? process.env, options.cwd ?? process.cwd()), o),
  );
}

/** Opens a recorded job's provider and runs `work` with it, secrets scrubbed. */
function withJob<T>(
  record: JobRecord,
  options: JobCommandOptions,
  work: (opened: OpenedJob) => Promise<T>,
): Promise<T> {
  // A provider that stayed busy through every retry leaves the job as it was: say so.
  return withOpenedJob(jobOf(record), options, work).catch((error) => {
    throw gaveUp(error, `job ${record.id} is intact: run the same command again later to resume`);
  });
}

/**
 * Fetches the jobs named (job or batch ids), or every pending job: prints nothing, returns what
 * became of each. A job that fails to fetch does not stop the others; its error is returned.
 */
export async function fetchJobs(
  ids: readonly string[],
  options: JobCommandOptions,
): Promise<Array<FetchOutcome | { record: JobRecord; error: unknown }>> {
  return withJobStore(options, (store, o) => fetchAll(store, ids, o));
}

async function fetchAll(
  store: JobStore,
  ids: readonly string[],
  options: JobCommandOptions,
): Promise<Array<FetchOutcome | { record: JobRecord; error: unknown }>> {
  const all = ids.length ? [] : (await store.list()).records;
  // A merged job whose clean-up a kill cut off, or whose uploads could not be deleted, is
  // cleaned up now (it is not listed as pending).
  for (const r of all) {
    if (r.status === "merged" && (r.merged?.cleanup || uploadsLeft(r).length)) {
      await tidyMerged(store, r, options);
    }
  }
  const records = ids.length
    ? await Promise.all(ids.map((id) => findJob(store, id)))
    // A job a crash left half-submitted is finished and fetched too: its batches are paid for.
    : all.filter((r) => r.status !== "merged");
  const out: Array<FetchOutcome | { record: JobRecord; error: unknown }> = [];
  for (const record of records) {
    try {
      out.push(
        await withJob(record, options, (opened) => fetchOpened(opened, store, record, options)),
      );
    } catch (error) {
      if (options.signal?.aborted || ids.length === 1) throw error;
      out.push({ record, error });
    }
  }
  return out;
}

/**
 * Finishes a merged job's clean-up ({@link finishMerged}) under its lock; a job another Loom works
 * on is left to it. Its provider is opened only when uploads are left to delete; a failure to is
 * a warning (the job is kept, and tried again next time).
 */
async function tidyMerged(
  store: JobStore,
  record: JobRecord,
  options: JobCommandOptions,
): Promise<void> {
  const tidy = (batch?: BatchApi, redact?: (text: string) => string) =>
    store.withLockedJob(record.id, async (fresh) => {
      if (!fresh?.merged) return;
      if (!batch) {
        if (fresh.merged.cleanup && !uploadsLeft(fresh).length) await store.remove(fresh.id);
        return;
      }
      const ctx = { store, batch, signal: options.signal, onEvent: options.onEvent, redact };
      await finishMerged(ctx, fresh);
    }).catch((error) => {
      // Another Loom works on the job: the clean-up is left to it.
      if (!(error instanceof LoomUsageError)) throw error;
    });
  if (!uploadsLeft(record).length) return await tidy();
  await withOpenedJob(jobOf(record), options, (opened) => tidy(batchOf(opened), opened.redact))
    .catch((error) => {
      if (options.signal?.aborted) throw error;
      options.onEvent?.({
        type: "warning",
        message: `job ${record.id}: its uploaded input files could not be deleted (${
          errorMessage(error)
        }); the job is kept, and the next \`loom fetch\` tries again`,
      });
    });
}

/** Checks a job's shards with the provider and returns the updated record (no merge). */
export function jobStatus(id: string, options: JobCommandOptions): Promise<JobRecord> {
  return withJobStore(options, async (store, options) => {
    const record = await findJob(store, id);
    if (record.status === "merged") return record;
    return await withJob(
      record,
      options,
      (opened) =>
        store.withLockedJob(record.id, async (fresh) => {
          // Merged and removed meanwhile: what was listed is all there is.
          if (!fresh) return record;
          await refreshShards({
            store,
            batch: batchOf(opened),
            signal: options.signal,
            retry: options.retry,
            redact: opened.redact,
          }, fresh);
          return fresh;
        }),
    );
  });
}

/** Every job's record (and any record that could not be read). */
export function listJobs(options: RunOptions): ReturnType<JobStore["list"]> {
  return withJobStore(options, (store) => store.list());
}

/**
 * Asks the provider to cancel every shard of a job that has not ended, and marks the shards not
 * submitted yet as cancelled (they are never sent). Returns the record and the shards whose
 * cancellation failed (each with why); the others are cancelled even when one fails.
 */
export async function cancelJob(
  id: string,
  options: JobCommandOptions,
): Promise<{ record: JobRecord; failed: Array<{ shard: number; error: string }> }> {
  return withJobStore(options, async (store, options) => {
    const record = await findJob(store, id);
    return await withJob(record, options, async (opened) => {
      const batch = batchOf(opened);
      return await store.withLockedJob(record.id, async (fresh) => {
        if (!fresh) throw new LoomUsageError(`job ${record.id} was merged and removed meanwhile`);
        if (fresh.shards.some((s) => ["submitting", "in-doubt"].includes(phaseOf(s)))) {
          throw new LoomUsageError(
            `job ${fresh.id} has a batch whose submission was cut off; run the job again (or loom adopt) to settle it before cancelling`,
          );
        }
        const ctx = {
          store,
          batch,
          signal: options.signal,
          retry: options.retry,
          redact: opened.redact,
        };
        await refreshShards(ctx, fresh);
        const failed: Array<{ shard: number; error: string }> = [];
        for (const shard of fresh.shards) {
          const phase = phaseOf(shard);
          if (phase === "planned") cancelUnsent(shard, "cancelled before it was submitted");
          else if (phase === "submitted") {
            await withRetries(
              () => batch.cancel(shard.handle!, { signal: options.signal }),
              retryOf(ctx),
            ).catch((error) => {
              if (options.signal?.aborted || isFatal(error)) {
                throw error;
              }
              failed.push({ shard: shard.index, error: opened.redact(errorMessage(error)) });
            });
          }
        }
        cancelledWhileSubmitting(fresh);
        await refreshShards(ctx, fresh);
        await releaseUploads({ ...ctx, onEvent: options.onEvent }, fresh);
        return { record: fresh, failed };
      });
    });
  });
}

/**
 * Settles a shard whose submission was cut off when Loom could not tell whether the provider
 * created it: `batchId` is that batch, or (undefined) no batch was created and the next run
 * submits it again.
 */
export async function adoptBatch(
  id: string,
  batchId: string | undefined,
  options: JobCommandOptions,
): Promise<JobRecord> {
  return withJobStore(options, async (store) => {
    const found = await findJob(store, id);
    return await store.withLockedJob(found.id, async (record) => {
      if (!record) throw new LoomUsageError(`job ${found.id} was merged and removed meanwhile`);
      await adoptShard(store, record, batchId);
      return record;
    });
  });
}

/**
 * Removes a job's record; a pending job only with `force` (its batches would be lost track of).
 * The uploads its batches are done with are deleted first; one that cannot be keeps the job
 * unless `force`. Returns the record and the uploads left at the provider (each with how to
 * delete it by hand, when the provider says): with `force`, those a delete failed for and those
 * of batches still running (never deleted under them).
 */
export async function forgetJob(
  id: string,
  options: JobCommandOptions,
): Promise<{ record: JobRecord; uploadsLeft: string[] }> {
  return withJobStore(options, (store, o) => forgetIn(store, id, o));
}

async function forgetIn(
  store: JobStore,
  id: string,
  options: JobCommandOptions,
): Promise<{ record: JobRecord; uploadsLeft: string[] }> {
  const found = await findJob(store, id);
  if (found.status !== "merged" && !options.force) {
    throw new LoomUsageError(
      `job ${found.id} is not merged yet; Loom would lose track of batches you pay for. Fetch or cancel it, or pass --force`,
    );
  }
  // Under the lock: a fetch or submit of the job in progress keeps it.
  return await store.withLockedJob(found.id, async (current) => {
    // Removed meanwhile (merged with every row answered): nothing is left to forget.
    if (!current) return { record: found, uploadsLeft: [] };
    const record = current;
    let left: string[] = [];
    if (record.shards.some((s) => s.upload)) {
      left = await withOpenedJob(jobOf(record), options, async (opened) => {
        const batch = batchOf(opened);
        const failed = await releaseUploads(
          { store, batch, signal: options.signal, redact: opened.redact },
          record,
        );
        return leftLines(record, failed, batch);
      }).catch((error) => {
        if (options.signal?.aborted) throw error;
        const why = errorMessage(error);
        return leftLines(record, uploadsLeft(record).map((shard) => ({ shard, error: why })));
      });
      if (left.length && !options.force) {
        throw new LoomUsageError(
          `job ${record.id} is kept: ${left.join("; ")}. ` +
            `\`loom forget ${record.id}\` tries again; --force forgets the job all the same`,
        );
      }
    }
    await store.remove(record.id);
    return { record, uploadsLeft: left };
  });
}

/** The uploads still at the provider, one line each: why a delete failed, and how to delete it. */
function leftLines(record: JobRecord, failed: readonly UploadLeft[], batch?: BatchApi): string[] {
  const why = new Map(failed.map((f) => [f.shard.index, f.error]));
  const doneWith = new Set(uploadsLeft(record));
  return describeUploads(
    record.shards,
    batch,
    (shard) =>
      why.get(shard.index) ??
        (doneWith.has(shard) ? undefined : "its batch may still be running, so Loom left it"),
  );
}

/**
 * Submits again only the rows of a job that have no good answer (failed, expired, cancelled,
 * or rejected by the answer check), as new shards of the same job. The next fetch merges them.
 * A row with a good answer is never sent again.
 */
export async function retryJob(
  id: string,
  options: JobCommandOptions,
): Promise<{ record: JobRecord; rows: number }> {
  return withJobStore(options, async (store, options) => {
    const found = await findJob(store, id);
    return await withJob(
      found,
      options,
      (opened) =>
        store.withLockedJob(found.id, async (record) => {
          if (!record || record.merged?.cleanup) {
            // Merged with every row answered; only its clean-up is left (finished here).
            if (record) {
              await finishMerged({ store, batch: batchOf(opened), redact: opened.redact }, record);
            }
            return { record: record ?? found, rows: 0 };
          }
          if (record.status === "submitting" || !record.shards.every((s) => s.fetched)) {
            throw new LoomUsageError(
              `job ${record.id} has batches whose results are not fetched yet; run loom fetch --id ${record.id} first`,
            );
          }
          const check = opened.answerSchema?.check ?? checkPlainAnswer;
          // The saved results are read alongside the rows, so nothing the size of the job is held.
          const saved = savedOutcomes(store, record);
          const isGood = async (index: number) => {
            const { outcome } = await saved.at(index);
            const verdict = outcome && "r" in outcome ? check(outcome.r) : undefined;
            return outcome !== undefined && "r" in outcome && !(verdict && "error" in verdict);
          };
          const job = jobOf(record);
          const batch = batchOf(opened);
          // One reading picks the rows and proves the input the job's; the sending pass is the other.
          const picked = await pickRetryRows(
            {
              job,
              batch,
              provider: job.spec.provider,
              responseSchema: opened.answerSchema?.schema,
              signal: options.signal,
            },
            record,
            {
              registry: opened.registry,
              context: opened.context,
              answerFields: opened.answerSchema?.fields,
              isGood,
            },
          ).finally(() => saved.close());
          if (!picked.rows) return { record, rows: 0 };
          reopenedForRetry(
            record,
            picked.shards.map((s) => ({
              rows: { list: s.rows },
              requests: s.requests,
              bytes: s.bytes,
            })),
          );
          await store.save(record);
          const ctx = submitContext(opened, job, picked.plan, store, options);
          await submitPlanned(ctx, record, true);
          return { record, rows: picked.rows };
        }),
    );
  });
}
