/**
 * Runs one program in this process and, when the process exits, writes its wall time and peak
 * resident memory (the kernel's high-water mark, so nothing between samples is missed) as JSON
 * to the file named by `LOOM_BENCH_REPORT`. The benchmark suite starts every measured command
 * through it, under Node or Deno, so both runtimes are measured the same way.
 *
 *   LOOM_BENCH_REPORT=out.json node scripts/bench/measure.ts PROGRAM.ts [args...]
 * @module
 */
import { writeFileSync } from "node:fs";
import { resolve } from "node:path";
import process from "node:process";
import { pathToFileURL } from "node:url";

const report = process.env.LOOM_BENCH_REPORT;
const [program, ...args] = process.argv.slice(2);
if (!report || !program) {
  console.error("usage: LOOM_BENCH_REPORT=FILE measure.ts PROGRAM.ts [args...]");
  process.exit(2);
}
const started = performance.now();
process.on("exit", (code) => {
  // maxRSS is in KiB on Linux and macOS under both runtimes.
  const peakMiB = process.resourceUsage().maxRSS / 1024;
  const seconds = (performance.now() - started) / 1000;
  writeFileSync(report, JSON.stringify({ code, seconds, peakMiB }));
});
// The program sees the arguments it would see if started directly.
process.argv.splice(1, process.argv.length - 1, resolve(program), ...args);
await import(pathToFileURL(resolve(program)).href);
