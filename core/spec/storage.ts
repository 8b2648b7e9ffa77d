/**
 * The storage plugin contract, version 2: the one place Loom keeps state — batch job records,
 * each shard's saved results (one value per input row), named per-job attachments, leases (locks
 * with an expiry), the response cache, and (optionally) records of sync runs.
 *
 * A backend is shared by every Loom process that opens the same location, possibly on several
 * machines (PostgreSQL), so each step that must be atomic is one call:
 * - a job record is written with compare-and-set on its revision ({@link JobTableV2.put});
 * - a shard's results are replaced all at once ({@link ResultTableV2.put});
 * - a job is removed with everything it owns in one step ({@link JobTableV2.remove});
 * - a lease is taken only when it is free, expired, or still held by the holder the caller
 *   names ({@link LeaseTableV2.acquire}).
 * Lease expiry is measured on the backend's own clock (the database server's for a shared one),
 * so machines whose clocks disagree still agree on who holds a lease.
 *
 * Values are opaque strings (JSON by convention); the backend never parses them. Every method may
 * reject with an error whose message names the store (its {@link StorageV2.location}) and never
 * holds a password.
 * @module
 */

/** A stored job record with its revision (1 for a record written once, then 2, 3, …). */
export interface StoredJob {
  readonly id: string;
  readonly revision: number;
  /** The record as stored (JSON written by the core). */
  readonly record: string;
}

/** Batch job records. Ids are `[A-Za-z0-9_-]{1,64}`. */
export interface JobTableV2 {
  /** The record of job `id`, or undefined. */
  get(id: string): Promise<StoredJob | undefined>;
  /** Every job record, in no particular order. */
  list(): Promise<StoredJob[]>;
  /**
   * Writes the record of job `id` if its stored revision is still `expected` (0: the job must not
   * exist yet). Returns the new revision (`expected + 1`), or undefined when the revision was
   * another (someone else wrote or removed it meanwhile): then nothing is written.
   */
  put(id: string, record: string, expected: number): Promise<number | undefined>;
  /**
   * Removes the job, its results, its attachments and its lease in one step. Removing a job that
   * does not exist is not an error.
   */
  remove(id: string): Promise<void>;
}

/** One saved value of an input row (the row's 0-based position in the input). */
export interface ResultRow {
  readonly row: number;
  readonly value: string;
}

/** Saved batch results: per job and shard, one value per row. */
export interface ResultTableV2 {
  /**
   * Replaces shard `shard`'s results of job `job` with `rows` (each row at most once), all at
   * once: a reader sees the previous set or the new one, never part of it, even if the process is
   * killed while `rows` is being read.
   */
  put(
    job: string,
    shard: number,
    rows: Iterable<ResultRow> | AsyncIterable<ResultRow>,
  ): Promise<void>;
  /** Whether the shard's results were saved (an empty set counts). */
  has(job: string, shard: number): Promise<boolean>;
  /**
   * The shard's results in ascending row order, streamed (a shard may hold 100,000 rows: a
   * backend never loads them all at once). Empty when none were saved.
   */
  read(job: string, shard: number): AsyncIterable<ResultRow>;
}

/** Named text values of a job (e.g. a shard's custom ids), removed with the job. */
export interface AttachmentTableV2 {
  /** Stores `value` under `name` for job `job`, replacing any previous value. */
  put(job: string, name: string, value: string): Promise<void>;
  /** The value, or undefined. */
  get(job: string, name: string): Promise<string | undefined>;
}

/** A lease as the store holds it. */
export interface LeaseInfo {
  /** Who holds it, as the taker described itself (e.g. `pid 4242 on build-7 (3f1c…)`). */
  readonly holder: string;
  /** Unique to one taking of the lease: renew and release need it. */
  readonly token: string;
  /** When it expires unless renewed, on the store's clock (ms since the epoch). */
  readonly expiresAt: number;
}

/** What {@link LeaseTableV2.acquire} answers. */
export type LeaseAttempt =
  | { readonly ok: true; readonly lease: LeaseInfo }
  | { readonly ok: false; readonly current: LeaseInfo };

/**
 * Leases: locks that expire. A holder renews its lease while it works; a holder that was killed
 * stops renewing, and the lease is free once it expires.
 */
export interface LeaseTableV2 {
  /**
   * Takes lease `name` for `holder` for `ttlMs`, when nobody holds it, when it has expired, or when
   * its current token is `replacing` (the caller found that holder gone, e.g. a dead local
   * process). Otherwise answers the current lease, and changes nothing.
   */
  acquire(
    name: string,
    holder: string,
    ttlMs: number,
    replacing?: string,
  ): Promise<LeaseAttempt>;
  /**
   * Extends the lease held with `token` to `ttlMs` from now (an expired lease nobody took over is
   * still held); false when it was lost: released, or taken over by another.
   */
  renew(name: string, token: string, ttlMs: number): Promise<boolean>;
  /** Releases a lease held with `token`; releasing a lost or absent lease does nothing. */
  release(name: string, token: string): Promise<void>;
}

/** A stored record of a sync run. */
export interface StoredRun {
  readonly id: string;
  /** The record as stored (JSON written by the core). */
  readonly record: string;
}

/**
 * Records of sync runs (`loom run --sync`), one per run, written by the one process that runs it:
 * at its start, every few seconds while it runs, and at its end. Ids are `[A-Za-z0-9_-]{1,64}`.
 */
export interface RunTableV2 {
  /** The record of run `id`, or undefined. */
  get(id: string): Promise<string | undefined>;
  /** Every run record, in no particular order. */
  list(): Promise<StoredRun[]>;
  /** Stores the record of run `id`, replacing any previous one. */
  put(id: string, record: string): Promise<void>;
  /** Removes the record; removing one that does not exist is not an error. */
  remove(id: string): Promise<void>;
}

/** Figures of the response cache. */
export interface CacheStats {
  readonly entries: number;
  /** Bytes of the stored keys and values (what the data takes, not the store's overhead). */
  readonly bytes: number;
  /** When the oldest and the newest entry were stored (ms since the epoch); absent when empty. */
  readonly oldest?: number;
  readonly newest?: number;
}

/** The response cache: values by key (64 hex characters), each stamped with when it was stored. */
export interface CacheTableV2 {
  /** The value, or undefined. */
  get(key: string): Promise<string | undefined>;
  /**
   * Optional: the values of many keys in one round trip (a sync run looks up its rows in chunks
   * of hundreds). The answer holds the keys that are stored, and no others; a key given twice
   * counts once. Added within `loom.storage.v2`: a store without it is asked key by key with
   * {@link CacheTableV2.get}, so it stays a valid v2 store.
   */
  getMany?(keys: readonly string[]): Promise<Map<string, string>>;
  /**
   * Stores a value, replacing any previous one (and its time). Durable when it resolves: a
   * killed process loses no value whose `set` had resolved. Many sets made at once may share
   * one commit; each still resolves only once its value is committed.
   */
  set(key: string, value: string): Promise<void>;
  /**
   * Removes every entry; returns how many. Safe while another process writes to the cache: an
   * entry stored after the clear began may stay.
   */
  clear(): Promise<number>;
  /** Removes the entries stored before `before` (ms since the epoch); returns how many. */
  prune(before: number): Promise<number>;
  stats(): Promise<CacheStats>;
}

/** A storage backend (version 2). */
export interface StorageV2 {
  readonly specificationVersion: "loom.storage.v2";
  /** Registry name, e.g. `sqlite`. */
  readonly name: string;
  /** Where the data lives, for messages (a file, a URL with its password masked); never a secret. */
  readonly location: string;
  readonly jobs: JobTableV2;
  readonly results: ResultTableV2;
  readonly attachments: AttachmentTableV2;
  readonly leases: LeaseTableV2;
  readonly cache: CacheTableV2;
  /**
   * Optional: sync run records (for `loom view`). Added within `loom.storage.v2`: a store without
   * it stays a valid v2 store, and its sync runs are simply not recorded.
   */
  readonly runs?: RunTableV2;
  /** Releases connections and handles; the instance is not used afterwards. */
  close(): Promise<void>;
}

const JOB_ID = /^[A-Za-z0-9_-]{1,64}$/;

/** Throws unless `id` is a valid job id (backends check ids they are given). */
export function assertJobId(id: string): void {
  if (!JOB_ID.test(id)) throw new TypeError(`invalid job id: ${JSON.stringify(id)}`);
}
