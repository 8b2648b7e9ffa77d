/**
 * The `sqlite` storage plugin, Loom's default state store: one database file (default
 * `LOOM_HOME/state.db`, or the file `LOOM_STATE=sqlite:/path/state.db` names) through
 * `node:sqlite`, so there is no native addon and no package to install.
 *
 * Several Loom processes share the file (a sync run writing the cache while `loom fetch` merges in
 * another): WAL mode lets readers go on while one writes, and every write is a short synchronous
 * transaction that waits up to a busy timeout for another process's. Committed writes survive a
 * killed process (WAL with `synchronous=NORMAL` may lose the last ones only on power loss or an
 * operating-system crash). The folder is made 0700 and the file 0600 (SQLite gives its -wal and
 * -shm files the database file's permissions).
 *
 * A batch's saved results, a hundred megabytes for a million rows, are files beside the database
 * (`state.db-results/`, result-files.ts, 0700 and 0600), which the database says are current.
 * @module
 */
import { Buffer } from "node:buffer";
import { randomUUID } from "node:crypto";
import { closeSync, mkdirSync, openSync } from "node:fs";
import { homedir, hostname } from "node:os";
import { dirname, join, resolve } from "node:path";
import process from "node:process";
import type { FileHandle } from "node:fs/promises";
import type { DatabaseSync, StatementSync } from "node:sqlite";
import { setImmediate } from "node:timers";
import { LoomError } from "../../../core/base/errors.ts";
import { failpoint } from "../../../core/base/failpoints.ts";
import { isAlive } from "../../../core/data/output.ts";
import { PageSize } from "../../../core/state/page-size.ts";
import { definePlugin } from "../../../core/plugins/plugin.ts";
import {
  assertJobId,
  type LeaseInfo,
  type ResultRow,
  type StorageV2,
  type StoredJob,
  type StoredRun,
} from "../../../core/spec/storage.ts";
import { loadSqlite } from "./driver.ts";
import { storeError } from "./errors.ts";
import { compact, fileSpace } from "./compact.ts";
import { GroupCommit } from "./group-commit.ts";
import { readResultFile, ResultFiles, resultsFolder } from "./result-files.ts";
import { cacheSlot, inTransaction, migrate } from "./schema.ts";

/** Options of {@link openSqliteStorage}. */
export interface SqliteStorageOptions {
  /** The database file (made, with its folder, when missing). */
  readonly file: string;
  /** LOOM_HOME, named in messages about a file under it. */
  readonly home?: string;
  /** How long a write waits for another process's transaction (ms). Default 15 s. */
  readonly busyTimeoutMs?: number;
  /**
   * Where new result sets go: files beside the database (the default, result-files.ts), or its
   * `results` table, as Loom stored them before (tests of sets an older Loom saved, and of the
   * table's space being given back, write them so).
   */
  readonly resultsIn?: "files" | "table";
}

/** Rows per transaction while a put streams in, and their characters at most (a value may be large). */
const BATCH_ROWS = 2_000;
const BATCH_CHARS = 256 * 1024;

/**
 * Rows per page while a read streams out: few, so a page is garbage before the next scavenge
 * (a merge walks a page a row at a time; a page of thousands lived long enough to be promoted to
 * the old generation, which grew by a page's size every few thousand rows).
 */
const READ_PAGE_ROWS = 200;
/** Characters of values per read page, about (a run of outcomes is dozens of them). */
const READ_PAGE_CHARS = 256 * 1024;

/** Page cache of the store's connection, in KiB. */
const STORE_CACHE_KIB = 16_384;

/** Page cache of a results reader's connection, and of the store's while it saves results or ids, in KiB. */
const READ_CACHE_KIB = 1024;
const DEFAULT_BUSY_TIMEOUT_MS = 15_000;

/**
 * Snapshots a read takes at most to find a set's file: one replaced and removed between reading
 * which set is current and opening its file sends it to a newer one.
 */
const FILE_TRIES = 3;

/** The database file `LOOM_STATE` names (`sqlite:/abs.db`, `sqlite:rel.db`, `sqlite:///abs.db`). */
export function sqliteFile(url: string | undefined, home: string): string {
  let path = (url ?? "").replace(/^sqlite:/i, "");
  if (path.startsWith("//")) path = path.slice(2);
  if (path === "") return join(home, "state.db");
  if (path === "~" || path.startsWith("~/")) path = join(homedir(), path.slice(1));
  return resolve(path);
}

/** Opens (creating when missing) the state database `options.file`. */
export async function openSqliteStorage(options: SqliteStorageOptions): Promise<StorageV2> {
  const file = resolve(options.file);
  const fail = (error: unknown) => storeError(error, file, options.home);
  const busyTimeoutMs = options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS;
  let sqlite;
  try {
    sqlite = await loadSqlite();
  } catch (error) {
    throw new LoomError(
      `the SQLite state store needs node:sqlite (Node 22.13 or later, Deno 2.2 or later); ` +
        `this runtime has none: upgrade it, or set LOOM_STATE to postgres://…`,
      { cause: error },
    );
  }
  const connect = () => {
    const db = new sqlite.DatabaseSync(file);
    try {
      db.exec(`PRAGMA busy_timeout = ${busyTimeoutMs}`);
      // 16 MiB of page cache (SQLite's default is 2): a warm rerun's lookups hit pages all over
      // the cache's key index. No mmap: an I/O error would then be a crash, not a message.
      db.exec(`PRAGMA cache_size = -${STORE_CACHE_KIB}`);
      return db;
    } catch (error) {
      db.close();
      throw error;
    }
  };
  let db: DatabaseSync | undefined;
  try {
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    createPrivately(file);
    db = connect();
    // A new file gives its free pages back without rewriting its live data (compact.ts). Set
    // before anything is written: SQLite fixes it when it writes the file's first page.
    if (fileSpace(db).pages === 0) db.exec("PRAGMA auto_vacuum = INCREMENTAL");
    db.exec("PRAGMA journal_mode = WAL");
    db.exec("PRAGMA synchronous = NORMAL");
    migrate(db, file);
    const files = new ResultFiles(resultsFolder(file), options.home);
    const store = new SqliteStore(db, file, connect, fail, busyTimeoutMs, {
      files,
      inTable: options.resultsIn === "table",
    });
    store.sweep();
    // Space a removal could not give back (another process was writing) is given back now.
    await store.compact();
    return store;
  } catch (error) {
    if (db) closeQuietly(db);
    // A fault of the machine (a read-only or full disk) exits 1 like every operational fault;
    // a file that is not Loom's, or is newer, exits 2 (schema.ts): both before any work.
    throw fail(error);
  }
}

/** Creates `file` empty with mode 0600 unless it exists, so SQLite never makes it 0644. */
function createPrivately(file: string): void {
  try {
    closeSync(openSync(file, "wx", 0o600));
  } catch (error) {
    if ((error as { code?: string }).code !== "EEXIST") throw error;
  }
}

function checkShard(shard: number): void {
  if (!Number.isSafeInteger(shard) || shard < 0) {
    throw new TypeError(`invalid shard number: ${shard}`);
  }
}

function checkRow(row: ResultRow): void {
  if (!Number.isSafeInteger(row?.row) || row.row < 0 || typeof row.value !== "string") {
    throw new TypeError(`invalid result row: ${JSON.stringify(row)}`);
  }
}

/** Closes a connection that may be closed already. */
function closeQuietly(db: DatabaseSync): void {
  try {
    db.close();
  } catch {
    // already closed
  }
}

const changes = (result: { changes: number | bigint }) => Number(result.changes);

/**
 * `statement`, answering rows as arrays where the runtime can (`setReturnArrays`: Node 24, later
 * Node 22 releases, Deno): no object with named fields made per row. Read rows with {@link cells}.
 */
function asArrays(statement: StatementSync): StatementSync {
  if (typeof statement.setReturnArrays === "function") statement.setReturnArrays(true);
  return statement;
}

/** The columns `names` of a row of an {@link asArrays} statement (an array already, or an object). */
const cells = (row: unknown, names: readonly string[]): unknown[] =>
  Array.isArray(row) ? row : names.map((name) => (row as Record<string, unknown>)[name]);

/** The columns `cacheGet` and `cacheGetMany` select, in order. */
const GET_COLUMNS = ["k", "v"] as const;
const GET_MANY_COLUMNS = ["i", "k", "v"] as const;

/** A result set's writer: this process on this machine (to sweep sets of killed writers). */
const WRITER = `${hostname()} ${process.pid}`;

/** The prepared statements of one connection, prepared once. */
function statements(db: DatabaseSync) {
  const q = (sql: string) => db.prepare(sql);
  return {
    jobGet: q("SELECT id, revision, record FROM jobs WHERE id = ?"),
    jobList: q("SELECT id, revision, record FROM jobs"),
    jobCreate: q(
      "INSERT INTO jobs (id, revision, record) VALUES (?, 1, ?) ON CONFLICT (id) DO NOTHING",
    ),
    jobUpdate: q(
      "UPDATE jobs SET record = ?, revision = revision + 1 WHERE id = ? AND revision = ?",
    ),
    jobDelete: q("DELETE FROM jobs WHERE id = ?"),
    jobSetIds: q("SELECT id FROM result_sets WHERE job = ?"),
    jobSetsDelete: q("DELETE FROM result_sets WHERE job = ?"),
    jobAttachmentsDelete: q("DELETE FROM attachments WHERE job = ?"),
    leaseDelete: q("DELETE FROM leases WHERE name = ?"),

    setCreate: q("INSERT INTO result_sets (job, shard, current, writer) VALUES (?, ?, 0, ?)"),
    setExists: q("SELECT 1 AS found FROM result_sets WHERE id = ?"),
    setCurrent: q("SELECT id FROM result_sets WHERE job = ? AND shard = ? AND current = 1"),
    setRetire: q("UPDATE result_sets SET current = 2 WHERE id = ?"),
    setPromote: q("UPDATE result_sets SET current = 1, segments = ? WHERE id = ?"),
    setDelete: q("DELETE FROM result_sets WHERE id = ?"),
    setRowsDelete: q("DELETE FROM results WHERE set_id = ?"),
    setsAbandoned: q("SELECT id, writer, current FROM result_sets WHERE current <> 1"),
    rowInsert: q("INSERT INTO results (set_id, row, value) VALUES (?, ?, ?)"),

    attachmentPut: q(
      "INSERT INTO attachments (job, name, value) VALUES (?, ?, ?) " +
        "ON CONFLICT (job, name) DO UPDATE SET value = excluded.value",
    ),
    attachmentGet: q("SELECT value FROM attachments WHERE job = ? AND name = ?"),

    runGet: q("SELECT record FROM runs WHERE id = ?"),
    runList: q("SELECT id, record FROM runs"),
    runPut: q(
      "INSERT INTO runs (id, record) VALUES (?, ?) " +
        "ON CONFLICT (id) DO UPDATE SET record = excluded.record",
    ),
    runDelete: q("DELETE FROM runs WHERE id = ?"),

    leaseGet: q("SELECT holder, token, expires_at FROM leases WHERE name = ?"),
    leaseTake: q(
      "INSERT INTO leases (name, holder, token, expires_at) VALUES (?, ?, ?, ?) " +
        "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, token = excluded.token, " +
        "expires_at = excluded.expires_at",
    ),
    leaseRenew: q("UPDATE leases SET expires_at = ? WHERE name = ? AND token = ?"),
    leaseRelease: q("DELETE FROM leases WHERE name = ? AND token = ?"),

    // The slot of one key, and of many in one statement (a JSON array; a third of the cost per
    // key of one at a time). A row answers the key at the position `i` of the list; it is that
    // key's only when its stored key `k` is that key (another key may have the same slot).
    cacheGet: asArrays(q("SELECT key AS k, value AS v FROM cache WHERE h = ?")),
    cacheGetMany: asArrays(q(
      "SELECT j.key AS i, c.key AS k, c.value AS v FROM json_each(?) AS j " +
        "JOIN cache AS c ON c.h = j.value",
    )),
    cacheSet: q(
      "INSERT INTO cache (h, key, value, stored_at, bytes) VALUES (?, ?, ?, ?, ?) " +
        "ON CONFLICT (h) DO UPDATE SET key = excluded.key, value = excluded.value, " +
        "stored_at = excluded.stored_at, bytes = excluded.bytes",
    ),
    cacheClear: q("DELETE FROM cache"),
    cachePrune: q("DELETE FROM cache WHERE stored_at < ?"),
    cacheStats: q(
      "SELECT count(*) AS entries, coalesce(sum(bytes), 0) AS bytes, " +
        "min(stored_at) AS oldest, max(stored_at) AS newest FROM cache",
    ),
  };
}

type Statements = ReturnType<typeof statements>;

interface JobRow {
  id: string;
  revision: number;
  record: string;
}

const toJob = (row: JobRow): StoredJob => ({
  id: row.id,
  revision: row.revision,
  record: row.record,
});

/** A storage backend over one SQLite connection (plus one per result stream being read). */
class SqliteStore implements StorageV2 {
  readonly specificationVersion = "loom.storage.v2";
  readonly name = "sqlite";
  readonly location: string;
  readonly #db: DatabaseSync;
  readonly #q: Statements;
  readonly #connect: () => DatabaseSync;
  readonly #fail: (error: unknown) => unknown;
  readonly #busyTimeoutMs: number;
  /** The compaction in progress, if one is (one at a time). */
  #compacting: Promise<unknown> | undefined;
  /** The files of result sets ({@link ResultFiles}). */
  readonly #files: ResultFiles;
  /** Whether new result sets go to the `results` table instead of files. */
  readonly #resultsInTable: boolean;
  /** Connections of reads in progress, closed with the store. */
  readonly #readers = new Set<DatabaseSync>();
  #closed = false;
  /** Cache lookups waiting for the next {@link SqliteStore.#flushGets}. */
  readonly #pendingGets: {
    key: string;
    resolve: (value: string | undefined) => void;
    reject: (error: unknown) => void;
  }[] = [];
  /** Cache entries set and not committed yet: the newest value of each key. */
  #unwritten = new Map<string, string>();
  /** The commit that will write {@link SqliteStore.#unwritten}: each set answers its promise. */
  #nextCommit: Deferred | undefined;
  /** When the entries set are committed ({@link SqliteStore.#flushSets}). */
  readonly #commits = new GroupCommit(() => this.#flushSets());

  constructor(
    db: DatabaseSync,
    file: string,
    connect: () => DatabaseSync,
    fail: (error: unknown) => unknown,
    busyTimeoutMs: number,
    results: { files: ResultFiles; inTable: boolean },
  ) {
    this.#busyTimeoutMs = busyTimeoutMs;
    this.#files = results.files;
    this.#resultsInTable = results.inTable;
    this.#db = db;
    this.location = file;
    this.#q = statements(db);
    this.#connect = connect;
    this.#fail = fail;
  }

  /**
   * Runs `work` on the open connection, turning SQLite's faults into Loom's messages. A bad
   * argument or a fault is a rejected promise, never a synchronous throw.
   */
  #use<T>(work: (q: Statements) => T): Promise<T> {
    try {
      if (this.#closed) throw new LoomError(`the state database ${this.location} is closed`);
      return Promise.resolve(work(this.#q));
    } catch (error) {
      return Promise.reject(this.#fail(error));
    }
  }

  /** `done`'s value, once the space it freed is given back ({@link SqliteStore.compact}). */
  async #thenCompact<T>(done: Promise<T>): Promise<T> {
    const value = await done;
    await this.compact();
    return value;
  }

  #tx<T>(work: () => T): T {
    return inTransaction(this.#db, work);
  }

  /**
   * Removes result sets nobody will finish or read: sets replaced by a newer one whose removal was
   * cut short, and unfinished sets of writers on this machine that are gone (killed mid-put).
   */
  sweep(): void {
    const host = `${hostname()} `;
    const abandoned =
      (this.#q.setsAbandoned.all() as { id: number; writer: string; current: number }[])
        .filter(({ writer, current }) => {
          if (current === 2) return true;
          if (!writer.startsWith(host)) return false;
          const pid = Number(writer.slice(host.length));
          return pid !== process.pid && !isAlive(pid);
        });
    for (const { id } of abandoned) this.#dropSet(id);
    // Files of sets whose rows are gone (a process killed between the two).
    this.#files.sweep((id) => this.#q.setExists.get(id) !== undefined);
  }

  /**
   * Gives the file's free pages back when they are many ({@link compact}): after what frees a lot
   * (a job's removal, a cache clear or prune) and on open. Never fails; a busy file is left for
   * later.
   */
  async compact(): Promise<void> {
    if (this.#closed || this.#compacting) return;
    this.#compacting = compact(this.#db, {
      restoreBusyMs: this.#busyTimeoutMs,
      alive: () => !this.#closed,
      file: this.location,
    });
    try {
      await this.#compacting;
    } finally {
      this.#compacting = undefined;
    }
  }

  /** Removes a set: its row first, then its file (a file without a row is swept). */
  #dropSet(id: number): void {
    this.#tx(() => {
      this.#q.setRowsDelete.run(id);
      this.#q.setDelete.run(id);
    });
    this.#files.remove(id);
  }

  readonly jobs = {
    get: (id: string) =>
      this.#use((q) => {
        assertJobId(id);
        const row = q.jobGet.get(id) as JobRow | undefined;
        return row && toJob(row);
      }),
    list: () => this.#use((q) => (q.jobList.all() as unknown as JobRow[]).map(toJob)),
    put: (id: string, record: string, expected: number) =>
      this.#use((q) => {
        assertJobId(id);
        const written = expected === 0
          ? changes(q.jobCreate.run(id, record))
          : changes(q.jobUpdate.run(record, id, expected));
        return written === 1 ? expected + 1 : undefined;
      }),
    remove: (id: string) =>
      this.#thenCompact(this.#use((q) => {
        assertJobId(id);
        // A job's results may be a million rows: their pages pass through the cache once, and
        // they are deleted a set at a time (one DELETE of them all first gathers every row id,
        // tens of megabytes).
        const sets = this.#withSmallCache(() =>
          this.#tx(() => {
            const sets = q.jobSetIds.all(id) as { id: number }[];
            for (const set of sets) q.setRowsDelete.run(set.id);
            q.jobSetsDelete.run(id);
            q.jobAttachmentsDelete.run(id);
            q.leaseDelete.run(`job:${id}`);
            q.jobDelete.run(id);
            return sets;
          })
        );
        // After the commit: a file whose set is gone is garbage, never a set's missing rows.
        failpoint("sqlite:job-removed");
        for (const set of sets) this.#files.remove(set.id);
      })),
  };

  readonly results = {
    put: async (
      job: string,
      shard: number,
      rows: Iterable<ResultRow> | AsyncIterable<ResultRow>,
    ): Promise<void> => {
      const set = await this.#use((q) => {
        assertJobId(job);
        checkShard(shard);
        return Number(q.setCreate.run(job, shard, WRITER).lastInsertRowid);
      });
      try {
        let segments: number[] | undefined;
        if (this.#resultsInTable) await this.#insertAll(set, rows);
        else {
          const { bounds, inOrder } = await this.#writeFile(job, shard, set, rows);
          if (inOrder) segments = bounds;
          else {
            // Rows in much disorder: the table sorts them.
            const handle = await this.#files.open(set);
            if (!handle) {
              throw new LoomError(`the results being saved vanished from ${this.location}`);
            }
            await this.#insertAll(set, readResultFile(handle, this.#files.path(set), bounds));
            this.#files.remove(set);
          }
        }
        failpoint("sqlite:results-written");
        const replaced = await this.#use((q) => this.#promote(q, job, shard, set, segments));
        // Outside the swap, so the write lock is not held for a large old set's removal.
        if (replaced !== undefined) await this.#use(() => this.#dropSet(replaced));
      } catch (error) {
        if (!this.#closed) {
          try {
            this.#dropSet(set);
          } catch {
            // Swept by a later open; the error that matters is the first.
          }
        }
        throw error;
      }
    },
    has: (job: string, shard: number) =>
      this.#use((q) => q.setCurrent.get(job, shard) !== undefined),
    read: (job: string, shard: number) => this.#read(job, shard),
  };

  /**
   * Runs `work` with the connection's page cache at {@link READ_CACHE_KIB}: what it writes (a
   * shard's results or ids: written once, read back once) would only fill the store's cache to
   * its full size with pages of no further use, growing the process by as much. Shrinking the
   * cache frees the pages over the new size; the next lookups refill it as needed.
   */
  #withSmallCache<T>(work: () => T): T {
    this.#db.exec(`PRAGMA cache_size = -${READ_CACHE_KIB}`);
    try {
      return work();
    } finally {
      this.#db.exec(`PRAGMA cache_size = -${STORE_CACHE_KIB}`);
    }
  }

  /**
   * Writes set `set`'s file ({@link ResultFiles.write}).
   * @throws LoomError when the job was removed meanwhile (which removed the file being written).
   */
  async #writeFile(
    job: string,
    shard: number,
    set: number,
    rows: Iterable<ResultRow> | AsyncIterable<ResultRow>,
  ): Promise<{ bounds: number[]; inOrder: boolean }> {
    try {
      return await this.#files.write(set, rows, checkRow);
    } catch (error) {
      if (!this.#closed && this.#q.setExists.get(set) === undefined) {
        throw removedWhileSaving(job, shard);
      }
      throw error;
    }
  }

  /** Inserts a set's rows into the `results` table, in transactions of a few thousand. */
  async #insertAll(
    set: number,
    rows: Iterable<ResultRow> | AsyncIterable<ResultRow>,
  ): Promise<void> {
    let batch: ResultRow[] = [];
    let chars = 0;
    for await (const row of rows) {
      checkRow(row);
      batch.push(row);
      chars += row.value.length;
      if (batch.length === BATCH_ROWS || chars >= BATCH_CHARS) {
        await this.#use(() => this.#insertRows(set, batch));
        batch = [];
        chars = 0;
      }
    }
    await this.#use(() => this.#insertRows(set, batch));
  }

  #insertRows(set: number, rows: readonly ResultRow[]): void {
    if (rows.length === 0) return;
    this.#withSmallCache(() =>
      this.#tx(() => {
        for (const { row, value } of rows) this.#q.rowInsert.run(set, row, value);
      })
    );
  }

  /**
   * Makes `set` the shard's saved set, its rows in its file's `segments` (or in the table);
   * answers the one it replaced (now retired).
   */
  #promote(
    q: Statements,
    job: string,
    shard: number,
    set: number,
    segments: readonly number[] | undefined,
  ): number | undefined {
    return this.#tx(() => {
      if (q.setExists.get(set) === undefined) {
        throw removedWhileSaving(job, shard);
      }
      const old = q.setCurrent.get(job, shard) as { id: number } | undefined;
      if (old) q.setRetire.run(old.id);
      q.setPromote.run(segments ? JSON.stringify(segments) : null, set);
      return old?.id;
    });
  }

  /**
   * Streams a shard's saved set: its file ({@link readResultFile}), or its rows of the `results`
   * table in pages. Which set is current is read on a connection of its own holding one read
   * transaction: one snapshot (a put that replaces the set meanwhile is not seen), never blocking
   * writers (WAL). A set's file is opened inside that snapshot; if the set was replaced and its
   * file removed in between, a newer snapshot is read. Each page of rows is one finished
   * statement; nothing stays open on the store's connection between two rows.
   */
  async *#read(job: string, shard: number): AsyncGenerator<ResultRow> {
    if (this.#closed) throw new LoomError(`the state database ${this.location} is closed`);
    for (let tries = 1;; tries++) {
      let reader: DatabaseSync | undefined;
      let file: FileHandle | undefined;
      try {
        reader = this.#connect();
        this.#readers.add(reader);
        // A set is read once, in order: a page cache the size of the store's would only grow.
        reader.exec(`PRAGMA cache_size = -${READ_CACHE_KIB}`);
        reader.exec("BEGIN");
        const current = reader
          .prepare(
            "SELECT id, segments FROM result_sets WHERE job = ? AND shard = ? AND current = 1",
          )
          .get(job, shard) as { id: number; segments: string | null } | undefined;
        if (!current) return;
        if (current.segments !== null) {
          file = await this.#files.open(current.id);
          this.#readers.delete(reader);
          closeQuietly(reader);
          reader = undefined;
          if (!file) {
            if (tries < FILE_TRIES) continue;
            throw new LoomError(
              `the saved results of job ${job} (shard ${shard}) are missing: ` +
                `${this.#files.path(current.id)} is gone`,
            );
          }
          const opened = file;
          file = undefined;
          const bounds = JSON.parse(current.segments) as number[];
          yield* readResultFile(opened, this.#files.path(current.id), bounds);
          return;
        }
        const page = reader.prepare(
          "SELECT row, value FROM results WHERE set_id = ? AND row > ? ORDER BY row LIMIT ?",
        );
        const size = new PageSize(READ_PAGE_ROWS, READ_PAGE_CHARS);
        for (let after = -1;;) {
          const limit = size.rows;
          const rows = page.all(current.id, after, limit) as unknown as ResultRow[];
          let chars = 0;
          for (const { row, value } of rows) {
            chars += value.length;
            yield { row, value };
          }
          if (rows.length < limit) return;
          after = rows[rows.length - 1].row;
          size.after(rows.length, chars);
        }
      } catch (error) {
        throw this.#fail(error);
      } finally {
        await file?.close().catch(() => {});
        if (reader) {
          this.#readers.delete(reader);
          closeQuietly(reader);
        }
      }
    }
  }

  readonly attachments = {
    put: (job: string, name: string, value: string) =>
      this.#use((q) => {
        assertJobId(job);
        // Written once, read once (a shard's ids: half a megabyte for 50,000 rows).
        this.#withSmallCache(() => q.attachmentPut.run(job, name, value));
      }),
    get: (job: string, name: string) =>
      this.#use((q) => (q.attachmentGet.get(job, name) as { value: string } | undefined)?.value),
  };

  readonly runs = {
    get: (id: string) =>
      this.#use((q) => (q.runGet.get(id) as { record: string } | undefined)?.record),
    list: () =>
      this.#use((q) =>
        (q.runList.all() as unknown as StoredRun[]).map(({ id, record }) => ({ id, record }))
      ),
    put: (id: string, record: string) =>
      this.#use((q) => {
        assertJobId(id);
        q.runPut.run(id, record);
      }),
    remove: (id: string) =>
      this.#use((q) => {
        q.runDelete.run(id);
      }),
  };

  readonly leases = {
    acquire: (name: string, holder: string, ttlMs: number, replacing?: string) =>
      this.#use((q) =>
        this.#tx(() => {
          // One machine shares this file, so Date.now() is the store's clock.
          const now = Date.now();
          const row = q.leaseGet.get(name) as
            | { holder: string; token: string; expires_at: number }
            | undefined;
          if (row && row.expires_at > now && row.token !== replacing) {
            const current: LeaseInfo = {
              holder: row.holder,
              token: row.token,
              expiresAt: row.expires_at,
            };
            return { ok: false as const, current };
          }
          const lease: LeaseInfo = { holder, token: randomUUID(), expiresAt: now + ttlMs };
          q.leaseTake.run(name, holder, lease.token, lease.expiresAt);
          return { ok: true as const, lease };
        })
      ),
    renew: (name: string, token: string, ttlMs: number) =>
      this.#use((q) => changes(q.leaseRenew.run(Date.now() + ttlMs, name, token)) === 1),
    release: (name: string, token: string) =>
      this.#use((q) => {
        q.leaseRelease.run(name, token);
      }),
  };

  readonly cache = {
    get: (key: string) =>
      new Promise<string | undefined>((resolve, reject) => {
        if (this.#closed) {
          reject(new LoomError(`the state database ${this.location} is closed`));
          return;
        }
        this.#pendingGets.push({ key, resolve, reject });
        if (this.#pendingGets.length === 1) setImmediate(() => this.#flushGets());
      }),
    getMany: (keys: readonly string[]) => this.#use(() => this.#lookup(keys)),
    set: (key: string, value: string): Promise<void> => {
      if (this.#closed) {
        return Promise.reject(new LoomError(`the state database ${this.location} is closed`));
      }
      // One promise for all the entries of a commit: a cold run sets 100,000.
      this.#unwritten.set(key, value);
      const commit = this.#nextCommit ??= deferred();
      this.#commits.added(this.#unwritten.size);
      return commit.promise;
    },
    clear: () => this.#thenCompact(this.#use((q) => changes(q.cacheClear.run()))),
    prune: (before: number) =>
      this.#thenCompact(this.#use((q) => changes(q.cachePrune.run(before)))),
    stats: () =>
      this.#use((q) => {
        const row = q.cacheStats.get() as {
          entries: number;
          bytes: number;
          oldest: number | null;
          newest: number | null;
        };
        return {
          entries: row.entries,
          bytes: row.bytes,
          oldest: row.oldest ?? undefined,
          newest: row.newest ?? undefined,
        };
      }),
  };

  /**
   * Answers the cache lookups made since the last flush with one statement: a run's workers look
   * up their rows in the same turn of the event loop, and one query for all costs far less than
   * one each. Entries set but not flushed yet are answered from memory, so a get after a set
   * always finds it.
   */
  #flushGets(): void {
    const batch = this.#pendingGets.splice(0);
    if (batch.length === 0) return;
    let found: Map<string, string>;
    try {
      found = this.#lookup(batch.map((g) => g.key));
    } catch (error) {
      const failure = this.#fail(error);
      for (const get of batch) get.reject(failure);
      return;
    }
    for (const get of batch) get.resolve(found.get(get.key));
  }

  /**
   * The stored values of `keys`, with one statement: entries set but not committed yet are taken
   * from memory (they are newer), the others read with one query by their slots. A stored row
   * counts only for the key it was stored under.
   */
  #lookup(keys: readonly string[]): Map<string, string> {
    const found = new Map<string, string>();
    const unwritten = this.#unwritten;
    const asked: string[] = [];
    for (const key of keys) {
      const value = unwritten.size ? unwritten.get(key) : undefined;
      if (value !== undefined) found.set(key, value);
      else asked.push(key);
    }
    if (asked.length === 1) {
      const row = this.#q.cacheGet.get(cacheSlot(asked[0]));
      if (row) {
        const [k, v] = cells(row, GET_COLUMNS);
        if (k === asked[0]) found.set(k, v as string);
      }
    } else if (asked.length > 1) {
      for (const row of this.#q.cacheGetMany.all(JSON.stringify(asked.map(cacheSlot)))) {
        const [i, k, v] = cells(row, GET_MANY_COLUMNS);
        if (k === asked[i as number]) found.set(k, v as string);
      }
    }
    return found;
  }

  /**
   * Writes the cache entries set since the last commit in one transaction (a commit per entry
   * would cost far more than the entry), then resolves their promise: an entry is in the file
   * when its `set` resolves. {@link GroupCommit} decides when; answers how many entries it wrote.
   */
  #flushSets(): number {
    const entries = this.#unwritten;
    const commit = this.#nextCommit;
    if (!commit) return 0;
    this.#unwritten = new Map();
    this.#nextCommit = undefined;
    try {
      this.#tx(() => {
        const now = Date.now();
        for (const [key, value] of entries) {
          const bytes = Buffer.byteLength(key) + Buffer.byteLength(value);
          this.#q.cacheSet.run(cacheSlot(key), key, value, now, bytes);
        }
      });
      commit.resolve();
    } catch (error) {
      commit.reject(this.#fail(error));
    }
    return entries.size;
  }

  close(): Promise<void> {
    if (!this.#closed) {
      this.#flushGets();
      this.#commits.flush();
      this.#closed = true;
      for (const reader of this.#readers) closeQuietly(reader);
      this.#readers.clear();
      this.#db.close();
    }
    return Promise.resolve();
  }
}

/** The error of a put whose job was removed before it was done. */
const removedWhileSaving = (job: string, shard: number) =>
  new LoomError(`job ${job} was removed while the results of its shard ${shard} were being saved`);

/** A promise with its settling functions. */
interface Deferred {
  readonly promise: Promise<void>;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

function deferred(): Deferred {
  let resolve!: () => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<void>((yes, no) => {
    resolve = yes;
    reject = no;
  });
  return { promise, resolve, reject };
}

export default definePlugin({
  apiVersion: 1,
  kind: "storage",
  name: "sqlite",
  description: "one SQLite database file under LOOM_HOME (the default state store)",
  create: (options, context) =>
    openSqliteStorage({
      file: sqliteFile(typeof options.url === "string" ? options.url : undefined, context.home),
      home: context.home,
    }),
});
