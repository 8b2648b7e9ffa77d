import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { DatasetRow } from "../../../core/spec/format.ts";
import {
  assertDataError,
  bytesOf,
  formatConformance,
  readText,
  writeText,
} from "../../../core/testing/format-conformance.ts";
import plugin, { csvFormat, decimalText } from "./mod.ts";

/** Minimal CSV quoting, for building inputs. */
const q = (v: string) => (/[",\r\n]/.test(v) ? `"${v.replaceAll('"', '""')}"` : v);

formatConformance({
  format: csvFormat,
  sample: (rows, columns) =>
    [columns, ...rows.map((row) => columns.map((c) => row[c]))].map((cells) =>
      cells.map(q).join(",") + "\n"
    ).join(""),
  malformed: ["a,b\n1,2,3\n", 'a,b\n1,"x\n', "a,a\n1,2\n", 'a,b\n1,"x"y\n'],
});

/** Records whose cells must come out exactly as they went in. */
const RECORDS = [
  "id,text,note",
  '1,"a, b",x',
  '2,"say ""hi""",',
  '3,"""",y',
  '4,"line1\nline2",z',
  '5,"crlf\r\ninside",w',
  "6,Zoë — 東京 🚀,",
  "7,b,",
  ",,",
  '8,"",""',
  "9, spaced ,\t",
];

const answer = (row: DatasetRow) => [`ans, "q"\nnext`, null, "plain"][row.index % 3];

async function roundTrip(input: string, chunkSize = 64 * 1024, added = ["llm_response"]) {
  const { layout, rows } = await readText(csvFormat, input, { path: "data.csv", chunkSize });
  const output = await writeText(
    csvFormat,
    layout,
    rows,
    added,
    (row) => ({ llm_response: answer(row) }),
  );
  return { layout, rows, output };
}

describe("csv format", () => {
  it("is a format plugin claiming .csv", () => {
    assert.equal(plugin.kind, "format");
    assert.equal(plugin.name, "csv");
    assert.deepEqual(csvFormat.extensions, [".csv"]);
  });

  for (const eol of ["\n", "\r\n"]) {
    for (const bom of ["", "\ufeff"]) {
      const name = `${eol === "\n" ? "LF" : "CRLF"}${bom ? " + BOM" : ""}`;
      it(`writes every input cell back byte for byte (${name})`, async () => {
        const input = bom + RECORDS.join(eol) + eol;
        const expected = bom + [
          RECORDS[0] + ",llm_response",
          ...RECORDS.slice(1).map((record, i) =>
            record + "," + q(answer({ index: i } as DatasetRow) ?? "")
          ),
        ].join(eol) + eol;
        for (const size of [1, 7, 64 * 1024]) {
          const { layout, rows, output } = await roundTrip(input, size);
          assert.equal(output, expected, `chunks of ${size} bytes`);
          assert.deepEqual(layout.columns, ["id", "text", "note"]);
          assert.equal(rows.length, RECORDS.length - 1);
        }
      });
    }
  }

  it("reads cell values unquoted, with line numbers of multi-line records", async () => {
    const { rows } = await readText(csvFormat, RECORDS.join("\r\n") + "\r\n");
    const byId = (id: string) => rows.find((row) => row.fields.id === id)!;
    assert.equal(byId("1").fields.text, "a, b");
    assert.equal(byId("2").fields.text, 'say "hi"');
    assert.equal(byId("3").fields.text, '"');
    assert.equal(byId("4").fields.text, "line1\nline2");
    assert.equal(byId("5").fields.text, "crlf\r\ninside");
    assert.equal(byId("6").fields.text, "Zoë — 東京 🚀");
    assert.deepEqual(rows[7].fields, { id: "", text: "", note: "" });
    assert.deepEqual(byId("9").fields, { id: "9", text: " spaced ", note: "\t" });
    assert.deepEqual(rows.map((row) => row.line), [2, 3, 4, 5, 7, 9, 10, 11, 12, 13]);
  });

  it("ends the last record with the line ending even when the input did not", async () => {
    assert.equal(
      (await roundTrip("a,b\n1,2")).output,
      'a,b,llm_response\n1,2,"ans, ""q""\nnext"\n',
    );
    assert.equal((await roundTrip("a,b\r\n1,2", 64, [])).output, "a,b\r\n1,2\r\n");
  });

  it("skips blank lines but keeps line numbers", async () => {
    const { rows, output } = await roundTrip("\na,b\n1,2\n\n\n3,4\n\n", 64, []);
    assert.deepEqual(rows.map((row) => [row.line, row.fields]), [[3, { a: "1", b: "2" }], [6, {
      a: "3",
      b: "4",
    }]]);
    assert.equal(output, "a,b\n1,2\n3,4\n");
  });

  it("keeps each record's line ending (CR only, and mixed files); a last one without gets the header's", async () => {
    const cr = await roundTrip("a,b\r1,2\r3,4", 64, []);
    assert.deepEqual(cr.rows.map((row) => row.line), [2, 3]);
    assert.equal(cr.output, "a,b\r1,2\r3,4\r");
    const mixed = await roundTrip("a,b\r\n1,2\n3,4\r\n", 1, []);
    assert.deepEqual(mixed.rows.map((row) => row.fields.b), ["2", "4"]);
    assert.equal(mixed.output, "a,b\r\n1,2\n3,4\r\n");
  });

  it("quotes added cells only when needed, and names added columns", async () => {
    const { layout, rows } = await readText(csvFormat, "a\nx\n");
    const named = await writeText(
      csvFormat,
      layout,
      rows,
      ["r", "n, m"],
      () => ({ r: null, "n, m": 1 }),
    );
    assert.equal(named, 'a,r,"n, m"\nx,,1\n');
    for (const value of ["plain", "com,ma", 'quo"te', "cr\rlf", "", null, 42, true]) {
      const again = await readText(
        csvFormat,
        await writeText(csvFormat, layout, rows, ["r"], () => ({ r: value })),
      );
      assert.equal(again.rows[0].fields.r, value === null ? "" : String(value));
    }
    const quoted = await writeText(
      csvFormat,
      layout,
      rows,
      ["r"],
      () => ({ r: 'say "x", then\ngo' }),
    );
    assert.equal(quoted, 'a,r\nx,"say ""x"", then\ngo"\n');
  });

  it("writes numbers in plain decimal notation that reads back as the same number", async () => {
    const { layout, rows } = await readText(csvFormat, "a\nx\n");
    const costs = await writeText(csvFormat, layout, rows, ["c", "d"], () => ({
      c: 0.0000123,
      d: 1.5e-7,
    }));
    assert.equal(costs, "a,c,d\nx,0.0000123,0.00000015\n");
    const cases: [number, string][] = [
      [0, "0"],
      [42, "42"],
      [0.5, "0.5"],
      [1e-7, "0.0000001"],
      [-2.5e-8, "-0.000000025"],
      [1.2345e-10, "0.00000000012345"],
      [5e-324, `0.${"0".repeat(323)}5`],
      [1e21, `1${"0".repeat(21)}`],
      [-1.25e22, `-125${"0".repeat(20)}`],
      [1.7976931348623157e308, `17976931348623157${"0".repeat(292)}`],
      [Number.NaN, "NaN"],
    ];
    for (const [n, text] of cases) {
      assert.equal(decimalText(n), text, String(n));
      if (Number.isFinite(n)) assert.equal(Number(text), n, `${text} reads back`);
    }
  });

  it("uses the delimiter and quote options", async () => {
    const options = { delimiter: ";", quote: "'" };
    const input = "id;text\n1;'a;b'\n2;'it''s \"x\"'\n";
    const { layout, rows } = await readText(csvFormat, input, { options });
    assert.deepEqual(rows.map((row) => row.fields.text), ["a;b", `it's "x"`]);
    const output = await writeText(
      csvFormat,
      layout,
      rows,
      ["r"],
      (row) => ({ r: row.index ? '"q"' : "x;y" }),
    );
    assert.equal(output, "id;text;r\n1;'a;b';'x;y'\n2;'it''s \"x\"';\"q\"\n");
    const tabs = await readText(csvFormat, "a\tb\n1,2\t3\n", { options: { delimiter: "\t" } });
    assert.deepEqual(tabs.rows[0].fields, { a: "1,2", b: "3" });
  });

  it("quotes added cells with delimiters and quotes that are special in patterns", async () => {
    for (const [delimiter, quote] of [["|", "^"], ["-", "]"], ["\\", "."], ["[", "$"]]) {
      const options = { delimiter, quote };
      const { layout, rows } = await readText(csvFormat, `a${delimiter}b\n1${delimiter}2\n`, {
        options,
      });
      const values = ["plain", `x${delimiter}y`, `say ${quote}hi${quote}`, "a\nb", "abc^$.-]"];
      for (const value of values) {
        const output = await writeText(csvFormat, layout, rows, ["r"], () => ({ r: value }));
        const again = await readText(csvFormat, output, { options });
        assert.equal(again.rows[0].fields.r, value, `${delimiter} ${quote} ${value}`);
        const quoted = value.includes(delimiter) || value.includes(quote) || value.includes("\n");
        assert.equal(output.endsWith(`${delimiter}${value}\n`), !quoted, output);
      }
    }
  });

  it("writes a long output in chunks that join to the whole", async () => {
    const lines = Array.from({ length: 5_000 }, (_, i) => `${i},"text ${i}, quoted"`);
    const { layout, rows } = await readText(csvFormat, `id,text\n${lines.join("\n")}\n`);
    async function* outputRows() {
      for (const row of rows) yield { row, added: { r: `answer ${row.index}` } };
    }
    const chunks: string[] = [];
    for await (const chunk of csvFormat.write(outputRows(), { layout, added: ["r"] })) {
      chunks.push(chunk);
    }
    assert.ok(chunks.length > 1, "more than one chunk");
    assert.ok(chunks.slice(0, -1).every((chunk) => chunk.length >= 64 * 1024));
    assert.equal(
      chunks.join(""),
      `id,text,r\n${lines.map((line, i) => `${line},answer ${i}`).join("\n")}\n`,
    );
  });

  it("rejects unknown and invalid options as usage errors", async () => {
    const bad: Record<string, unknown>[] = [
      { delim: ";" },
      { delimiter: ";;" },
      { delimiter: "\n" },
      { quote: 5 },
      { delimiter: '"' },
    ];
    for (const options of bad) {
      await assert.rejects(
        readText(csvFormat, "a\n1\n", { path: "data.csv", options }),
        (error: Error) => {
          assert.equal(error.name, "LoomUsageError");
          assert.match(error.message, /^data\.csv: .*dataset\.options/);
          return true;
        },
      );
    }
  });

  it("refuses empty and duplicate column names, naming the position", async () => {
    await assertDataError(
      readText(csvFormat, "id,,x\n1,2,3\n", { path: "data.csv" }),
      "data.csv",
      /^data\.csv:1: column 2 of the header has no name/,
    );
    await assertDataError(
      readText(csvFormat, "\nid,text,id\n", { path: "data.csv" }),
      "data.csv",
      /^data\.csv:2: column 3 of the header, "id", repeats column 1/,
    );
  });

  it("refuses rows with the wrong number of fields, naming the line", async () => {
    await assertDataError(
      readText(csvFormat, "a,b\n1,2\n1,2,3\n", { path: "data.csv" }),
      "data.csv",
      /^data\.csv:3: row has 3 fields but the header has 2 \(quote fields that contain ","\)/,
    );
    await assertDataError(
      readText(csvFormat, 'a,b,c\n1,"x\ny",3\n1\n', { path: "data.csv" }),
      "data.csv",
      /^data\.csv:4: row has 1 field but the header has 3/,
    );
  });

  it("decodes a row's fields once, on first access, with a column named __proto__ too", async () => {
    const { rows } = await readText(csvFormat, 'id,__proto__\n1,"a ""b"", c"\n', {
      path: "data.csv",
    });
    const [row] = rows;
    const fields = row.fields;
    assert.equal(row.fields, fields);
    assert.deepEqual(Object.keys(fields), ["id", "__proto__"]);
    assert.equal(fields.__proto__, 'a "b", c');
    assert.equal(Object.getPrototypeOf(fields), Object.prototype);
  });

  it("refuses broken quoting, naming the line and column", async () => {
    await assertDataError(
      readText(csvFormat, 'a,b\n1,"x"y\n', { path: "data.csv" }),
      "data.csv",
      /^data\.csv:2:6: field 2 is quoted but text follows its closing "/,
    );
    await assertDataError(
      readText(csvFormat, 'a,b\n1,"x\r\n"y\n', { path: "data.csv" }),
      "data.csv",
      /^data\.csv:3:2: field 2 is quoted/,
    );
    await assertDataError(
      readText(csvFormat, 'a,b\n1,5" screen\n', { path: "data.csv" }),
      "data.csv",
      /^data\.csv:2:4: field 2 has a " inside an unquoted value/,
    );
    await assertDataError(
      readText(csvFormat, 'a,b\n1,2\n3,"never\nclosed\n', { path: "data.csv" }),
      "data.csv",
      /^data\.csv:3: field 2 opens a " that is never closed/,
    );
  });

  it("refuses text that is not UTF-8, naming the line", async () => {
    const latin1 = new Uint8Array([...new TextEncoder().encode("a,b\n1,2\n3,caf"), 0xe9, 0x0a]);
    for (const chunkSize of [1, 1024]) {
      await assertDataError(
        readText(csvFormat, latin1, { path: "data.csv", chunkSize }),
        "data.csv",
        /^data\.csv:3: the file is not valid UTF-8/,
      );
    }
  });

  it("names the line of invalid UTF-8 in a file whose lines end with a lone CR", async () => {
    const bytes = new Uint8Array([...new TextEncoder().encode("a,b\r1,2\r3,caf"), 0xe9, 0x0d]);
    for (const chunkSize of [1, 1024]) {
      await assertDataError(
        readText(csvFormat, bytes, { path: "data.csv", chunkSize }),
        "data.csv",
        /^data\.csv:3: the file is not valid UTF-8/,
      );
    }
  });

  it("writes records back byte for byte with a multi-byte delimiter and quote", async () => {
    const options = { delimiter: "€", quote: "«" };
    const input = "id€text\n1€«a€b«\n2€«x««y«\n";
    for (const chunkSize of [1, 64]) {
      const { layout, rows } = await readText(csvFormat, input, { options, chunkSize });
      assert.deepEqual(rows.map((row) => row.fields.text), ["a€b", "x«y"]);
      assert.equal(await writeText(csvFormat, layout, rows), input);
    }
  });

  it("serves rows in order to calls of next() that do not wait, and ends after an error", async () => {
    const input = "a,b\n" + Array.from({ length: 50 }, (_, i) => `${i},x\n`).join("") + "1,2,3\n";
    const reader = await csvFormat.open(bytesOf(input, 7), { path: "data.csv" });
    const rows = reader.rows[Symbol.asyncIterator]();
    const results = await Promise.allSettled(Array.from({ length: 52 }, () => rows.next()));
    const values = results.slice(0, 50).map((r) => r.status === "fulfilled" && r.value.value);
    assert.deepEqual(values.map((row) => row && row.fields.a), [...Array(50).keys()].map(String));
    assert.equal(results[50].status, "rejected");
    assert.match(String((results[50] as PromiseRejectedResult).reason), /data\.csv:52: row has 3/);
    assert.deepEqual(results[51], { status: "fulfilled", value: { done: true, value: undefined } });
  });

  it("sets an added column the input already has in place", async () => {
    const input = 'id,llm_response,note\n1,old,"x,y"\n2,"o""ld",\n';
    const { layout, rows } = await readText(csvFormat, input);
    const output = await writeText(
      csvFormat,
      layout,
      rows,
      ["llm_response", "extra"],
      (row) => ({ llm_response: `n,${row.index}`, extra: "e" }),
    );
    assert.equal(output, 'id,llm_response,note,extra\n1,"n,0","x,y",e\n2,"n,1",,e\n');
  });

  it("handles a header-only file and an empty file", async () => {
    const header = await roundTrip("a,b\r\n");
    assert.equal(header.rows.length, 0);
    assert.equal(header.output, "a,b,llm_response\r\n");
    const empty = await roundTrip("");
    assert.deepEqual(empty.layout.columns, []);
    assert.equal(empty.output, "llm_response\n");
    assert.equal((await roundTrip("", 64, [])).output, "");
  });

  it("keeps a one-column file's empty values distinct from blank lines", async () => {
    const { rows, output } = await roundTrip('prompt\n""\nhi\n', 64, []);
    assert.deepEqual(rows.map((row) => row.fields.prompt), ["", "hi"]);
    assert.equal(output, 'prompt\n""\nhi\n');
    const rebuilt = await writeText(csvFormat, { columns: ["prompt"] }, [{
      index: 0,
      line: 2,
      fields: { prompt: "" },
    }]);
    assert.equal(rebuilt, 'prompt\n""\n');
  });

  it("writes rows it did not read from their fields", async () => {
    const rows: DatasetRow[] = [{ index: 0, line: 1, fields: { a: "x,y", b: 5 } }];
    const output = await writeText(
      csvFormat,
      { columns: ["a", "b"] },
      rows,
      ["r"],
      () => ({ r: "ok" }),
    );
    assert.equal(output, 'a,b,r\n"x,y",5,ok\n');
  });

  it("gives each row its own plain fields object, even for odd column names", async () => {
    const { rows } = await readText(csvFormat, "__proto__,constructor\n1,2\n");
    assert.equal(Object.getPrototypeOf(rows[0].fields), Object.prototype);
    assert.deepEqual(Object.keys(rows[0].fields), ["__proto__", "constructor"]);
    assert.equal(rows[0].fields["__proto__"], "1");
  });

  it("keeps a quoted header with a line break in it", async () => {
    const { layout, rows } = await readText(csvFormat, '"a\r\nb",c\r\n1,2\r\n');
    assert.deepEqual(layout.columns, ["a\r\nb", "c"]);
    assert.equal(rows[0].line, 3);
    const output = await writeText(csvFormat, layout, rows, ["x"], () => ({ x: "1" }));
    assert.equal(output, '"a\r\nb",c,x\r\n1,2,1\r\n');
  });

  it("reads bytes chunked at every boundary of a BOM and CRLF", async () => {
    const input = "\ufeffa,b\r\n1,2\r\n";
    for (const size of [1, 2, 3, 4, 5]) {
      const reader = await csvFormat.open(bytesOf(input, size), { path: "data.csv" });
      const rows: DatasetRow[] = [];
      for await (const row of reader.rows) rows.push(row);
      assert.deepEqual(rows.map((row) => row.fields), [{ a: "1", b: "2" }]);
      assert.equal(await writeText(csvFormat, reader.layout, rows), input);
    }
  });
});
