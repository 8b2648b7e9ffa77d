/**
 * The benchmark suite (`npm run bench`): Loom's commands on a generated CSV, each as a ratio to a
 * parse-only baseline (the same file through csv-parse, counted) measured in the same run, with
 * peak resident memory. Every command runs as its own process, started the same way under Node
 * and Deno (`measure.ts`), in a fresh `LOOM_HOME`; the baseline and the commands are interleaved
 * in every repetition, so a machine that slows down slows all of them; medians are reported.
 *
 *   npm run bench                                         100k and 1M rows, 3 repetitions, Node and Deno
 *   node scripts/bench/suite.ts --rows 100000 --reps 1 --runtime node     a quick look
 *   node scripts/bench/suite.ts --json results.json                        the figures as JSON too
 *   node scripts/bench/suite.ts --only "sync run,plan"                     only those (and the baseline)
 *
 * Node runs the build (`npm run build` first), as an npm install would; Deno runs the source.
 * Commands (echo provider, no cache, so only Loom's own work is measured): a sync run; a batch
 * submit and the fetch that merges it (their sum is the round trip); `tokens`; `plan`.
 * Targets (issue 13): sync ≤ 2.0×, round trip ≤ 3.0×, tokens and plan ≤ 1.5×, peak RSS < 250 MB
 * and flat from 100k to 1M rows.
 * @module
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { cpus, tmpdir, totalmem } from "node:os";
import { dirname, join, resolve } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { makeCsv } from "./csv.ts";
import { median } from "./stats.ts";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "..", "..");
const bin = (name: string) => join(root, "node_modules", ".bin", name);

const { values } = parseArgs({
  options: {
    rows: { type: "string", default: "100000,1000000" },
    reps: { type: "string", default: "3" },
    runtime: { type: "string", default: "node,deno" },
    json: { type: "string" },
    only: { type: "string" },
  },
});
const rowCounts = values.rows.split(",").map((n) => Number(n.replace(/_/g, "")));
const reps = Number(values.reps);
const runtimes = values.runtime.split(",");
if (rowCounts.some((n) => !Number.isInteger(n) || n < 1) || !(reps >= 1)) {
  console.error("usage: suite.ts [--rows 100000,1000000] [--reps 3] [--runtime node,deno]");
  process.exit(2);
}

/** What one measured process reported. */
interface Sample {
  seconds: number;
  peakMiB: number;
}

/** The commands, in the order each repetition runs them; `{in}` and `{out}` are filled in. */
const ALL_COMMANDS: { name: string; args: string[] }[] = [
  { name: "baseline", args: ["scripts/bench/parse-only.ts", "{in}"] },
  {
    name: "sync run",
    args: ["cli/main.ts", "run", "-f", "{in}", "-p", "echo", "-m", "m", "--sync", "--no-cache"]
      .concat(["-o", "{out}/sync.csv", "--force", "-q"]),
  },
  {
    name: "batch submit",
    args: ["cli/main.ts", "run", "-f", "{in}", "-p", "echo", "-m", "m", "--batch"]
      .concat(["-o", "{out}/batch.csv", "--force", "-q"]),
  },
  { name: "batch fetch", args: ["cli/main.ts", "fetch"] },
  { name: "tokens", args: ["cli/main.ts", "tokens", "-f", "{in}", "-p", "echo", "-m", "m"] },
  { name: "plan", args: ["cli/main.ts", "plan", "-f", "{in}", "-p", "echo", "-m", "m"] },
];
// `--only "sync run,tokens"` measures just those (the baseline always runs; a fetch needs its submit).
const only = values.only?.split(",").map((n) => n.trim());
const unknown = (only ?? []).filter((n) => !ALL_COMMANDS.some((c) => c.name === n));
if (unknown.length) {
  console.error(`--only: no command ${unknown.join(", ")}`);
  process.exit(2);
}
const wanted = (name: string) =>
  !only || name === "baseline" || only.includes(name) ||
  (name === "batch submit" && only.includes("batch fetch"));
const COMMANDS = ALL_COMMANDS.filter((c) => wanted(c.name));

/**
 * Runs one command to its end. The time is the whole process's, start-up included, as a user
 * sees it; the peak is the kernel's high-water mark reported from inside (`measure.ts`).
 */
function runOnce(runtime: string, args: string[], home: string, report: string): Sample {
  // Node runs the build (what `npm i loom-batch` installs), Deno the source.
  const cli = (a: string) => a === "cli/main.ts" && runtime === "node" ? "dist/cli/main.js" : a;
  const program = runtime === "deno"
    ? [bin("deno"), ["run", "-A", "scripts/bench/measure.ts", ...args]] as const
    : [bin("node"), ["scripts/bench/measure.ts", ...args.map(cli)]] as const;
  const started = performance.now();
  const result = spawnSync(program[0], program[1], {
    cwd: root,
    env: { ...process.env, LOOM_HOME: home, LOOM_BENCH_REPORT: report, NO_COLOR: "1" },
    stdio: ["ignore", "ignore", "pipe"],
    maxBuffer: 64 * 1024 * 1024,
  });
  const seconds = (performance.now() - started) / 1000;
  let sample: { code: number; peakMiB: number };
  try {
    sample = JSON.parse(readFileSync(report, "utf8"));
  } catch {
    throw new Error(`${runtime} ${args.join(" ")} reported nothing:\n${result.stderr}`);
  }
  if (result.status !== 0 || sample.code !== 0) {
    throw new Error(`${runtime} ${args.join(" ")} exited ${result.status}:\n${result.stderr}`);
  }
  return { seconds, peakMiB: sample.peakMiB };
}

const fmt = (n: number, digits = 2) => n.toFixed(digits);

if (runtimes.includes("node")) {
  try {
    statSync(join(root, "dist", "cli", "main.js"));
  } catch {
    console.error("the Node figures run the build: run `npm run build` first");
    process.exit(2);
  }
}

const scratch = mkdtempSync(join(tmpdir(), "loom-bench-"));
const results: Record<string, unknown>[] = [];
console.log(
  `Loom benchmark suite: ${cpus().length} cores (${cpus()[0]?.model ?? "?"}), ` +
    `${(totalmem() / 2 ** 30).toFixed(0)} GiB, ${reps} repetitions, medians`,
);
try {
  for (const rows of rowCounts) {
    const input = join(scratch, `in-${rows}.csv`);
    await makeCsv(input, rows);
    const mb = statSync(input).size / 1e6;
    for (const runtime of runtimes) {
      const samples = new Map<string, Sample[]>(COMMANDS.map((c) => [c.name, []]));
      for (let rep = 0; rep < reps; rep++) {
        const home = join(scratch, `home-${runtime}-${rows}-${rep}`);
        const out = join(scratch, `out-${runtime}-${rows}-${rep}`);
        mkdirSync(out, { recursive: true });
        for (const command of COMMANDS) {
          const args = command.args.map((a) => a.replace("{in}", input).replace("{out}", out));
          const report = join(scratch, "report.json");
          rmSync(report, { force: true });
          samples.get(command.name)!.push(runOnce(runtime, args, home, report));
        }
        rmSync(home, { recursive: true, force: true });
        rmSync(out, { recursive: true, force: true });
      }
      const base = median(samples.get("baseline")!.map((s) => s.seconds));
      console.log(`\n${runtime}, ${rows.toLocaleString("en")} rows (${fmt(mb, 1)} MB):`);
      const line = (name: string, seconds: number, peak: number) => {
        console.log(
          `  ${name.padEnd(20)} ${fmt(seconds).padStart(7)} s  ${
            fmt(seconds / base).padStart(6)
          }×  peak ${fmt(peak, 0).padStart(4)} MiB`,
        );
        results.push({ runtime, rows, command: name, seconds, ratio: seconds / base, peak });
      };
      for (const command of COMMANDS) {
        const s = samples.get(command.name)!;
        line(command.name, median(s.map((x) => x.seconds)), Math.max(...s.map((x) => x.peakMiB)));
      }
      if (!samples.has("batch submit") || !samples.has("batch fetch")) continue;
      const trips = samples.get("batch submit")!.map((s, i) =>
        s.seconds + samples.get("batch fetch")![i].seconds
      );
      const tripPeak = Math.max(
        ...samples.get("batch submit")!.concat(samples.get("batch fetch")!).map((s) => s.peakMiB),
      );
      line("batch round trip", median(trips), tripPeak);
    }
  }
  if (values.json) writeFileSync(values.json, JSON.stringify(results, null, 2) + "\n");
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
