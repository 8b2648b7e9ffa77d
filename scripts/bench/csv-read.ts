/**
 * Benchmark: reading CSV records, Loom's byte-level reader against csv-parse, each streaming the
 * same file from disk and only counting records. Runs interleaved (csv-parse, Loom, csv-parse,
 * ...) so both see the same machine load, and prints MB/s and the ratio per repetition and the
 * median ratio.
 *
 *   node scripts/bench/csv-read.ts [rows=1000000] [repetitions=3]
 *   deno run -A scripts/bench/csv-read.ts [rows] [repetitions]
 *
 * The file is `makeCsv`'s (the sync benchmarks' dataset, every row with a quoted field holding
 * a comma and doubled quotes), written to a temporary directory and removed at the end. The
 * csv-parse side is the parse-only baseline of issue 13: default options, records counted.
 * @module
 */
import { createReadStream, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { parse } from "csv-parse";
import { runtimeName } from "../../core/runtime.ts";
import { readRecords } from "../../plugins/formats/csv/records.ts";
import { makeCsv } from "./csv.ts";

const rows = Number(process.argv[2] ?? 1_000_000);
const repetitions = Number(process.argv[3] ?? 3);

/** Records csv-parse reads from the file. */
async function csvParse(path: string): Promise<number> {
  let n = 0;
  for await (const _ of createReadStream(path).pipe(parse())) n++;
  return n;
}

/** Records Loom's reader reads from the file. */
async function loom(path: string): Promise<number> {
  let n = 0;
  const dialect = { delimiter: ",", quote: '"' };
  for await (const batch of readRecords(createReadStream(path), path, dialect)) n += batch.length;
  return n;
}

async function time(read: (path: string) => Promise<number>, path: string) {
  const start = performance.now();
  const records = await read(path);
  return { records, seconds: (performance.now() - start) / 1000 };
}

const dir = mkdtempSync(join(tmpdir(), "loom-csv-read-"));
try {
  const path = join(dir, "data.csv");
  await makeCsv(path, rows);
  const mb = statSync(path).size / 1e6;
  console.log(`${runtimeName()}: ${rows} rows, ${mb.toFixed(1)} MB`);
  await time(loom, path); // warm-up: lets the JIT compile both before the timed runs
  await time(csvParse, path);
  const ratios: number[] = [];
  for (let rep = 1; rep <= repetitions; rep++) {
    const base = await time(csvParse, path);
    const ours = await time(loom, path);
    if (base.records !== ours.records) {
      throw new Error(`record counts differ: csv-parse ${base.records}, Loom ${ours.records}`);
    }
    const ratio = base.seconds / ours.seconds;
    ratios.push(ratio);
    const rate = (s: number) => `${(mb / s).toFixed(0).padStart(4)} MB/s`;
    console.log(
      `#${rep}  csv-parse ${rate(base.seconds)}  Loom ${rate(ours.seconds)}  ` +
        `Loom is ${ratio.toFixed(2)}× csv-parse`,
    );
  }
  const median = ratios.toSorted((a, b) => a - b)[Math.floor(ratios.length / 2)];
  console.log(`median: Loom is ${median.toFixed(2)}× csv-parse (target ≥ 4×)`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
