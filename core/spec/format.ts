/**
 * The format plugin contract, version 1. A format turns a byte stream into rows and rows (with
 * the columns Loom adds) back into text. Formats never touch files: the core opens the input,
 * unwraps `.gz`, and writes the output atomically; a format is a pure streaming transform, so it
 * runs the same under Deno and Node and is easy to test.
 * @module
 */

/** One input row. */
export interface DatasetRow {
  /** 0-based position of the row in the input; the row's identity when there is no id column. */
  readonly index: number;
  /** 1-based line of the input where the row starts, for error messages. */
  readonly line: number;
  /**
   * The row's values by column name, in the input's column order. A format may compute them on
   * first access (the CSV format decodes a record's cells only when asked, behind a getter), so
   * read `row.fields` rather than copying the row (`{ ...row }` or JSON would leave them behind).
   */
  readonly fields: Readonly<Record<string, unknown>>;
  /**
   * Format-private data carried from `read` to `write` untouched by the core (the CSV format keeps
   * the record's original text here, so input columns are written back byte for byte).
   */
  readonly source?: unknown;
}

/** What a format learned from the head of its input, needed again to write the output. */
export interface DatasetLayout {
  /**
   * Column names in order when the format knows them up front (a CSV header), otherwise
   * undefined (JSON and JSONL rows each carry their own keys).
   */
  readonly columns?: readonly string[];
  /** Format-private details the writer needs (line endings, byte-order mark, header text). */
  readonly source?: unknown;
}

/** An opened dataset: its layout and a one-shot stream of rows. */
export interface DatasetReader {
  readonly layout: DatasetLayout;
  readonly rows: AsyncIterable<DatasetRow>;
  /**
   * Optional: the same rows an array at a time (a consumer reads either these or `rows`, never
   * both). A large input costs one `await` an array instead of one a row, which is much of what a
   * row costs when a row's own work is small (a merge copying a saved answer).
   */
  rowChunks?(): AsyncIterable<readonly DatasetRow[]>;
}

/** Options passed to {@link FormatV1.open}. */
export interface FormatReadOptions {
  /** File name to cite in error messages. */
  readonly path: string;
  /** Format-specific options from the job's `dataset.options`. */
  readonly options?: Readonly<Record<string, unknown>>;
}

/**
 * A value Loom adds to a row: JSON data. Objects and arrays come from structured answers, and
 * only in formats that declare {@link FormatV1.nested}; a flat format may still get them in
 * its own columns and should write them as JSON text.
 */
export type AddedValue = string | number | boolean | null | readonly AddedValue[] | {
  readonly [key: string]: AddedValue;
};

/** A row to write: the input row plus the columns Loom adds, in `WriteOptions.added` order. */
export interface OutputRow {
  readonly row: DatasetRow;
  /** Added values by column name; `null` means empty (an empty CSV cell, JSON `null`). */
  readonly added: Readonly<Record<string, AddedValue>>;
}

/** Options passed to {@link FormatV1.write}. */
export interface FormatWriteOptions {
  /** The layout the reader returned for the same input. */
  readonly layout: DatasetLayout;
  /** Names of the added columns, in the order they follow the input's columns. */
  readonly added: readonly string[];
}

/** A dataset format plugin (version 1). */
export interface FormatV1 {
  readonly specificationVersion: "loom.format.v1";
  /** Registry name, e.g. `csv`. */
  readonly name: string;
  /** File extensions it claims, with the dot, lower case, e.g. `[".csv"]` (never `.gz`). */
  readonly extensions: readonly string[];
  /**
   * Whether a cell can hold an object (JSON, JSONL). A structured answer is then one object in
   * `llm_response`; otherwise (CSV) each of its top-level fields gets a column of its own.
   */
  readonly nested?: boolean;
  /**
   * Parses an (already decompressed) byte stream. Resolves once the layout is known (for CSV,
   * after the header); rows then stream with bounded memory. Malformed input throws a
   * `LoomDataError` naming `options.path` and the line.
   *
   * What else the format conformance suite (`formatConformance` in `loom-batch/testing`) holds
   * a format to: a UTF-8 byte-order mark is accepted (and not part of the first value); a
   * character split across two chunks reads whole; an input with a header and no rows reads as
   * no rows and writes back; an empty input reads as no rows or is refused with a
   * `LoomDataError`; and **when the consumer stops reading early** (a `break` out of `rows`, an
   * error), the reader stops reading `input` and closes it (`return()` on its iterator, which
   * `for await … of input` inside an async generator does by itself), so the file is released.
   */
  open(input: AsyncIterable<Uint8Array>, options: FormatReadOptions): Promise<DatasetReader>;
  /**
   * Serialises rows: every input column kept, in order, with its original value, then the added
   * columns. Yields text chunks; the core writes them to a temporary file and renames it.
   */
  write(rows: AsyncIterable<OutputRow>, options: FormatWriteOptions): AsyncIterable<string>;
  /**
   * Optional: {@link write} with the rows an array at a time (the same text for the same rows).
   * The core uses it where it has rows in arrays; without it, it hands `write` the rows one by one.
   */
  writeChunks?(
    rows: AsyncIterable<readonly OutputRow[]>,
    options: FormatWriteOptions,
  ): AsyncIterable<string>;
}
