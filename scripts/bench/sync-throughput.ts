/**
 * Benchmark: sync throughput against the emulator with a fixed latency per request, through the
 * real `openai` provider and SDK. Reports requests per second against the ideal (workers ÷
 * latency) at several worker counts, and, with a requests-per-minute limit, the achieved rate
 * against the limit (which must never be exceeded).
 *
 *   node scripts/bench/sync-throughput.ts        (or: deno run -A scripts/bench/sync-throughput.ts)
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import process from "node:process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadJob } from "../../core/job/load.ts";
import { runJob } from "../../core/run/job.ts";
import { runtimeName } from "../../core/runtime.ts";
import { startEmulator } from "../emulator/mod.ts";

const LATENCY_MS = 200;
const dir = mkdtempSync(join(tmpdir(), "loom-bench-"));
// For throughput the emulator runs in its own process (as a real API would), so it does not
// compete with Loom for this process's event loop; the rate-limit run uses an in-process one,
// whose log records arrival times.
const launcher = spawn(process.execPath, [
  ...(runtimeName() === "deno" ? ["run", "-A"] : []),
  new URL("../emulator.ts", import.meta.url).pathname,
  "--provider", "openai", "--latency", String(LATENCY_MS), "--api-key", "test-key",
], { stdio: ["ignore", "pipe", "inherit"] });
const remoteURL = await new Promise<string>((resolve, reject) => {
  let out = "";
  launcher.stdout!.setEncoding("utf8").on("data", (d: string) => {
    out += d;
    const m = out.match(/openai\s+(http\S+)/);
    if (m) resolve(m[1]);
  });
  launcher.on("exit", () => reject(new Error(`emulator exited: ${out}`)));
});
const emu = await startEmulator({ provider: "openai", latencyMs: LATENCY_MS });

async function run(rows: number, workers: number, rpm?: number) {
  const baseURL = rpm ? emu.baseURL : remoteURL;
  const input = join(dir, `in-${rows}.csv`);
  writeFileSync(input, `prompt\n${Array.from({ length: rows }, (_, i) => `prompt number ${i}`).join("\n")}\n`);
  const job = join(dir, "job.yaml");
  writeFileSync(
    job,
    `dataset: { path: ${input} }\nprovider: openai\nprovider_options: { base_url: "${baseURL}" }\nmodel: gpt-4o-mini\n` +
      `mode: sync\noutput: { path: ${join(dir, "out.csv")} }\nsync: { workers: ${workers}, cache: false${rpm ? `, rpm: ${rpm}` : ""} }\n`,
  );
  emu.log.clear();
  const started = performance.now();
  const summary = await runJob(await loadJob({ file: job, cwd: dir }), { force: true, env: { LOOM_HOME: join(dir, "home"), OPENAI_API_KEY: emu.apiKey }, cwd: dir });
  const seconds = (performance.now() - started) / 1000;
  if (summary.ok !== rows) throw new Error(`only ${summary.ok} of ${rows} rows answered`);
  const arrivals = emu.log.entries.map((e) => e.receivedMs ?? 0).sort((a, b) => a - b);
  return { seconds, rate: rows / seconds, arrivals };
}

try {
  for (const workers of [8, 64, 256]) {
    const rows = workers * 25;
    const { rate } = await run(rows, workers);
    const ideal = workers / (LATENCY_MS / 1000);
    console.log(`${runtimeName()} workers=${String(workers).padStart(3)} rows=${rows} rate=${rate.toFixed(1)} req/s ideal=${ideal} (${((rate / ideal) * 100).toFixed(1)}%)`);
  }
  // Long enough (over a minute) that the busiest 60-second window is a real test of the limit.
  const rpm = 1200;
  const { rate, arrivals } = await run(1300, 64, rpm);
  let busiest = 0;
  for (let i = 0, j = 0; i < arrivals.length; i++) {
    while (arrivals[i] - arrivals[j] >= 60_000) j++;
    busiest = Math.max(busiest, i - j + 1);
  }
  console.log(
    `${runtimeName()} rpm limit=${rpm} achieved=${(rate * 60).toFixed(0)} rpm (${((rate * 60 / rpm) * 100).toFixed(1)}% of the limit), ` +
      `busiest 60 s window=${busiest} requests${busiest > rpm ? " (ABOVE THE LIMIT)" : ""}`,
  );
} finally {
  launcher.kill();
  await emu.stop();
  rmSync(dir, { recursive: true, force: true });
}
