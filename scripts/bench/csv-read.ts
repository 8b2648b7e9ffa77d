/**
 * Benchmark: reading CSV records, Loom's byte-level reader against csv-parse, each streaming the
 * same file from disk and only counting records. Runs interleaved (csv-parse, Loom, csv-parse,
 * ...) so both see the same machine load, and prints MB/s and the speed ratio per repetition and
 * the median ratio. Loom decodes a record's cells and a row's fields only when asked for; both
 * readers here ask for every one, so that the figures compare full decodes (csv-parse decodes
 * every field). A third reader, the csv format's rows (records plus the header check and each
 * row's fields object), shows what a Loom command gets.
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
import { runtimeName } from "../../core/base/runtime.ts";
import { csvFormat } from "../../plugins/formats/csv/mod.ts";
import { readRecords } from "../../plugins/formats/csv/records.ts";
import { makeCsv } from "./csv.ts";
import { median, timeRead } from "./stats.ts";

const rows = Number(process.argv[2] ?? 1_000_000);
const repetitions = Number(process.argv[3] ?? 3);

/** Records csv-parse reads from the file. */
async function csvParse(path: string): Promise<number> {
  let n = 0;
  for await (const _ of createReadStream(path).pipe(parse())) n++;
  return n;
}

/** Records Loom's reader reads from the file, each record's cells decoded. */
async function loom(path: string): Promise<number> {
  let n = 0;
  let cells = 0;
  const dialect = { delimiter: ",", quote: '"' };
  for await (const batch of readRecords(createReadStream(path), path, dialect)) {
    n += batch.length;
    for (const record of batch) cells += record.cells.length;
  }
  if (cells < n) throw new Error(`${cells} cells in ${n} records`);
  return n;
}

/** Rows the CSV format reads from the file (records, plus the header check and fields). */
async function loomRows(path: string): Promise<number> {
  let n = 1; // the header
  let empty = 0;
  const reader = await csvFormat.open(createReadStream(path), { path });
  for await (const row of reader.rows) {
    n++;
    if (row.fields.id === undefined) empty++; // decodes the row's fields
  }
  if (empty) throw new Error(`${empty} rows without an id`);
  return n;
}

const dir = mkdtempSync(join(tmpdir(), "loom-csv-read-"));
try {
  const path = join(dir, "data.csv");
  await makeCsv(path, rows);
  const mb = statSync(path).size / 1e6;
  console.log(`${runtimeName()}: ${rows} rows, ${mb.toFixed(1)} MB`);
  await timeRead(loom, path); // warm-up: lets the JIT compile both before the timed runs
  await timeRead(csvParse, path);
  await timeRead(loomRows, path);
  const ratios: number[] = [];
  const rowRatios: number[] = [];
  for (let rep = 1; rep <= repetitions; rep++) {
    const base = await timeRead(csvParse, path);
    const ours = await timeRead(loom, path);
    const rows = await timeRead(loomRows, path);
    for (const { records } of [ours, rows]) {
      if (records !== base.records) {
        throw new Error(`record counts differ: csv-parse ${base.records}, Loom ${records}`);
      }
    }
    ratios.push(base.seconds / ours.seconds);
    rowRatios.push(base.seconds / rows.seconds);
    const rate = (s: number) => `${(mb / s).toFixed(0).padStart(4)} MB/s`;
    console.log(
      `#${rep}  csv-parse ${rate(base.seconds)}  Loom records ${rate(ours.seconds)} ` +
        `(${ratios[rep - 1].toFixed(2)}×)  Loom rows ${rate(rows.seconds)} ` +
        `(${rowRatios[rep - 1].toFixed(2)}×)`,
    );
  }
  console.log(
    `median: Loom's records ${median(ratios).toFixed(2)}× csv-parse's speed (target ≥ 4×), ` +
      `the csv format's rows ${median(rowRatios).toFixed(2)}×`,
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
