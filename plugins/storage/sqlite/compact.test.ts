import assert from "node:assert/strict";
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import type { DatabaseSync } from "node:sqlite";
import type { ResultRow, StorageV2 } from "../../../core/spec/storage.ts";
import { tempDir } from "../../../core/test-support/temp.ts";
import { compact, COMPACT_DEFAULTS, fileSpace, INCREMENTAL } from "./compact.ts";
import { loadSqlite } from "./driver.ts";
import { openSqliteStorage } from "./mod.ts";

const MiB = 1024 * 1024;
let n = 0;
const freshFile = () => join(tempDir("loom-compact-"), `state-${n++}.db`);

/** Bytes of `file` and of its -wal on disk. */
function onDisk(file: string): { db: number; wal: number } {
  const size = (f: string) => existsSync(f) ? statSync(f).size : 0;
  return { db: size(file), wal: size(`${file}-wal`) };
}

const total = ({ db, wal }: { db: number; wal: number }) => db + wal;

/** A connection of its own to `file`, as another Loom process would hold one. */
async function connect(file: string): Promise<DatabaseSync> {
  const { DatabaseSync } = await loadSqlite();
  return new DatabaseSync(file);
}

/** `count` result rows of about 8 KiB, as a run of 32 saved outcomes is. */
function* bigRows(count: number, tag = "r"): Generator<ResultRow> {
  for (let row = 0; row < count; row++) {
    yield { row, value: `${tag}${row}:`.padEnd(8_000, "x") };
  }
}

/** Enough rows to leave more free space than the least that is compacted. */
const ROWS_OVER_THRESHOLD = Math.ceil((COMPACT_DEFAULTS.minFreeBytes * 1.5) / 8_000);

async function withStore<T>(file: string, body: (s: StorageV2) => Promise<T>): Promise<T> {
  const s = await openSqliteStorage({ file, resultsIn: "table" });
  try {
    return await body(s);
  } finally {
    await s.close();
  }
}

/** A key as Loom makes them (hex), each in a slot of its own. */
const key = (i: number) => i.toString(16).padStart(13, "0").padEnd(64, "f");

describe("sqlite storage gives free pages back", () => {
  it("a large job removed: the file and its -wal shrink, and nothing else is lost", async () => {
    const file = freshFile();
    await withStore(file, async (s) => {
      await s.cache.set(key(1), "kept");
      assert.equal(await s.jobs.put("small", "{}", 0), 1);
      await s.results.put("small", 0, bigRows(3, "s"));
      assert.equal(await s.jobs.put("big", "{}", 0), 1);
      await s.results.put("big", 0, bigRows(ROWS_OVER_THRESHOLD));
      await s.attachments.put("big", "ids", "x".repeat(100_000));
      const grown = onDisk(file);
      assert.ok(grown.db + grown.wal > COMPACT_DEFAULTS.minFreeBytes, JSON.stringify(grown));

      await s.jobs.remove("big");

      const shrunk = onDisk(file);
      assert.ok(shrunk.db < 2 * MiB, `state.db is ${shrunk.db} bytes`);
      assert.ok(shrunk.wal < 2 * MiB, `state.db-wal is ${shrunk.wal} bytes`);
      assert.equal(await s.cache.get(key(1)), "kept");
      assert.deepEqual((await s.jobs.list()).map((j) => j.id), ["small"]);
      const kept: string[] = [];
      for await (const { value } of s.results.read("small", 0)) kept.push(value.slice(0, 3));
      assert.deepEqual(kept, ["s0:", "s1:", "s2:"]);
    });
  });

  it("a finished job's ids removed from a file with little else: the file shrinks", async () => {
    const file = freshFile();
    await withStore(file, async (s) => {
      assert.equal(await s.jobs.put("j", "{}", 0), 1);
      // A 1M-row job's custom ids: 20 shards of half a megabyte.
      for (let shard = 0; shard < 20; shard++) {
        await s.attachments.put("j", `ids-${shard}`, "x".repeat(512 * 1024));
      }
      assert.ok(onDisk(file).db + onDisk(file).wal > 10 * MiB);
      await s.jobs.remove("j");
      assert.ok(onDisk(file).db < 1 * MiB, `state.db is ${onDisk(file).db} bytes`);
    });
  });

  it("a small removal leaves the free pages for the next job", async () => {
    const file = freshFile();
    await withStore(file, async (s) => {
      await s.results.put("j", 0, bigRows(500));
      const before = onDisk(file).db;
      await s.jobs.remove("j");
      assert.equal(onDisk(file).db, before);
    });
  });

  it("a new file vacuums incrementally; cache clear and prune give their pages back", async () => {
    const file = freshFile();
    await withStore(file, async (s) => {
      const db = await connect(file);
      try {
        assert.equal(fileSpace(db).autoVacuum, INCREMENTAL);
      } finally {
        db.close();
      }
      const value = "v".repeat(8_000);
      for (let i = 0; i < ROWS_OVER_THRESHOLD; i++) await s.cache.set(key(i), value);
      assert.ok(total(onDisk(file)) > COMPACT_DEFAULTS.minFreeBytes);
      assert.equal(await s.cache.prune(Date.now() + 1), ROWS_OVER_THRESHOLD);
      assert.ok(onDisk(file).db < 2 * MiB, `after prune: ${onDisk(file).db} bytes`);

      for (let i = 0; i < ROWS_OVER_THRESHOLD; i++) await s.cache.set(key(i), value);
      assert.ok(total(onDisk(file)) > COMPACT_DEFAULTS.minFreeBytes);
      assert.equal(await s.cache.clear(), ROWS_OVER_THRESHOLD);
      assert.ok(onDisk(file).db < 2 * MiB, `after clear: ${onDisk(file).db} bytes`);
      await s.cache.set(key(1), "after");
      assert.equal(await s.cache.get(key(1)), "after");
    });
  });

  it("a file made before (no incremental vacuum) shrinks too, and vacuums incrementally after", async () => {
    const file = freshFile();
    const old = await connect(file);
    // An earlier Loom's file: SQLite's default auto_vacuum (none), WAL.
    old.exec("PRAGMA journal_mode = WAL; CREATE TABLE t (a); DROP TABLE t");
    assert.equal(fileSpace(old).autoVacuum, 0);
    old.close();
    await withStore(file, async (s) => {
      await s.results.put("big", 0, bigRows(ROWS_OVER_THRESHOLD));
      await s.jobs.remove("big");
      assert.ok(onDisk(file).db < 2 * MiB, `state.db is ${onDisk(file).db} bytes`);
    });
    const db = await connect(file);
    try {
      assert.equal(fileSpace(db).autoVacuum, INCREMENTAL);
    } finally {
      db.close();
    }
  });

  it("a reader of another process keeps its snapshot; the file shrinks once it is done", async () => {
    const file = freshFile();
    // Another process's idle connection: no close here is the last one (which would checkpoint).
    const bystander = await connect(file);
    after(() => bystander.close());
    await withStore(file, async (s) => {
      await s.results.put("big", 0, bigRows(ROWS_OVER_THRESHOLD));
      const reader = await connect(file);
      try {
        reader.exec("BEGIN");
        const count = () =>
          (reader.prepare("SELECT count(*) AS n FROM results").get() as { n: number }).n;
        assert.equal(count(), ROWS_OVER_THRESHOLD);

        await s.jobs.remove("big");
        assert.equal(await s.results.has("big", 0), false);
        assert.equal(count(), ROWS_OVER_THRESHOLD, "the reader's snapshot is whole");
        reader.exec("COMMIT");
      } finally {
        reader.close();
      }
      assert.ok(onDisk(file).db > COMPACT_DEFAULTS.minFreeBytes, "not cut under the reader");
    });
    // The next open finds the file larger than its pages, and cuts it.
    await withStore(file, (s) => {
      const now = onDisk(file);
      assert.ok(now.db < 2 * MiB && now.wal < 2 * MiB, JSON.stringify(now));
      return s.jobs.list();
    });
  });

  it("a file another process is writing is left alone, and compacted at a later open", async () => {
    const file = freshFile();
    await withStore(file, async (s) => {
      await s.cache.set(key(1), "kept");
    });
    // Free pages made by another program, with no compaction after them.
    const other = await connect(file);
    other.exec("PRAGMA journal_mode = WAL; CREATE TABLE filler (v)");
    const fill = other.prepare("INSERT INTO filler VALUES (?)");
    other.exec("BEGIN");
    for (const { value } of bigRows(ROWS_OVER_THRESHOLD)) fill.run(value);
    other.exec("COMMIT; DROP TABLE filler");
    const big = fileSpace(other).pages;
    // Holds the write lock, as a sync run committing its cache does.
    other.exec("BEGIN IMMEDIATE");
    try {
      const started = performance.now();
      await withStore(file, async (s) => {
        assert.equal(await s.cache.get(key(1)), "kept");
      });
      assert.ok(performance.now() - started < 5_000, "the open did not wait for the writer");
      assert.equal(fileSpace(other).pages, big, "left alone");
    } finally {
      other.exec("COMMIT");
      other.close();
    }
    await withStore(file, async (s) => {
      assert.ok(onDisk(file).db < 2 * MiB, `state.db is ${onDisk(file).db} bytes`);
      assert.equal(await s.cache.get(key(1)), "kept");
    });
  });
});

describe("compact", () => {
  /** A file of `liveMiB` of live rows and `freeMiB` of free pages (incremental vacuuming). */
  async function made(liveMiB: number, freeMiB: number): Promise<DatabaseSync> {
    const db = await connect(freshFile());
    db.exec(`PRAGMA auto_vacuum = INCREMENTAL; PRAGMA journal_mode = WAL;
      CREATE TABLE live (v); CREATE TABLE gone (v)`);
    const row = "x".repeat(8_000);
    db.exec("BEGIN");
    // Interleaved, so the free pages are spread through the file.
    for (let i = 0; i < Math.max(liveMiB, freeMiB) * 128; i++) {
      if (i < liveMiB * 128) db.prepare("INSERT INTO live VALUES (?)").run(row);
      if (i < freeMiB * 128) db.prepare("INSERT INTO gone VALUES (?)").run(row);
    }
    db.exec("COMMIT; DELETE FROM gone");
    return db;
  }
  const options = {
    restoreBusyMs: 1_000,
    minFreeBytes: 4 * MiB,
    stepBytes: 1 * MiB,
    budgetMs: 600_000,
  };

  it("rewrites a small live part, moves pages out of a large one, skips a little free space", async () => {
    for (
      const [live, free, expected] of [
        [2, 8, "vacuum"],
        [8, 6, "incremental"],
        [8, 2, "none"],
      ] as const
    ) {
      const db = await made(live, free);
      try {
        let steps = 1;
        const alive = () => (steps++, true);
        assert.equal(await compact(db, { ...options, alive }), expected, `${live}/${free} MiB`);
        // A step frees a whole step's pages (not one page a call).
        assert.ok(steps <= free + 1, `${steps} steps to free ${free} MiB in steps of 1 MiB`);
        const space = fileSpace(db);
        assert.equal(space.freePages, expected === "none" ? space.freePages : 0);
        assert.equal(
          (db.prepare("SELECT count(*) AS n FROM live").get() as { n: number }).n,
          live * 128,
        );
        assert.equal(
          (db.prepare("PRAGMA integrity_check").get() as { integrity_check: string })
            .integrity_check,
          "ok",
        );
      } finally {
        db.close();
      }
    }
  });

  it("gives back less free space when the live part is tiny", async () => {
    for (const [free, expected] of [[9, "vacuum"], [6, "none"]] as const) {
      const db = await made(0, free);
      try {
        // The store's threshold (32 MiB), not the 4 MiB of the cases above.
        const got = await compact(db, { ...options, minFreeBytes: COMPACT_DEFAULTS.minFreeBytes });
        assert.equal(got, expected, `${free} MiB free`);
        if (expected === "vacuum") assert.equal(fileSpace(db).freePages, 0);
      } finally {
        db.close();
      }
    }
  });

  it("does not rewrite a large live part of an older file", async () => {
    const db = await connect(freshFile());
    db.exec("PRAGMA journal_mode = WAL; CREATE TABLE live (v); CREATE TABLE gone (v)");
    const row = "x".repeat(8_000);
    for (const [table, rows] of [["live", 8 * 128], ["gone", 6 * 128]] as const) {
      db.exec("BEGIN");
      for (let i = 0; i < rows; i++) db.prepare(`INSERT INTO ${table} VALUES (?)`).run(row);
      db.exec("COMMIT");
    }
    db.exec("DELETE FROM gone");
    try {
      assert.equal(await compact(db, options), "none");
      assert.equal(fileSpace(db).autoVacuum, 0);
    } finally {
      db.close();
    }
  });

  it("leaves what its time budget did not reach for the next call", async () => {
    const db = await made(8, 6);
    try {
      let steps = 0;
      const alive = () => (steps++, true);
      // A budget of nothing still takes one step: each call makes progress.
      assert.equal(await compact(db, { ...options, budgetMs: 0, alive }), "incremental");
      assert.equal(steps, 0, "no pause: the budget ended after the first step");
      const left = fileSpace(db).freePages;
      assert.ok(left > 0 && left < 6 * 256, `${left} free pages left of 1536`);
      assert.equal(await compact(db, { ...options, minFreeBytes: 0 }), "incremental");
      assert.equal(fileSpace(db).freePages, 0);
    } finally {
      db.close();
    }
  });

  it("stops between steps once the store is closed", async () => {
    const db = await made(8, 6);
    try {
      assert.equal(await compact(db, { ...options, alive: () => false }), "closed");
      assert.ok(fileSpace(db).freePages > 0);
    } finally {
      db.close();
    }
  });
});
