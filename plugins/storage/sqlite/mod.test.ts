import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { type ChildProcess, spawn } from "node:child_process";
import {
  closeSync,
  openSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { homedir } from "node:os";
import { join, resolve } from "node:path";
import process from "node:process";
import { describe, it } from "node:test";
import { LoomError } from "../../../core/base/errors.ts";
import { runtimeName } from "../../../core/base/runtime.ts";
import type { ResultRow, StorageV2 } from "../../../core/spec/storage.ts";
import { tempDir } from "../../../core/test-support/temp.ts";
import { storageConformance } from "../../../core/testing/storage-conformance.ts";
import { fill, Mounts, unfill } from "../../../scripts/chaos/mounts.ts";
import { loadSqlite } from "./driver.ts";
import plugin, { openSqliteStorage, sqliteFile } from "./mod.ts";
import { cacheSlot, SCHEMA_VERSION } from "./schema.ts";

let n = 0;
const freshFile = () => join(tempDir("loom-sqlite-"), `state-${n++}.db`);

storageConformance({
  name: "sqlite",
  create: () => openSqliteStorage({ file: freshFile() }),
  // A second connection to the same file, as another Loom process would open it.
  reopen: (first) => openSqliteStorage({ file: first.location }),
});

/** Opens a store for the body and closes it afterwards. */
async function using<T>(
  file: string,
  body: (s: StorageV2) => Promise<T>,
  options: { resultsIn?: "files" | "table" } = {},
): Promise<T> {
  const s = await openSqliteStorage({ file, ...options });
  try {
    return await body(s);
  } finally {
    await s.close();
  }
}

/** Runs raw SQL on the file, as another program (or a newer Loom) would. */
async function raw(file: string, sql: string): Promise<unknown[]> {
  const { DatabaseSync } = await loadSqlite();
  const db = new DatabaseSync(file);
  try {
    return db.prepare(sql).all().map((row) => ({ ...row }));
  } finally {
    db.close();
  }
}

/** The names in the folder of `file`'s result set files, sorted. */
function resultFiles(file: string): string[] {
  try {
    return readdirSync(`${file}-results`).sort();
  } catch {
    return [];
  }
}

async function readAll(s: StorageV2, job: string, shard: number): Promise<ResultRow[]> {
  const out: ResultRow[] = [];
  for await (const { row, value } of s.results.read(job, shard)) out.push({ row, value });
  return out;
}

/** Asserts that `promise` rejects with a LoomError (no stack for the user) matching `pattern`. */
async function rejectsAsLoom(promise: Promise<unknown>, pattern: RegExp): Promise<LoomError> {
  let caught: unknown;
  await assert.rejects(promise, (error) => {
    caught = error;
    return true;
  });
  assert.ok(LoomError.isInstance(caught), `not a LoomError: ${(caught as Error)?.stack}`);
  assert.match(caught.message, pattern);
  return caught;
}

/** The module under test, as a child process imports it (source under Deno, build under Node). */
const MODULE = new URL(`./mod${import.meta.url.endsWith(".ts") ? ".ts" : ".js"}`, import.meta.url)
  .href;

interface Child {
  readonly process: ChildProcess;
  /** Resolves when stdout has printed a line equal to `line`. */
  line(line: string): Promise<void>;
  /** Resolves with the exit code (or signal) and everything printed. */
  readonly done: Promise<{ code: number | null; signal: string | null; out: string; err: string }>;
}

/**
 * Runs `code` (a module body; `open` is `openSqliteStorage`) in a child process of this runtime:
 * `deno eval` under Deno, `node --input-type=module -e` under Node.
 */
function child(code: string): Child {
  const body = `const { openSqliteStorage: open } = await import(${
    JSON.stringify(MODULE)
  });\n${code}`;
  const args = runtimeName() === "deno" ? ["eval", body] : ["--input-type=module", "-e", body];
  const proc = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  const waiting: { line: string; resolve: () => void }[] = [];
  proc.stdout!.setEncoding("utf8").on("data", (d: string) => {
    out += d;
    const lines = out.split("\n");
    for (const w of [...waiting]) {
      if (lines.includes(w.line)) {
        waiting.splice(waiting.indexOf(w), 1);
        w.resolve();
      }
    }
  });
  proc.stderr!.setEncoding("utf8").on("data", (d: string) => (err += d));
  const done = new Promise<
    { code: number | null; signal: string | null; out: string; err: string }
  >(
    (resolve, reject) => {
      proc.on("error", reject);
      proc.on("exit", (code, signal) => {
        for (const w of waiting) w.resolve();
        resolve({ code, signal, out, err });
      });
    },
  );
  return {
    process: proc,
    done,
    line: (line) =>
      out.split("\n").includes(line)
        ? Promise.resolve()
        : new Promise((resolve) => waiting.push({ line, resolve })),
  };
}

/** Whether this machine lets the tests mount a tmpfs (root in a container that allows it). */
function canMount(): boolean {
  const mounts = new Mounts();
  const ok = mounts.tmpfs(join(tempDir("loom-mount-probe-"), "m"), 16);
  mounts.unmountAll();
  return ok;
}
const MOUNTS = canMount();
const NO_MOUNT = "mounting a tmpfs is not allowed here (needs root with CAP_SYS_ADMIN)";

describe("sqlite storage", () => {
  it("finds its file from LOOM_STATE, by default LOOM_HOME/state.db", () => {
    assert.equal(sqliteFile(undefined, "/h"), "/h/state.db");
    assert.equal(sqliteFile("sqlite:", "/h"), "/h/state.db");
    assert.equal(sqliteFile("sqlite:/var/loom/s.db", "/h"), "/var/loom/s.db");
    assert.equal(sqliteFile("sqlite:///var/loom/s.db", "/h"), "/var/loom/s.db");
    assert.equal(sqliteFile("SQLITE:state/s.db", "/h"), resolve("state/s.db"));
    assert.equal(sqliteFile("sqlite:~/s.db", "/h"), join(homedir(), "s.db"));
  });

  it("keeps its folder 0700 and its files (with -wal and -shm) 0600", async () => {
    const home = join(tempDir("loom-sqlite-"), "home", "nested");
    const s = await plugin.create({}, { env: {}, home });
    try {
      assert.equal(s.location, join(home, "state.db"));
      await s.cache.set("a".repeat(64), "value");
      await s.results.put("j", 0, [{ row: 0, value: "x" }]);
      assert.equal(statSync(home).mode & 0o777, 0o700);
      for (const suffix of ["", "-wal", "-shm"]) {
        assert.equal(statSync(`${s.location}${suffix}`).mode & 0o777, 0o600, `state.db${suffix}`);
      }
    } finally {
      await s.close();
    }
    const again = await plugin.create({ url: `sqlite:${join(home, "state.db")}` }, {
      env: {},
      home: "/elsewhere",
    });
    try {
      assert.equal(await again.cache.get("a".repeat(64)), "value");
    } finally {
      await again.close();
    }
  });

  it("prints no experimental warning of SQLite, and lets other warnings through", async () => {
    const file = freshFile();
    const run = child(`
      const s = await open({ file: ${JSON.stringify(file)} });
      await s.cache.set("k", "v");
      await s.close();
      process.emitWarning("someone else's warning");
      console.log("done");
    `);
    const { code, out, err } = await run.done;
    assert.equal(code, 0, err);
    assert.match(out, /^done$/m);
    assert.doesNotMatch(err, /SQLite is an experimental feature/);
    assert.match(err, /someone else's warning/);
  });

  it("refuses a file written by a newer Loom, naming it", async () => {
    const file = freshFile();
    await using(file, (s) => s.cache.set("k", "v"));
    await raw(file, "PRAGMA user_version = 99");
    const error = await rejectsAsLoom(openSqliteStorage({ file }), /newer Loom/);
    assert.ok(error.message.includes(file), error.message);
    assert.match(error.message, /version 99/);
    assert.equal(error.exitCode, 2);
    assert.deepEqual(
      await raw(file, "SELECT value FROM cache"),
      [{ value: "v" }],
      "left as it was",
    );
  });

  it("tells a file that is not a database, and leaves it alone", async () => {
    const file = freshFile();
    const text = "id,prompt\n1,hello\n".repeat(300);
    writeFileSync(file, text);
    const error = await rejectsAsLoom(openSqliteStorage({ file }), /is not a SQLite database/);
    assert.ok(error.message.startsWith(file), error.message);
    assert.match(error.message, /LOOM_STATE/);
    assert.equal(readFileSync(file, "utf8"), text);
  });

  it("refuses another program's SQLite database", async () => {
    const file = freshFile();
    await raw(file, "CREATE TABLE notes (body TEXT)");
    await rejectsAsLoom(openSqliteStorage({ file }), /another program/);
    assert.deepEqual(
      await raw(file, "SELECT name FROM sqlite_schema WHERE type = 'table'"),
      [{ name: "notes" }],
    );
  });

  it("tells a database kept locked too long by another process", async () => {
    const file = freshFile();
    const s = await openSqliteStorage({ file, busyTimeoutMs: 50 });
    const { DatabaseSync } = await loadSqlite();
    const other = new DatabaseSync(file);
    try {
      other.exec("BEGIN IMMEDIATE");
      const error = await rejectsAsLoom(s.cache.set("k", "v"), /is busy/);
      assert.ok(error.message.includes(file), error.message);
      other.exec("COMMIT");
      await s.cache.set("k", "v");
      assert.equal(await s.cache.get("k"), "v");
    } finally {
      other.close();
      await s.close();
    }
  });

  it("tells a damaged database, naming it and what to do", async () => {
    const file = freshFile();
    await using(file, async (s) => {
      for (let i = 0; i < 3_000; i++) await s.cache.set(`k${i}`, "v".repeat(500));
    });
    // Keep the header page, overwrite the pages of the tables.
    const size = statSync(file).size;
    const fd = openSync(file, "r+");
    writeSync(fd, Buffer.alloc(size - 16_384, 0x5a), 0, size - 16_384, 8_192);
    closeSync(fd);
    const error = await rejectsAsLoom(
      (async () => await using(file, (s) => s.cache.get("k5")))(),
      /is damaged .*\[SQLITE_CORRUPT\]; move it away/,
    );
    assert.ok(error.message.includes(file), error.message);
  });

  it("getMany finds entries set and not committed yet, and one statement reads many keys", async () => {
    const file = freshFile();
    await using(file, async (s) => {
      for (let i = 0; i < 50; i++) await s.cache.set(`k${i}`, `v${i}`);
      const pending = s.cache.set("fresh", "new"); // committed on the next turn
      const again = s.cache.set("k0", "newer");
      const found = await s.cache.getMany!(["fresh", "k0", "k1", "k49", "absent"]);
      assert.deepEqual(
        [...found].sort(),
        [["fresh", "new"], ["k0", "newer"], ["k1", "v1"], ["k49", "v49"]],
      );
      await Promise.all([pending, again]);
      const all = await s.cache.getMany!(Array.from({ length: 60 }, (_, i) => `k${i}`));
      assert.equal(all.size, 50);
    });
  });

  it("derives a cache key's slot from its hex digits, or from its hash", () => {
    const loom = "0123456789abcdef".repeat(4);
    assert.equal(cacheSlot(loom), 0x0123456789abc);
    assert.equal(cacheSlot("f".repeat(64)), 2 ** 52 - 1);
    for (const other of ["k", "", "é".repeat(64), loom.toUpperCase(), `${loom}0`]) {
      const slot = cacheSlot(other);
      assert.ok(Number.isSafeInteger(slot) && slot >= 0 && slot < 2 ** 52, other);
      assert.equal(cacheSlot(other), slot, "the same every time");
    }
    assert.notEqual(cacheSlot("k1"), cacheSlot("k2"));
  });

  it("two keys of one slot: a lookup never answers the other's value, a set replaces it", async () => {
    const a = `0123456789abc${"0".repeat(51)}`;
    const b = `0123456789abc${"f".repeat(51)}`;
    assert.equal(cacheSlot(a), cacheSlot(b));
    await using(freshFile(), async (s) => {
      await s.cache.set(a, "answer a");
      assert.equal(await s.cache.get(b), undefined);
      assert.deepEqual(await s.cache.getMany!([b, "c".repeat(64)]), new Map());
      assert.deepEqual(await s.cache.getMany!([b, a]), new Map([[a, "answer a"]]));
      await s.cache.set(b, "answer b");
      assert.equal(await s.cache.get(a), undefined, "the older entry of the slot is gone");
      assert.deepEqual(await s.cache.getMany!([a, b, a]), new Map([[b, "answer b"]]));
      assert.equal((await s.cache.stats()).entries, 1);
    });
  });

  it("moves the cache entries of a version 1 file, with their times, and finds them", async () => {
    const file = freshFile();
    await using(file, async () => {});
    // The cache as version 1 kept it (its other tables are as they are now).
    await raw(
      file,
      `DROP TABLE cache`,
    );
    const loomKey = (i: number) => `${i.toString(16).padStart(4, "0")}${"ab".repeat(30)}`;
    const rows = Array.from({ length: 500 }, (_, i) => [loomKey(i), `answer ${i}`, 1_000 + i]);
    rows.push(["any string as a key", "ö answer", 5_000]);
    const { DatabaseSync } = await loadSqlite();
    const db = new DatabaseSync(file);
    try {
      db.exec(`CREATE TABLE cache (
         key TEXT PRIMARY KEY, value TEXT NOT NULL, stored_at INTEGER NOT NULL,
         bytes INTEGER NOT NULL);
       CREATE INDEX cache_stored_at ON cache (stored_at, bytes);
       ALTER TABLE result_sets DROP COLUMN segments;
       DROP TABLE runs;
       PRAGMA user_version = 1;`);
      const insert = db.prepare("INSERT INTO cache VALUES (?, ?, ?, ?)");
      for (const [key, value, at] of rows) {
        insert.run(key, value, at, Buffer.byteLength(`${key}${value}`));
      }
    } finally {
      db.close();
    }
    await using(file, async (s) => {
      for (const [key, value] of rows) assert.equal(await s.cache.get(key as string), value);
      const keys = rows.map(([key]) => key as string);
      assert.equal((await s.cache.getMany!(keys)).size, rows.length);
      const stats = await s.cache.stats();
      assert.equal(stats.entries, rows.length);
      assert.equal(stats.oldest, 1_000);
      assert.equal(stats.newest, 5_000);
      assert.equal(
        stats.bytes,
        rows.reduce((sum, [key, value]) => sum + Buffer.byteLength(`${key}${value}`), 0),
      );
      assert.equal(await s.cache.prune(1_250), 250, "stored times kept");
    });
    assert.deepEqual(await raw(file, "PRAGMA user_version"), [{ user_version: SCHEMA_VERSION }]);
    assert.deepEqual(await raw(file, "PRAGMA integrity_check"), [{ integrity_check: "ok" }]);
  });

  it("entries waiting for a grouped commit are found, and closing commits them", async () => {
    const file = freshFile();
    const late = Array.from({ length: 10 }, (_, i) => `late ${i}`);
    const settled: string[] = [];
    await using(file, async (s) => {
      // A large commit, as at echo pace: the next sets wait for the group's window.
      await Promise.all(Array.from({ length: 500 }, (_, i) => s.cache.set(`k${i}`, `v${i}`)));
      for (const key of late) void s.cache.set(key, `answer ${key}`).then(() => settled.push(key));
      assert.equal(await s.cache.get("late 3"), "answer late 3");
      const found = await s.cache.getMany!([...late, "k0", "absent"]);
      assert.equal(found.size, late.length + 1);
      assert.equal(found.get("k0"), "v0");
    });
    assert.deepEqual(settled, late, "each set resolved once its entry was committed");
    await using(file, async (s) => {
      const found = await s.cache.getMany!(late);
      assert.deepEqual([...found.values()], late.map((key) => `answer ${key}`));
      assert.equal((await s.cache.stats()).entries, 510);
    });
  });

  it("a store is closed for good", async () => {
    const s = await openSqliteStorage({ file: freshFile() });
    await s.close();
    await s.close();
    await rejectsAsLoom(s.cache.get("k"), /is closed/);
  });

  it("a job removed while its results are saved fails that put and keeps nothing", async () => {
    const file = freshFile();
    await using(file, async (s) => {
      async function* rows(): AsyncGenerator<ResultRow> {
        for (let row = 0; row < 5_000; row++) {
          if (row === 2_500) await s.jobs.remove("j");
          yield { row, value: `${row}` };
        }
      }
      await rejectsAsLoom(s.results.put("j", 0, rows()), /job j was removed/);
      assert.equal(await s.results.has("j", 0), false);
    });
    assert.deepEqual(await raw(file, "SELECT count(*) AS n FROM results"), [{ n: 0 }]);
    assert.deepEqual(resultFiles(file), []);
  });

  it("processes opening a new file at once create its schema once", async () => {
    const file = freshFile();
    const runs = [0, 1, 2].map((i) =>
      child(`
        const s = await open({ file: ${JSON.stringify(file)} });
        console.log(await s.jobs.put("job-${i}", "{}", 0));
        await s.close();
      `)
    );
    for (const run of runs) {
      const { code, out, err } = await run.done;
      assert.equal(code, 0, err);
      assert.equal(out.trim(), "1");
    }
    await using(file, async (s) => {
      assert.deepEqual((await s.jobs.list()).map((j) => j.id).sort(), ["job-0", "job-1", "job-2"]);
    });
    assert.deepEqual(await raw(file, "PRAGMA user_version"), [{ user_version: SCHEMA_VERSION }]);
  });

  it("another process writes results and cache while this one reads", async () => {
    const file = freshFile();
    const rows = 3_000;
    const generations = 12;
    await using(file, async (s) => {
      const writer = child(`
        const s = await open({ file: ${JSON.stringify(file)} });
        for (let gen = 1; gen <= ${generations}; gen++) {
          await s.results.put("j", 0, (function* () {
            for (let row = 0; row < ${rows}; row++) yield { row, value: "g" + gen + ":" + row };
          })());
          await s.cache.set("key-" + gen, "answer " + gen);
          console.log("gen " + gen);
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
        await s.close();
      `);
      let exited = false;
      const done = writer.done.finally(() => (exited = true));
      await writer.line("gen 1");
      const seen = new Set<number>();
      while (!exited) {
        const got = await readAll(s, "j", 0);
        assert.equal(got.length, rows, "a whole set");
        const gen = Number(/^g(\d+):/.exec(got[0].value)?.[1]);
        got.forEach(({ row, value }, i) => {
          if (row !== i || value !== `g${gen}:${row}`) assert.fail(`mixed sets: ${value} at ${i}`);
        });
        seen.add(gen);
        assert.equal(await s.cache.get(`key-${gen}`) ?? `answer ${gen}`, `answer ${gen}`);
        // Let the event loop see the child's output and exit (reads alone never yield to it).
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
      const { code, err } = await done;
      assert.equal(code, 0, err);
      assert.ok(seen.size >= 2, `read only generations ${[...seen]}`);
      assert.equal((await readAll(s, "j", 0))[0].value, `g${generations}:0`);
      assert.equal((await s.cache.stats()).entries, generations);
    });
  });

  it("another process writing the cache while a large job is removed loses nothing, and waits little", async () => {
    const file = freshFile();
    const flag = `${file}.removed`;
    const value = "v".repeat(8_000);
    const hex = (i: number) => i.toString(16).padStart(13, "0").padEnd(64, "c");
    await using(file, async (s) => {
      // Live data outweighing the job's: the space is given back in incremental steps.
      for (let i = 0; i < 6_000; i += 500) {
        await Promise.all(Array.from({ length: 500 }, (_, k) => s.cache.set(hex(i + k), value)));
      }
      await s.results.put(
        "big",
        0,
        (function* () {
          for (let row = 0; row < 5_000; row++) yield { row, value };
        })(),
      );
      const writer = child(`
        const { existsSync } = await import("node:fs");
        const s = await open({ file: ${JSON.stringify(file)} });
        let n = 0, longest = 0;
        console.log("ready");
        for (let after = 0; after < 50; n++) {
          const started = performance.now();
          await s.cache.set("w" + n, "answer " + n);
          longest = Math.max(longest, performance.now() - started);
          if (existsSync(${JSON.stringify(flag)})) after++;
        }
        await s.close();
        console.log(JSON.stringify({ n, longest }));
      `);
      await writer.line("ready");
      const before = statSync(file).size + statSync(`${file}-wal`).size;
      await s.jobs.remove("big");
      writeFileSync(flag, "");
      const { code, out, err } = await writer.done;
      assert.equal(code, 0, err);
      const { n, longest } = JSON.parse(out.trim().split("\n").at(-1)!);
      for (let i = 0; i < n; i++) assert.equal(await s.cache.get(`w${i}`), `answer ${i}`);
      // The writer waited for one step at a time, not for the whole compaction.
      assert.ok(longest < 5_000, `a set waited ${longest} ms`);
      const after = statSync(file).size;
      assert.ok(after < before - 20 * 1024 * 1024, `${before} bytes, then ${after}`);
      // The job's results are in the table (as an older Loom saved them), whose pages are freed.
    }, { resultsIn: "table" });
  });

  it("a writer killed in the middle of a large put leaves the old set and a sound file", async () => {
    const file = freshFile();
    const writer = child(`
      const s = await open({ file: ${JSON.stringify(file)} });
      await s.results.put("j", 0, [{ row: 0, value: "old 0" }, { row: 1, value: "old 1" }]);
      await s.cache.set("answer", "kept");
      await s.results.put("j", 0, (async function* () {
        for (let row = 0; ; row++) {
          if (row === 20000) console.log("writing");
          if (row % 1000 === 0) await new Promise((resolve) => setImmediate(resolve));
          yield { row, value: "new " + row };
        }
      })());
    `);
    await writer.line("writing");
    await new Promise((resolve) => setTimeout(resolve, 50));
    writer.process.kill("SIGKILL");
    const { signal } = await writer.done;
    assert.equal(signal, "SIGKILL");
    assert.deepEqual(await raw(file, "PRAGMA integrity_check"), [{ integrity_check: "ok" }]);
    assert.deepEqual(resultFiles(file), ["1", "2.part"], "the killed put had begun its file");
    await using(file, async (s) => {
      assert.deepEqual(await readAll(s, "j", 0), [
        { row: 0, value: "old 0" },
        { row: 1, value: "old 1" },
      ]);
      assert.equal(await s.cache.get("answer"), "kept");
    });
    // Opening swept the dead writer's unfinished set.
    assert.deepEqual(await raw(file, "SELECT id FROM result_sets"), [{ id: 1 }]);
    assert.deepEqual(resultFiles(file), ["1"]);
  });

  it("a killed process loses no cache entry it was told was stored", async () => {
    const file = freshFile();
    const writer = child(`
      const s = await open({ file: ${JSON.stringify(file)} });
      let next = 0;
      const worker = async () => {
        for (;;) {
          const key = "k" + next++;
          await s.cache.set(key, "answer " + key);
          console.log("stored " + key);
        }
      };
      await Promise.all(Array.from({ length: 8 }, worker));
    `);
    await writer.line("stored k300");
    writer.process.kill("SIGKILL");
    const { out, signal } = await writer.done;
    assert.equal(signal, "SIGKILL");
    const told = [...out.matchAll(/^stored (k\d+)$/gm)].map((m) => m[1]);
    assert.ok(told.length > 300);
    await using(file, async (s) => {
      for (const key of told) assert.equal(await s.cache.get(key), `answer ${key}`, key);
    });
  });

  it("a writer killed at any point of a put leaves one whole set, old or new", async () => {
    for (const delay of [0, 15, 40]) {
      const file = freshFile();
      const writer = child(`
        const s = await open({ file: ${JSON.stringify(file)} });
        const set = (tag, count) => (function* () {
          for (let row = 0; row < count; row++) yield { row, value: tag + row };
        })();
        await s.results.put("j", 0, set("old ", 30000));
        console.log("old saved");
        await s.results.put("j", 0, set("new ", 30000));
        await new Promise(() => setInterval(() => {}, 1000));
      `);
      await writer.line("old saved");
      await new Promise((resolve) => setTimeout(resolve, delay));
      writer.process.kill("SIGKILL");
      await writer.done;
      await using(file, async (s) => {
        const got = await readAll(s, "j", 0);
        assert.equal(got.length, 30_000, `after ${delay} ms`);
        const tag = got[0].value.slice(0, 4);
        assert.ok(got.every(({ row, value }, i) => row === i && value === `${tag}${row}`));
      });
      // One set and its file are left, whichever it is.
      const sets = await raw(file, "SELECT id FROM result_sets") as { id: number }[];
      assert.equal(sets.length, 1, `after ${delay} ms`);
      assert.deepEqual(resultFiles(file), [String(sets[0].id)], `after ${delay} ms`);
    }
  });

  describe("faults of the disk", { skip: MOUNTS ? false : NO_MOUNT }, () => {
    /** Runs `work` on a store in a 256 KiB tmpfs (unmounted after). */
    const onSmallDisk = async (work: (dir: string, file: string) => Promise<void>) => {
      const mounts = new Mounts();
      const dir = join(tempDir("loom-sqlite-"), "small");
      try {
        assert.ok(mounts.tmpfs(dir, 256));
        await work(dir, join(dir, "state.db"));
      } finally {
        mounts.unmountAll();
      }
    };

    it("a full disk is told, and the store works again once there is room", async () => {
      await onSmallDisk(async (dir, file) => {
        await using(file, async (s) => {
          await s.cache.set("small", "fits");
          fill(dir, 0);
          const error = await rejectsAsLoom(
            s.cache.set("big", "x".repeat(400_000)),
            /the disk is full \[SQLITE_FULL\]; free some space/,
          );
          assert.ok(error.message.includes(file), error.message);
          assert.equal(await s.cache.get("small"), "fits");
          unfill(dir);
          await s.cache.set("big", "x".repeat(400_000));
          assert.equal((await s.cache.get("big"))?.length, 400_000);
        });
      });
    });

    it("a full disk while a result file is written is told, and leaves nothing", async () => {
      await onSmallDisk(async (dir, file) => {
        await using(file, async (s) => {
          await s.results.put("j", 0, [{ row: 0, value: "old" }]);
          // Room for the set's row in the database, not for its file.
          fill(dir, 32);
          const rows = Array.from({ length: 2_000 }, (_, row) => ({ row, value: "x".repeat(100) }));
          const error = await rejectsAsLoom(
            s.results.put("j", 0, rows),
            /cannot save results in .*state\.db-results: .*the disk is full \[ENOSPC\]/,
          );
          assert.equal(error.exitCode, 1);
          assert.deepEqual(resultFiles(file), ["1"], "no part of the new file is left");
          unfill(dir);
          assert.deepEqual(await readAll(s, "j", 0), [{ row: 0, value: "old" }]);
          await s.results.put("j", 0, rows);
          assert.equal((await readAll(s, "j", 0)).length, 2_000);
        });
      });
    });

    it("a read-only place is told, naming the file", async () => {
      const mounts = new Mounts();
      const dir = join(tempDir("loom-sqlite-"), "ro");
      try {
        assert.ok(mounts.tmpfs(dir, 256));
        const file = join(dir, "state.db");
        await using(file, (s) => s.cache.set("k", "v"));
        assert.ok(mounts.remount(dir, "ro"));
        // Opening may work (reading needs no write); the first write must fail clearly.
        const error = await rejectsAsLoom(
          (async () => await using(file, (s) => s.cache.set("k2", "v2")))(),
          /read-only|cannot open/,
        );
        assert.ok(error.message.includes(file), error.message);
        const fresh = join(dir, "new.db");
        const refused = await rejectsAsLoom(openSqliteStorage({ file: fresh }), /read-only/);
        assert.ok(refused.message.includes(fresh), refused.message);
        assert.equal(refused.exitCode, 1, "an operational fault, like every read-only place");
      } finally {
        mounts.unmountAll();
      }
    });
  });
});
