/**
 * Moving the state an older Loom kept as files under `LOOM_HOME` into the state store, once:
 * - `jobs/<id>/job.json`, the batch job's record (version 1), with `shard-<n>.jsonl` (its saved
 *   outcomes, one JSON line per row, `{"i": row, …}`, sorted) and `shard-<n>.ids` (the custom ids
 *   a shard was submitted with), beside a `lock` while a process worked on the job;
 * - `cache/v1/<2 hex>/<64 hex key>`, one JSON file per cached answer.
 *
 * Everything is imported first, then the old folders are renamed into `old-state-<time>/` (never
 * deleted by Loom), so a process killed midway leaves them in place and the next start finishes
 * the import: every step can be repeated (a job's record is written last, and only when absent;
 * results, attachments and cache entries are replaced). Nothing is dropped silently: a job that
 * cannot be imported stays in the old folder and the note says which and why.
 * @module
 */
import { createReadStream } from "node:fs";
import { mkdir, readdir, readFile, rename, stat } from "node:fs/promises";
import { hostname } from "node:os";
import { basename, join } from "node:path";
import { createInterface } from "node:readline";
import { setTimeout as sleep } from "node:timers/promises";
import { errorMessage, LoomBusyError, LoomError } from "../base/errors.ts";
import { isAlive } from "../data/output.ts";
import type { ResultRow, StorageV2 } from "../spec/storage.ts";
import { type HeldLease, takeLease } from "./lease.ts";

/** The store lease held while files are imported, so two starting processes import once. */
export const MIGRATE_LEASE = "migrate-files";

/** The only record version the file layout ever had (`core/batch/store.ts` before the store). */
const FILE_RECORD_VERSION = 1;
/** What the contract accepts as a job id. */
const JOB_ID = /^[A-Za-z0-9_-]{1,64}$/;
const SHARD_FILE = /^shard-(\d+)\.(jsonl|ids)$/;
const CACHE_KEY = /^[0-9a-f]{64}$/;
/** Suffix of every temporary file the file layout wrote (atomic writes, cache entries). */
const TEMP_SUFFIX = ".loom-tmp";
/** Cache files imported at once (a shared store answers several writes at a time). */
const CACHE_WRITERS = 8;

/** Options of {@link migrateFileState}. */
export interface FileMigrationOptions {
  /** Receives the line that says what was moved, and one if it waits for another process. */
  onNote?(line: string): void;
  /** Environment: `LOOM_LEASE_SECONDS`, `LOOM_HOST_ID` (default the process's). */
  env?: Readonly<Record<string, string | undefined>>;
  /** How often a process that finds the lease taken asks again (default 250 ms). */
  pollMs?: number;
}

/** A job that was not imported, and why. */
export interface JobLeftOut {
  readonly id: string;
  readonly reason: string;
}

/** What one migration did. */
export interface FileMigrationReport {
  /** Jobs imported by this run. */
  readonly jobs: number;
  /** Jobs found in the store already (imported by a run that was cut off afterwards). */
  readonly jobsPresent: number;
  /** Jobs not imported: they stay in the old folder. */
  readonly notImported: readonly JobLeftOut[];
  /** Jobs another live process holds the lock of: left in `LOOM_HOME/jobs` for a later run. */
  readonly deferred: readonly JobLeftOut[];
  /** Cache entries imported. */
  readonly cached: number;
  /** Cache files skipped: temporary files of writes, and names that are no cache key. */
  readonly cacheTemps: number;
  readonly cacheMalformed: number;
  /** Cache files that could not be read (kept in the old folder). */
  readonly cacheUnreadable: number;
  /** Where the old files are kept now; undefined when nothing was moved. */
  readonly keptIn?: string;
}

/** A job's files are not what the file layout wrote: the job is left out, the rest goes on. */
class JobFilesError extends Error {}

/**
 * Imports the file state under `home` into `store` when there is any (`home/jobs`,
 * `home/cache`), then moves the old folders aside and reports one note line. Resolves undefined
 * when there was nothing to import. Safe to call at every start: with no old folders it costs two
 * `stat`s. A store error rejects, leaving the old folders in place for the next start.
 */
export async function migrateFileState(
  home: string,
  store: StorageV2,
  options: FileMigrationOptions = {},
): Promise<FileMigrationReport | undefined> {
  if (!(await hasOldState(home))) return undefined;
  const lease = await waitForLease(store, options);
  const guard = () => {
    if (lease.lost) {
      throw new LoomError(
        `lost the "${MIGRATE_LEASE}" lease of ${store.location} while importing the files under ` +
          `${home}; the next start of Loom finishes the import`,
      );
    }
  };
  try {
    // Another process may have finished while this one waited for the lease.
    if (!(await hasOldState(home))) return undefined;
    const report = await migrate(home, store, guard);
    options.onNote?.(noteOf(report, store.location));
    return report;
  } finally {
    await lease.release().catch(() => {}); // it expires anyway
  }
}

async function hasOldState(home: string): Promise<boolean> {
  const found = await Promise.all(
    ["jobs", "cache"].map((name) => stat(join(home, name)).then(() => true, () => false)),
  );
  return found.includes(true);
}

/**
 * Takes the migration lease (at once from a dead holder of this machine), waiting while a live
 * process holds it: a Loom that starts while another imports uses the store once it is complete.
 */
async function waitForLease(store: StorageV2, options: FileMigrationOptions): Promise<HeldLease> {
  const busy = `old files are being moved into ${store.location} by another Loom`;
  let told = false;
  for (;;) {
    try {
      return await takeLease(store, MIGRATE_LEASE, busy, options.env);
    } catch (error) {
      if (!(error instanceof LoomBusyError)) throw error;
      if (!told) options.onNote?.(`waiting: ${error.message.replace(/; try again.*$/, "")}`);
      told = true;
    }
    await sleep(options.pollMs ?? 250);
  }
}

async function migrate(
  home: string,
  store: StorageV2,
  guard: () => void,
): Promise<FileMigrationReport> {
  // Everything is imported before anything moves, so a cut-off run leaves every old file in place.
  const jobs = await importJobs(join(home, "jobs"), store, guard);
  const cache = await importCache(join(home, "cache"), store, guard);
  guard(); // a process that lost the lease moves nothing: the one that took it over does
  const aside = new AsideFolder(home);
  if (jobs.deferred.length === 0 && jobs.found) {
    await rename(join(home, "jobs"), join(await aside.path(), "jobs"));
  } else if (jobs.done.length > 0) {
    // The folder stays for the jobs in use; the others go aside one by one.
    const target = join(await aside.path(), "jobs");
    await mkdir(target, { recursive: true, mode: 0o700 });
    for (const name of jobs.done) await rename(join(home, "jobs", name), join(target, name));
  }
  if (cache.found) await rename(join(home, "cache"), join(await aside.path(), "cache"));
  return {
    jobs: jobs.jobs,
    jobsPresent: jobs.jobsPresent,
    notImported: jobs.notImported,
    deferred: jobs.deferred,
    cached: cache.cached,
    cacheTemps: cache.cacheTemps,
    cacheMalformed: cache.cacheMalformed,
    cacheUnreadable: cache.cacheUnreadable,
    keptIn: aside.made,
  };
}

/** The `old-state-<time>` folder, made when the first thing is moved into it. */
class AsideFolder {
  readonly #home: string;
  made?: string;

  constructor(home: string) {
    this.#home = home;
  }

  async path(): Promise<string> {
    if (this.made) return this.made;
    const stamp = new Date().toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z");
    for (let n = 1;; n++) {
      const dir = join(this.#home, `old-state-${stamp}${n === 1 ? "" : `-${n}`}`);
      try {
        await mkdir(dir, { mode: 0o700 });
        return (this.made = dir);
      } catch (error) {
        if ((error as { code?: string }).code !== "EEXIST") throw error;
      }
    }
  }
}

/** What {@link importJobs} did: the report's counts, and the job folders it is done with. */
interface JobsImport {
  jobs: number;
  jobsPresent: number;
  notImported: JobLeftOut[];
  deferred: JobLeftOut[];
  /** Whether there is a `jobs` folder. */
  found: boolean;
  done: string[];
}

async function importJobs(dir: string, store: StorageV2, guard: () => void): Promise<JobsImport> {
  const result: JobsImport = {
    jobs: 0,
    jobsPresent: 0,
    notImported: [],
    deferred: [],
    found: false,
    done: [],
  };
  const entries = await readdir(dir, { withFileTypes: true }).catch((error) => {
    if ((error as { code?: string }).code === "ENOENT") return undefined;
    throw error;
  });
  if (entries === undefined) return result;
  result.found = true;
  const names = entries.filter((e) => e.isDirectory()).map((e) => e.name).sort();
  for (const name of names) {
    // `.removing-*` is a job being deleted; it goes aside with the folder, as do submit locks.
    if (name.startsWith(".")) continue;
    guard();
    const holder = await liveLockHolder(join(dir, name, "lock"));
    if (holder !== undefined) {
      result.deferred.push({ id: name, reason: `in use by process ${holder}` });
      continue;
    }
    const outcome = await importJob(join(dir, name), name, store);
    if (outcome === "imported") result.jobs++;
    else if (outcome === "present") result.jobsPresent++;
    else result.notImported.push(outcome);
    result.done.push(name);
  }
  return result;
}

/**
 * The holder (`pid@host`) of a job's lock when it may be a running process: one of this machine
 * that is alive, or one of another machine (which cannot be checked from here, as before).
 */
async function liveLockHolder(path: string): Promise<string | undefined> {
  const holder = await readFile(path, "utf8").catch(() => undefined);
  if (holder === undefined) return undefined;
  const [pid, host] = holder.split("@");
  const gone = host === hostname() && /^\d+$/.test(pid) && !isAlive(Number(pid));
  return gone ? undefined : holder.trim();
}

/** Imports one job folder: its results and custom ids first, its record last. */
async function importJob(
  dir: string,
  id: string,
  store: StorageV2,
): Promise<"imported" | "present" | JobLeftOut> {
  if (!JOB_ID.test(id)) return { id, reason: "its folder's name is no job id" };
  let record: string;
  try {
    record = await readRecord(dir, id);
  } catch (error) {
    if (error instanceof JobFilesError) return { id, reason: error.message };
    throw error;
  }
  const stored = await store.jobs.get(id);
  if (stored) {
    return sameJob(stored.record, record)
      ? "present"
      : { id, reason: "another job with this id is in the store (it was not overwritten)" };
  }
  // A backend may wrap the error of the rows it reads: the rows' own fault is kept here too.
  const fault: { error?: JobFilesError } = {};
  try {
    const names = await readdir(dir).catch((error) => {
      throw new JobFilesError(`its folder cannot be read: ${errorMessage(error)}`);
    });
    for (const name of names.sort()) {
      const match = SHARD_FILE.exec(name);
      if (!match) continue; // job.json, lock, temporary files
      const shard = Number(match[1]);
      if (match[2] === "jsonl") {
        await store.results.put(id, shard, savedRows(join(dir, name), fault));
      } else {
        await store.attachments.put(id, `ids-${shard}`, await readText(join(dir, name)));
      }
    }
  } catch (error) {
    const bad = error instanceof JobFilesError ? error : fault.error;
    if (bad === undefined) throw error;
    // The job has no record in the store: what was imported of it goes, the files stay.
    await store.jobs.remove(id);
    return { id, reason: bad.message };
  }
  if ((await store.jobs.put(id, record, 0)) !== undefined) return "imported";
  const now = await store.jobs.get(id);
  return now && sameJob(now.record, record)
    ? "present"
    : { id, reason: "another job with this id was stored meanwhile (it was not overwritten)" };
}

/** The text of a job's record, checked to be one Loom can read. */
async function readRecord(dir: string, id: string): Promise<string> {
  const text = await readText(join(dir, "job.json"));
  let record: { version?: unknown; id?: unknown };
  try {
    record = JSON.parse(text);
  } catch (error) {
    throw new JobFilesError(`its record (job.json) is not JSON: ${errorMessage(error)}`);
  }
  if (typeof record !== "object" || record === null) {
    throw new JobFilesError("its record (job.json) is not a job record");
  }
  if (record.version !== FILE_RECORD_VERSION) {
    throw new JobFilesError(
      `its record was written by another version of Loom (record version ${
        JSON.stringify(record.version)
      })`,
    );
  }
  if (record.id !== id) {
    throw new JobFilesError(`its record names another job (${JSON.stringify(record.id)})`);
  }
  return text;
}

/** Whether two record texts are the same job (the store's may have moved on since it was imported). */
function sameJob(stored: string, file: string): boolean {
  if (stored === file) return true;
  try {
    const [a, b] = [JSON.parse(stored), JSON.parse(file)];
    return a.id === b.id && a.key === b.key && a.createdAt === b.createdAt;
  } catch {
    return false;
  }
}

async function readText(path: string): Promise<string> {
  try {
    return await readFile(path, "utf8");
  } catch (error) {
    const code = (error as { code?: string }).code;
    const file = basename(path);
    throw new JobFilesError(
      code === "ENOENT"
        ? `it has no ${file}`
        : `its ${file} cannot be read: ${errorMessage(error)}`,
    );
  }
}

/** The rows of a `shard-<n>.jsonl`, streamed, each line's text kept as it is. */
async function* savedRows(
  path: string,
  fault: { error?: JobFilesError },
): AsyncGenerator<ResultRow> {
  const file = basename(path);
  const input = createReadStream(path);
  const lines = createInterface({ input, crlfDelay: Infinity });
  let previous = -1;
  let n = 0;
  try {
    for await (const line of lines) {
      n++;
      if (!line) continue;
      let row: unknown;
      try {
        row = (JSON.parse(line) as { i?: unknown })?.i;
      } catch {
        row = undefined;
      }
      if (!Number.isSafeInteger(row) || (row as number) <= previous) {
        throw new JobFilesError(`${file} line ${n} is not a saved outcome of the next row`);
      }
      previous = row as number;
      yield { row: previous, value: line };
    }
  } catch (error) {
    throw (fault.error = error instanceof JobFilesError
      ? error
      : new JobFilesError(`its ${file} cannot be read: ${errorMessage(error)}`));
  } finally {
    input.destroy();
  }
}

/** Imports the cache files under `dir`; `found` is false when there is no such folder. */
async function importCache(
  dir: string,
  store: StorageV2,
  guard: () => void,
): Promise<
  & Pick<FileMigrationReport, "cached" | "cacheTemps" | "cacheMalformed" | "cacheUnreadable">
  & { found: boolean }
> {
  const counts = { cached: 0, cacheTemps: 0, cacheMalformed: 0, cacheUnreadable: 0 };
  if (!(await stat(dir).then((s) => s.isDirectory(), () => false))) {
    return { ...counts, found: false };
  }
  const files = filesUnder(dir, "");
  let failed = false;
  const writer = async () => {
    while (!failed) {
      const next = await files.next();
      if (next.done) return;
      guard();
      const path = next.value;
      const [version, fan, key, ...rest] = path.split("/");
      if (path.endsWith(TEMP_SUFFIX)) counts.cacheTemps++;
      else if (
        version !== "v1" || rest.length > 0 || !CACHE_KEY.test(key ?? "") || key.slice(0, 2) !== fan
      ) {
        counts.cacheMalformed++;
      } else {
        const value = await readFile(join(dir, path), "utf8").catch(() => undefined);
        if (value === undefined) {
          counts.cacheUnreadable++;
          continue;
        }
        // Stamped now, not with the file's time: the contract's set takes none, so a prune
        // counts a moved answer's age from the move.
        await store.cache.set(key, value);
        counts.cached++;
      }
    }
  };
  const settled = await Promise.allSettled(
    Array.from({ length: CACHE_WRITERS }, () =>
      writer().catch((error) => {
        failed = true;
        throw error;
      })),
  );
  const rejected = settled.find((s) => s.status === "rejected");
  if (rejected) throw (rejected as PromiseRejectedResult).reason;
  return { ...counts, found: true };
}

/** Paths (with `/`) of the files under `dir`, relative to it. */
async function* filesUnder(dir: string, prefix: string): AsyncGenerator<string> {
  for (const entry of await readdir(join(dir, prefix), { withFileTypes: true })) {
    const path = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory()) yield* filesUnder(dir, path);
    else yield path;
  }
}

function plural(n: number, one: string, many = `${one}s`): string {
  return `${n.toLocaleString("en-US")} ${n === 1 ? one : many}`;
}

/** The one line that tells what a migration did. */
export function noteOf(report: FileMigrationReport, location: string): string {
  const parts = [
    `moved the state of an older Loom into ${location}: ` +
    `${plural(report.jobs + report.jobsPresent, "batch job")}` +
    `${report.jobsPresent ? ` (${report.jobsPresent} there already)` : ""}, ` +
    plural(report.cached, "cached answer"),
  ];
  const skipped = report.cacheTemps + report.cacheMalformed + report.cacheUnreadable;
  if (skipped) {
    const why = [
      report.cacheTemps && `${report.cacheTemps} temporary`,
      report.cacheMalformed && `${report.cacheMalformed} not named as a cache entry`,
      report.cacheUnreadable && `${report.cacheUnreadable} unreadable`,
    ].filter(Boolean);
    parts.push(`skipped ${plural(skipped, "cache file")} (${why.join(", ")})`);
  }
  if (report.notImported.length) {
    parts.push(
      `not imported: ${report.notImported.map((j) => `job ${j.id} (${j.reason})`).join(", ")}`,
    );
  }
  if (report.keptIn) parts.push(`the old files are kept in ${report.keptIn}`);
  if (report.deferred.length) {
    parts.push(
      `left for a later start: ${
        report.deferred.map((j) => `job ${j.id} (${j.reason})`).join(", ")
      }`,
    );
  }
  return parts.join("; ");
}
