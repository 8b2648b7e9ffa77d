/**
 * The JSON and JSONL datasets the benchmarks read: the rows of `makeCsv` (`id`, `category`, a
 * prompt with a comma and quotes in it) as objects, with hostile content in every row: escaped
 * quotes and backslashes, `\u` escapes, a tab escape, non-ASCII text (accents, CJK, an emoji as
 * a surrogate pair), a nested object and an array.
 * @module
 */
import { createWriteStream } from "node:fs";
import { once } from "node:events";
import process from "node:process";

/** The text of row `i`'s object, on one line. */
export function jsonRow(i: number): string {
  return `{"id":${i},"category":"cat-${i % 17}",` +
    `"prompt":"Summarize item ${i}: a short text, with a comma and \\"quotes\\" in it.",` +
    `"meta":{"lang":"fr","note":"Zoë à 東京 🚀 \\u00e9\\t\\\\ end","tags":["a",${i % 5},null]}}`;
}

async function writeLines(path: string, lines: Iterable<string>): Promise<void> {
  const out = createWriteStream(path);
  for (const line of lines) if (!out.write(line)) await once(out, "drain");
  out.end();
  await once(out, "close");
}

/** Writes `rows` rows of the benchmark dataset to `path` as JSON Lines. */
export function makeJsonl(path: string, rows: number): Promise<void> {
  return writeLines(
    path,
    (function* () {
      for (let i = 0; i < rows; i++) yield jsonRow(i) + "\n";
    })(),
  );
}

/** Writes `rows` rows of the benchmark dataset to `path` as a JSON array, one element a line. */
export function makeJson(path: string, rows: number): Promise<void> {
  return writeLines(
    path,
    (function* () {
      yield "[\n";
      for (let i = 0; i < rows; i++) yield (i ? ",\n" : "") + jsonRow(i);
      yield "\n]\n";
    })(),
  );
}

if (import.meta.main || process.argv[1]?.endsWith("json-data.ts")) {
  const [kind, path, rows] = process.argv.slice(2);
  await (kind === "json" ? makeJson : makeJsonl)(path, Number(rows));
}
