/**
 * Saving and reading a batch's results through the SQLite state store, alone: `shards` result
 * sets of echo-like outcomes (packed as a fetch packs them, `core/batch/saved-results.ts`) are
 * put, read back in order, and removed with their job, each phase timed (wall and CPU), with the
 * state folder's size after each.
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

async function phase(name: string, work: () => Promise<unknown>, dir: string): Promise<void> {
  const cpu = process.cpuUsage();
  const t = performance.now();
  await work();
  const wall = performance.now() - t;
  const used = process.cpuUsage(cpu);
  const mib = (folderBytes(dir) / 1048576).toFixed(1);
  console.log(
    `${name.padEnd(7)} ${wall.toFixed(0).padStart(6)} ms wall ${
      ((used.user + used.system) / 1000).toFixed(0).padStart(6)
    } ms cpu (${(used.system / 1000).toFixed(0)} sys)  folder ${mib} MiB`,
  );
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
  await phase("put", async () => {
    for (let s = 0; s < shards; s++) await store.results.put(job, s, resultRows(outcomes(s)));
  }, dir);
  await phase("read", async () => {
    for (let s = 0; s < shards; s++) {
      const reader = new SavedOutcomeReader(store.results.read(job, s));
      for (let o = await reader.next(); o; o = await reader.next()) count++;
      await reader.close();
    }
  }, dir);
  if (count !== rows) throw new Error(`read ${count} outcomes of ${rows}`);
  await phase("remove", () => store.jobs.remove(job), dir);
  await store.close();
  console.log(`rss ${(process.memoryUsage().rss / 1048576).toFixed(0)} MiB`);
  rmSync(dir, { recursive: true, force: true });
}
