/**
 * The JSONL format (`.jsonl`, `.ndjson`): one JSON object per line. Blank lines are skipped but
 * still counted, so error lines match an editor's. Each row keeps its line's exact text and the
 * writer adds members to it, so input values come out byte for byte; every output line ends with
 * the input's first line ending (CRLF stays CRLF), the last line included.
 * @module
 */
import { definePlugin } from "../../../core/plugins/plugin.ts";
import type { DatasetReader, DatasetRow, FormatV1, OutputRow } from "../../../core/spec/format.ts";
import { checkOptions, dataError } from "../_shared/errors.ts";
import { outputText, parseObject } from "../_shared/json.ts";
import { LineSplitter, MAX_RECORD_SIZE } from "../_shared/lines.ts";
import { batchText, prefetch, rowsByChunk } from "../_shared/stream.ts";
import { decodeUtf8 } from "../_shared/utf8.ts";

const OPEN_BRACE = 0x7b;

/** What the writer needs from the reader, kept in `DatasetLayout.source`. */
interface JsonlSource {
  readonly eol: string;
}

function rowsOf(
  input: AsyncIterable<Uint8Array>,
  path: string,
  found: { eol: string },
): AsyncGenerator<DatasetRow> {
  const tooLong = (line: number): never => {
    throw dataError(path, line, `line is longer than ${MAX_RECORD_SIZE} (is this JSON Lines?)`);
  };
  let index = 0;
  const rows: DatasetRow[] = [];
  // Lines are split and parsed chunk by chunk, in one loop, then handed out.
  const splitter = new LineSplitter(({ text, line, eol }) => {
    if (!found.eol) found.eol = eol;
    if (text.charCodeAt(0) !== OPEN_BRACE && text.trim() === "") return;
    rows.push({ index: index++, line, fields: parseObject(text, path, line), source: text });
  }, tooLong);
  return rowsByChunk(decodeUtf8(input, path), splitter, rows);
}

async function open(
  input: AsyncIterable<Uint8Array>,
  { path, options }: { path: string; options?: Readonly<Record<string, unknown>> },
): Promise<DatasetReader> {
  checkOptions(path, "jsonl", options, []);
  const found = { eol: "" };
  // The first row is read now: it tells the line ending and reports a bad first line early.
  const rows = await prefetch(rowsOf(input, path, found));
  const source: JsonlSource = { eol: found.eol || "\n" };
  return { layout: { source }, rows };
}

async function* pieces(
  rows: AsyncIterable<OutputRow>,
  added: readonly string[],
  eol: string,
): AsyncGenerator<string> {
  for await (const row of rows) yield outputText(row, added) + eol;
}

/** The JSONL format instance. */
export const jsonlFormat: FormatV1 = {
  specificationVersion: "loom.format.v1",
  name: "jsonl",
  extensions: [".jsonl", ".ndjson"],
  nested: true,
  open,
  write: (rows, { layout, added }) =>
    batchText(pieces(rows, added, (layout.source as JsonlSource | undefined)?.eol ?? "\n")),
};

/** The built-in `jsonl` format plugin. */
export default definePlugin({
  apiVersion: 1,
  kind: "format",
  name: "jsonl",
  description: "JSON Lines, one object per line; input values are written back byte for byte",
  create: () => jsonlFormat,
});
