/**
 * Gives the state file's free pages back to the filesystem. SQLite never shrinks a file by itself:
 * the pages a removed job's results filled (180 MB for a million rows) go to its free list and
 * stay in the file, and its -wal file stays as large as the largest stretch of writes between
 * two checkpoints. So after a removal, a cache clear or prune, and on open, {@link compact} looks
 * at the file's free pages and, when they are many, returns them, in one of two ways whose cost
 * is bounded by what they free (measured on 2 cores, 4 KiB pages):
 *
 * - `VACUUM` rewrites the live pages into a new file: 16–28 ms per MiB of *live* data, freed
 *   space free of charge. Used when the live data is small beside the free space (half of it at
 *   most, and {@link CompactOptions.maxVacuumBytes} at most): after a large job is removed from a
 *   file with a small cache. It also turns on incremental vacuuming in a file made before it was.
 * - `PRAGMA incremental_vacuum(N)` (files with `auto_vacuum = INCREMENTAL`: every new file, and
 *   an older one after its first `VACUUM`) moves live pages from the end of the file into free
 *   ones and cuts the end off: 5–25 ms per MiB *freed*, whatever the size of the live data (a
 *   2 GB cache is not rewritten to free 20 MB). Run in steps of
 *   {@link CompactOptions.stepBytes}, each its own short write transaction, with a pause between
 *   them (as long as the step took, {@link CompactOptions.maxPauseMs} at most) so another
 *   process's writer waiting for the lock gets it.
 *
 * An older file (`auto_vacuum = NONE`) whose live data outweighs its free pages is left as it is:
 * turning on incremental vacuuming takes one `VACUUM`, which would rewrite all the live data.
 *
 * Never in another process's way for long: each step waits at most
 * {@link CompactOptions.busyMs} for the write lock (a few tries, a pause apart), and a file that
 * stays busy (another writer keeps the lock) is left for a later removal or open. Readers in
 * other processes go on reading their snapshot (WAL); the file's end is cut off by the checkpoint
 * after the last of them is done (`wal_checkpoint(TRUNCATE)` here, or a later one, or the last
 * connection's close).
 * @module
 */
import { statSync } from "node:fs";
import type { DatabaseSync } from "node:sqlite";
import { setTimeout as sleep } from "node:timers/promises";
import { SQLITE, sqliteCode } from "./errors.ts";

/** Options of {@link compact}; the defaults are {@link COMPACT_DEFAULTS}. */
export interface CompactOptions {
  /** Free space below which nothing is done (bytes): pages a next job will reuse anyway. */
  readonly minFreeBytes?: number;
  /**
   * Live data so small (bytes) that a `VACUUM` of it costs next to nothing: then free space of
   * {@link CompactOptions.minFreeBesideTinyBytes} is given back too, so a file that only held a
   * finished job's ids does not stay megabytes large.
   */
  readonly tinyLiveBytes?: number;
  /** Free space given back when the live data is tiny (bytes). */
  readonly minFreeBesideTinyBytes?: number;
  /** Space an incremental step frees at most (bytes). */
  readonly stepBytes?: number;
  /** Live data a `VACUUM` may rewrite at most (bytes): it holds the write lock throughout. */
  readonly maxVacuumBytes?: number;
  /**
   * The longest pause between two steps (ms); a pause is as long as the step before it up to
   * this. A writer of another process waiting for the lock retries within it: SQLite's busy
   * handler sleeps 1, 2, 5, … 50, 100, 100 ms between its tries (`sqliteDefaultBusyCallback` in
   * SQLite's main.c; whole seconds only on a build without nanosleep/usleep, which recent
   * releases assume unless told otherwise).
   */
  readonly maxPauseMs?: number;
  /** How long a step waits for another process's write lock before giving up (ms). */
  readonly busyMs?: number;
  /**
   * How long incremental steps may go on in one call (ms): the rest is left for the next removal
   * or open, so a command never waits seconds at its end (8 s to free 180 MB interleaved with a
   * cache written meanwhile, measured).
   */
  readonly budgetMs?: number;
  /** The connection's usual busy timeout, set again after each step (ms). */
  readonly restoreBusyMs: number;
  /** Whether to go on (false once the store is closed). */
  readonly alive?: () => boolean;
  /**
   * The database file: when it (or its -wal) is larger on disk than its pages by
   * `minFreeBytes`, a checkpoint cuts it (a compaction whose checkpoint a reader was in the way
   * of, or a large put's -wal).
   */
  readonly file?: string;
}

/**
 * 32 MiB free: a few thousand rows' worth of results is left for the next job to reuse (a
 * 100-row job frees some 20 KiB); 8 MiB beside less than 1 MiB of live data (a `VACUUM` of
 * 20 ms): the file of a finished 1M-row job, whose ids took 10 MiB, shrinks to kilobytes. 8 MiB steps: 40–280 ms of write lock each (the most where the
 * freed pages were interleaved with live ones, which then move). A `VACUUM` of 128 MiB of live
 * data: 2–4 s of write lock, once, after a removal that freed at least twice as much.
 */
export const COMPACT_DEFAULTS = {
  minFreeBytes: 32 * 1024 * 1024,
  tinyLiveBytes: 1024 * 1024,
  minFreeBesideTinyBytes: 8 * 1024 * 1024,
  stepBytes: 8 * 1024 * 1024,
  maxVacuumBytes: 128 * 1024 * 1024,
  maxPauseMs: 100,
  busyMs: 50,
  budgetMs: 1000,
} as const;

/** The file's pages, as SQLite counts them. */
export interface FileSpace {
  readonly pageSize: number;
  /** Pages in the file (as of the newest commit: the file itself shrinks at a checkpoint). */
  readonly pages: number;
  /** Pages on the free list. */
  readonly freePages: number;
  /** `PRAGMA auto_vacuum`: 0 none, 1 full, 2 incremental. */
  readonly autoVacuum: number;
}

/** `auto_vacuum` of a file that can give pages back without a `VACUUM`. */
export const INCREMENTAL = 2;

const pragma = (db: DatabaseSync, name: string): number =>
  Number(Object.values(db.prepare(`PRAGMA ${name}`).get() ?? {})[0] ?? 0);

/** The pages of the file `db` is open on. */
export function fileSpace(db: DatabaseSync): FileSpace {
  return {
    pageSize: pragma(db, "page_size"),
    pages: pragma(db, "page_count"),
    freePages: pragma(db, "freelist_count"),
    autoVacuum: pragma(db, "auto_vacuum"),
  };
}

/** What {@link compact} did. */
export type Compaction =
  | "none" // too little free, or an older file with more live data than free space
  | "vacuum"
  | "incremental"
  | "checkpoint" // no free pages to speak of, but a file or -wal larger than its pages: cut
  | "busy" // another process kept the write lock: left for later
  | "failed" // a fault SQLite rolled back (a full disk for VACUUM's copy, say): left for later
  | "closed"; // the store was closed between two steps

/** Tries of a step that finds the write lock taken, {@link CompactOptions.maxPauseMs} apart. */
const BUSY_TRIES = 5;

/**
 * Returns the free pages of the file `db` is open on when they are worth it (see the module's
 * comment). Never throws: a fault here leaves the file as it was (each step is a transaction),
 * and a later removal or open tries again.
 */
export async function compact(db: DatabaseSync, options: CompactOptions): Promise<Compaction> {
  const o = { ...COMPACT_DEFAULTS, ...options };
  const alive = options.alive ?? (() => true);
  /** Runs `work` waiting at most `busyMs` for the lock; tries again while it is busy. */
  const step = async (work: () => void): Promise<"done" | "busy" | "failed" | "closed"> => {
    for (let tries = 1;; tries++) {
      db.exec(`PRAGMA busy_timeout = ${o.busyMs}`);
      try {
        work();
        return "done";
      } catch (error) {
        const code = sqliteCode(error);
        if (code !== SQLITE.BUSY && code !== SQLITE.LOCKED) return "failed";
        if (tries === BUSY_TRIES) return "busy";
      } finally {
        db.exec(`PRAGMA busy_timeout = ${o.restoreBusyMs}`);
      }
      await sleep(o.maxPauseMs);
      if (!alive()) return "closed";
    }
  };
  const checkpoint = () => db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
  try {
    const space = fileSpace(db);
    const free = space.freePages * space.pageSize;
    const live = (space.pages - space.freePages) * space.pageSize;
    const tiny = live <= o.tinyLiveBytes && free >= o.minFreeBesideTinyBytes;
    if (free < o.minFreeBytes && !tiny) {
      if (!options.file || !oversized(options.file, space, o.minFreeBytes)) return "none";
      const result = await step(checkpoint);
      return result === "done" ? "checkpoint" : result;
    }
    let done: Compaction;
    if (live * 2 <= free && live <= o.maxVacuumBytes) {
      const vacuum = () => {
        // Turns an older file's incremental vacuuming on too (it takes effect with this VACUUM;
        // the pragma itself writes the file's header, so it waits for the lock as a step does).
        if (space.autoVacuum !== INCREMENTAL) db.exec("PRAGMA auto_vacuum = INCREMENTAL");
        db.exec("VACUUM");
      };
      const result = await step(vacuum);
      if (result !== "done") return result;
      done = "vacuum";
    } else if (space.autoVacuum === INCREMENTAL) {
      const pages = Math.max(1, Math.floor(o.stepBytes / space.pageSize));
      // The pragma answers a row per page it frees (a ResultRow in its loop, SQLite's pragma.c)
      // and frees the next page only when asked for the next row: `all()` runs it to its end.
      // unverified: Deno's `exec` stops at the first row (a page a call, observed with Deno
      // 2.9); Node's runs it to its end (sqlite3_exec).
      const incrementalVacuum = db.prepare(`PRAGMA incremental_vacuum(${pages})`);
      const until = performance.now() + o.budgetMs;
      for (let left = space.freePages;;) {
        const started = performance.now();
        const result = await step(() => incrementalVacuum.all());
        if (result !== "done") return result;
        const now = pragma(db, "freelist_count");
        if (now === 0 || now >= left || performance.now() >= until) break;
        left = now;
        await sleep(Math.min(o.maxPauseMs, Math.max(1, performance.now() - started)));
        if (!alive()) return "closed";
      }
      done = "incremental";
    } else {
      return "none";
    }
    // Cuts the file and its -wal now, if no reader of an older snapshot is in the way (then a
    // later checkpoint does it).
    await step(checkpoint);
    return done;
  } catch {
    // The connection was closed under it, or a pragma failed: nothing was changed by this.
    return "failed";
  }
}

/** Whether `file` or its -wal take `slack` bytes more on disk than the file's pages need. */
function oversized(file: string, space: FileSpace, slack: number): boolean {
  const size = (path: string) => {
    try {
      return statSync(path).size;
    } catch {
      return 0;
    }
  };
  return size(file) - space.pages * space.pageSize >= slack || size(`${file}-wal`) >= slack;
}
