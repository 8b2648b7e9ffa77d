/**
 * CSV records with their exact text, read from UTF-8 bytes. The format writes each record's
 * original text back instead of re-quoting its cells, which is what keeps every input cell
 * byte for byte (quoting style, embedded CRLF, odd spacing).
 *
 * Records are found on the bytes ({@link RecordScanner}); the completed records of each chunk
 * are then decoded with one call, and each record's text and cells are slices of that string,
 * so every byte is decoded once. Malformed input throws a `LoomDataError` naming the line (and
 * the column where one helps); of two problems, the one earlier in the file is reported.
 * @module
 */
import { dataError } from "../_shared/errors.ts";
import { countLineBreaks, MAX_RECORD_LENGTH, MAX_RECORD_SIZE } from "../_shared/lines.ts";
import { invalidUtf8At, notUtf8 } from "../_shared/utf8.ts";
import { type Fault, RecordScanner, type Spans } from "./scan.ts";

/** The characters that structure a CSV file. */
export interface CsvDialect {
  readonly delimiter: string;
  readonly quote: string;
}

/**
 * One CSV record as read: its exact text and where it stands; its cells are decoded only when
 * asked for (a batch fetch's merge, for one, copies the text of most records and never reads
 * their cells). The field count is known up front, for the ragged-row check.
 */
export class CsvRecord {
  /** The record's exact text, without its line ending. */
  readonly text: string;
  /** 1-based line where the record starts. */
  readonly line: number;
  /** The line ending that closed it: `"\r\n"`, `"\n"`, `"\r"`, or `""` at the end of the input. */
  readonly eol: string;
  /** Its number of fields (1 for a blank line). */
  readonly size: number;
  /** Whether a field of it is quoted (its cells need unquoting). */
  readonly quoted: boolean;
  /** The delimiter and quote its cells are decoded with (one object shared by all records). */
  readonly dialect: CsvDialect;

  constructor(
    text: string,
    line: number,
    eol: string,
    size: number,
    quoted: boolean,
    dialect: CsvDialect,
  ) {
    this.text = text;
    this.line = line;
    this.eol = eol;
    this.size = size;
    this.quoted = quoted;
    this.dialect = dialect;
  }

  /** An empty line (no cells, no quotes). */
  get blank(): boolean {
    return this.text === "";
  }

  /** Cell values, unquoted: decoded on each access (callers keep what they need). */
  get cells(): string[] {
    return this.quoted ? unquote(this.text, this.dialect) : this.text.split(this.dialect.delimiter);
  }
}

/** Line endings by the scanner's code, and their length in bytes. */
const EOLS = ["", "\n", "\r\n", "\r"];
const EOL_BYTES = [0, 1, 2, 1];
/** Smallest buffer kept for a record that continues in the next chunk. */
const MIN_BUFFER = 64 * 1024;
const CR = 13;
const LF = 10;

/** Options of {@link readRecords}. */
export interface ReadRecordsOptions {
  /** Set to true when the input starts with a byte-order mark (which is skipped). */
  readonly seen?: { bom: boolean };
  /** Largest record accepted, in bytes (a stray quote would otherwise read the whole file). */
  readonly limit?: number;
}

/**
 * Reads the records of CSV bytes, in batches (the records each chunk of input completes, so that
 * the per-record cost of async iteration is paid once per chunk). Memory stays bounded by the
 * largest record plus a chunk. Invalid UTF-8 and malformed quoting throw a `LoomDataError`
 * naming the line, after the records before it.
 */
export async function* readRecords(
  input: AsyncIterable<Uint8Array>,
  path: string,
  dialect: CsvDialect,
  { seen = { bom: false }, limit = MAX_RECORD_LENGTH }: ReadRecordsOptions = {},
): AsyncGenerator<CsvRecord[]> {
  const scanner = new RecordScanner(dialect.delimiter, dialect.quote, limit);
  const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
  // The unread bytes are buf[0, len): the input's chunk itself, or when a record continues from
  // one chunk to the next, `spare` (the input may reuse a chunk's memory once we move on).
  let buf: Uint8Array = new Uint8Array(0);
  let len = 0;
  let spare = new Uint8Array(MIN_BUFFER);
  let bomChecked = false;
  let line = 1; // line of the record in progress
  const ensureSpare = (size: number, keep: number) => {
    if (spare.length >= size) return;
    const grown = new Uint8Array(Math.max(size, 2 * spare.length));
    grown.set(spare.subarray(0, keep));
    spare = grown;
  };

  /** Scans what is buffered: the records it completes, and the error that stopped it. */
  function drain(end: boolean): { batch: CsvRecord[]; error?: Error } {
    const batch: CsvRecord[] = [];
    if (!bomChecked && (len >= 3 || end)) {
      bomChecked = true;
      if (len >= 3 && buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf) {
        seen.bom = true;
        buf = buf.subarray(3);
        len -= 3;
      }
    }
    if (!bomChecked) {
      keep(0); // too few bytes yet to tell whether they start with a byte-order mark
      return { batch };
    }
    scanner.scan(buf, len, end);
    const spans = scanner.spans;
    const count = spans.starts.length;
    if (count) {
      const from = spans.starts[0];
      const to = spans.ends[count - 1] + EOL_BYTES[spans.eols[count - 1]];
      let text: string | undefined;
      try {
        text = decoder.decode(buf.subarray(from, to));
      } catch {
        // The records before the first invalid byte, then the error.
        const bad = invalidUtf8At(buf, from, to);
        let k = 0;
        while (k + 1 < count && spans.starts[k + 1] <= bad) k++;
        const head = decoder.decode(buf.subarray(from, spans.starts[k]));
        line = records(head, spans, k, line, dialect, scanner.countsFields, batch);
        return { batch, error: notUtf8(path, line + breaksIn(buf, spans.starts[k], bad)) };
      }
      line = records(text, spans, count, line, dialect, scanner.countsFields, batch);
    }
    if (scanner.fault) {
      return { batch, error: faultError(scanner.fault, scanner.start, buf, path, line, dialect) };
    }
    const done = scanner.start;
    keep(done);
    scanner.shift(done);
    return { batch };
  }

  /** Drops the bytes before `done`, keeping the rest (a record in progress) in `spare`. */
  function keep(done: number): void {
    const rest = len - done;
    if (rest) {
      if (buf === spare) spare.copyWithin(0, done, len);
      else {
        ensureSpare(rest, 0);
        spare.set(buf.subarray(done, len)); // `set` copies right even when `buf` views `spare`
      }
      buf = spare;
    }
    len = rest;
  }

  for await (const data of input) {
    // A plain Uint8Array view of a subclass (Node's Buffer), so that the scan's byte loop sees
    // one kind of array only.
    const chunk = data.constructor === Uint8Array
      ? data
      : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    if (len === 0) buf = chunk;
    else {
      ensureSpare(len + chunk.length, len);
      spare.set(chunk, len);
      buf = spare;
    }
    len += chunk.length;
    const { batch, error } = drain(false);
    if (batch.length) yield batch;
    if (error) throw error;
  }
  const { batch, error } = drain(true);
  if (batch.length) yield batch;
  if (error) throw error;
}

/**
 * Appends the records `[0, count)` of `spans` to `out`, their bytes having been decoded to
 * `text`; `line` is where record 0 starts. `counted` tells that `spans` has the records' field
 * counts (otherwise they are counted on the text). Returns the line after them.
 */
function records(
  text: string,
  spans: Spans,
  count: number,
  line: number,
  dialect: CsvDialect,
  counted: boolean,
  out: CsvRecord[],
): number {
  const { starts, ends, eols, quoted, inner, breaks, fields } = spans;
  const base = starts[0];
  // All ASCII when the lengths agree: string offsets are then byte offsets.
  const bytes = count < starts.length
    ? starts[count]
    : ends[count - 1] + EOL_BYTES[eols[count - 1]];
  const ascii = text.length === bytes - base;
  let u = 0; // where the next record's text starts in `text`
  let nlf = -1; // next LF and CR in `text` at or after u (text.length when none)
  let ncr = -1;
  const nextBreak = (from: number): number => {
    if (nlf < from) nlf = indexOr(text, "\n", from);
    if (ncr < from) ncr = indexOr(text, "\r", from);
    return nlf < ncr ? nlf : ncr;
  };
  const { delimiter } = dialect;
  for (let i = 0; i < count; i++) {
    let start = u;
    let end: number;
    if (ascii) {
      start = starts[i] - base;
      end = ends[i] - base;
    } else if (eols[i]) {
      end = nextBreak(u);
      for (let skip = inner[i]; skip > 0; skip--) end = nextBreak(end + 1);
    } else end = text.length;
    u = end + EOL_BYTES[eols[i]];
    const record = text.slice(start, end);
    const size = counted
      ? fields[i]
      : quoted[i]
      ? fieldsOutsideQuotes(record, dialect)
      : fieldsIn(record, delimiter);
    out.push(new CsvRecord(record, line, EOLS[eols[i]], size, quoted[i], dialect));
    line += breaks[i] + (eols[i] ? 1 : 0);
  }
  return line;
}

function indexOr(text: string, search: string, from: number): number {
  const i = text.indexOf(search, from);
  return i < 0 ? text.length : i;
}

/** Fields of a record without quotes: its delimiters, plus one. */
function fieldsIn(text: string, delimiter: string): number {
  let n = 1;
  if (delimiter.length === 1) {
    const d = delimiter.charCodeAt(0);
    for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === d) n++;
  } else {
    for (
      let i = text.indexOf(delimiter);
      i >= 0;
      i = text.indexOf(delimiter, i + delimiter.length)
    ) {
      n++;
    }
  }
  return n;
}

/**
 * Fields of a valid record with quoted fields: its delimiters outside quotes, plus one (a
 * doubled quote toggles twice, so it never ends a field).
 */
function fieldsOutsideQuotes(text: string, { delimiter, quote }: CsvDialect): number {
  let n = 1;
  let quoting = false;
  if (delimiter.length === 1 && quote.length === 1) {
    const d = delimiter.charCodeAt(0);
    const q = quote.charCodeAt(0);
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c === q) quoting = !quoting;
      else if (c === d && !quoting) n++;
    }
    return n;
  }
  return fieldIndex(text, { delimiter, quote }) + 1;
}

/** Cells of a valid record that has quoted fields. */
function unquote(text: string, { delimiter, quote }: CsvDialect): string[] {
  const cells: string[] = [];
  for (let i = 0;;) {
    if (text.startsWith(quote, i)) {
      let value = "";
      let from = i + quote.length;
      for (;;) {
        const c = text.indexOf(quote, from);
        if (text.startsWith(quote, c + quote.length)) { // a doubled quote stands for one
          value += text.slice(from, c + quote.length);
          from = c + 2 * quote.length;
          continue;
        }
        value += text.slice(from, c);
        i = c + quote.length;
        break;
      }
      cells.push(value);
      if (i >= text.length) return cells;
      i += delimiter.length;
    } else {
      const d = text.indexOf(delimiter, i);
      if (d < 0) {
        cells.push(text.slice(i));
        return cells;
      }
      cells.push(text.slice(i, d));
      i = d + delimiter.length;
    }
  }
}

/** Line breaks in `buf[from, to)`, where CRLF, LF and a lone CR each count once. */
function breaksIn(buf: Uint8Array, from: number, to: number): number {
  let n = 0;
  for (let i = from; i < to; i++) {
    if (buf[i] === CR || (buf[i] === LF && (i === from || buf[i - 1] !== CR))) n++;
  }
  return n;
}

/** Index of the field that `text` (the start of a record) ends in, from 0. */
function fieldIndex(text: string, { delimiter, quote }: CsvDialect): number {
  let n = 0;
  let quoting = false;
  for (let i = 0; i < text.length; i++) {
    if (text.startsWith(quote, i)) {
      quoting = !quoting; // a doubled quote toggles twice
      i += quote.length - 1;
    } else if (!quoting && text.startsWith(delimiter, i)) {
      n++;
      i += delimiter.length - 1;
    }
  }
  return n;
}

/**
 * The error for the malformed record starting at `start` (line `line`), or for its invalid
 * UTF-8 when that comes first.
 */
function faultError(
  fault: Fault,
  start: number,
  buf: Uint8Array,
  path: string,
  line: number,
  dialect: CsvDialect,
): Error {
  let upto = fault.at + fault.width;
  // A record cut at the size limit may be cut inside a character: check whole ones only.
  while (fault.kind === "too-large" && upto > start && (buf[upto] & 0xc0) === 0x80) upto--;
  const bad = invalidUtf8At(buf, start, upto);
  if (bad < upto) return notUtf8(path, line + breaksIn(buf, start, bad));
  const decode = (to: number) =>
    new TextDecoder("utf-8", { ignoreBOM: true }).decode(buf.subarray(start, to));
  const { quote } = dialect;
  const before = decode(fault.at); // the record up to the offending character
  const field = `field ${fieldIndex(before, dialect) + 1}`;
  const at = line + countLineBreaks(before);
  // 1-based column of the offending character, in UTF-16 code units as JavaScript counts.
  const column = before.length - Math.max(before.lastIndexOf("\n"), before.lastIndexOf("\r"));
  switch (fault.kind) {
    case "opening-quote":
      return dataError(
        path,
        at,
        `${field} has a ${quote} inside an unquoted value (quote the whole field and write the ${quote} twice, e.g. ${quote}5${quote}${quote} screen${quote})`,
        { column },
      );
    case "closing-quote":
      return dataError(
        path,
        at,
        `${field} is quoted but text follows its closing ${quote} (inside a quoted field write ${quote} twice)`,
        { column },
      );
    case "not-closed": {
      const opened = `field ${fieldIndex(decode(fault.opened), dialect) + 1}`;
      return dataError(
        path,
        line,
        `${opened} opens a ${quote} that is never closed, so the rest of the file was read into it (look for a stray ${quote})`,
      );
    }
    case "too-large": {
      const size = fault.at - start === MAX_RECORD_LENGTH
        ? MAX_RECORD_SIZE
        : `${fault.at - start} bytes`;
      const message = `the record starting here is larger than ${size}`;
      return dataError(path, line, `${message} (look for a stray ${quote} that opens a field)`);
    }
  }
}
