/**
 * A conformance suite for format plugins, built-in or third-party. It defines `node:test` tests
 * (so it runs under both `deno test` and `node --test`) that check the promises of the format
 * contract: rows round-trip with every column and value in order, added columns follow the input
 * columns, empty and non-ASCII input, a byte-order mark, malformed input, and streaming in both
 * directions (a first row before the whole input is read, many output chunks, early exit closes
 * the input). A format's own `mod.test.ts` calls it once, then adds format-specific tests:
 *
 * ```ts
 * import { formatConformance } from "../conformance.ts";
 * formatConformance({
 *   format: myFormat,
 *   sample: (rows) => rows.map((row) => JSON.stringify(row) + "\n").join(""),
 * });
 * ```
 * @module
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { LoomError } from "../base/errors.ts";
import type { DatasetLayout, DatasetRow, FormatV1, OutputRow } from "../spec/format.ts";

/** A row of the sample data: string values only, which every format keeps exactly. */
export type SampleRow = Readonly<Record<string, string>>;

/** What {@link formatConformance} needs to know about a format. */
export interface FormatConformanceOptions {
  /** Name of the suite; defaults to the format's name. */
  readonly name?: string;
  readonly format: FormatV1;
  /** Writes rows as an input file of this format; every row has exactly `columns`, in order. */
  sample(rows: readonly SampleRow[], columns: readonly string[]): string;
  /** The format's options for `open()` (the job's `dataset.options`). */
  readonly options?: Readonly<Record<string, unknown>>;
  /** Inputs the format must refuse with a `LoomDataError` naming the file. */
  readonly malformed?: readonly string[];
}

/**
 * Streams a text as UTF-8 bytes (or bytes as they are) in chunks of `size` bytes; a size of 1
 * splits every multi-byte character.
 */
export async function* bytesOf(
  text: string | Uint8Array,
  size = 64 * 1024,
): AsyncGenerator<Uint8Array> {
  const bytes = typeof text === "string" ? new TextEncoder().encode(text) : text;
  for (let i = 0; i < bytes.length; i += size) yield bytes.slice(i, i + size);
}

/** Opens a text (or raw bytes) with a format and reads all its rows. */
export async function readText(
  format: FormatV1,
  text: string | Uint8Array,
  options: { path?: string; options?: Readonly<Record<string, unknown>>; chunkSize?: number } = {},
): Promise<{ layout: DatasetLayout; rows: DatasetRow[] }> {
  const reader = await format.open(bytesOf(text, options.chunkSize), {
    path: options.path ?? "data",
    options: options.options,
  });
  const rows: DatasetRow[] = [];
  for await (const row of reader.rows) rows.push(row);
  return { layout: reader.layout, rows };
}

/** What a row reads as: its position, line and fields. */
function shapeOf(row: DatasetRow) {
  return { index: row.index, line: row.line, fields: { ...row.fields } };
}

/** Added values of one output row. */
export type AddedValues = OutputRow["added"];

/** Writes rows with the given added columns and returns the whole output text. */
export async function writeText(
  format: FormatV1,
  layout: DatasetLayout,
  rows: readonly DatasetRow[],
  added: readonly string[] = [],
  values: (row: DatasetRow) => AddedValues = () => ({}),
): Promise<string> {
  async function* outputRows(): AsyncGenerator<OutputRow> {
    for (const row of rows) yield { row, added: values(row) };
  }
  let text = "";
  for await (const chunk of format.write(outputRows(), { layout, added })) {
    assert.equal(typeof chunk, "string");
    text += chunk;
  }
  return text;
}

/** Asserts that `promise` rejects with a `LoomDataError` whose message names `path`. */
export async function assertDataError(
  promise: Promise<unknown>,
  path: string,
  pattern?: RegExp,
): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(LoomError.isInstance(error), `expected a LoomError, got ${String(error)}`);
    assert.equal((error as Error).name, "LoomDataError");
    assert.ok(
      (error as Error).message.includes(path),
      `message does not name ${path}: ${(error as Error).message}`,
    );
    if (pattern) assert.match((error as Error).message, pattern);
    return true;
  });
}

const COLUMNS = ["id", "prompt", "note"];

/** Values that trip up naive writers: delimiters, quotes, line breaks, brackets, non-ASCII. */
const ROWS: SampleRow[] = [
  { id: "1", prompt: "hello", note: "" },
  { id: "2", prompt: 'a, "quoted", value', note: "it's" },
  { id: "3", prompt: "line one\nline two", note: "crlf\r\ninside" },
  { id: "4", prompt: "Zoë — 東京 🚀", note: "{not: json}" },
  { id: "5", prompt: "[1, 2]", note: "back\\slash\ttab" },
  { id: "6", prompt: "", note: "" },
];

const fieldsOf = (rows: readonly DatasetRow[]) => rows.map((row) => ({ ...row.fields }));

/** Defines the conformance tests for one format. */
export function formatConformance(options: FormatConformanceOptions): void {
  const { format, sample } = options;
  const read = (text: string, chunkSize?: number) =>
    readText(format, text, { options: options.options, chunkSize });

  describe(`${options.name ?? format.name} format conformance`, () => {
    it("declares the v1 contract", () => {
      assert.equal(format.specificationVersion, "loom.format.v1");
      assert.ok(format.extensions.length > 0);
      for (const ext of format.extensions) assert.match(ext, /^\.[a-z0-9]+$/);
    });

    it("reads every column and value in order, with row positions", async () => {
      const { rows } = await read(sample(ROWS, COLUMNS));
      assert.deepEqual(fieldsOf(rows), ROWS);
      for (const row of rows) assert.deepEqual(Object.keys(row.fields), COLUMNS);
      assert.deepEqual(rows.map((row) => row.index), ROWS.map((_, i) => i));
      for (let i = 1; i < rows.length; i++) {
        assert.ok(rows[i].line > rows[i - 1].line, "lines increase");
      }
      assert.ok(rows[0].line >= 1);
    });

    it("round-trips read → write → read with every column and value", async () => {
      const first = await read(sample(ROWS, COLUMNS));
      const again = await read(await writeText(format, first.layout, first.rows));
      assert.deepEqual(fieldsOf(again.rows), ROWS);
      for (const row of again.rows) assert.deepEqual(Object.keys(row.fields), COLUMNS);
    });

    it("writes its own output back byte for byte", async () => {
      const first = await read(sample(ROWS, COLUMNS));
      const output = await writeText(format, first.layout, first.rows);
      const second = await read(output);
      assert.equal(await writeText(format, second.layout, second.rows), output);
    });

    it("puts added columns after the input columns", async () => {
      const added = ["llm_response", "llm_error"];
      const first = await read(sample(ROWS, COLUMNS));
      const output = await writeText(format, first.layout, first.rows, added, (row) => ({
        llm_response: `answer, "${row.index}"\nZoë 🚀`,
        llm_error: null,
      }));
      const again = await read(output);
      if (again.layout.columns) assert.deepEqual(again.layout.columns, [...COLUMNS, ...added]);
      again.rows.forEach((row, i) => {
        assert.deepEqual(Object.keys(row.fields), [...COLUMNS, ...added]);
        for (const column of COLUMNS) assert.equal(row.fields[column], ROWS[i][column]);
        assert.equal(row.fields.llm_response, `answer, "${i}"\nZoë 🚀`);
        assert.ok(
          row.fields.llm_error === null || row.fields.llm_error === "",
          "null is written as empty",
        );
      });
    });

    it("keeps non-ASCII text split across chunks at every byte", async () => {
      const { rows } = await read(sample(ROWS, COLUMNS), 1);
      assert.deepEqual(fieldsOf(rows), ROWS);
    });

    it("accepts a UTF-8 byte-order mark", async () => {
      const { rows } = await read("\ufeff" + sample(ROWS, COLUMNS));
      assert.deepEqual(fieldsOf(rows), ROWS);
    });

    it("reads and writes an input with no rows", async () => {
      const { layout, rows } = await read(sample([], COLUMNS));
      assert.equal(rows.length, 0);
      const again = await read(await writeText(format, layout, rows, ["llm_response"]));
      assert.equal(again.rows.length, 0);
    });

    it("reads an empty file as no rows or refuses it clearly", async () => {
      let rows: DatasetRow[];
      try {
        ({ rows } = await readText(format, "", { path: "empty.input", options: options.options }));
      } catch (error) {
        assert.equal((error as Error).name, "LoomDataError");
        assert.ok((error as Error).message.includes("empty.input"), "the message names the file");
        return;
      }
      assert.equal(rows.length, 0);
    });

    if (options.malformed?.length) {
      it("refuses malformed input with a LoomDataError naming the file", async () => {
        for (const text of options.malformed!) {
          await assertDataError(
            readText(format, text, { path: "bad-input.file", options: options.options }),
            "bad-input.file",
          );
        }
      });
    }

    it("streams a large input in both directions", async () => {
      const count = 50_000;
      const big = Array.from(
        { length: count },
        (_, i) => ({ id: String(i), prompt: `prompt number ${i}`, note: "Zoë" }),
      );
      const bytes = new TextEncoder().encode(sample(big, COLUMNS));
      let pulled = 0;
      const chunkSize = 16 * 1024;
      const chunks = Math.ceil(bytes.length / chunkSize);
      async function* input(): AsyncGenerator<Uint8Array> {
        for (let i = 0; i < bytes.length; i += chunkSize) {
          pulled++;
          yield bytes.slice(i, i + chunkSize);
        }
      }
      const reader = await format.open(input(), { path: "big", options: options.options });
      const rows: DatasetRow[] = [];
      for await (const row of reader.rows) {
        if (rows.length === 0) {
          assert.ok(pulled < chunks, `first row came after reading ${pulled} of ${chunks} chunks`);
        }
        rows.push(row);
      }
      assert.equal(rows.length, count);
      assert.deepEqual(rows[count - 1].fields, big[count - 1]);

      let consumed = 0;
      async function* outputRows(): AsyncGenerator<OutputRow> {
        for (const row of rows) {
          consumed++;
          yield { row, added: { llm_response: "ok" } };
        }
      }
      let written = 0;
      let length = 0;
      for await (
        const chunk of format.write(outputRows(), {
          layout: reader.layout,
          added: ["llm_response"],
        })
      ) {
        if (written === 0) {
          assert.ok(consumed < count, `first chunk came after ${consumed} of ${count} rows`);
        }
        written++;
        length += chunk.length;
      }
      assert.ok(written >= 10, `expected many chunks, got ${written}`);
      assert.ok(length > bytes.length * 0.9);
    });

    it("hands out the same rows an array at a time, if it offers rowChunks", async (t) => {
      const text = sample(ROWS, COLUMNS);
      const { rows } = await read(text, 7);
      const reader = await format.open(bytesOf(text, 7), {
        path: "data",
        options: options.options,
      });
      if (!reader.rowChunks) return t.skip("no rowChunks");
      const chunked: DatasetRow[] = [];
      for await (const chunk of reader.rowChunks()) chunked.push(...chunk);
      assert.deepEqual(chunked.map(shapeOf), rows.map(shapeOf));
      for (const bad of options.malformed ?? []) {
        const one = await readText(format, bad, { path: "bad", options: options.options }).then(
          () => "read",
          (error: Error) => error.message,
        );
        const other = await (async () => {
          const reader = await format.open(bytesOf(bad), { path: "bad", options: options.options });
          for await (const _ of reader.rowChunks!());
          return "read";
        })().catch((error: Error) => error.message);
        assert.equal(other, one, "the same error as when read row by row");
      }
    });

    it("writes the same text an array at a time, if it offers writeChunks", async (t) => {
      if (!format.writeChunks) return t.skip("no writeChunks");
      const { layout, rows } = await read(sample(ROWS, COLUMNS));
      const added = ["llm_response", "llm_error"];
      const values = (row: DatasetRow) => ({
        llm_response: `a, "${row.index}"\n🚀`,
        llm_error: null,
      });
      async function* arrays(): AsyncGenerator<OutputRow[]> {
        for (let i = 0; i < rows.length; i += 2) {
          yield rows.slice(i, i + 2).map((row) => ({ row, added: values(row) }));
        }
      }
      let text = "";
      for await (const chunk of format.writeChunks(arrays(), { layout, added })) text += chunk;
      assert.equal(text, await writeText(format, layout, rows, added, values));
    });

    it("closes its input when the reader stops early", async () => {
      let closed = false;
      const text = sample(ROWS, COLUMNS);
      async function* input(): AsyncGenerator<Uint8Array> {
        try {
          yield* bytesOf(text, 8);
        } finally {
          closed = true;
        }
      }
      const reader = await format.open(input(), { path: "data", options: options.options });
      for await (const _row of reader.rows) break;
      // Streams may close on a later turn of the event loop; wait a bounded number of turns.
      for (let turn = 0; turn < 100 && !closed; turn++) {
        await new Promise((resolve) => setTimeout(resolve, 0));
      }
      assert.ok(closed, "the input was not closed");
    });
  });
}
