import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from "node:fs";
import { spawn } from "node:child_process";
import { join } from "node:path";
import process from "node:process";
import { describe, it } from "node:test";
import { runtimeName } from "../../../core/base/runtime.ts";
import type { ResultRow, StorageV2 } from "../../../core/spec/storage.ts";
import { tempDir } from "../../../core/test-support/temp.ts";
import { loadSqlite } from "./driver.ts";
import { openSqliteStorage } from "./mod.ts";

const freshFile = () => join(tempDir("loom-result-files-"), "state.db");

async function using<T>(
  file: string,
  body: (s: StorageV2) => Promise<T>,
  resultsIn: "files" | "table" = "files",
): Promise<T> {
  const s = await openSqliteStorage({ file, resultsIn });
  try {
    return await body(s);
  } finally {
    await s.close();
  }
}

async function readAll(s: StorageV2, job: string, shard: number): Promise<ResultRow[]> {
  const out: ResultRow[] = [];
  for await (const { row, value } of s.results.read(job, shard)) out.push({ row, value });
  return out;
}

/** The names in `file`'s result folder, sorted. */
function files(file: string): string[] {
  try {
    return readdirSync(`${file}-results`).sort();
  } catch {
    return [];
  }
}

type SetRow = { id: number; segments: string | null; current: number };

async function sets(file: string): Promise<SetRow[]> {
  const { DatabaseSync } = await loadSqlite();
  const db = new DatabaseSync(file);
  try {
    return db.prepare("SELECT id, segments, current FROM result_sets ORDER BY id").all()
      .map((row) => ({ ...row })) as SetRow[];
  } finally {
    db.close();
  }
}

describe("sqlite storage: result sets in files", () => {
  it("keeps any value as it was: newlines, other scripts, empty, larger than a read", async () => {
    const file = freshFile();
    const values = [
      "",
      "line 1\nline 2\r\n",
      "7 12\nnot a header",
      "\uFEFFa BOM first, ö, 日本語, 🧵",
      "x".repeat(3 * 1024 * 1024 + 5),
      '[[0,"echo: a",null,[1,2],"m"]]',
    ];
    const rows = values.map((value, i) => ({ row: i * 3, value }));
    await using(file, async (s) => {
      await s.results.put("j", 0, rows);
      assert.deepEqual(await readAll(s, "j", 0), rows);
    });
    const [set] = await sets(file);
    const size = statSync(join(`${file}-results`, "1")).size;
    assert.deepEqual(set, { id: 1, segments: `[15,${size}]`, current: 1 });
    assert.deepEqual(files(file), ["1"]);
    // Private, as the database is.
    assert.equal(statSync(`${file}-results`).mode & 0o777, 0o700);
    assert.equal(statSync(join(`${file}-results`, "1")).mode & 0o777, 0o600);
  });

  it("rows in a few ascending runs (answers, then errors) are merged in order", async () => {
    const file = freshFile();
    // Two long interleaved runs, read a segment's buffer at a time, and a third short one.
    const big = (row: number) => ({ row, value: `${row}:${"é".repeat(row % 5_000)}` });
    const evens = Array.from({ length: 3_000 }, (_, i) => big(2 * i));
    const odds = Array.from({ length: 3_000 }, (_, i) => big(2 * i + 1)).filter((r) => r.row !== 3);
    const late = [big(3)];
    await using(file, async (s) => {
      await s.results.put("j", 0, [...evens, ...odds, ...late]);
      const got = await readAll(s, "j", 0);
      assert.equal(got.length, 6_000);
      got.forEach(({ row, value }, i) => {
        if (row !== i || value !== big(i).value) assert.fail(`row ${i}`);
      });
    });
    const [set] = await sets(file);
    assert.equal(JSON.parse(set.segments!).length, 4, "three segments' bounds");
    assert.deepEqual(files(file), ["1"]);
  });

  it("rows in more disorder go to the table and are read in order", async () => {
    const file = freshFile();
    const order = Array.from({ length: 40 }, (_, i) => 39 - i);
    await using(file, async (s) => {
      await s.results.put("j", 0, order.map((row) => ({ row, value: `v${row}` })));
      assert.deepEqual(
        await readAll(s, "j", 0),
        order.toSorted((a, b) => a - b).map((row) => ({ row, value: `v${row}` })),
      );
    });
    assert.deepEqual(await sets(file), [{ id: 1, segments: null, current: 1 }]);
    assert.deepEqual(files(file), []);
  });

  it("a replaced set's file and a removed job's files are removed", async () => {
    const file = freshFile();
    await using(file, async (s) => {
      await s.results.put("j", 0, [{ row: 0, value: "old" }]);
      await s.results.put("j", 1, [{ row: 1, value: "other shard" }]);
      await s.results.put("j", 0, [{ row: 0, value: "new" }]);
      assert.deepEqual(files(file), ["2", "3"]);
      assert.deepEqual(await readAll(s, "j", 0), [{ row: 0, value: "new" }]);
      await s.jobs.remove("j");
      assert.deepEqual(files(file), []);
      assert.equal(await s.results.has("j", 0), false);
    });
  });

  it("opening removes files whose set is gone (killed between the row and the file)", async () => {
    const file = freshFile();
    await using(file, (s) => s.results.put("j", 0, [{ row: 0, value: "kept" }]));
    // What a process killed after deleting sets' rows leaves: their files, whole or in part.
    writeFileSync(join(`${file}-results`, "41"), "loom-results 1\n");
    writeFileSync(join(`${file}-results`, "42.part"), "loom-results 1\n0 3\nab");
    writeFileSync(join(`${file}-results`, "notes.txt"), "not Loom's");
    await using(file, async (s) => {
      assert.deepEqual(files(file), ["1", "notes.txt"]);
      assert.deepEqual(await readAll(s, "j", 0), [{ row: 0, value: "kept" }]);
    });
  });

  it("a set an older Loom saved in the table is read, and replaced by a file", async () => {
    const file = freshFile();
    const rows = Array.from({ length: 5_000 }, (_, row) => ({ row, value: `old ${row}` }));
    await using(file, (s) => s.results.put("j", 0, rows), "table");
    assert.deepEqual(files(file), []);
    await using(file, async (s) => {
      assert.deepEqual(await readAll(s, "j", 0), rows);
      await s.results.put("j", 0, [{ row: 0, value: "new" }]);
      assert.deepEqual(await readAll(s, "j", 0), [{ row: 0, value: "new" }]);
    });
    const size = statSync(join(`${file}-results`, "2")).size;
    assert.deepEqual(await sets(file), [{ id: 2, segments: `[15,${size}]`, current: 1 }]);
  });

  it("a damaged file is told, never read as fewer rows", async () => {
    const file = freshFile();
    await using(file, async (s) => {
      await s.results.put("j", 0, [{ row: 0, value: "a".repeat(100) }, { row: 1, value: "b" }]);
      const path = join(`${file}-results`, "1");
      const whole = readFileSync(path);
      // Cut in a value, cut after a whole row, a row too many.
      truncateSync(path, whole.length - 3);
      await assert.rejects(readAll(s, "j", 0), /is not a whole result file/);
      truncateSync(path, whole.length - "1 1\nb\n".length);
      await assert.rejects(readAll(s, "j", 0), /is not a whole result file/);
      writeFileSync(path, Buffer.concat([whole, Buffer.from("2 1\nc\n")]));
      await assert.rejects(readAll(s, "j", 0), /is not a whole result file/);
      writeFileSync(path, "something else\n");
      await assert.rejects(readAll(s, "j", 0), /is not a whole result file/);
    });
  });

  it("a set whose file is gone is told as missing", async () => {
    const file = freshFile();
    await using(file, async (s) => {
      await s.results.put("j", 0, [{ row: 0, value: "a" }]);
      rmSync(join(`${file}-results`, "1"));
      await assert.rejects(readAll(s, "j", 0), /saved results of job j \(shard 0\) are missing/);
    });
  });
});

/** The module under test, as a child process imports it (source under Deno, build under Node). */
const MODULE = new URL(`./mod${import.meta.url.endsWith(".ts") ? ".ts" : ".js"}`, import.meta.url)
  .href;

/** Runs `code` (`open` is `openSqliteStorage`) in a child process killed at `failpoint`. */
function killedAt(failpoint: string, code: string): Promise<string | null> {
  const body = `const { openSqliteStorage: open } = await import(${
    JSON.stringify(MODULE)
  });\n${code}`;
  const args = runtimeName() === "deno" ? ["eval", body] : ["--input-type=module", "-e", body];
  const proc = spawn(process.execPath, args, {
    stdio: ["ignore", "ignore", "inherit"],
    env: { ...process.env, LOOM_FAILPOINT: failpoint },
  });
  return new Promise((resolve, reject) => {
    proc.on("error", reject);
    proc.on("exit", (_code, signal) => resolve(signal));
  });
}

describe("sqlite storage: result files and a killed process", () => {
  it("killed with a set's file written and the set not saved: the old set, and no file left", async () => {
    const file = freshFile();
    const signal = await killedAt(
      "sqlite:results-written@2",
      `const s = await open({ file: ${JSON.stringify(file)} });
       await s.results.put("j", 0, [{ row: 0, value: "old" }]);
       await s.results.put("j", 0, [{ row: 0, value: "new" }]);`,
    );
    assert.equal(signal, "SIGKILL");
    assert.deepEqual(files(file), ["1", "2"], "the new file was whole, the set not saved");
    await using(file, async (s) => {
      assert.deepEqual(await readAll(s, "j", 0), [{ row: 0, value: "old" }]);
    });
    assert.deepEqual(files(file), ["1"]);
    assert.deepEqual((await sets(file)).map((set) => set.id), [1]);
  });

  it("killed with a job's rows removed and its files not: the files go at the next open", async () => {
    const file = freshFile();
    const signal = await killedAt(
      "sqlite:job-removed",
      `const s = await open({ file: ${JSON.stringify(file)} });
       await s.jobs.put("j", "{}", 0);
       await s.results.put("j", 0, [{ row: 0, value: "a" }]);
       await s.results.put("j", 1, [{ row: 1, value: "b" }]);
       await s.jobs.remove("j");`,
    );
    assert.equal(signal, "SIGKILL");
    assert.deepEqual(files(file), ["1", "2"]);
    await using(file, async (s) => {
      assert.equal(await s.results.has("j", 0), false);
      assert.equal(await s.jobs.get("j"), undefined);
    });
    assert.deepEqual(files(file), []);
  });
});
