/**
 * Benchmark: the response cache. A sync run through `echo` of N rows (default 100,000) with the
 * cache on, cold (empty cache) and warm (every answer cached), each as a ratio to a parse-only
 * baseline measured in the same run: streaming the same file through csv-parse and counting rows.
 * A run with the cache off is measured too: what the run costs without it. Runs are interleaved
 * (baseline, no cache, cold, warm) and repeated (default 3); the median is reported.
 * Each phase's CPU seconds are printed too, with their ratio to the baseline's: on a machine
 * shared with other work they are the steadier figure. Also prints the cache's data bytes and
 * the disk the store's file takes.
 *
 *   node scripts/bench/cache-rerun.ts [rows] [--reps N]
 *   deno run -A scripts/bench/cache-rerun.ts [rows] [--reps N]
 *   LOOM_STATE=postgres://… node scripts/bench/cache-rerun.ts     (the cache in PostgreSQL)
 *
 * Targets (issue 12): warm ≤ 2× the baseline, cold ≤ 3×, disk within 2× of the data.
 */
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { parseOnly } from "./parse-only.ts";
import { loadJob } from "../../core/job/load.ts";
import { Registry } from "../../core/plugins/registry.ts";
import { runJob } from "../../core/commands/run.ts";
import { runtimeName } from "../../core/base/runtime.ts";
import { makeCsv, writeEchoSyncJob } from "./csv.ts";
import { openStore } from "../../core/state/open.ts";
import { median } from "./stats.ts";

/** CPU seconds (user + system) of each measured phase, beside its wall-clock seconds. */
const cpu = new Map<number[], number[]>();

/**
 * Times `work` into `into` (wall-clock seconds), and its CPU seconds into `cpu`: on a machine
 * shared with other work, CPU time is the steadier figure (it leaves out waiting for a core),
 * though not the whole one (it leaves out waiting for the disk too).
 */
async function timed(into: number[], work: () => Promise<unknown>): Promise<void> {
  const started = performance.now();
  const cpuStarted = process.cpuUsage();
  await work();
  const used = process.cpuUsage(cpuStarted);
  into.push((performance.now() - started) / 1000);
  if (!cpu.has(into)) cpu.set(into, []);
  cpu.get(into)!.push((used.user + used.system) / 1e6);
}

const args = process.argv.slice(2);
const repsAt = args.indexOf("--reps");
const reps = repsAt >= 0 ? Number(args[repsAt + 1]) : 3;
const rows = Number(args.find((a, i) => /^\d+$/.test(a) && i !== repsAt + 1) ?? 100_000);
const dir = mkdtempSync(join(tmpdir(), "loom-cache-bench-"));
const env = { ...process.env, LOOM_HOME: join(dir, "home") };
try {
  const input = join(dir, "in.csv");
  await makeCsv(input, rows);
  const jobFile = (cache: boolean) =>
    writeEchoSyncJob(join(dir, `job-${cache}.yaml`), input, join(dir, "out.csv"), cache);
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
    await timed(times.base, () => parseOnly(input));
    await timed(times.off, runOf(uncached));
    await withStore((s) => s.cache.clear());
    await timed(times.cold, run);
    await timed(times.warm, run);
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
  const cpuBase = median(cpu.get(times.base)!);
  const ratio = (xs: number[]) => (median(xs) / base).toFixed(2);
  const line = (what: string, xs: number[], target = "") =>
    `  ${what.padEnd(19)} ${median(xs).toFixed(2)}s = ${ratio(xs)}×${target}` +
    `   cpu ${median(cpu.get(xs)!).toFixed(2)}s = ${
      (median(cpu.get(xs)!) / cpuBase).toFixed(2)
    }×\n`;
  console.log(
    `${runtimeName()} rows=${rows} reps=${reps} store=${store}\n` +
      line("parse-only baseline", times.base) +
      line("no cache (the run)", times.off) +
      line("cold run", times.cold, " (target ≤ 3×)") +
      line("warm rerun", times.warm, " (target ≤ 2×)") +
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
