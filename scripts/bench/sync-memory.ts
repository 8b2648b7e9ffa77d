/**
 * Benchmark: a sync run's throughput and peak memory as the dataset grows. Peak memory must stay
 * flat while rows grow 100-fold (reading, executing and writing all stream).
 *
 *   node scripts/bench/sync-memory.ts [rows ...]        (Node 22.18+ runs the .ts directly)
 *   deno run -A scripts/bench/sync-memory.ts [rows ...]
 *
 * Defaults to 10,000, 100,000 and 1,000,000 rows of CSV through `echo` with the cache off, then
 * the smallest size (at most 100,000 rows) with the cache on (cold, then warm). Prints one line per run.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { loadJob } from "../../core/job/load.ts";
import { runJob } from "../../core/commands/run.ts";
import { runtimeName } from "../../core/base/runtime.ts";
import { makeCsv, writeEchoSyncJob } from "./csv.ts";

async function measure(dir: string, rows: number, cache: boolean, label: string): Promise<void> {
  const input = join(dir, `in-${rows}.csv`);
  const job = writeEchoSyncJob(join(dir, `job-${rows}.yaml`), input, join(dir, "out.csv"), cache);
  // Defined only under --expose-gc, and only in Node's types: Deno's leave it out.
  (globalThis as { gc?: () => void }).gc?.();
  let peak = process.memoryUsage().rss;
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
  const started = performance.now();
  const summary = await runJob(await loadJob({ file: job, cwd: dir }), {
    force: true,
    env: { LOOM_HOME: join(dir, "home") },
  });
  const seconds = (performance.now() - started) / 1000;
  clearInterval(timer);
  peak = Math.max(peak, process.memoryUsage().rss);
  console.log(
    `${runtimeName()} ${label.padEnd(10)} rows=${String(rows).padStart(9)} ` +
      `answered=${summary.ok} cached=${summary.cached} time=${seconds.toFixed(1)}s ` +
      `rate=${Math.round(rows / seconds)} rows/s peakRSS=${Math.round(peak / 2 ** 20)} MiB`,
  );
}

const sizes = process.argv.slice(2).map(Number).filter((n) => n > 0);
const dir = mkdtempSync(join(tmpdir(), "loom-bench-"));
try {
  for (const rows of sizes.length ? sizes : [10_000, 100_000, 1_000_000]) {
    await makeCsv(join(dir, `in-${rows}.csv`), rows);
    await measure(dir, rows, false, "no-cache");
  }
  // The cache holds one file per answer: measure it at a size that does not fill the disk.
  const rows = Math.min(...(sizes.length ? sizes : [100_000]), 100_000);
  await makeCsv(join(dir, `in-${rows}.csv`), rows);
  await measure(dir, rows, true, "cache-cold");
  await measure(dir, rows, true, "cache-warm");
} finally {
  rmSync(dir, { recursive: true, force: true });
}
