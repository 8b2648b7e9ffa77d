/**
 * Saving and reading a batch's results through the SQLite state store, alone: `shards` result
 * sets of echo-like outcomes (packed as a fetch packs them, `core/batch/saved-results.ts`) are
 * put, read back in order, and removed with their job, each phase timed (wall and CPU; only the
 * store's work, not the packing or decoding), with the state folder's size after each.
 *
 *     node scripts/bench/store-results.ts [--rows 1000000] [--shards 20] [--reps 3] [--in table]
 *
 * `--in table` saves them in the database's table, as Loom did before result files.
 * @module
 */
import { mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { parseArgs } from "node:util";
import { resultRows, SavedOutcomeReader } from "../../core/batch/saved-results.ts";
import type { SavedOutcome } from "../../core/batch/store.ts";
import type { ResultRow } from "../../core/spec/storage.ts";
import { openSqliteStorage } from "../../plugins/storage/sqlite/mod.ts";

const { values } = parseArgs({
  options: {
    in: { type: "string", default: "files" },
    rows: { type: "string", default: "1000000" },
    shards: { type: "string", default: "20" },
    reps: { type: "string", default: "3" },
  },
});
const rows = Number(values.rows);
const shards = Number(values.shards);
const perShard = Math.ceil(rows / shards);

/** Echo-like outcomes of a shard's rows, in order. */
async function* outcomes(shard: number): AsyncGenerator<SavedOutcome> {
  const from = shard * perShard;
  for (let i = from; i < Math.min(rows, from + perShard); i++) {
    yield {
      i,
      r: {
        text: `echo: Summarize row ${i} of the data set in one short sentence, please ${i % 97}`,
        finishReason: "stop",
        usage: { inputTokens: 20 + (i % 13), outputTokens: 20 + (i % 13) },
        model: "m",
      },
    };
  }
}

/** Bytes of the files under `dir`, at any depth. */
const folderBytes = (dir: string): number =>
  readdirSync(dir, { withFileTypes: true }).reduce((sum, entry) => {
    const path = join(dir, entry.name);
    return sum + (entry.isDirectory() ? folderBytes(path) : statSync(path).size);
  }, 0);

/** Wall and CPU time of what `work` times with the clock it is given, and the folder's size. */
async function phase(
  name: string,
  work: (timed: <T>(step: () => Promise<T>) => Promise<T>) => Promise<unknown>,
  dir: string,
): Promise<void> {
  let wall = 0;
  let user = 0;
  let system = 0;
  await work(async (step) => {
    const cpu = process.cpuUsage();
    const t = performance.now();
    try {
      return await step();
    } finally {
      wall += performance.now() - t;
      const used = process.cpuUsage(cpu);
      user += used.user;
      system += used.system;
    }
  });
  const mib = (folderBytes(dir) / 1048576).toFixed(1);
  console.log(
    `${name.padEnd(7)} ${wall.toFixed(0).padStart(6)} ms wall ${
      ((user + system) / 1000).toFixed(0).padStart(6)
    } ms cpu (${(system / 1000).toFixed(0)} sys)  folder ${mib} MiB`,
  );
}

/** A shard's stored rows, made before the store is timed. */
async function shardRows(shard: number): Promise<ResultRow[]> {
  const rows: ResultRow[] = [];
  for await (const row of resultRows(outcomes(shard))) rows.push(row);
  return rows;
}

for (let rep = 0; rep < Number(values.reps); rep++) {
  const dir = mkdtempSync(join(tmpdir(), "loom-store-bench-"));
  const store = await openSqliteStorage({
    file: join(dir, "state.db"),
    resultsIn: values.in === "table" ? "table" : "files",
  });
  const job = "bench-job";
  await store.jobs.put(job, "{}", 0);
  let count = 0;
  // Only the store's work is timed: the outcomes are packed before, and decoded after.
  await phase("put", async (timed) => {
    for (let s = 0; s < shards; s++) {
      const rows = await shardRows(s);
      await timed(() => store.results.put(job, s, rows));
    }
  }, dir);
  await phase("read", async (timed) => {
    for (let s = 0; s < shards; s++) {
      const rows: ResultRow[] = [];
      await timed(async () => {
        for await (const row of store.results.read(job, s)) rows.push(row);
      });
      const reader = new SavedOutcomeReader((async function* () {
        yield* rows;
      })());
      for (let o = await reader.next(); o; o = await reader.next()) count++;
    }
  }, dir);
  if (count !== rows) throw new Error(`read ${count} outcomes of ${rows}`);
  await phase("remove", (timed) => timed(() => store.jobs.remove(job)), dir);
  await store.close();
  console.log(`rss ${(process.memoryUsage().rss / 1048576).toFixed(0)} MiB`);
  rmSync(dir, { recursive: true, force: true });
}
