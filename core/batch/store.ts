/**
 * Batch job records and what belongs to them, kept in the state store (`core/spec/storage.ts`):
 * the record, the saved results of each fetched shard, the custom ids each shard was sent with,
 * and the lease a process holds while it works on the job.
 * @module
 */
import { randomBytes } from "node:crypto";
import process from "node:process";
import { LoomError, LoomUsageError } from "../base/errors.ts";
import type { JobSpec } from "../job/schema.ts";
import type { RecordedEstimate } from "../data/prices.ts";
import { failpoint } from "../base/failpoints.ts";
import { machineName, takeLease } from "../state/lease.ts";
import { localized } from "./places.ts";
import { packIds, unpackIds } from "./custom-ids.ts";
import { resultRows, SavedOutcomeReader } from "./saved-results.ts";
import { assertJobId, type ResultRow, type StorageV2, type StoredJob } from "../spec/storage.ts";
import type { BatchHandle, BatchState, BatchUpload, GenerateResult } from "../spec/provider.ts";

/**
 * Version of the record layout; a record of another version is refused, never misread. 2: a
 * shard's saved results may hold runs of outcomes (`saved-results.ts`), which an older Loom would
 * misread, so it must refuse the job. A version 1 record is read (its results are one outcome a
 * row, which version 2 reads too) and saved as version 2.
 */
export const JOB_RECORD_VERSION = 2;

/** Which input rows a shard holds: a contiguous range, or (for a retry) a list of positions. */
export type ShardRows = { readonly start: number; readonly end: number } | {
  readonly list: readonly number[];
};

/** One provider batch of a job. */
export interface ShardRecord {
  readonly index: number;
  readonly rows: ShardRows;
  /** Requests sent (rows whose prompt could not be built are not sent). */
  readonly requests: number;
  readonly bytes: number;
  /** Set before the submission starts: a shard with it but no handle may exist remotely. */
  submittingSince?: string;
  /**
   * Set just before the create request goes out, cleared once its answer is recorded: a shard
   * with it but no handle is in doubt (created or not, nobody knows), and is never created again
   * on Loom's own.
   */
  createSentAt?: string;
  /** The provider's upload of the shard's input, until it is deleted (reused by a retry). */
  upload?: BatchUpload;
  handle?: BatchHandle;
  submittedAt?: string;
  /** The last status seen; `unknown` when the last check failed. */
  state?: BatchState | "unknown";
  providerState?: string;
  counts?: { total?: number; succeeded?: number; failed?: number };
  message?: string;
  checkedAt?: string;
  /** Set once the shard's results are saved locally. */
  fetched?: {
    readonly ok: number;
    readonly errors: number;
    readonly at: string;
    /**
     * The answers' usage added up, where the provider reported it (absent in records of an older
     * Loom): `loom view` draws the cost and tokens of each batch from it.
     */
    readonly inputTokens?: number;
    readonly outputTokens?: number;
    /** US dollars, as the provider reported them (`Usage.cost`). */
    readonly cost?: number;
  };
}

/** The input as it was when the job was submitted. */
export interface InputFingerprint {
  readonly path: string;
  readonly size: number;
  readonly sha256: string;
}

/** A file as it was seen: inode numbers are reused, so its size and time are part of it. */
export interface FileIdentity {
  readonly dev: number;
  readonly ino: number;
  readonly size: number;
  readonly mtimeMs: number;
}

/** The identity of a file's `stat`. */
export function identityOf(stats: FileIdentity): FileIdentity {
  return { dev: stats.dev, ino: stats.ino, size: stats.size, mtimeMs: stats.mtimeMs };
}

/** Whether `stats` is the file `known` names. */
export function isSameFile(known: FileIdentity | undefined, stats: FileIdentity): boolean {
  return known !== undefined &&
    (["dev", "ino", "size", "mtimeMs"] as const).every((k) => known[k] === stats[k]);
}

/** Everything Loom knows about a batch job. */
export interface JobRecord {
  readonly version: typeof JOB_RECORD_VERSION;
  readonly id: string;
  /** Fingerprint of the job spec and input: the same job submitted twice has the same key. */
  readonly key: string;
  readonly createdAt: string;
  updatedAt: string;
  /** `submitting` until every shard is submitted; `pending` until merged; then `merged`. */
  status: "submitting" | "pending" | "merged";
  readonly jobFile?: string;
  /**
   * The working directory of the machine that submitted the job: another machine sharing the
   * store finds the files at the same places relative to its own (`places.ts`).
   */
  readonly root?: string;
  /** The machine that submitted it (`LOOM_HOST_ID`, or its host name). */
  readonly host?: string;
  /** The validated job, with absolute paths. Never holds an API key. */
  readonly spec: JobSpec;
  readonly input: InputFingerprint;
  readonly output: string;
  readonly rows: number;
  shards: ShardRecord[];
  /** What the job was estimated to cost when submitted; absent when Loom has no price for it. */
  readonly estimate?: RecordedEstimate;
  /** Set by a merge: how the rows ended. */
  merged?: {
    readonly at: string;
    readonly ok: number;
    readonly errors: number;
    /** Errors a retry could fix (the others are rows with no prompt, never sent). */
    readonly retryable?: number;
    /** What the provider reported the merged answers cost, in US dollars (`RunSummary.cost`). */
    readonly cost?: number;
    /** Input and output tokens of the merged answers, as the provider reported them. */
    readonly inputTokens?: number;
    readonly outputTokens?: number;
    /** The record is to be removed (saved before anything is): a clean-up cut off is finished later. */
    readonly cleanup?: boolean;
  };
  /**
   * The output file a merge may replace without asking (device and inode): the one this job
   * wrote last (saved before it was renamed into place), or the one the user agreed to overwrite
   * when running the job. Any other file at the output path is asked about.
   */
  written?: FileIdentity;
}

/** One saved outcome of a row: `r` an answer, or `e` an error (`k` its kind). */
export type SavedOutcome =
  | { readonly i: number; readonly r: GenerateResult }
  | {
    readonly i: number;
    readonly e: string;
    readonly k: "failed" | "expired" | "cancelled" | "missing";
  };

/** Whether `next` should replace `current` as a row's outcome: an answer beats everything, an error only nothing. */
export function better(next: SavedOutcome, current: SavedOutcome | undefined): boolean {
  return current === undefined || "r" in next || !("r" in current);
}

/** A new job id: the date, then random hex (`20261127-3fa9c2`). */
export function newJobId(now = new Date()): string {
  return `${now.toISOString().slice(0, 10).replaceAll("-", "")}-${randomBytes(3).toString("hex")}`;
}

/** The attachment holding a shard's custom ids, in submission order (one per line). */
function idsName(shard: number): string {
  return `ids-${shard}`;
}

/**
 * Batch jobs in the state store: each job's record (written with compare-and-set on its
 * revision), each fetched shard's results (one saved outcome per row), the custom ids each shard
 * was submitted with, and a lease while a process works on the job.
 */
export class JobStore {
  readonly storage: StorageV2;
  /** The working directory: where this machine's files are (`places.ts`). */
  readonly cwd: string;
  /** This machine's name in records and leases. */
  get host(): string {
    return machineName(this.#env);
  }
  readonly #env: Readonly<Record<string, string | undefined>>;
  /** The revision each record object was read or last written at. */
  readonly #revisions = new WeakMap<JobRecord, number>();

  constructor(
    storage: StorageV2,
    env: Readonly<Record<string, string | undefined>> = process.env,
    cwd: string = process.cwd(),
  ) {
    this.storage = storage;
    this.#env = env;
    this.cwd = cwd;
  }

  /** Where the jobs are kept, for messages. */
  get location(): string {
    return this.storage.location;
  }

  #checkId(id: string): void {
    try {
      assertJobId(id);
    } catch {
      throw new LoomUsageError(`not a job id: ${JSON.stringify(id)}`);
    }
  }

  /**
   * Saves a record, stamping `updatedAt`. Compare-and-set: the record must still be at the
   * revision it was read at (a new record: not exist yet).
   * @throws LoomError when another Loom changed or removed the job meanwhile (nothing is written).
   */
  async save(record: JobRecord): Promise<void> {
    this.#checkId(record.id);
    record.updatedAt = new Date().toISOString();
    const expected = this.#revisions.get(record) ?? 0;
    const revision = await this.storage.jobs.put(record.id, JSON.stringify(record), expected);
    if (revision === undefined) {
      throw new LoomError(
        `job ${record.id} was changed by another Loom while this one worked on it (its lease ran out); nothing more was written: run the command again`,
      );
    }
    this.#revisions.set(record, revision);
  }

  /** Parses a stored record, remembering its revision. */
  #parse(stored: StoredJob): JobRecord {
    let record: JobRecord;
    try {
      record = JSON.parse(stored.record);
    } catch (error) {
      throw new LoomError(
        `the record of job ${stored.id} in ${this.location} is corrupt: ${
          (error as Error).message
        }`,
      );
    }
    const version = (record as { version?: unknown } | null)?.version;
    // Version 1 differs only in what version 2 reads too (see JOB_RECORD_VERSION).
    if (version === 1) record = { ...record, version: JOB_RECORD_VERSION };
    if (record?.version !== JOB_RECORD_VERSION) {
      throw new LoomError(
        `job ${stored.id} was written by another version of Loom (record version ${record?.version}); use that version to fetch it`,
      );
    }
    const local = localized(record, this.cwd, machineName(this.#env));
    this.#revisions.set(local, stored.revision);
    return local;
  }

  /** The record of job `id`, or undefined. */
  async load(id: string): Promise<JobRecord | undefined> {
    this.#checkId(id);
    const stored = await this.storage.jobs.get(id);
    return stored && this.#parse(stored);
  }

  /** Every job's record, oldest first. Unreadable records are reported, not skipped silently. */
  async list(): Promise<{ records: JobRecord[]; problems: string[] }> {
    const records: JobRecord[] = [];
    const problems: string[] = [];
    for (const stored of await this.storage.jobs.list()) {
      try {
        records.push(this.#parse(stored));
      } catch (error) {
        problems.push((error as Error).message);
      }
    }
    records.sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
    return { records, problems };
  }

  /**
   * Removes a job's record, results and ids in one step. Removing a job that is gone already
   * does nothing.
   */
  async remove(id: string): Promise<void> {
    this.#checkId(id);
    failpoint("fetch:removing");
    await this.storage.jobs.remove(id);
  }

  /**
   * Saves a shard's outcomes (all at once: a killed download leaves none), one per row (an answer
   * beats an error), so that a merge can read every shard's results alongside the input in one
   * pass. They stream into the store as they come (see {@link resultRows}); the store keeps them
   * by row, in whatever order they came.
   */
  async saveResults(
    id: string,
    shard: number,
    outcomes: AsyncIterable<SavedOutcome | readonly SavedOutcome[]>,
  ): Promise<void> {
    await this.storage.results.put(id, shard, resultRows(outcomes));
  }

  /** Saves the custom ids of a shard, in submission order (before it is submitted). */
  async saveIds(id: string, shard: number, ids: readonly string[]): Promise<void> {
    await this.storage.attachments.put(id, idsName(shard), packIds(ids));
  }

  /** The custom ids a shard was submitted with, or undefined when they were not saved. */
  async readIds(id: string, shard: number): Promise<string[] | undefined> {
    const text = await this.storage.attachments.get(id, idsName(shard));
    return text === undefined ? undefined : unpackIds(text);
  }

  /** Reads a shard's saved outcomes, by row. */
  async *readResults(id: string, shard: number): AsyncGenerator<SavedOutcome> {
    const reader = await this.outcomes(id, shard);
    try {
      for (let o = await reader.next(); o; o = await reader.next()) yield o;
    } finally {
      await reader.close();
    }
  }

  /**
   * A reader of a shard's saved outcomes, by row (close it when done).
   * @throws LoomError when they were never saved (the store was changed outside Loom).
   */
  async outcomes(id: string, shard: number): Promise<SavedOutcomeReader> {
    return new SavedOutcomeReader(await this.#resultRows(id, shard));
  }

  /** A shard's saved rows as the store keeps them (`saved-results.ts`), by row. */
  async #resultRows(id: string, shard: number): Promise<AsyncIterable<ResultRow>> {
    if (!(await this.storage.results.has(id, shard))) {
      throw new LoomError(
        `job ${id}: the saved results of batch ${
          shard + 1
        } are missing from ${this.location} (the store was changed outside Loom); run loom fetch --id ${id} again to download them`,
      );
    }
    return this.storage.results.read(id, shard);
  }

  /**
   * Takes the job's lease, so two processes (on one machine or several) never merge or submit the
   * same job at once. A lease whose holder is gone (killed) is taken over.
   * @throws LoomBusyError when another running Loom holds it.
   */
  async #lock(id: string): Promise<() => Promise<void>> {
    this.#checkId(id);
    const lease = await takeLease(
      this.storage,
      `job:${id}`,
      `job ${id} is being worked on by another Loom`,
      this.#env,
    );
    return () => lease.release();
  }

  /**
   * Runs `work` on the job's current record under its lease: the one frame of every step that
   * changes a job. `work` gets undefined when the job no longer exists (merged and removed).
   */
  async withLockedJob<T>(
    id: string,
    work: (record: JobRecord | undefined) => Promise<T>,
  ): Promise<T> {
    const unlock = await this.#lock(id);
    try {
      return await work(await this.load(id));
    } finally {
      // A store gone mid-release leaves a lease that expires: never hide the work's own error.
      await unlock().catch(() => {});
    }
  }

  /**
   * Takes the lease of a job's key (its spec and input), held from the check for an identical
   * pending job until the new job's record is saved: two `loom run` of the same job at once then
   * submit it once.
   */
  async lockKey(key: string): Promise<() => Promise<void>> {
    const lease = await takeLease(
      this.storage,
      `submit:${key.slice(0, 32)}`,
      "the same job is being submitted by another Loom",
      this.#env,
    );
    return () => lease.release();
  }
}
