import assert from "node:assert/strict";
import { readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
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

async function sets(file: string): Promise<{ id: number; file: number; current: number }[]> {
  const { DatabaseSync } = await loadSqlite();
  const db = new DatabaseSync(file);
  try {
    return db.prepare("SELECT id, file, current FROM result_sets ORDER BY id").all()
      .map((row) => ({ ...row })) as { id: number; file: number; current: number }[];
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
    assert.deepEqual(set, { id: 1, file: 1, current: 1 });
    assert.deepEqual(files(file), ["1"]);
  });

  it("rows that came out of order go to the table and are read in order", async () => {
    const file = freshFile();
    const rows = [5, 1, 9, 3].map((row) => ({ row, value: `v${row}` }));
    await using(file, async (s) => {
      await s.results.put("j", 0, rows);
      assert.deepEqual(
        await readAll(s, "j", 0),
        [1, 3, 5, 9].map((row) => ({ row, value: `v${row}` })),
      );
    });
    assert.deepEqual(await sets(file), [{ id: 1, file: 0, current: 1 }]);
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
    assert.deepEqual(await sets(file), [{ id: 2, file: 1, current: 1 }]);
  });

  it("a damaged file is told, never read as fewer rows", async () => {
    const file = freshFile();
    await using(file, async (s) => {
      await s.results.put("j", 0, [{ row: 0, value: "a".repeat(100) }, { row: 1, value: "b" }]);
      const path = join(`${file}-results`, "1");
      truncateSync(path, readFileSync(path).length - 3);
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
