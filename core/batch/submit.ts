/**
 * Submitting a batch job. First the whole plan is recorded: the rows cut into shards within the
 * provider's limits (requests and bytes), cut in the planning pass that also fingerprints the
 * input and spools the items it built ({@link SubmissionPlanner}), so the input is read once.
 * Then each shard is submitted as one provider batch,
 * with the record saved before and after every remote step. A create whose answer is lost (a
 * timeout, a reset connection, a killed process) is never sent again on Loom's own: the shard is
 * in doubt, Loom looks for its batch over a settle window (providers list new batches late),
 * adopts it when the label matches, and otherwise stops and says what to run (`loom adopt`, or
 * `--resubmit` to pay again knowingly).
 * @module
 */
import { createHash } from "node:crypto";
import { open, stat } from "node:fs/promises";
import process from "node:process";
import { setTimeout as sleep } from "node:timers/promises";
import { canonicalJson } from "../base/canonical-json.ts";
import { errorMessage, EXIT, LoomError, LoomUsageError } from "../base/errors.ts";
import type { RunEventHandler } from "../base/events.ts";
import type { LoadedJob } from "../job/load.ts";
import { FileHash } from "../data/dataset.ts";
import { openJobDataset, type Plan } from "../data/plan.ts";
import type { RecordedEstimate } from "../data/prices.ts";
import { type BuiltRequest, requestBuilder } from "../data/request.ts";
import type { DatasetRow } from "../spec/format.ts";
import { failpoint } from "../base/failpoints.ts";
import { releaseUploads } from "./uploads.ts";
import {
  abandoned,
  adopted,
  beginSubmit,
  cancelUnsent,
  created,
  createLost,
  createRefused,
  createSent,
  cutOff,
  phaseOf,
} from "./shard.ts";
import { submissionDone } from "./job-state.ts";
import { lastRowOf, ShardPass, type ShardStreamHooks } from "./shard-pass.ts";
import { type Spool, SpoolWriter } from "./spool.ts";
import { customIdOf } from "./custom-ids.ts";

export { customIdOf, rowOfCustomId } from "./custom-ids.ts";
import { isRetryable, type RetryPolicy, withRetries } from "../run/retry.ts";
import type {
  BatchApi,
  BatchHandle,
  BatchItem,
  BatchItemSource,
  BatchLabel,
  BatchSubmitOptions,
  GenerateRequest,
} from "../spec/provider.ts";
import {
  type InputFingerprint,
  JOB_RECORD_VERSION,
  type JobRecord,
  type JobStore,
  newJobId,
  type ShardRecord,
  type ShardRows,
} from "./store.ts";
import { rowChunksOf } from "../data/row-chunks.ts";

/** Bytes read at a time while fingerprinting, into one buffer. */
const FINGERPRINT_CHUNK = 256 * 1024;

/**
 * Size and SHA-256 of the input file, read into one reused buffer: a stream's chunks are each a
 * new buffer, freed only by a later garbage collection, and hashing a 100 MB input so held
 * 30 MB of them at once.
 */
export async function fingerprintInput(path: string): Promise<InputFingerprint> {
  const hash = createHash("sha256");
  const file = await open(path);
  try {
    const buffer = new Uint8Array(FINGERPRINT_CHUNK);
    for (;;) {
      const { bytesRead } = await file.read(buffer, 0, buffer.length);
      if (bytesRead === 0) break;
      hash.update(buffer.subarray(0, bytesRead));
    }
  } finally {
    await file.close();
  }
  return { path, size: (await stat(path)).size, sha256: hash.digest("hex") };
}

const listed = new WeakMap<readonly number[], Set<number>>();

/** Whether a row is in a shard. */
export function shardHolds(rows: ShardRows, index: number): boolean {
  if (!("list" in rows)) return index >= rows.start && index < rows.end;
  let set = listed.get(rows.list);
  if (!set) listed.set(rows.list, set = new Set(rows.list));
  return set.has(index);
}

/**
 * Finds the shards (among `shards`) that hold a row, for a pass that visits rows in ascending
 * order: ranges by walking forward, retry lists by lookup. O(1) per row, and no new array for a
 * row held by one range shard alone (asked a million times by a merge). The answer is not to be
 * changed.
 */
export function shardFinder(
  shards: readonly ShardRecord[],
): (index: number) => readonly ShardRecord[] {
  const listedRows = new Map<number, ShardRecord[]>();
  const ranges: ShardRecord[] = [];
  for (const shard of shards) {
    if (!("list" in shard.rows)) ranges.push(shard);
    else for (const i of shard.rows.list) listedRows.set(i, [...(listedRows.get(i) ?? []), shard]);
  }
  ranges.sort((a, b) => (a.rows as { start: number }).start - (b.rows as { start: number }).start);
  const alone = ranges.map((shard) => [shard]);
  const none: readonly ShardRecord[] = [];
  let r = 0;
  return (index) => {
    while (r < ranges.length && index >= (ranges[r].rows as { end: number }).end) r++;
    const inRange = r < ranges.length && shardHolds(ranges[r].rows, index);
    const listed = listedRows.size ? listedRows.get(index) : undefined;
    if (!listed) return inRange ? alone[r] : none;
    return inRange ? [ranges[r], ...listed] : listed;
  };
}

/** Throws when the input is not the one the job was submitted with (`what` says what was held back). */
export async function assertSameInput(
  path: string,
  record: JobRecord,
  what: string,
): Promise<void> {
  if ((await fingerprintInput(path)).sha256 === record.input.sha256) return;
  throw inputChanged(path, record, what);
}

/** The error of an input that is not the one the job was submitted with ({@link assertSameInput}). */
export function inputChanged(path: string, record: JobRecord, what: string): LoomUsageError {
  return new LoomUsageError(
    `${path} changed since job ${record.id} was submitted, and rows are matched by position; ${what}. Restore the input, or submit the job anew`,
  );
}

/** The label of a shard: how the provider's copy of it is found again. */
export function labelOf(record: Pick<JobRecord, "id">, shard: number): BatchLabel {
  return { job: record.id, shard, name: `loom-${record.id}-${shard}` };
}

/** What submitting needs. */
export interface SubmitContext {
  readonly job: LoadedJob;
  readonly plan: Plan;
  readonly provider: string;
  readonly batch: BatchApi;
  readonly store: JobStore;
  readonly responseSchema?: GenerateRequest["responseSchema"];
  /** Submit even when the same job is already pending (pays again). */
  readonly resubmit?: boolean;
  readonly signal?: AbortSignal;
  readonly onEvent?: RunEventHandler;
  /** How transient provider errors are retried (default `DEFAULT_RETRY`). */
  readonly retry?: RetryPolicy;
  /** Waits between the looks for a batch whose create went unanswered (default {@link settleWaits}). */
  readonly settleWaitsMs?: readonly number[];
  /**
   * The input's fingerprint and shards as the planning pass found them ({@link SubmissionPlanner}),
   * for `plan.input`; without it, submitting reads the input for them itself.
   */
  readonly planned?: PlannedSubmission;
  /** What the job is estimated to cost, kept in its record for `loom view`. */
  readonly estimate?: RecordedEstimate;
}

/**
 * The settle window in real use: about a minute of looks, further and further apart.
 * unverified: how long a provider takes to list a batch it has just created (no provider documents
 * it; chaos testing saw a lookup right after a lost create find nothing).
 */
export const DEFAULT_SETTLE_WAITS_MS: readonly number[] = [2_000, 4_000, 8_000, 16_000, 30_000];

/**
 * The waits between looks for an unanswered create: the default window, or one stretched to
 * `LOOM_SETTLE_SECONDS` in all (tests make it tiny; a slow provider may want it longer).
 */
export function settleWaits(
  env: Readonly<Record<string, string | undefined>> = process.env,
): readonly number[] {
  const total = Number(env.LOOM_SETTLE_SECONDS);
  if (!env.LOOM_SETTLE_SECONDS || !Number.isFinite(total) || total < 0) {
    return DEFAULT_SETTLE_WAITS_MS;
  }
  const sum = DEFAULT_SETTLE_WAITS_MS.reduce((a, b) => a + b, 0);
  return DEFAULT_SETTLE_WAITS_MS.map((w) => Math.round((w * total * 1000) / sum));
}

/** The retry options of a context. */
export function retryOf(ctx: { readonly signal?: AbortSignal; readonly retry?: RetryPolicy }) {
  return { signal: ctx.signal, policy: ctx.retry };
}

/**
 * A row's batch item (from its request, when the caller built it already), or undefined when its
 * request cannot be built (it never goes out).
 */
type ItemMaker = (row: DatasetRow, built?: BuiltRequest) => BatchItem | undefined;

/** The job's {@link ItemMaker}: what its prompt needs is worked out once, not for every row. */
function itemMaker(ctx: Pick<SubmitContext, "job" | "responseSchema">): ItemMaker {
  const build = requestBuilder(ctx.job.spec, ctx.responseSchema);
  return (row, built = build(row.fields)) => {
    return "error" in built
      ? undefined
      : { customId: customIdOf(row.index), request: built.request };
  };
}

/** One shard as cut: its rows (first and last; every one unless the cutter was told not to keep them). */
export interface CutShard {
  readonly first: number;
  last: number;
  /** Every row, in order; empty when the cutter keeps no lists (a plan's shards are ranges). */
  readonly rows: number[];
  requests: number;
  bytes: number;
}

/** Cuts items into shards within the provider's limits and the job's own (`batch:`). */
export class ShardCutter {
  readonly #batch: BatchApi;
  readonly #provider: string;
  readonly #limits: { maxRequests: number; maxBytes: number };
  readonly #rowLists: boolean;
  readonly shards: CutShard[] = [];
  #current: CutShard | undefined;

  /** `rowLists: false` keeps only each shard's first and last row (a million rows are 8 MB). */
  constructor(
    batch: BatchApi,
    provider: string,
    job: { max_requests?: number; max_bytes?: number } = {},
    { rowLists = true }: { rowLists?: boolean } = {},
  ) {
    this.#batch = batch;
    this.#provider = provider;
    this.#limits = {
      maxRequests: Math.min(batch.limits.maxRequests, job.max_requests ?? Infinity),
      maxBytes: Math.min(batch.limits.maxBytes, job.max_bytes ?? Infinity),
    };
    this.#rowLists = rowLists;
  }

  /** Adds one row's item; true when it begins a new shard. */
  add(index: number, item: BatchItem): boolean {
    return this.addSized(index, this.#batch.itemBytes(item));
  }

  /** Adds one row's item of `size` bytes (its `itemBytes`); true when it begins a new shard. */
  addSized(index: number, size: number): boolean {
    const { maxRequests, maxBytes } = this.#limits;
    if (size > maxBytes) {
      throw new LoomError(
        `row ${
          index + 1
        } alone is ${size} bytes, more than a ${this.#provider} batch may hold (${maxBytes}); shorten it or run it with --sync`,
      );
    }
    const c = this.#current;
    if (c && (c.requests + 1 > maxRequests || c.bytes + size > maxBytes)) this.close();
    const begins = this.#current === undefined;
    const shard = this.#current ??= { first: index, last: index, rows: [], requests: 0, bytes: 0 };
    if (this.#rowLists) shard.rows.push(index);
    shard.last = index;
    shard.requests++;
    shard.bytes += size;
    return begins;
  }

  /** Ends the current shard. */
  close(): void {
    if (this.#current) this.shards.push(this.#current);
    this.#current = undefined;
  }
}

/** What a submission's planning pass found: the input's fingerprint and its shards as cut. */
export interface PlannedSubmission {
  readonly input: InputFingerprint;
  readonly shards: readonly CutShard[];
  /**
   * Why the rows cannot be cut (a row larger than a batch may hold): thrown when a new job is
   * recorded, so it comes after the checks that came before it when it was found there.
   */
  readonly refused?: unknown;
  /** The items as the pass built them, for the submission to send (see `spool.ts`). */
  readonly spool?: Spool;
}

/**
 * A submission planned in the planning pass: give {@link tap} and {@link add} to `planJob`
 * (`tap` and `onRow`), and its one reading of the input also fingerprints it (the same SHA-256 as
 * {@link fingerprintInput}: of the file's own bytes, compressed for `.gz`) and cuts its shards.
 * Given Loom's home, it writes the items it built to measure them to a spool, which the
 * submission sends (`spool.ts`): each request is built, and serialized, once. Without one (no
 * home, or the spool could not be written), the submission reads and builds them again.
 * The caller {@link dispose}s of it once the submission is over.
 */
export class SubmissionPlanner {
  readonly #hash = new FileHash();
  readonly #cutter: ShardCutter;
  readonly #item: ItemMaker;
  #refused?: unknown;
  #writer: SpoolWriter | undefined;
  #spool: Spool | undefined;
  /** Sees the input's bytes as the planning pass reads them. */
  readonly tap = this.#hash.tap;

  /** `home` is Loom's home, where the spool goes; without it there is none. */
  constructor(
    ctx: Pick<SubmitContext, "job" | "batch" | "provider" | "responseSchema"> & {
      readonly home?: string;
    },
  ) {
    this.#cutter = new ShardCutter(ctx.batch, ctx.provider, ctx.job.spec.batch, {
      rowLists: false,
    });
    this.#item = itemMaker(ctx);
    this.#writer = ctx.home === undefined ? undefined : SpoolWriter.create(ctx.home, ctx.batch);
  }

  /**
   * Cuts one row of the planning pass (rows come in order). `built` is the row's request when the
   * pass built it already for other work (the spend cap's estimate): it is not built again.
   */
  readonly add = (row: DatasetRow, built?: BuiltRequest): void => {
    if (this.#refused !== undefined) return;
    const item = this.#item(row, built);
    const spool = this.#writer;
    if (!item) return spool?.skip(row.index);
    try {
      if (spool?.encoded) {
        // The provider's line sizes the item (`itemBytes` is its length plus one) and is kept.
        const bytes = spool.write(spool.encode(item));
        if (this.#cutter.addSized(row.index, bytes + 1)) spool.begin();
      } else {
        const begins = this.#cutter.add(row.index, item);
        if (spool) {
          spool.write(JSON.stringify(item));
          if (begins) spool.begin();
        }
      }
    } catch (error) {
      this.#refused = error;
      this.#dropSpool();
    }
  };

  #dropSpool(): void {
    this.#writer?.discard();
    this.#writer = undefined;
  }

  /** Why the rows cannot be cut (a row too big for a batch), once a row refused; else undefined. */
  get refused(): unknown {
    return this.#refused;
  }

  /**
   * The planned submission, once the planning pass of `plan` has read the whole input; undefined
   * when it did not see every byte of the file (its size changed, or the format stopped before the
   * end), and submitting then reads the input itself as it always did.
   */
  async finish(plan: Pick<Plan, "input">): Promise<PlannedSubmission | undefined> {
    const { size, sha256 } = this.#hash.digest();
    if (size !== (await stat(plan.input)).size) {
      this.#dropSpool();
      return undefined;
    }
    this.#cutter.close();
    this.#spool = this.#writer?.finish();
    this.#writer = undefined;
    return {
      input: { path: plan.input, size, sha256 },
      shards: this.#cutter.shards,
      ...(this.#refused === undefined ? {} : { refused: this.#refused }),
      ...(this.#spool ? { spool: this.#spool } : {}),
    };
  }

  /** Removes the spool (the submission is over, or never began). */
  async dispose(): Promise<void> {
    this.#dropSpool();
    await this.#spool?.remove();
    this.#spool = undefined;
  }
}

/**
 * Submits the job as batches, or finishes an interrupted submission of the same job. Refuses to
 * submit a job that is already pending unless `resubmit` is set.
 */
export async function submitJob(ctx: SubmitContext): Promise<JobRecord> {
  try {
    return await submitOnce(ctx);
  } finally {
    // Sent or not, the spool is done with: removed now, not after a `--wait` of hours.
    await ctx.planned?.spool?.remove();
  }
}

/** {@link submitJob}, less the spool's removal. */
async function submitOnce(ctx: SubmitContext): Promise<JobRecord> {
  const { job, plan, store } = ctx;
  const planned = ctx.planned?.input.path === plan.input ? ctx.planned : undefined;
  const input = planned?.input ?? await fingerprintInput(plan.input);
  const key = createHash("sha256").update(canonicalJson({ spec: job.spec, input: input.sha256 }))
    .digest("hex");
  // Held until the new record is saved, so two runs of the same job at once submit it once.
  const unlockKey = await store.lockKey(key);
  let record: JobRecord;
  try {
    const same = (await store.list()).records.filter((r) => r.key === key && r.status !== "merged");
    const interrupted = same.find((r) => r.status === "submitting");
    if (interrupted) {
      await unlockKey();
      // The same key is the same input: its fingerprint is in the key.
      return await completeSubmission(ctx, interrupted, true).catch((error) =>
        forgetRefused(ctx, interrupted.id, error)
      );
    }
    record = await planRecord(ctx, key, input, same, planned);
  } finally {
    await unlockKey();
  }
  failpoint("submit:planned");
  // The spool holds the shards just planned from it, and no others.
  return await completeSubmission(ctx, record, true, planned?.spool).catch((error) =>
    forgetRefused(ctx, record.id, error)
  );
}

/**
 * Rethrows `error`, first removing the job's record when the provider refused the submission
 * outright (a 4xx that no retry changes: a wrong key, a model it does not offer) and no batch of
 * the job exists there (none created, no create in doubt). Kept, the record would be submitted by
 * the next `loom fetch`, paid for after a run that said it failed. Files already uploaded for the
 * refused batches are deleted first; while one cannot be, the record is kept for it, its batches
 * marked never to be sent, and the next fetch or forget tries the delete again.
 */
async function forgetRefused(ctx: SubmitContext, id: string, error: unknown): Promise<never> {
  if (!ctx.signal?.aborted && refused(error) && !isRetryable(error)) {
    await ctx.store.withLockedJob(id, async (record) => {
      const remote = record?.shards.some((s) => s.handle || s.createSentAt);
      if (record && record.status === "submitting" && !remote) {
        if (record.shards.some((s) => s.upload)) {
          for (const shard of record.shards) {
            cancelUnsent(shard, `never submitted: ${ctx.provider} refused the submission`);
          }
          await ctx.store.save(record);
          await releaseUploads(ctx, record);
        }
        if (!record.shards.some((s) => s.upload)) await ctx.store.remove(id);
      }
    }).catch(() => {
      // Held by another Loom, or the store failed: the record stays, and `error` says why.
    });
  }
  throw error;
}

/** Plans a new job's shards and saves its record (the caller holds the key's lock). */
async function planRecord(
  ctx: SubmitContext,
  key: string,
  input: InputFingerprint,
  same: readonly JobRecord[],
  planned: PlannedSubmission | undefined,
): Promise<JobRecord> {
  const { job, plan, store } = ctx;
  if (same.length && !ctx.resubmit) {
    const r = same[same.length - 1];
    throw new LoomUsageError(
      `this job is already submitted as ${r.id} (${r.shards.length} batch${
        r.shards.length === 1 ? "" : "es"
      }, ${r.createdAt}); ` +
        `fetch it with \`loom fetch --id ${r.id}\`, or pass --resubmit to pay for it a second time`,
    );
  }
  // The plan first: every shard is recorded before the first remote step.
  if (planned?.refused !== undefined) throw planned.refused;
  const cut = planned?.shards ?? await cutShards(ctx);
  const now = new Date().toISOString();
  let start = 0;
  const shards = cut.map((s, i, all): ShardRecord => {
    // Contiguous ranges that cover every row, so a merge reads one shard's results at a time.
    const end = i === all.length - 1 ? plan.rows : all[i + 1].first;
    const rows = { start, end };
    start = end;
    return { index: i, rows, requests: s.requests, bytes: s.bytes };
  });
  const record: JobRecord = {
    version: JOB_RECORD_VERSION,
    id: newJobId(),
    key,
    createdAt: now,
    updatedAt: now,
    status: "submitting",
    ...(job.file ? { jobFile: job.file } : {}),
    root: store.cwd,
    host: store.host,
    spec: job.spec,
    input,
    output: plan.output,
    rows: plan.rows,
    shards,
    ...(ctx.estimate ? { estimate: ctx.estimate } : {}),
  };
  await store.save(record);
  return record;
}

/** The input's rows cut into shards, in a reading of their own (no planning pass cut them). */
async function cutShards(ctx: SubmitContext): Promise<readonly CutShard[]> {
  const cutter = new ShardCutter(ctx.batch, ctx.provider, ctx.job.spec.batch, { rowLists: false });
  const item = itemMaker(ctx);
  const reader = await openJobDataset(ctx.job, ctx.plan.format);
  for await (const rows of rowChunksOf(reader)) {
    for (const row of rows) {
      ctx.signal?.throwIfAborted();
      const built = item(row);
      if (built) cutter.add(row.index, built);
    }
  }
  cutter.close();
  return cutter.shards;
}

/**
 * Submits every shard of the record that has no batch yet, in one pass over the dataset. The
 * caller holds no lock; this takes it.
 */
export async function completeSubmission(
  ctx: SubmitContext,
  record: JobRecord,
  inputChecked = false,
  spool?: Spool,
): Promise<JobRecord> {
  return await ctx.store.withLockedJob(record.id, async (fresh) => {
    if (!fresh) throw new LoomUsageError(`job ${record.id} was removed while it was submitted`);
    await submitPlanned(ctx, fresh, inputChecked, spool);
    return fresh;
  });
}

/**
 * Submits the record's shards that have no batch yet; the caller holds the job's lock. The input
 * must be the one the job was planned on (rows are sent by position), unless `inputChecked`.
 * A shard whose create may have been sent is looked for first, never created blindly. The items
 * come from `spool` (the record's planning pass kept them) or from one more reading.
 */
export async function submitPlanned(
  ctx: SubmitContext,
  record: JobRecord,
  inputChecked = false,
  spool?: Spool,
): Promise<void> {
  if (!inputChecked) await assertSameInput(ctx.plan.input, record, "nothing more was submitted");
  for (const shard of record.shards) {
    const phase = phaseOf(shard, ctx.batch.announcesCreate === true);
    if (phase !== "submitting" && phase !== "in-doubt") continue;
    if (phase === "in-doubt") {
      if (ctx.resubmit) {
        // The user said to pay again knowingly: the shard is sent anew (its upload is reused).
        ctx.onEvent?.({
          type: "warning",
          message: `job ${record.id}: batch ${
            shard.index + 1
          } is submitted again (--resubmit); a batch its lost create made, if any, is billed too`,
        });
        abandoned(shard);
        await ctx.store.save(record);
      } else await settleShard(ctx, record, shard);
    } else {
      // The create was never sent (killed while uploading, say): nothing can exist, the shard
      // is submitted again. One look all the same, for a record written by an older Loom.
      const exact = (await lookFor(ctx, record, shard))?.find((f) => f.exact);
      if (exact) adopt(ctx, shard, exact.handle);
      else cutOff(shard);
      await ctx.store.save(record);
    }
  }
  // A shard cancelled before it was sent stays unsent.
  const todo = record.shards.filter((s) => phaseOf(s) === "planned");
  if (todo.length) {
    // Without a spool, one pass: each shard is sent in its turn, its items built as its provider
    // reads them. A row belongs to at most one unsubmitted shard (retries only follow a fetch).
    const item = itemMaker(ctx);
    const passOf = (shards: readonly ShardRecord[]) =>
      new ShardPass({
        open: async () => (await openJobDataset(ctx.job, ctx.plan.format)).rows,
        owners: shardFinder(shards),
        holds: (shard, index) => shardHolds(shard.rows, index),
        item: (row) => {
          ctx.signal?.throwIfAborted();
          return item(row);
        },
      });
    const spooled = spool?.shards === record.shards.length ? spool : undefined;
    const pass = spooled ? undefined : passOf(todo);
    try {
      for (const shard of todo.toSorted((a, b) => lastRowOf(a) - lastRowOf(b))) {
        await submitShard(ctx, record, shard, (hooks) =>
          spooled
            // A provider that asks an encoded spool for items gets them read anew.
            ? spooled.source(shard, hooks, async function* () {
              const again = passOf([shard]);
              try {
                yield* again.source(shard, hooks).items();
              } finally {
                await again.close();
              }
            })
            : pass!.source(shard, hooks));
        // A provider that reused an upload read nothing: the pass moves on to the next shard.
        await pass?.skipPast(shard);
      }
    } finally {
      await pass?.close();
    }
  }
  submissionDone(record);
  await ctx.store.save(record);
}

/**
 * A provider's definite refusal (a 4xx answer): the create it answered made nothing. A 5xx or no
 * answer may hide a created batch, so that create is in doubt.
 * unverified: that no provider creates a batch it answers with a 4xx (none documents otherwise).
 */
function refused(error: unknown): boolean {
  const status = (error as { status?: unknown }).status;
  return LoomError.isInstance(error) && typeof status === "number" && status >= 400 && status < 500;
}

/** A create that may have made its batch although it failed: it is never retried. */
class CreateInDoubt extends Error {
  readonly reason: unknown;
  constructor(reason: unknown) {
    super(errorMessage(reason), { cause: reason });
    this.reason = reason;
  }
}

/**
 * Submits one planned shard, recording it before and after the remote step. Its items stream
 * from the spool or the pass to a provider that takes a stream ({@link BatchApi.submitStream});
 * the custom ids are saved once the items were read, before the batch can exist (a fetch joins
 * answers to rows with them: Gemini may drop keys). A provider that takes an array gets the items
 * read first.
 */
async function submitShard(
  ctx: SubmitContext,
  record: JobRecord,
  shard: ShardRecord,
  sourceOf: (hooks: ShardStreamHooks) => BatchItemSource,
): Promise<void> {
  let inputChanged = false;
  const source = sourceOf({
    changed: (count) => {
      inputChanged = true;
      return new LoomError(
        `${ctx.plan.input} changed since job ${record.id} was planned (batch ${
          shard.index + 1
        } now has ${count} requests, not ${shard.requests}); nothing more was submitted`,
      );
    },
    ended: (ids) => ctx.store.saveIds(record.id, shard.index, ids),
  });
  const stream = ctx.batch.submitStream?.bind(ctx.batch);
  let items: BatchItem[] | undefined;
  if (!stream) {
    items = [];
    for await (const item of source.items()) items.push(item);
  }
  // Interrupted between two shards: this one stays planned (its items are read once it is begun).
  ctx.signal?.throwIfAborted();
  beginSubmit(shard);
  await ctx.store.save(record);
  const label = labelOf(record, shard.index);
  let sent = false;
  const options: BatchSubmitOptions = {
    signal: ctx.signal,
    onUploaded: async (upload) => {
      shard.upload = upload;
      await ctx.store.save(record);
    },
    onCreate: async () => {
      createSent(shard);
      await ctx.store.save(record);
      sent = true;
    },
  };
  let handle: BatchHandle;
  try {
    handle = await withRetries(async () => {
      sent = false;
      try {
        const attempt = shard.upload ? { ...options, upload: shard.upload } : options;
        return await (stream
          ? stream(source, label, attempt)
          : ctx.batch.submit(items!, label, attempt));
      } catch (error) {
        // The stream found the input changed before anything was created: said as such.
        if (inputChanged) throw error;
        if ((sent || ctx.batch.announcesCreate !== true) && !refused(error)) {
          throw new CreateInDoubt(error);
        }
        if (shard.createSentAt) {
          createRefused(shard); // answered with a refusal: nothing was created
          await ctx.store.save(record);
        }
        throw error;
      }
    }, retryOf(ctx));
  } catch (error) {
    if (!(error instanceof CreateInDoubt)) throw error;
    createLost(shard);
    await ctx.store.save(record);
    // Interrupted: the next run settles it.
    if (ctx.signal?.aborted) throw error.reason;
    await settleShard(ctx, record, shard, error.reason);
    return;
  }
  failpoint("submit:created");
  created(shard, handle);
  await ctx.store.save(record);
  failpoint("submit:recorded");
  ctx.onEvent?.({
    type: "shard",
    shard: shard.index,
    action: "submitted",
    batchId: handle.id,
    requests: shard.requests,
  });
}

/** The batches the provider may hold for a shard, less those the job owns; undefined when it cannot tell. */
async function lookFor(ctx: SubmitContext, record: JobRecord, shard: ShardRecord) {
  const find = ctx.batch.find?.bind(ctx.batch);
  if (!find) return undefined;
  const hint = {
    after: shard.submittingSince!,
    requests: shard.requests,
    model: ctx.job.spec.model,
  };
  const found = await withRetries(
    () => find(labelOf(record, shard.index), hint, { signal: ctx.signal }),
    retryOf(ctx),
  );
  // Batches this job already holds are not the lost one.
  const known = new Set(record.shards.flatMap((s) => (s.handle ? [s.handle.id] : [])));
  return found?.filter((f) => !known.has(f.handle.id));
}

/** Records `handle` as the shard's batch (found again after its create's answer was lost). */
function adopt(
  ctx: SubmitContext,
  shard: ShardRecord,
  handle: BatchHandle,
): void {
  // The provider's handle may lack the upload; the record knows it.
  adopted(shard, handle);
  ctx.onEvent?.({
    type: "shard",
    shard: shard.index,
    action: "adopted",
    batchId: handle.id,
    requests: shard.requests,
  });
}

/**
 * A shard in doubt: its create went out and no answer was recorded. Looks for its batch over the
 * settle window (a new batch may be listed only after a while) and adopts it when the label
 * matches; otherwise stops (exit 2) naming the batches that could be it and what to run. Never
 * creates anything.
 */
async function settleShard(
  ctx: SubmitContext,
  record: JobRecord,
  shard: ShardRecord,
  reason?: unknown,
): Promise<void> {
  const waits = ctx.settleWaitsMs ?? settleWaits();
  const seen = new Set<string>();
  let blind = false;
  for (let look = 0;; look++) {
    const found = await lookFor(ctx, record, shard);
    blind = found === undefined;
    const exact = found?.find((f) => f.exact);
    if (exact) {
      adopt(ctx, shard, exact.handle);
      await ctx.store.save(record);
      return;
    }
    for (const f of found ?? []) seen.add(f.handle.id);
    if (look >= waits.length || !ctx.batch.find) break;
    await sleep(waits[look], undefined, { signal: ctx.signal });
  }
  const seconds = Math.round(waits.reduce((a, b) => a + b, 0) / 100) / 10;
  const candidates = [...seen];
  const run = `loom run ${record.jobFile ?? "<job file>"} --resubmit`;
  throw new LoomError(
    `job ${record.id}: batch ${
      shard.index + 1
    } (${shard.requests} requests) was sent to ${ctx.provider} at ${
      shard.createSentAt ?? shard.submittingSince
    } ` +
      `but its answer was lost${
        reason === undefined ? "" : ` (${errorMessage(reason)})`
      }, so it may have been created. Loom never sends it twice on its own. ` +
      (candidates.length
        ? `${ctx.provider} has batches that could be it: ${
          candidates.join(", ")
        }; Loom cannot tell which. `
        : blind
        ? `${ctx.provider} cannot say whether it was created. `
        : `Loom looked for it for ${seconds} s and did not find it (a new batch can take a while to be listed). `) +
      `If a batch is it, run \`loom adopt ${record.id} <batch-id>\`; to pay for it again knowingly, run \`${run}\`. ` +
      "The job's other batches are kept either way.",
    { exitCode: EXIT.usage },
  );
}

/**
 * Settles a shard whose submission was cut off: it is the provider's batch `batchId`, or (with
 * no id) it was never created and will be submitted again. The user's answer to the question
 * {@link settleShard} cannot decide.
 */
export async function adoptShard(
  store: JobStore,
  record: JobRecord,
  batchId: string | undefined,
): Promise<ShardRecord> {
  const lost = record.shards.filter((s) => {
    const phase = phaseOf(s);
    return phase === "submitting" || phase === "in-doubt";
  });
  if (lost.length !== 1) {
    throw new LoomUsageError(
      `job ${record.id} has ${lost.length} batches whose submission was cut off; nothing to adopt`,
    );
  }
  const shard = lost[0];
  if (batchId !== undefined) {
    if (record.shards.some((s) => s.handle?.id === batchId)) {
      throw new LoomUsageError(
        `${batchId} is already batch ${
          record.shards.find((s) => s.handle?.id === batchId)!.index + 1
        } of job ${record.id}`,
      );
    }
    adopted(shard, { id: batchId });
  } else abandoned(shard);
  await store.save(record);
  return shard;
}
