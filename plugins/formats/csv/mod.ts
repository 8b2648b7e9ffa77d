/**
 * The CSV format: any columns, the first line is the header. Every input cell is written back
 * byte for byte: each row keeps its record's original text (`DatasetRow.source`) and the layout
 * keeps the header's text, the byte-order mark and the line ending, so the writer only appends
 * the added cells. Blank lines are skipped (they are not rows) but still count for line numbers;
 * every output record ends with its input record's line ending (the header's for a last record
 * that had none), so CRLF, LF and even mixed files come out as they went in.
 * @module
 */
import { LoomUsageError } from "../../../core/base/errors.ts";
import { definePlugin } from "../../../core/plugins/plugin.ts";
import type {
  DatasetLayout,
  DatasetReader,
  DatasetRow,
  FormatV1,
  OutputRow,
} from "../../../core/spec/format.ts";
import { checkOptions, dataError } from "../_shared/errors.ts";
import { CHUNK_SIZE } from "../_shared/stream.ts";
import { type CsvDialect, type CsvRecord, readRecords } from "./records.ts";

/** What the writer needs from the reader, kept in `DatasetLayout.source`. */
interface CsvSource extends CsvDialect {
  readonly bom: boolean;
  /** Line ending of the header line, used for every output record. */
  readonly eol: string;
  /** The header's exact text, or undefined for an empty file. */
  readonly header?: string;
}

/** What the writer needs from each row, kept in `DatasetRow.source`. */
interface CsvRowSource {
  /** The record's exact text, without its line ending. */
  readonly text: string;
  /** Its line ending (empty for a last record without one), kept so mixed files stay as they were. */
  readonly eol: string;
}

/** Reads `delimiter` and `quote` from the job's `dataset.options`. */
function dialectOf(
  path: string,
  options: Readonly<Record<string, unknown>> | undefined,
): CsvDialect {
  const given = checkOptions(path, "csv", options, ["delimiter", "quote"]);
  const delimiter = oneCharacter(path, "delimiter", given.delimiter ?? ",");
  const quote = oneCharacter(path, "quote", given.quote ?? '"');
  if (delimiter === quote) {
    const both = JSON.stringify(quote);
    throw new LoomUsageError(
      `${path}: dataset.options: the csv delimiter and quote must differ (both are ${both})`,
    );
  }
  return { delimiter, quote };
}

function oneCharacter(path: string, name: string, value: unknown): string {
  if (typeof value === "string" && [...value].length === 1 && value !== "\r" && value !== "\n") {
    return value;
  }
  const got = JSON.stringify(value);
  throw new LoomUsageError(
    `${path}: dataset.options.${name} must be one character other than a line break, got ${got}`,
  );
}

/** Checks the header: every column needs a unique, non-empty name. */
function headerNames(path: string, header: CsvRecord): string[] {
  const seen = new Map<string, number>();
  const names = header.cells; // decoded on each access
  names.forEach((name, i) => {
    if (name === "") {
      throw dataError(
        path,
        header.line,
        `column ${i + 1} of the header has no name (give every column a unique name)`,
      );
    }
    const first = seen.get(name);
    if (first !== undefined) {
      const message = `column ${i + 1} of the header, "${name}", repeats column ${first + 1}`;
      throw dataError(path, header.line, `${message} (column names must be unique)`);
    }
    seen.set(name, i);
  });
  return names;
}

/** Turns a record's cells into a row's fields object, by the header's column names. */
type ToFields = (cells: string[]) => Record<string, string>;

function fieldsMaker(columns: readonly string[]): ToFields {
  // Assigning keys one by one is several times faster than Object.fromEntries, but would set
  // the prototype for a column named __proto__.
  return columns.includes("__proto__")
    ? (cells) => Object.fromEntries(columns.map((name, i) => [name, cells[i]]))
    : (cells) => {
      const fields: Record<string, string> = {};
      for (let i = 0; i < columns.length; i++) fields[columns[i]] = cells[i];
      return fields;
    };
}

/**
 * A row of the CSV format. Its fields are decoded from the record on first access and kept:
 * a row that is only copied to the output (a batch fetch's merge of a saved answer) never pays
 * for unquoting its cells. The getter lives on the prototype, so rows keep one shape.
 */
class CsvRow implements DatasetRow {
  #fields?: Record<string, string>;
  readonly #toFields: ToFields;
  readonly index: number;
  readonly line: number;
  /** The record is the row's source as it is (it has the text and line ending the writer needs). */
  readonly source: CsvRecord;

  constructor(index: number, record: CsvRecord, toFields: ToFields) {
    this.index = index;
    this.line = record.line;
    this.source = record;
    this.#toFields = toFields;
  }

  get fields(): Record<string, string> {
    return this.#fields ??= this.#toFields(this.source.cells);
  }
}

/**
 * The rows of the record batches. Written as an iterator rather than an async generator: it
 * hands out the rows of the batch at hand without suspending and resuming a generator for each,
 * which was most of what a row cost. Calls to `next` are served one after the other.
 */
class CsvRows implements AsyncIterableIterator<DatasetRow> {
  #batch: readonly CsvRecord[];
  #at = 0; // next record in #batch
  #index = 0; // index of the next row
  #done = false;
  #waiting?: Promise<unknown>; // a `next` waiting for the next batch
  readonly #toFields: ToFields;

  readonly batches: AsyncGenerator<CsvRecord[]>;
  readonly columns: readonly string[];
  readonly path: string;
  readonly delimiter: string;

  constructor(
    first: readonly CsvRecord[],
    batches: AsyncGenerator<CsvRecord[]>,
    columns: readonly string[],
    path: string,
    delimiter: string,
  ) {
    this.#batch = first;
    this.batches = batches;
    this.columns = columns;
    this.path = path;
    this.delimiter = delimiter;
    this.#toFields = fieldsMaker(columns);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  next(): Promise<IteratorResult<DatasetRow>> {
    if (this.#waiting) return this.#waiting.then(() => this.next());
    if (this.#done) return Promise.resolve({ done: true, value: undefined });
    let row: DatasetRow | undefined;
    try {
      row = this.#take();
    } catch (error) {
      return this.#close().then(() => Promise.reject(error));
    }
    if (row) return Promise.resolve({ done: false, value: row });
    const waiting = this.#refill();
    const clear = () => {
      this.#waiting = undefined;
    };
    this.#waiting = waiting.then(clear, clear);
    return waiting;
  }

  /** Stops early: closes the records, and with them the input. */
  async return(): Promise<IteratorResult<DatasetRow>> {
    await this.#close();
    return { done: true, value: undefined };
  }

  async #close(): Promise<void> {
    if (this.#done) return;
    this.#done = true;
    await this.batches.return(undefined);
  }

  /** Makes the next batch of records the one at hand; false (and done) after the last. */
  async #nextBatch(): Promise<boolean> {
    let next: IteratorResult<CsvRecord[]>;
    try {
      next = await this.batches.next();
    } catch (error) {
      this.#done = true; // the records ended with the error, closing the input
      throw error;
    }
    if (next.done) {
      this.#done = true;
      return false;
    }
    this.#batch = next.value;
    this.#at = 0;
    return true;
  }

  /** Reads batches until one has a row. */
  async #refill(): Promise<IteratorResult<DatasetRow>> {
    for (;;) {
      if (!(await this.#nextBatch())) return { done: true, value: undefined };
      let row: DatasetRow | undefined;
      try {
        row = this.#take();
      } catch (error) {
        await this.#close();
        throw error;
      }
      if (row) return { done: false, value: row };
    }
  }

  /**
   * The rows a batch of records at a time (see `DatasetReader.rowChunks`); instead of `next`,
   * never with it. Rows before a bad record are handed out before its error is thrown.
   */
  async *rowChunks(): AsyncGenerator<DatasetRow[]> {
    try {
      for (;;) {
        const rows: DatasetRow[] = [];
        let bad: unknown;
        try {
          for (let row = this.#take(); row; row = this.#take()) rows.push(row);
        } catch (error) {
          bad = error;
        }
        if (rows.length) yield rows;
        if (bad !== undefined) throw bad;
        if (!(await this.#nextBatch())) return;
      }
    } finally {
      await this.#close(); // a consumer that stopped early, or a bad record
    }
  }

  /** The next row of the batch at hand, or undefined at its end. */
  #take(): DatasetRow | undefined {
    const { columns, path, delimiter } = this;
    while (this.#at < this.#batch.length) {
      const record = this.#batch[this.#at++];
      if (record.blank) continue;
      const n = record.size;
      if (n !== columns.length) {
        const hint = n > columns.length
          ? `quote fields that contain ${JSON.stringify(delimiter)}`
          : `a missing ${JSON.stringify(delimiter)}, or a line break in an unquoted field?`;
        throw dataError(
          path,
          record.line,
          `row has ${n} field${n === 1 ? "" : "s"} but the header has ${columns.length} (${hint})`,
        );
      }
      return new CsvRow(this.#index++, record, this.#toFields);
    }
    return undefined;
  }
}

async function open(
  input: AsyncIterable<Uint8Array>,
  { path, options }: { path: string; options?: Readonly<Record<string, unknown>> },
): Promise<DatasetReader> {
  const dialect = dialectOf(path, options);
  const seen = { bom: false };
  const batches = readRecords(input, path, dialect, { seen });
  try {
    // The header is the first record that is not a blank line; the rest of its batch are rows.
    let header: CsvRecord | undefined;
    let rest: CsvRecord[] = [];
    for (let next = await batches.next(); !next.done; next = await batches.next()) {
      const at = next.value.findIndex((record) => !record.blank);
      if (at < 0) continue;
      header = next.value[at];
      rest = next.value.slice(at + 1);
      break;
    }
    const columns = header ? headerNames(path, header) : [];
    const source: CsvSource = {
      ...dialect,
      bom: seen.bom,
      eol: header?.eol || "\n",
      header: header?.text,
    };
    const rows = new CsvRows(rest, batches, columns, path, dialect.delimiter);
    return { layout: { columns, source }, rows, rowChunks: () => rows.rowChunks() };
  } catch (error) {
    await batches.return(undefined);
    throw error;
  }
}

/**
 * A cell's text as written: quoted when it holds the delimiter, the quote or a line break
 * (quotes doubled). One pattern test per cell rather than a scan per character that matters.
 */
function cellQuoter({ delimiter, quote }: CsvDialect): (value: string) => string {
  const special = new RegExp(`[${escapeInClass(delimiter)}${escapeInClass(quote)}\\r\\n]`, "u");
  // In a replacement string "$$" means one "$": a quote of "$" is written "$$$$" there.
  const doubled = (quote + quote).replaceAll("$", "$$$$");
  return (value) => special.test(value) ? quote + value.replaceAll(quote, doubled) + quote : value;
}

/** A character as it stands in a regular expression's character class (`u` flag). */
function escapeInClass(char: string): string {
  return /[\\^$.*+?()[\]{}|\/-]/.test(char) ? "\\" + char : char;
}

/** The text of an added value: null is an empty cell, a number plain decimal text. */
function cellText(value: unknown): string {
  if (typeof value === "string") return value;
  if (value === null || value === undefined) return "";
  if (typeof value === "number") return decimalText(value);
  return typeof value === "object" ? JSON.stringify(value) : String(value);
}

/**
 * A number in plain decimal notation, the digits JavaScript gives it (so it reads back as the same
 * number): `0.00000015`, not `1.5e-7`. A cost of a request is often that small, and a spreadsheet
 * or a reader of the column should not have to know exponents.
 */
export function decimalText(n: number): string {
  const text = String(n);
  const e = text.indexOf("e");
  if (e < 0) return text; // also NaN and ±Infinity
  const sign = text.startsWith("-") ? "-" : "";
  const mantissa = text.slice(sign.length, e); // one digit, then maybe a point and more
  const digits = mantissa.replace(".", "");
  // Where the point falls in `digits`: after the first digit, moved by the exponent.
  const point = 1 + Number(text.slice(e + 1));
  if (point <= 0) return `${sign}0.${"0".repeat(-point)}${digits}`;
  if (point >= digits.length) return sign + digits + "0".repeat(point - digits.length);
  return `${sign}${digits.slice(0, point)}.${digits.slice(point)}`;
}

/** Splits a valid record's text into its cells' raw texts (quotes kept). */
function splitCells(text: string, { delimiter, quote }: CsvDialect): string[] {
  const cells: string[] = [];
  let start = 0;
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    if (text.startsWith(quote, i)) quoted = !quoted; // a doubled quote toggles twice
    else if (!quoted && text.startsWith(delimiter, i)) {
      cells.push(text.slice(start, i));
      start = i + delimiter.length;
    }
  }
  cells.push(text.slice(start));
  return cells;
}

function sourceOf(layout: DatasetLayout): CsvSource {
  const s = layout.source as Partial<CsvSource> | undefined;
  return {
    delimiter: s?.delimiter ?? ",",
    quote: s?.quote ?? '"',
    bom: s?.bom ?? false,
    eol: s?.eol ?? "\n",
    header: s?.header,
  };
}

/**
 * The output in chunks of about {@link CHUNK_SIZE} characters: the header, then one record per
 * row, each formatted straight onto the chunk at hand (no array of cells, no string per record
 * handed on). An added column that the input already has is set in place (the header is
 * unchanged); the others follow the input columns. The rows come one by one (`rows`) or an array
 * at a time (`rowChunks`).
 */
async function* chunks(
  { rows, rowChunks }: {
    rows?: AsyncIterable<OutputRow>;
    rowChunks?: AsyncIterable<readonly OutputRow[]>;
  },
  layout: DatasetLayout,
  added: readonly string[],
  size = CHUNK_SIZE,
): AsyncGenerator<string> {
  const dialect = sourceOf(layout);
  const quoteCell = cellQuoter(dialect);
  const columns = layout.columns ?? [];
  const { delimiter, eol } = dialect;
  const inPlace = new Map(
    added.filter((name) => columns.includes(name)).map((name) => [columns.indexOf(name), name]),
  );
  const appended = added.filter((name) => !columns.includes(name));
  // A record that is a single empty cell would read back as a blank line, so it is quoted.
  const emptyCell = dialect.quote + dialect.quote;
  const line = (cells: string[], end = eol) =>
    (cells.length === 1 && cells[0] === "" ? emptyCell : cells.join(delimiter)) + end;

  const header = columns.length ? [dialect.header ?? columns.map(quoteCell).join(delimiter)] : [];
  header.push(...appended.map(quoteCell));
  let text = dialect.bom ? "\ufeff" : "";
  if (header.length) text += line(header);

  const record = ({ row, added: values }: OutputRow): string => {
    const source = row.source as CsvRowSource | undefined;
    const end = source?.eol || eol;
    if (typeof source?.text === "string" && !inPlace.size && columns.length) {
      // The common case: the record's own text, then the added cells.
      let record = source.text;
      for (const name of appended) record += delimiter + quoteCell(cellText(values[name]));
      return (record === "" && !appended.length ? emptyCell : record) + end;
    }
    let cells: string[];
    if (typeof source?.text === "string") {
      cells = inPlace.size ? splitCells(source.text, dialect) : [source.text];
    } else {
      // A row this format did not read has no source text: quote its fields.
      cells = columns.map((name) => quoteCell(cellText(row.fields[name])));
    }
    for (const [i, name] of inPlace) cells[i] = quoteCell(cellText(values[name]));
    if (!columns.length) cells = [];
    for (const name of appended) cells.push(quoteCell(cellText(values[name])));
    return line(cells, end);
  };

  if (rowChunks) {
    for await (const chunk of rowChunks) {
      for (const row of chunk) text += record(row);
      if (text.length >= size) {
        yield text;
        text = "";
      }
    }
  } else {
    for await (const row of rows!) {
      text += record(row);
      if (text.length >= size) {
        yield text;
        text = "";
      }
    }
  }
  if (text) yield text;
}

/** The CSV format instance. */
export const csvFormat: FormatV1 = {
  specificationVersion: "loom.format.v1",
  name: "csv",
  extensions: [".csv"],
  open,
  write: (rows, { layout, added }) => chunks({ rows }, layout, added),
  writeChunks: (rowChunks, { layout, added }) => chunks({ rowChunks }, layout, added),
};

/** The built-in `csv` format plugin. */
export default definePlugin({
  apiVersion: 1,
  kind: "format",
  name: "csv",
  description: "CSV with a header line; input cells are written back byte for byte",
  create: () => csvFormat,
});
