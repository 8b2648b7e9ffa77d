/**
 * Benchmark: the response cache. A sync run through `echo` of N rows (default 100,000) with the
 * cache on, cold (empty cache) and warm (every answer cached), each as a ratio to a parse-only
 * baseline measured in the same run: streaming the same file through csv-parse and counting rows.
 * A run with the cache off is measured too: what the run costs without it. Runs are interleaved
 * (baseline, no cache, cold, warm) and repeated (default 3); the median is reported.
 * Also prints the cache's data bytes and the disk the store's file takes.
 *
 *   node scripts/bench/cache-rerun.ts [rows] [--reps N]
 *   deno run -A scripts/bench/cache-rerun.ts [rows] [--reps N]
 *   LOOM_STATE=postgres://… node scripts/bench/cache-rerun.ts     (the cache in PostgreSQL)
 *
 * Targets (issue 12): warm ≤ 2× the baseline, cold ≤ 3×, disk within 2× of the data.
 */
import { createReadStream, mkdtempSync, rmSync, statSync } from "node:fs";
import { writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { parse } from "csv-parse";
import { loadJob } from "../../core/job/load.ts";
import { Registry } from "../../core/plugins/registry.ts";
import { runJob } from "../../core/commands/run.ts";
import { runtimeName } from "../../core/base/runtime.ts";
import { makeCsv } from "./csv.ts";
import { openStore } from "../../core/state/open.ts";

/** The parse-only baseline: every record of the file through csv-parse, counted. */
async function parseOnly(path: string): Promise<number> {
  let rows = 0;
  for await (const _ of createReadStream(path).pipe(parse({ bom: true }))) rows++;
  return rows - 1;
}

async function seconds(work: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await work();
  return (performance.now() - started) / 1000;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const args = process.argv.slice(2);
const repsAt = args.indexOf("--reps");
const reps = repsAt >= 0 ? Number(args[repsAt + 1]) : 3;
const rows = Number(args.find((a, i) => /^\d+$/.test(a) && i !== repsAt + 1) ?? 100_000);
const dir = mkdtempSync(join(tmpdir(), "loom-cache-bench-"));
const env = { ...process.env, LOOM_HOME: join(dir, "home") };
try {
  const input = join(dir, "in.csv");
  await makeCsv(input, rows);
  const jobFile = (cache: boolean) => {
    const file = join(dir, `job-${cache}.yaml`);
    writeFileSync(
      file,
      `dataset: { path: ${input} }\nprovider: echo\nmodel: m\nmode: sync\noutput: { path: ${
        join(dir, "out.csv")
      } }\nsync: { workers: 64, cache: ${cache} }\n`,
    );
    return file;
  };
  const [cached, uncached] = [jobFile(true), jobFile(false)];
  const runOf = (file: string) => async () =>
    runJob(await loadJob({ file, cwd: dir }), { force: true, env });
  const run = runOf(cached);
  const withStore = async <T>(work: (s: Awaited<ReturnType<typeof openStore>>) => Promise<T>) => {
    const store = await openStore(new Registry(), { env, home: env.LOOM_HOME });
    try {
      return await work(store);
    } finally {
      await store.close();
    }
  };
  const times = {
    base: [] as number[],
    off: [] as number[],
    cold: [] as number[],
    warm: [] as number[],
  };
  for (let rep = 0; rep < reps; rep++) {
    times.base.push(await seconds(() => parseOnly(input)));
    times.off.push(await seconds(runOf(uncached)));
    await withStore((s) => s.cache.clear());
    times.cold.push(await seconds(run));
    times.warm.push(await seconds(run));
  }
  const stats = await withStore((s) => s.cache.stats());
  const store = await withStore(async (s) => s.location);
  const db = join(env.LOOM_HOME, "state.db");
  const disk = ["", "-wal"].reduce((sum, ext) => {
    try {
      return sum + statSync(db + ext).size;
    } catch {
      return sum;
    }
  }, 0);
  const base = median(times.base);
  const ratio = (xs: number[]) => (median(xs) / base).toFixed(2);
  console.log(
    `${runtimeName()} rows=${rows} reps=${reps} store=${store}\n` +
      `  parse-only baseline ${base.toFixed(2)}s\n` +
      `  no cache (the run)  ${median(times.off).toFixed(2)}s = ${ratio(times.off)}×\n` +
      `  cold run            ${median(times.cold).toFixed(2)}s = ${
        ratio(times.cold)
      }× (target ≤ 3×)\n` +
      `  warm rerun          ${median(times.warm).toFixed(2)}s = ${
        ratio(times.warm)
      }× (target ≤ 2×)\n` +
      `  cache: ${stats.entries} entries, ${(stats.bytes / 2 ** 20).toFixed(1)} MiB of data` +
      (disk
        ? `; the store's file takes ${(disk / 2 ** 20).toFixed(1)} MiB = ${
          (disk / stats.bytes).toFixed(2)
        }× (target ≤ 2×)`
        : ""),
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
