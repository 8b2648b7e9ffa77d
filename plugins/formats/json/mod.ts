/**
 * The JSON format: the file is one array of objects, streamed element by element (never parsed
 * whole). Each row keeps its element's exact text in `DatasetRow.source`, and the writer adds
 * members to that text, so input values come out byte for byte (big integers included).
 *
 * Output shape: `[`, then one element per line (an element that spanned several lines in the
 * input keeps its own line breaks), then `]`:
 *
 * ```json
 * [
 * {"id":1,"prompt":"hi","llm_response":"..."},
 * {"id":2,"prompt":"yo","llm_response":"..."}
 * ]
 * ```
 * @module
 */
import { definePlugin } from "../../../core/plugins/plugin.ts";
import type { DatasetReader, DatasetRow, FormatV1, OutputRow } from "../../../core/spec/format.ts";
import { checkOptions } from "../_shared/errors.ts";
import { outputText, parseObject } from "../_shared/json.ts";
import { batchText, prefetch, rowsByChunk } from "../_shared/stream.ts";
import { decodeUtf8 } from "../_shared/utf8.ts";
import { ArraySplitter } from "./elements.ts";

function rowsOf(input: AsyncIterable<Uint8Array>, path: string): AsyncGenerator<DatasetRow> {
  const rows: DatasetRow[] = [];
  // Each element is parsed as soon as it ends, so its error comes before any fault after it.
  const splitter = new ArraySplitter(path, ({ text, index, line }) => {
    const fields = parseObject(text, path, line, `array element [${index}]: `);
    rows.push({ index, line, fields, source: text });
  });
  return rowsByChunk(decodeUtf8(input, path), splitter, rows);
}

async function open(
  input: AsyncIterable<Uint8Array>,
  { path, options }: { path: string; options?: Readonly<Record<string, unknown>> },
): Promise<DatasetReader> {
  checkOptions(path, "json", options, []);
  // Reading the first element now reports "not an array" from open() rather than mid-run.
  return { layout: {}, rows: await prefetch(rowsOf(input, path)) };
}

async function* pieces(
  rows: AsyncIterable<OutputRow>,
  added: readonly string[],
): AsyncGenerator<string> {
  yield "[\n";
  let first = true;
  for await (const row of rows) {
    yield (first ? "" : ",\n") + outputText(row, added);
    first = false;
  }
  yield first ? "]\n" : "\n]\n";
}

/** The JSON format instance. */
export const jsonFormat: FormatV1 = {
  specificationVersion: "loom.format.v1",
  name: "json",
  extensions: [".json"],
  nested: true,
  open,
  write: (rows, { added }) => batchText(pieces(rows, added)),
};

/** The built-in `json` format plugin. */
export default definePlugin({
  apiVersion: 1,
  kind: "format",
  name: "json",
  description: "A JSON array of objects, streamed; input values are written back byte for byte",
  create: () => jsonFormat,
});
