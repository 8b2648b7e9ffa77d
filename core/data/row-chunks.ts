/**
 * Rows an array at a time, over formats that may or may not offer it (`DatasetReader.rowChunks`,
 * `FormatV1.writeChunks`): a pass over a million rows with little work a row (a batch merge)
 * spends most of its time in `await`s when every row is one.
 * @module
 */
import type {
  DatasetReader,
  DatasetRow,
  FormatV1,
  FormatWriteOptions,
  OutputRow,
} from "../spec/format.ts";

/** Rows gathered into one array when a format hands them out one by one. */
const GATHERED_ROWS = 256;

/** The reader's rows an array at a time: its own arrays, or its rows gathered. */
export function rowChunksOf(reader: DatasetReader): AsyncIterable<readonly DatasetRow[]> {
  return reader.rowChunks?.() ?? gathered(reader.rows);
}

async function* gathered<T>(rows: AsyncIterable<T>): AsyncGenerator<T[]> {
  let chunk: T[] = [];
  for await (const row of rows) {
    chunk.push(row);
    if (chunk.length === GATHERED_ROWS) {
      yield chunk;
      chunk = [];
    }
  }
  if (chunk.length) yield chunk;
}

/** The format's output of rows given an array at a time (`write` a row at a time without `writeChunks`). */
export function writeRowChunks(
  format: FormatV1,
  chunks: AsyncIterable<readonly OutputRow[]>,
  options: FormatWriteOptions,
): AsyncIterable<string> {
  return format.writeChunks?.(chunks, options) ?? format.write(eachRow(chunks), options);
}

async function* eachRow<T>(chunks: AsyncIterable<readonly T[]>): AsyncGenerator<T> {
  for await (const chunk of chunks) yield* chunk;
}
