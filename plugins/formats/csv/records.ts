/**
 * CSV records with their exact text, read with csv-parse. The format writes each record's
 * original text back instead of re-quoting its cells, which is what keeps every input cell
 * byte for byte (quoting style, embedded CRLF, odd spacing).
 * @module
 */
import { pipeline, Readable } from "node:stream";
import { type Options, parse } from "csv-parse";
import { LoomError } from "../../../core/base/errors.ts";
import { dataError } from "../_shared/errors.ts";
import { countLineBreaks, MAX_RECORD_LENGTH, MAX_RECORD_SIZE } from "../_shared/lines.ts";

/** The characters that structure a CSV file. */
export interface CsvDialect {
  readonly delimiter: string;
  readonly quote: string;
}

/** One CSV record as read. */
export interface CsvRecord {
  /** Cell values, unquoted. */
  readonly cells: string[];
  /** The record's exact text, without its line ending. */
  readonly text: string;
  /** 1-based line where the record starts. */
  readonly line: number;
  /** The line ending that closed it: `"\r\n"`, `"\n"`, `"\r"`, or `""` at the end of the input. */
  readonly eol: string;
  /** An empty line (no cells, no quotes). */
  readonly blank: boolean;
}

interface ParsedRecord {
  record: string[];
  /** csv-parse's raw text: the record plus the first character of its line ending. */
  raw: string;
  info: { bytes: number };
}

/** Reads the records of CSV text; malformed quoting throws a `LoomDataError` naming the line. */
export async function* readRecords(
  input: AsyncIterable<string>,
  path: string,
  dialect: CsvDialect,
): AsyncGenerator<CsvRecord> {
  const { delimiter, quote } = dialect;
  let line = 1; // where the record being parsed starts
  let offset = 0; // bytes consumed by the records parsed so far
  // Runs inside the parser as each record completes, so `line` is exact even when the parser
  // fails further on in the same chunk (records it parsed but nobody read yet are discarded).
  const toRecord = ({ record, raw, info }: ParsedRecord): CsvRecord => {
    const ending = /\r?\n$|\r$/.exec(raw)?.[0] ?? "";
    const text = raw.slice(0, raw.length - ending.length);
    const consumed = info.bytes - offset;
    offset = info.bytes;
    // csv-parse's raw keeps only the first character of a CRLF; the byte count tells them apart.
    const eol = ending === "\r" && consumed - utf8Length(text) === 2 ? "\r\n" : ending;
    const start = line;
    line += countLineBreaks(raw);
    return { cells: record, text, line: start, eol, blank: text === "" && record.length === 1 };
  };
  const options: Options<CsvRecord, ParsedRecord> = {
    delimiter,
    quote,
    escape: quote, // a quote inside a quoted field is written twice; there is no other escape
    record_delimiter: ["\r\n", "\n", "\r"], // "\r\n" first so it wins over a lone "\r"
    raw: true,
    info: true,
    on_record: toRecord,
    relax_column_count: true, // the format checks the count itself, with a better message
    skip_empty_lines: false, // blank lines come through so that line numbers stay right
    bom: false, // decodeUtf8 already removed it
    max_record_size: MAX_RECORD_LENGTH,
  };
  // The typings tie on_record's types to columns-mode records; ours are raw+info records.
  const parser = parse(options as unknown as Options);
  // The text was decoded first (for the shared UTF-8 check and BOM handling); csv-parse wants
  // bytes again. Node streams rather than csv-parse's web-stream API: their small buffers keep
  // read-ahead to a few chunks when rows are consumed slowly.
  const encoder = new TextEncoder();
  const source = Readable.from((async function* () {
    for await (const chunk of input) yield encoder.encode(chunk);
  })());
  // Errors (including the input's, e.g. invalid UTF-8) surface through the parser's iterator.
  pipeline(source, parser, () => {});
  try {
    yield* parser as AsyncIterable<CsvRecord>;
  } catch (error) {
    throw LoomError.isInstance(error) ? error : translate(error, path, line, quote);
  } finally {
    parser.destroy();
  }
}

/** Turns a csv-parse error into a `LoomDataError`; `line` is where the failing record starts. */
function translate(error: unknown, path: string, line: number, quote: string): Error {
  const e = error as { code?: string; message?: string; column?: unknown; raw?: unknown };
  const raw = typeof e.raw === "string" ? e.raw : "";
  const field = typeof e.column === "number" ? `field ${e.column + 1}` : "a field";
  const at = line + countLineBreaks(raw);
  // Column of raw's last character, the quote csv-parse stopped at.
  const column = raw.length - 1 - Math.max(raw.lastIndexOf("\n"), raw.lastIndexOf("\r"));
  switch (e.code) {
    case "INVALID_OPENING_QUOTE":
      return dataError(
        path,
        at,
        `${field} has a ${quote} inside an unquoted value (quote the whole field and write the ${quote} twice, e.g. ${quote}5${quote}${quote} screen${quote})`,
        { column, cause: error },
      );
    case "CSV_INVALID_CLOSING_QUOTE":
      return dataError(
        path,
        at,
        `${field} is quoted but text follows its closing ${quote} (inside a quoted field write ${quote} twice)`,
        { column: column + 1, cause: error },
      );
    case "CSV_QUOTE_NOT_CLOSED":
      return dataError(
        path,
        line,
        `${field} opens a ${quote} that is never closed, so the rest of the file was read into it (look for a stray ${quote})`,
        { cause: error },
      );
    case "CSV_MAX_RECORD_SIZE": {
      const message = `the record starting here is larger than ${MAX_RECORD_SIZE}`;
      return dataError(path, line, `${message} (look for a stray ${quote} that opens a field)`, {
        cause: error,
      });
    }
    default:
      return dataError(path, line, `cannot parse the CSV (${e.message ?? String(error)})`, {
        cause: error,
      });
  }
}

/** UTF-8 byte length of a string, without encoding it. */
function utf8Length(text: string): number {
  let n = text.length;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) continue;
    // 2 bytes below U+0800, 3 above; a surrogate pair is 4 bytes over 2 code units.
    n += c < 0x800 || (c >= 0xd800 && c <= 0xdfff) ? 1 : 2;
  }
  return n;
}
