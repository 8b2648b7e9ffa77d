/**
 * Benchmark: reading JSON Lines and JSON-array rows, Loom's readers against the plain way, each
 * streaming the same file from disk and counting rows. Runs interleaved (baseline, Loom,
 * baseline, ...) so both see the same machine load, and prints MB/s and the speed ratio per
 * repetition and the median ratio.
 *
 *   node scripts/bench/json-read.ts [rows=1000000] [repetitions=3]
 *   deno run -A scripts/bench/json-read.ts [rows] [repetitions]
 *
 * Baselines: for JSONL, `node:readline` lines each given to `JSON.parse`; for JSON, the whole
 * file read into one string and given to `JSON.parse` (no streaming, so memory grows with the
 * file: the fastest a JSON array can be read in JavaScript, not a fair streaming rival). The
 * files are `makeJsonl`'s and `makeJson`'s (nested objects, escapes, non-ASCII text), written to
 * a temporary directory and removed at the end.
 * @module
 */
import { createReadStream, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import console from "node:console";
import { createInterface } from "node:readline";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { runtimeName } from "../../core/base/runtime.ts";
import type { FormatV1 } from "../../core/spec/format.ts";
import { jsonFormat } from "../../plugins/formats/json/mod.ts";
import { jsonlFormat } from "../../plugins/formats/jsonl/mod.ts";
import { makeJson, makeJsonl } from "./json-data.ts";
import { median, timeRead } from "./stats.ts";

const rows = Number(process.argv[2] ?? 1_000_000);
const repetitions = Number(process.argv[3] ?? 3);

/** Rows `readline` + `JSON.parse` read from a JSONL file. */
async function readlineParse(path: string): Promise<number> {
  let n = 0;
  const lines = createInterface({ input: createReadStream(path), crlfDelay: Infinity });
  for await (const line of lines) {
    if (line.trim() === "") continue;
    JSON.parse(line);
    n++;
  }
  return n;
}

/** Elements of a JSON array file parsed whole. */
function wholeParse(path: string): Promise<number> {
  return Promise.resolve((JSON.parse(readFileSync(path, "utf8")) as unknown[]).length);
}

/** Rows a Loom format reads from the file. */
function loomRows(format: FormatV1): (path: string) => Promise<number> {
  return async (path) => {
    let n = 0;
    const reader = await format.open(createReadStream(path), { path });
    for await (const _ of reader.rows) n++;
    return n;
  };
}

async function compare(
  name: string,
  path: string,
  baseName: string,
  base: (path: string) => Promise<number>,
  ours: (path: string) => Promise<number>,
): Promise<void> {
  const mb = statSync(path).size / 1e6;
  console.log(`${runtimeName()} ${name}: ${rows} rows, ${mb.toFixed(1)} MB`);
  await timeRead(ours, path); // warm-up: lets the JIT compile both before the timed runs
  await timeRead(base, path);
  const ratios: number[] = [];
  const rate = (s: number) => `${(mb / s).toFixed(0).padStart(4)} MB/s`;
  for (let rep = 1; rep <= repetitions; rep++) {
    const b = await timeRead(base, path);
    const o = await timeRead(ours, path);
    if (o.records !== b.records) {
      throw new Error(`row counts differ: ${baseName} ${b.records}, Loom ${o.records}`);
    }
    ratios.push(b.seconds / o.seconds);
    console.log(
      `#${rep}  ${baseName} ${rate(b.seconds)}  Loom rows ${rate(o.seconds)} ` +
        `(${ratios[rep - 1].toFixed(2)}× the baseline's speed)`,
    );
  }
  console.log(`median: Loom's ${name} rows at ${median(ratios).toFixed(2)}× ${baseName}'s speed`);
}

const dir = mkdtempSync(join(tmpdir(), "loom-json-read-"));
try {
  const jsonl = join(dir, "data.jsonl");
  await makeJsonl(jsonl, rows);
  await compare("jsonl", jsonl, "readline+JSON.parse", readlineParse, loomRows(jsonlFormat));
  rmSync(jsonl);
  const json = join(dir, "data.json");
  await makeJson(json, rows);
  await compare("json", json, "JSON.parse(whole file)", wholeParse, loomRows(jsonFormat));
} finally {
  rmSync(dir, { recursive: true, force: true });
}
