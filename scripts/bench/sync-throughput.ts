/**
 * Benchmark: sync throughput against the emulator with a fixed latency per request, through the
 * real `openai` provider and SDK. Reports requests per second against the ideal (workers ÷
 * latency) at several worker counts, and, with a requests-per-minute limit, the achieved rate
 * against the limit (which must never be exceeded).
 *
 *   node scripts/bench/sync-throughput.ts        (or: deno run -A scripts/bench/sync-throughput.ts)
 *
 * How it measures:
 * - For throughput the emulator runs in a process of its own (this script, started again with
 *   `--serve-emulator`), as a real API would, so it does not compete with Loom for this process's
 *   event loop. The rate-limit run uses an in-process one, whose log records arrival times.
 * - Each timed run is a whole `runJob`: loading the job, checking the dataset, creating the
 *   provider, every call, writing the output. `rows` is 25 × workers, so the ideal is 25 rounds
 *   of the latency, 5 s.
 * - Before the timed runs, one untimed warm-up run loads the SDK and lets the JIT compile the hot
 *   paths: a one-off cost of the process (0.2 to 0.4 s on a 2-core machine), not of any worker
 *   count, which otherwise fell wholly on the first measurement (8 workers). Connections are not
 *   opened ahead of the timed runs: a run finds at most those the previous one left idle (the
 *   HTTP client closes them after a few seconds) and opens the rest itself, as a real run would.
 * - After each rate, the CPU time per row of each process: Loom's (this process) and the
 *   emulator's. When Loom's nears 1 ÷ the ideal rate (0.78 ms at 256 workers), Loom's own CPU is
 *   the limit. Both processes share the machine's cores.
 * - The ideal is not reachable exactly: the emulator's timers fire a little late (1 to 3 ms on
 *   the 2-core VM this was tuned on), and loopback round trips and wake-ups add their share. A
 *   bare `node:http` client doing the same calls reaches about 95% there.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import process from "node:process";
import { createInterface } from "node:readline";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadJob } from "../../core/job/load.ts";
import { runJob } from "../../core/commands/run.ts";
import { runtimeName } from "../../core/base/runtime.ts";
import { realClock, startEmulator } from "../../emulator/mod.ts";

const LATENCY_MS = 200;
/** Timed runs: this many rounds of `workers` rows each. */
const ROUNDS = 25;
const WORKERS = [8, 64, 256];
/** The untimed warm-up: rows, at the largest worker count. */
const WARMUP_ROWS = 1024;

if (process.argv.includes("--serve-emulator")) await serveEmulator();
else await main();

/** The child process: an OpenAI emulator that answers `cpu` lines with its CPU time so far (µs). */
async function serveEmulator(): Promise<void> {
  const emu = await startEmulator({
    provider: "openai",
    latencyMs: LATENCY_MS,
    apiKey: "test-key",
    clock: realClock,
    models: "any",
  });
  console.log(`openai ${emu.baseURL}`);
  createInterface({ input: process.stdin })
    .on("line", () => {
      const { user, system } = process.cpuUsage();
      console.log(`cpu ${user + system}`);
    })
    .on("close", () => void emu.stop().then(() => process.exit(0)));
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "loom-bench-"));
  const child = spawn(process.execPath, [
    ...(runtimeName() === "deno" ? ["run", "-A"] : []),
    new URL(import.meta.url).pathname,
    "--serve-emulator",
  ], { stdio: ["pipe", "pipe", "inherit"] });
  const waiting: Array<{ resolve: (line: string) => void; reject: (error: Error) => void }> = [];
  createInterface({ input: child.stdout! }).on("line", (line) => waiting.shift()?.resolve(line));
  child.on("exit", (code) => {
    for (const w of waiting.splice(0)) w.reject(new Error(`the emulator process exited (${code})`));
  });
  const nextLine = () =>
    new Promise<string>((resolve, reject) => waiting.push({ resolve, reject }));
  const remoteURL = (await nextLine()).match(/^openai\s+(http\S+)/)?.[1];
  if (!remoteURL) throw new Error("the emulator process did not say where it listens");
  /** The emulator process's CPU time so far, in µs. */
  const emulatorCpu = async () => {
    const reply = nextLine();
    child.stdin!.write("cpu\n");
    return Number((await reply).replace(/^cpu /, ""));
  };
  const emu = await startEmulator({ provider: "openai", latencyMs: LATENCY_MS });

  async function run(rows: number, workers: number, rpm?: number) {
    const baseURL = rpm ? emu.baseURL : remoteURL;
    const input = join(dir, `in-${rows}.csv`);
    writeFileSync(
      input,
      `prompt\n${Array.from({ length: rows }, (_, i) => `prompt number ${i}`).join("\n")}\n`,
    );
    const job = join(dir, "job.yaml");
    writeFileSync(
      job,
      `dataset: { path: ${input} }\nprovider: openai\nprovider_options: { base_url: "${baseURL}" }\nmodel: gpt-4o-mini\n` +
        `mode: sync\noutput: { path: ${
          join(dir, "out.csv")
        } }\nsync: { workers: ${workers}, cache: false${rpm ? `, rpm: ${rpm}` : ""} }\n`,
    );
    emu.log.clear();
    const emuCpuBefore = rpm ? 0 : await emulatorCpu();
    const cpuBefore = process.cpuUsage();
    const started = performance.now();
    const summary = await runJob(await loadJob({ file: job, cwd: dir }), {
      force: true,
      env: { LOOM_HOME: join(dir, "home"), OPENAI_API_KEY: emu.apiKey },
      cwd: dir,
    });
    const seconds = (performance.now() - started) / 1000;
    const cpu = process.cpuUsage(cpuBefore);
    const emuCpu = rpm ? 0 : await emulatorCpu() - emuCpuBefore;
    if (summary.ok !== rows) throw new Error(`only ${summary.ok} of ${rows} rows answered`);
    const arrivals = emu.log.entries.map((e) => e.receivedMs ?? 0).sort((a, b) => a - b);
    const perRow = (us: number) => (us / 1000 / rows).toFixed(2);
    return {
      seconds,
      rate: rows / seconds,
      arrivals,
      cpu: `loom ${perRow(cpu.user + cpu.system)} ms, emulator ${perRow(emuCpu)} ms`,
    };
  }

  try {
    const warmup = await run(WARMUP_ROWS, Math.max(...WORKERS));
    console.log(
      `${runtimeName()} latency=${LATENCY_MS} ms; untimed warm-up first: ${WARMUP_ROWS} rows at ${
        Math.max(...WORKERS)
      } workers ` +
        `(${warmup.seconds.toFixed(2)} s)`,
    );
    for (const workers of WORKERS) {
      const rows = workers * ROUNDS;
      const { rate, cpu } = await run(rows, workers);
      const ideal = workers / (LATENCY_MS / 1000);
      console.log(
        `${runtimeName()} workers=${String(workers).padStart(3)} rows=${rows} rate=${
          rate.toFixed(1)
        } req/s ideal=${ideal} ` +
          `(${((rate / ideal) * 100).toFixed(1)}%)   cpu per row: ${cpu}`,
      );
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
      `${runtimeName()} rpm limit=${rpm} achieved=${(rate * 60).toFixed(0)} rpm (${
        ((rate * 60 / rpm) * 100).toFixed(1)
      }% of the limit), ` +
        `busiest 60 s window=${busiest} requests${busiest > rpm ? " (ABOVE THE LIMIT)" : ""}`,
    );
  } finally {
    child.stdin!.end();
    await emu.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
