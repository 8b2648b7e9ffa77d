/**
 * The record reader against csv-parse, the reader it replaced, kept here as the test oracle:
 * random CSVs (quoting, line breaks of every kind inside and outside fields, a BOM, custom and
 * multi-byte delimiters and quotes, ragged rows, blank lines, malformed quoting, invalid UTF-8)
 * cut into random chunks must give the same records and the same errors, and the format must
 * write the records it read back byte for byte.
 * @module
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type Options, parse } from "csv-parse/sync";
import fc from "fast-check";
import { LoomError } from "../../../core/base/errors.ts";
import { writeText } from "../../../core/testing/format-conformance.ts";
import type { DatasetRow } from "../../../core/spec/format.ts";
import { countLineBreaks } from "../_shared/lines.ts";
import { notUtf8 } from "../_shared/utf8.ts";
import { csvFormat } from "./mod.ts";
import { type CsvDialect, type CsvRecord, readRecords } from "./records.ts";

const PATH = "data.csv";
const encoder = new TextEncoder();

/** A record as compared: its cells decoded. */
interface ReadRecord {
  cells: string[];
  text: string;
  line: number;
  eol: string;
  blank: boolean;
}

/** What reading a CSV gives: its records, and the message of the error that stopped it. */
interface Outcome {
  records: ReadRecord[];
  error?: string;
}

// ---- The oracle: csv-parse with the options Loom used, and Loom's former error messages ----

/** Offset of the first byte that does not start a valid UTF-8 character (by TextDecoder). */
function firstInvalid(bytes: Uint8Array): number | undefined {
  const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
  for (let i = 0; i < bytes.length;) {
    let size = 0;
    for (let n = 1; n <= 4 && i + n <= bytes.length && !size; n++) {
      try {
        if ([...decoder.decode(bytes.subarray(i, i + n))].length === 1) size = n;
      } catch { /* not a character of n bytes */ }
    }
    if (!size) return i;
    i += size;
  }
  return undefined;
}

/** Reads valid UTF-8 text with csv-parse as Loom did; records before an error are kept. */
function csvParse(text: string, { delimiter, quote }: CsvDialect): Outcome & { code?: string } {
  const records: ReadRecord[] = [];
  let line = 1;
  let offset = 0;
  const bytes = encoder.encode(text);
  try {
    parse(bytes, {
      delimiter,
      quote,
      escape: quote,
      record_delimiter: ["\r\n", "\n", "\r"],
      raw: true,
      info: true,
      relax_column_count: true,
      skip_empty_lines: false,
      bom: false,
      on_record: ({ record, info }: { record: string[]; info: { bytes: number } }) => {
        // The record's text from its byte offsets: csv-parse's `raw` drops the bytes after the
        // first of a multi-byte quote or delimiter.
        const raw = new TextDecoder("utf-8", { ignoreBOM: true }).decode(
          bytes.subarray(offset, info.bytes),
        );
        offset = info.bytes;
        const eol = /\r\n$|\n$|\r$/.exec(raw)?.[0] ?? "";
        const recordText = raw.slice(0, raw.length - eol.length);
        records.push({
          cells: record,
          text: recordText,
          line,
          eol,
          blank: recordText === "" && record.length === 1,
        });
        line += countLineBreaks(raw);
        return null;
      },
    } as unknown as Options // the typings tie on_record to columns-mode records
    );
  } catch (error) {
    const e = error as { code: string; column?: number; raw?: string };
    const raw = e.raw ?? "";
    const field = `field ${(e.column ?? 0) + 1}`;
    const at = line + countLineBreaks(raw);
    const column = raw.length - 1 - Math.max(raw.lastIndexOf("\n"), raw.lastIndexOf("\r"));
    const message = {
      INVALID_OPENING_QUOTE:
        `${PATH}:${at}:${column}: ${field} has a ${quote} inside an unquoted value (quote the whole field and write the ${quote} twice, e.g. ${quote}5${quote}${quote} screen${quote})`,
      CSV_INVALID_CLOSING_QUOTE: `${PATH}:${at}:${
        column + 1
      }: ${field} is quoted but text follows its closing ${quote} (inside a quoted field write ${quote} twice)`,
      CSV_QUOTE_NOT_CLOSED:
        `${PATH}:${line}: ${field} opens a ${quote} that is never closed, so the rest of the file was read into it (look for a stray ${quote})`,
    }[e.code];
    assert.ok(message, `unexpected csv-parse error ${e.code}`);
    return { records, error: message, code: e.code };
  }
  return { records };
}

/**
 * What Loom must read from `bytes`. Of invalid UTF-8 and malformed quoting, the one earlier in
 * the file is reported (at the same byte, invalid UTF-8), naming the line of the invalid byte.
 */
function oracle(bytes: Uint8Array, dialect: CsvDialect): Outcome {
  const bad = firstInvalid(bytes);
  const bom = bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf && bad !== 0;
  const text = new TextDecoder("utf-8", { ignoreBOM: true }).decode(
    bytes.subarray(bom ? 3 : 0, bad ?? bytes.length),
  );
  const { records, error, code } = csvParse(text, dialect);
  if (bad === undefined) return error ? { records, error } : { records };
  // The text stops at the invalid byte: a quote left open there, or the record cut there, are
  // not the input's; a quoting error before it is.
  if (error && code !== "CSV_QUOTE_NOT_CLOSED") return { records, error };
  if (records.at(-1)?.eol === "") records.pop();
  return { records, error: notUtf8(PATH, 1 + countLineBreaks(text)).message };
}

// ---- Loom's side ----

async function* chunks(bytes: Uint8Array, cuts: number[]): AsyncGenerator<Uint8Array> {
  let from = 0;
  for (const cut of [...cuts.map((c) => c % (bytes.length + 1)).sort((a, b) => a - b)]) {
    yield bytes.slice(from, Math.max(from, cut));
    from = Math.max(from, cut);
  }
  yield bytes.slice(from);
}

function loom(bytes: Uint8Array, dialect: CsvDialect, cuts: number[]): Promise<Outcome> {
  return readAll(readRecords(chunks(bytes, cuts), PATH, dialect));
}

// ---- Random CSVs ----

/** Delimiter and quote pairs, multi-byte ones (2 and 3 bytes in UTF-8) included. */
const DIALECTS: CsvDialect[] = [
  { delimiter: ",", quote: '"' },
  { delimiter: ";", quote: "'" },
  { delimiter: "\t", quote: '"' },
  { delimiter: "§", quote: '"' },
  { delimiter: ",", quote: "«" },
  { delimiter: "€", quote: "«" },
  { delimiter: "|", quote: "€" },
  { delimiter: "𝄞", quote: "🎵" },
  { delimiter: ",", quote: "\t" }, // a quote that sorts below CR // 4 bytes each, and 2 UTF-16 code units
];
/** Text characters: ASCII, 2, 3 and 4 UTF-8 bytes, a BOM character, and every special one. */
const CHARS = [
  "a",
  "b",
  " ",
  "é",
  "東",
  "🚀",
  "\ufeff",
  ",",
  ";",
  "\t",
  "|",
  "§",
  "€",
  '"',
  "'",
  "«",
];
/** Byte sequences that are not UTF-8 (a stray continuation, a lone lead, a surrogate, ...). */
const INVALID = [[0xff], [0x80], [0xc3], [0xe9, 0x0a], [0xed, 0xa0, 0x80], [0xc0, 0x80], [
  0xf0,
  0x9f,
]];

const fieldArb = fc.record({
  quoted: fc.boolean(),
  chars: fc.array(fc.constantFrom(...CHARS, "\n", "\r", "\r\n"), { maxLength: 5 }),
});

const csvArb = fc.record({
  dialect: fc.constantFrom(...DIALECTS),
  width: fc.integer({ min: 1, max: 4 }),
  rows: fc.array(fc.array(fieldArb, { maxLength: 5 }), { maxLength: 8 }),
  ragged: fc.boolean(),
  eols: fc.array(fc.constantFrom("\n", "\r\n", "\r"), { minLength: 10, maxLength: 10 }),
  lastEol: fc.boolean(),
  bom: fc.boolean(),
  /** Malformed quoting: characters inserted anywhere. */
  stray: fc.oneof(
    fc.constant([]),
    fc.array(fc.record({ at: fc.nat(), char: fc.constantFrom("q", "d", "\n", "\r", "x") }), {
      maxLength: 2,
    }),
  ),
  /** Invalid UTF-8: bytes inserted anywhere (also inside a character). */
  invalid: fc.oneof(
    { weight: 2, arbitrary: fc.constant([]) },
    fc.array(fc.record({ at: fc.nat(), bytes: fc.constantFrom(...INVALID) }), { maxLength: 2 }),
  ),
  cuts: fc.array(fc.nat(), { maxLength: 6 }),
});
type Csv = typeof csvArb extends fc.Arbitrary<infer T> ? T : never;

/** The bytes of a generated CSV: a unique header, then the rows, then the damage. */
function render(csv: Csv): Uint8Array {
  const { delimiter: d, quote: q } = csv.dialect;
  const field = ({ quoted, chars }: { quoted: boolean; chars: string[] }) => {
    if (quoted) return q + chars.join("").replaceAll(q, q + q) + q;
    return chars.filter((c) => c !== q && c !== d && c !== "\n" && c !== "\r" && c !== "\r\n")
      .join("");
  };
  const header = Array.from({ length: csv.width }, (_, i) => i % 2 ? `${q}c${i}${q}` : `c${i}`);
  const rows = csv.rows.map((row) => {
    if (csv.ragged || row.length === 0) return row.map(field); // [] is a blank line
    const cells = Array.from({ length: csv.width }, (_, i) => field(row[i % row.length]));
    return cells;
  });
  let text = [header, ...rows].map((cells, i) => cells.join(d) + csv.eols[i % 10]).join("");
  if (!csv.lastEol) text = text.replace(/(\r\n|\n|\r)$/, "");
  for (const { at, char } of csv.stray) {
    const c = char === "q" ? q : char === "d" ? d : char;
    const i = at % (text.length + 1);
    text = text.slice(0, i) + c + text.slice(i);
  }
  let bytes = encoder.encode((csv.bom ? "\ufeff" : "") + text);
  for (const { at, bytes: insert } of csv.invalid) {
    const i = at % (bytes.length + 1);
    bytes = new Uint8Array([...bytes.subarray(0, i), ...insert, ...bytes.subarray(i)]);
  }
  return bytes;
}

/**
 * With a quote of 2 UTF-16 code units, csv-parse's `raw`, from which the oracle's columns come,
 * lacks bytes of the quotes; Loom's columns count the line's code units. Those columns are not
 * compared (the unit tests check one).
 */
function withoutColumn(outcome: Outcome, { quote }: CsvDialect): Outcome {
  if (quote.length === 1 || !outcome.error) return outcome;
  return { ...outcome, error: outcome.error.replace(/^([^:]+:\d+):\d+:/, "$1:") };
}

const RUNS = { numRuns: 500, seed: 13 };

describe("csv record reader against csv-parse", () => {
  it("reads the same records and reports the same errors, however the bytes are chunked", async () => {
    await fc.assert(
      fc.asyncProperty(csvArb, async (csv) => {
        const bytes = render(csv);
        const expected = withoutColumn(oracle(bytes, csv.dialect), csv.dialect);
        const actual = withoutColumn(await loom(bytes, csv.dialect, csv.cuts), csv.dialect);
        assert.deepEqual(actual, expected);
        // Every byte boundary of the same input, for one chunking that splits all of them.
        if (bytes.length < 200) {
          const split = Array.from({ length: bytes.length }, (_, i) => i);
          assert.deepEqual(
            withoutColumn(await loom(bytes, csv.dialect, split), csv.dialect),
            expected,
          );
        }
      }),
      RUNS,
    );
  });

  it("writes what it read back byte for byte", async () => {
    await fc.assert(
      fc.asyncProperty(csvArb, async (csv) => {
        const bytes = render({ ...csv, stray: [], invalid: [], ragged: false });
        const { records } = oracle(bytes, csv.dialect);
        const reader = await csvFormat.open(chunks(bytes, csv.cuts), {
          path: PATH,
          options: { ...csv.dialect },
        });
        const rows: DatasetRow[] = [];
        for await (const row of reader.rows) rows.push(row);
        // Blank lines are dropped; a last record without a line ending gets the header's.
        const kept = records.filter((record) => !record.blank);
        const eol = kept[0].eol || "\n";
        const expected = (csv.bom ? "\ufeff" : "") +
          kept.map((record) => record.text + (record.eol || eol)).join("");
        assert.equal(await writeText(csvFormat, reader.layout, rows), expected);
        assert.equal(rows.length, kept.length - 1);
        // The fields, decoded only now that they are asked for, are the oracle's cells.
        const columns = kept[0].cells;
        rows.forEach((row, i) => {
          const cells = kept[i + 1].cells;
          assert.deepEqual(row.fields, Object.fromEntries(columns.map((c, j) => [c, cells[j]])));
        });
      }),
      RUNS,
    );
  });
  it("checks each row's field count as the oracle's cells say, fields decoded when asked", async () => {
    await fc.assert(
      fc.asyncProperty(csvArb, async (csv) => {
        const bytes = render({ ...csv, stray: [], invalid: [] });
        const { delimiter } = csv.dialect;
        const [header, ...kept] = oracle(bytes, csv.dialect).records.filter((r) => !r.blank);
        const width = header.cells.length;
        const expected: { fields: Record<string, string>[]; error?: string } = { fields: [] };
        for (const { cells, line } of kept) {
          const n = cells.length;
          if (n !== width) {
            const hint = n > width
              ? `quote fields that contain ${JSON.stringify(delimiter)}`
              : `a missing ${JSON.stringify(delimiter)}, or a line break in an unquoted field?`;
            const s = n === 1 ? "" : "s";
            expected.error =
              `${PATH}:${line}: row has ${n} field${s} but the header has ${width} (${hint})`;
            break;
          }
          expected.fields.push(Object.fromEntries(header.cells.map((c, j) => [c, cells[j]])));
        }
        const reader = await csvFormat.open(chunks(bytes, csv.cuts), {
          path: PATH,
          options: { ...csv.dialect },
        });
        const actual: typeof expected = { fields: [] };
        try {
          for await (const row of reader.rows) actual.fields.push({ ...row.fields } as never);
        } catch (error) {
          actual.error = (error as Error).message;
        }
        assert.deepEqual(actual, expected);
        // The same rows, and the rows before a bad one, an array at a time.
        const again = await csvFormat.open(chunks(bytes, csv.cuts), {
          path: PATH,
          options: { ...csv.dialect },
        });
        const chunked: typeof expected = { fields: [] };
        try {
          for await (const rows of again.rowChunks!()) {
            for (const row of rows) chunked.fields.push({ ...row.fields } as never);
          }
        } catch (error) {
          chunked.error = (error as Error).message;
        }
        assert.deepEqual(chunked, expected);
      }),
      RUNS,
    );
  });
});

describe("csv record reader", () => {
  const dialect = { delimiter: ",", quote: '"' };
  const read = (text: string, size: number, limit?: number) =>
    readAll(
      readRecords(chunks(encoder.encode(text), cutsEvery(text, size)), PATH, dialect, { limit }),
    );

  it("counts columns of a record that starts with a BOM character as one character", async () => {
    const text = 'a,b\n\ufeffx"y,1\n';
    const expected = `${PATH}:2:3: field 1 has a " inside an unquoted value`;
    assert.ok(oracle(encoder.encode(text), dialect).error?.startsWith(expected));
    assert.ok((await read(text, 64)).error?.startsWith(expected));
  });

  it("counts columns in UTF-16 code units, also after a quote of two", async () => {
    const astral = { delimiter: ";", quote: "🎵" };
    const { error } = await readAll(
      readRecords(chunks(encoder.encode("a;🎵b🎵c\n"), []), PATH, astral),
    );
    assert.match(error ?? "", /^data\.csv:1:8: field 2 is quoted but text follows its closing 🎵/);
  });

  it("refuses a record larger than the limit, after the records before it", async () => {
    const text = 'a,b\n1,2\n3,"' + "x".repeat(300) + '"\n4,5\n';
    for (const size of [7, 1000]) {
      const { records, error } = await read(text, size, 100);
      assert.deepEqual(records.map((record) => record.text), ["a,b", "1,2"]);
      assert.match(error ?? "", /^data\.csv:3: the record starting here is larger than 100 bytes/);
    }
  });

  it("reads a record of megabytes that spans many chunks, and goes on after it", async () => {
    const big = "line\r\n".repeat(300_000); // 1.8 MB, 300,000 line breaks
    const text = `id,text\n1,"${big}"\n2,after\n`;
    const { records, error } = await read(text, 4096);
    assert.equal(error, undefined);
    assert.deepEqual(records.map((record) => record.line), [1, 2, 300_003]);
    assert.equal(records[1].cells[1], big);
    assert.deepEqual(records[2].cells, ["2", "after"]);
  });
});

function cutsEvery(text: string, size: number): number[] {
  const length = encoder.encode(text).length;
  return Array.from({ length: Math.floor(length / size) }, (_, i) => (i + 1) * size);
}

/**
 * The records read, their cells decoded; each record's field count, known before decoding
 * (the ragged-row check uses it), must be its number of cells.
 */
async function readAll(batches: AsyncIterable<CsvRecord[]>): Promise<Outcome> {
  const records: ReadRecord[] = [];
  const plain = ({ cells, text, line, eol, blank, size }: CsvRecord): ReadRecord => {
    assert.equal(size, cells.length, `the field count of line ${line}`);
    return { cells, text, line, eol, blank };
  };
  try {
    for await (const batch of batches) records.push(...batch.map(plain));
  } catch (error) {
    assert.ok(LoomError.isInstance(error), `not a LoomError: ${error}`);
    return { records, error: (error as Error).message };
  }
  return { records };
}
