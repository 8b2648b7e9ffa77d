/**
 * Batch jobs on disk, under `LOOM_HOME/jobs/<id>/`: the job's record (`job.json`), one results
 * file per fetched shard (`shard-<n>.jsonl`), and a lock while a process works on the job. Every
 * write goes to a private temporary file that is renamed into place, so a process killed at any
 * point leaves the previous version or the next, never a torn one.
 * @module
 */
import { randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import { link, mkdir, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { createInterface } from "node:readline";
import { LoomError, LoomUsageError } from "../errors.ts";
import type { JobSpec } from "../job/schema.ts";
import { failpoint } from "../failpoints.ts";
import { isAlive, writeFileAtomic } from "../output.ts";
import type { BatchHandle, BatchState, BatchUpload, GenerateResult } from "../spec/provider.ts";

/** Version of the record layout; a record of another version is refused, never misread. */
export const JOB_RECORD_VERSION = 1;

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
  fetched?: { readonly ok: number; readonly errors: number; readonly at: string };
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
  /** The validated job, with absolute paths. Never holds an API key. */
  readonly spec: JobSpec;
  readonly input: InputFingerprint;
  readonly output: string;
  readonly rows: number;
  shards: ShardRecord[];
  /** Set by a merge: how the rows ended. */
  merged?: {
    readonly at: string;
    readonly ok: number;
    readonly errors: number;
    /** Errors a retry could fix (the others are rows with no prompt, never sent). */
    readonly retryable?: number;
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

/** Joins lines into chunks of about 64 KiB: a write per line would make the disk the bottleneck. */
function* chunked(lines: Iterable<string>): Generator<string> {
  let chunk = "";
  for (const line of lines) {
    chunk += line;
    if (chunk.length >= 65_536) {
      yield chunk;
      chunk = "";
    }
  }
  if (chunk) yield chunk;
}

/** Whether `next` should replace `current` as a row's outcome: an answer beats everything, an error only nothing. */
export function better(next: SavedOutcome, current: SavedOutcome | undefined): boolean {
  return current === undefined || "r" in next || !("r" in current);
}

/** A new job id: the date, then random hex (`20261127-3fa9c2`). */
export function newJobId(now = new Date()): string {
  return `${now.toISOString().slice(0, 10).replaceAll("-", "")}-${randomBytes(3).toString("hex")}`;
}

const PRIVATE = { mode: 0o600, dirMode: 0o700 };

/** Prefix of a job folder renamed aside to be deleted. */
const REMOVING = ".removing-";

/** Reads and writes job records under `<home>/jobs`. */
export class JobStore {
  readonly dir: string;

  constructor(home: string) {
    this.dir = join(home, "jobs");
  }

  #jobDir(id: string): string {
    if (!/^[A-Za-z0-9_-]+$/.test(id)) {
      throw new LoomUsageError(`not a job id: ${JSON.stringify(id)}`);
    }
    return join(this.dir, id);
  }

  /** Saves a record (atomically), stamping `updatedAt`. */
  async save(record: JobRecord): Promise<void> {
    record.updatedAt = new Date().toISOString();
    // Compact: a retry's row list can be long, and the record is rewritten at every step.
    await writeFileAtomic(join(this.#jobDir(record.id), "job.json"), [
      JSON.stringify(record) + "\n",
    ], PRIVATE);
  }

  /** The record of job `id`, or undefined. */
  async load(id: string): Promise<JobRecord | undefined> {
    let text: string;
    try {
      text = await readFile(join(this.#jobDir(id), "job.json"), "utf8");
    } catch (error) {
      if ((error as { code?: string }).code === "ENOENT") return undefined;
      throw new LoomError(`cannot read the record of job ${id}: ${(error as Error).message}`, {
        cause: error,
      });
    }
    let record: JobRecord;
    try {
      record = JSON.parse(text);
    } catch (error) {
      throw new LoomError(
        `the record of job ${id} is corrupt (${join(this.#jobDir(id), "job.json")}): ${
          (error as Error).message
        }`,
      );
    }
    if (record.version !== JOB_RECORD_VERSION) {
      throw new LoomError(
        `job ${id} was written by another version of Loom (record version ${record.version}); use that version to fetch it`,
      );
    }
    return record;
  }

  /** Every job's record, oldest first. Unreadable records are reported, not skipped silently. */
  async list(): Promise<{ records: JobRecord[]; problems: string[] }> {
    let names: string[] = [];
    try {
      names = await readdir(this.dir);
    } catch (error) {
      if ((error as { code?: string }).code !== "ENOENT") throw error;
    }
    const records: JobRecord[] = [];
    const problems: string[] = [];
    for (const name of names.sort()) {
      if (name.startsWith(REMOVING)) {
        await rm(join(this.dir, name), { recursive: true, force: true }).catch(() => {});
      }
      if (name.startsWith(".")) continue; // locks of submissions, folders being removed
      try {
        const record = await this.load(name);
        if (record) records.push(record);
      } catch (error) {
        problems.push((error as Error).message);
      }
    }
    records.sort((a, b) => a.createdAt.localeCompare(b.createdAt));
    return { records, problems };
  }

  /**
   * Removes a job's record and results, all at once: the folder is renamed aside (atomic), then
   * deleted, so a kill never leaves half a job where Loom looks for jobs (what it leaves aside is
   * swept by {@link list}). Removing a job that is gone already does nothing.
   */
  async remove(id: string): Promise<void> {
    const aside = join(this.dir, `${REMOVING}${id}.${randomBytes(4).toString("hex")}`);
    try {
      await rename(this.#jobDir(id), aside);
    } catch (error) {
      if ((error as { code?: string }).code === "ENOENT") return;
      throw error;
    }
    failpoint("fetch:removing");
    await rm(aside, { recursive: true, force: true });
  }

  /** Path of a shard's saved results. */
  resultsPath(id: string, shard: number): string {
    return join(this.#jobDir(id), `shard-${shard}.jsonl`);
  }

  /**
   * Saves a shard's outcomes (atomically: a killed download leaves no partial file), sorted by
   * row, one per row (an answer beats an error), so that a merge can read every shard's file
   * alongside the input in one pass. A shard holds at most the provider's batch limit of rows.
   */
  async saveResults(
    id: string,
    shard: number,
    outcomes: AsyncIterable<SavedOutcome>,
  ): Promise<void> {
    const byRow = new Map<number, SavedOutcome>();
    for await (const o of outcomes) if (better(o, byRow.get(o.i))) byRow.set(o.i, o);
    const sorted = [...byRow.values()].sort((a, b) => a.i - b.i);
    await writeFileAtomic(
      this.resultsPath(id, shard),
      chunked(sorted.map((o) => JSON.stringify(o) + "\n")),
      PRIVATE,
    );
  }

  /** Path of the custom ids a shard was submitted with, in order. */
  #idsPath(id: string, shard: number): string {
    return join(this.#jobDir(id), `shard-${shard}.ids`);
  }

  /** Saves the custom ids of a shard, in submission order (before it is submitted). */
  async saveIds(id: string, shard: number, ids: readonly string[]): Promise<void> {
    await writeFileAtomic(this.#idsPath(id, shard), chunked(ids.map((c) => c + "\n")), PRIVATE);
  }

  /** The custom ids a shard was submitted with, or undefined when they were not saved. */
  async readIds(id: string, shard: number): Promise<string[] | undefined> {
    const text = await readFile(this.#idsPath(id, shard), "utf8").catch(() => undefined);
    return text === undefined ? undefined : text.split("\n").filter(Boolean);
  }

  /** Reads a shard's saved outcomes. */
  async *readResults(id: string, shard: number): AsyncGenerator<SavedOutcome> {
    const path = this.resultsPath(id, shard);
    if (!(await stat(path).catch(() => undefined))) {
      throw new LoomError(
        `job ${id}: the saved results of batch ${shard + 1} are missing from ${
          this.#jobDir(id)
        } (the folder was changed outside Loom)`,
      );
    }
    const lines = createInterface({ input: createReadStream(path), crlfDelay: Infinity });
    for await (const line of lines) if (line) yield JSON.parse(line) as SavedOutcome;
  }

  /**
   * Takes the job's lock, so two processes never merge or submit the same job at once. A lock
   * whose process is gone (killed) is taken over. A job that no longer exists (merged and removed
   * meanwhile) needs no lock: the caller finds no record.
   * @throws LoomUsageError when another running Loom holds it.
   */
  async lock(id: string): Promise<() => Promise<void>> {
    const dir = this.#jobDir(id);
    if (!(await stat(dir).catch(() => undefined))) return async () => {};
    return takeLock(dir, "lock", `job ${id} is being worked on by another Loom`);
  }

  /**
   * Takes the lock of a job's key (its spec and input), held from the check for an identical
   * pending job until the new job's record is saved: two `loom run` of the same job at once then
   * submit it once.
   */
  async lockKey(key: string): Promise<() => Promise<void>> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    return takeLock(
      this.dir,
      `.submit-${key.slice(0, 32)}.lock`,
      "the same job is being submitted by another Loom",
    );
  }
}

/**
 * Takes the lock file `name` in `dir`. It appears with its holder already written (a hard link is
 * created atomically), so no one reads an empty lock. A lock whose holder is gone is renamed
 * aside first, and only taken over if what was renamed is still that holder's.
 */
async function takeLock(dir: string, name: string, busy: string): Promise<() => Promise<void>> {
  const path = join(dir, name);
  const me = `${process.pid}@${hostname()}`;
  const mine = join(dir, `${name}.${process.pid}.${randomBytes(4).toString("hex")}`);
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      await writeFile(mine, me, { mode: 0o600 }).catch((error) => {
        // A failed write names no file, so name the folder. unverified: that a write error
        // has no `path` (observed on Node and Deno: a full disk says only `write`).
        throw Object.assign(error as object, { path: (error as { path?: unknown }).path ?? dir });
      });
      await link(mine, path);
      await rm(mine, { force: true });
      let released = false;
      return async () => {
        if (!released) await rm(path, { force: true });
        released = true;
      };
    } catch (error) {
      await rm(mine, { force: true });
      const code = (error as { code?: string }).code;
      if (code === "ENOENT") return async () => {}; // the job's folder was removed meanwhile
      if (code !== "EEXIST") throw error;
      const holder = await readFile(path, "utf8").catch(() => undefined);
      if (holder === undefined) continue; // released just now: try again
      const [pid, host] = holder.split("@");
      const gone = host === hostname() && Number.isInteger(Number(pid)) && !isAlive(Number(pid));
      if (!gone) throw new LoomUsageError(`${busy} (process ${holder}); try again when it is done`);
      // Two processes may find the same dead holder: only the one whose rename moves it goes on.
      const aside = `${mine}.stale`;
      if (await rename(path, aside).then(() => true, () => false)) {
        const moved = await readFile(aside, "utf8").catch(() => "");
        if (moved !== holder) {
          // A live process took it over meanwhile: give its lock back.
          await link(aside, path).catch(() => {});
          await rm(aside, { force: true });
          throw new LoomUsageError(`${busy}; try again when it is done`);
        }
        await rm(aside, { force: true });
      }
    }
  }
  throw new LoomUsageError(`${busy}; it keeps taking the lock`);
}
