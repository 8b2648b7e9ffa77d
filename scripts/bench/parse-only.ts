/**
 * The parse-only baseline every benchmark ratio is taken against: the file streamed through
 * csv-parse (the library most Node tools read CSV with) and its records counted, nothing else.
 *
 *   node scripts/bench/parse-only.ts FILE.csv
 * @module
 */
import { createReadStream } from "node:fs";
import process from "node:process";
import { parse } from "csv-parse";

/** Streams `path` through csv-parse and returns the number of data rows (header excluded). */
export async function parseOnly(path: string): Promise<number> {
  let records = 0;
  for await (const _ of createReadStream(path).pipe(parse({ bom: true }))) records++;
  return Math.max(0, records - 1);
}

if (import.meta.main || process.argv[1]?.endsWith("parse-only.ts")) {
  const path = process.argv[2];
  if (!path) {
    console.error("usage: parse-only.ts FILE.csv");
    process.exit(2);
  }
  console.log(await parseOnly(path));
}
