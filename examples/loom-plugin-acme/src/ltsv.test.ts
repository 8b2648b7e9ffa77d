/**
 * The `ltsv` format passes Loom's format conformance suite, and refuses bad records naming the
 * file, the line and what to do.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { assertDataError, formatConformance, readText, writeText } from "loom-batch/testing";
import { ltsv } from "./mod.ts";

const format = await ltsv.create({}, { env: {}, home: "/nonexistent" });

/** A value as the format writes it. */
const escape = (value: string) =>
  value.replace(
    /[\\\t\n\r]/g,
    (c) => ({ "\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r" })[c]!,
  );

formatConformance({
  format,
  sample: (rows, columns) =>
    rows.map((row) => columns.map((c) => `${c}:${escape(row[c])}`).join("\t") + "\n").join(""),
  malformed: [
    "a:1\tb\n", // a field without a colon
    ":1\n", // an empty label
    "a:1\ta:2\n", // a label twice
    "a:1\tb:2\na:3\tc:4\n", // a label the first record lacks
    "a:1\tb:2\na:3\n", // a label missing
    "a:x\\q\n", // not an escape
  ],
});

describe("ltsv format", () => {
  it("takes the columns from the first record and reads later labels in any order", async () => {
    const { layout, rows } = await readText(format, "id:1\tprompt:hi\n\nprompt:yo\tid:2\r\n");
    assert.deepEqual(layout.columns, ["id", "prompt"]);
    assert.deepEqual(rows.map((r) => [r.index, r.line, Object.entries(r.fields)]), [
      [0, 1, [["id", "1"], ["prompt", "hi"]]],
      [1, 3, [["id", "2"], ["prompt", "yo"]]],
    ]);
  });

  it("reads any label as a column, __proto__ too", async () => {
    const { layout, rows } = await readText(format, "__proto__:x\tconstructor:y\n");
    assert.deepEqual(layout.columns, ["__proto__", "constructor"]);
    assert.equal(Object.getPrototypeOf(rows[0].fields), Object.prototype);
    assert.deepEqual(Object.entries(rows[0].fields), [["__proto__", "x"], ["constructor", "y"]]);
  });

  it("keeps colons in values and a value that is empty", async () => {
    const { rows } = await readText(format, "url:http://x.test:8080/a\tnote:\n");
    assert.deepEqual(rows[0].fields, { url: "http://x.test:8080/a", note: "" });
  });

  it("names the file, the line and the label of a record that differs from the first", async () => {
    const text = "id:1\tprompt:a\n\nid:2\tprompt:b\nid:3\tprompt:c\tlang:en\n";
    await assertDataError(readText(format, text, { path: "in.ltsv" }), "in.ltsv:4:", /"lang"/);
    await assertDataError(
      readText(format, "id:1\tprompt:a\nid:2\n", { path: "in.ltsv" }),
      "in.ltsv:2:",
      /no "prompt" label/,
    );
  });

  it("names the line of bytes that are not UTF-8, and keeps U+FEFF after the first line", async () => {
    const bytes = new Uint8Array([...new TextEncoder().encode("a:1\na:"), 0xff, 0x0a]);
    await assertDataError(readText(format, bytes, { path: "bin.ltsv" }), "bin.ltsv:2:", /UTF-8/);
    const { rows } = await readText(format, "\ufeffa:1\na:\ufeff2\n");
    assert.deepEqual(rows.map((r) => r.fields), [{ a: "1" }, { a: "\ufeff2" }]);
  });

  it("writes added values after the input's, structured ones as JSON, null as empty", async () => {
    const { layout, rows } = await readText(format, "id:1\n");
    const out = await writeText(format, layout, rows, ["llm_response", "llm_error"], () => ({
      llm_response: { city: "東京", tags: ["a\tb"] },
      llm_error: null,
    }));
    assert.equal(out, 'id:1\tllm_response:{"city":"東京","tags":["a\\\\tb"]}\tllm_error:\n');
  });

  it("refuses to write a column whose name cannot be a label", async () => {
    const { layout, rows } = await readText(format, "id:1\n");
    await assert.rejects(
      writeText(format, layout, rows, ["a:b"]),
      /cannot write a column named "a:b"/,
    );
  });
});
