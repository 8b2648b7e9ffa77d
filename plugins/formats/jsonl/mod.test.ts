import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  assertDataError,
  formatConformance,
  readText,
  writeText,
} from "../../../core/testing/format-conformance.ts";
import plugin, { jsonlFormat } from "./mod.ts";

formatConformance({
  format: jsonlFormat,
  sample: (rows) => rows.map((row) => JSON.stringify(row) + "\n").join(""),
  malformed: ['{"a": 1}\n{"a": \n', "[1]\n", '{"a": 1}\n"text"\n'],
});

const read = (text: string, chunkSize?: number) =>
  readText(jsonlFormat, text, { path: "data.jsonl", chunkSize });

async function rewrite(text: string, chunkSize?: number) {
  const { layout, rows } = await read(text, chunkSize);
  return writeText(
    jsonlFormat,
    layout,
    rows,
    ["llm_response"],
    (row) => ({ llm_response: `ok ${row.index}` }),
  );
}

const rejects = (text: string, pattern: RegExp) =>
  assertDataError(read(text), "data.jsonl", pattern);

describe("jsonl format", () => {
  it("is a format plugin claiming .jsonl and .ndjson", () => {
    assert.equal(plugin.kind, "format");
    assert.equal(plugin.name, "jsonl");
    assert.deepEqual(jsonlFormat.extensions, [".jsonl", ".ndjson"]);
  });

  it("skips blank lines but keeps line numbers", async () => {
    const { rows } = await read('{"a": 1}\n\n  \t\n{"a": 2}\n\n');
    assert.deepEqual(rows.map((row) => [row.index, row.line, row.fields.a]), [[0, 1, 1], [
      1,
      4,
      2,
    ]]);
    assert.equal(
      await rewrite('{"a": 1}\n\n{"a": 2}\n'),
      '{"a": 1,"llm_response":"ok 0"}\n{"a": 2,"llm_response":"ok 1"}\n',
    );
  });

  it("writes input values byte for byte, big integers and nesting included", async () => {
    const line =
      '{"id": 12345678901234567890, "meta": {"x": [1, "}", {"y": 1.50}]}, "s": "Zoë \\u00e9 🚀"}';
    assert.equal(await rewrite(`${line}\n`, 1), `${line.slice(0, -1)},"llm_response":"ok 0"}\n`);
    const { rows } = await read(line);
    assert.equal(rows[0].fields.id, "12345678901234567890");
    assert.deepEqual(rows[0].fields.meta, { x: [1, "}", { y: 1.5 }] });
  });

  it("keeps CRLF line endings, a BOM is dropped", async () => {
    assert.equal(
      await rewrite('\ufeff{"a":1}\r\n\r\n{"a":2}\r\n', 1),
      '{"a":1,"llm_response":"ok 0"}\r\n{"a":2,"llm_response":"ok 1"}\r\n',
    );
  });

  it("ends the last line even when the input did not", async () => {
    assert.equal(
      await rewrite('{"a":1}\n{"a":2}'),
      '{"a":1,"llm_response":"ok 0"}\n{"a":2,"llm_response":"ok 1"}\n',
    );
  });

  it("keeps whitespace around an object, and sets existing keys in place", async () => {
    assert.equal(await rewrite('  {"a": 1}  \n'), '  {"a": 1,"llm_response":"ok 0"}  \n');
    assert.equal(
      await rewrite('{"llm_response": "old", "a": 1}\n'),
      '{"llm_response": "ok 0", "a": 1}\n',
    );
    assert.equal(await rewrite("{}\n"), '{"llm_response":"ok 0"}\n');
  });

  it("refuses a line that is not valid JSON, naming the line", async () => {
    await rejects('{"a": 1}\n\n{"a": \n', /^data\.jsonl:3: invalid JSON \(/);
    await rejects('{"a": 1}\n{"a": 1} {"b": 2}\n', /^data\.jsonl:2: invalid JSON/);
  });

  it("refuses a line that is JSON but not an object, naming the line", async () => {
    await rejects(
      '{"a": 1}\n[1, 2]\n',
      /^data\.jsonl:2: expected a JSON object like \{"prompt": "..."\}, got an array/,
    );
    await rejects("42\n", /^data\.jsonl:1: expected a JSON object .*got a number/);
  });

  it("refuses text that is not UTF-8, naming the line", async () => {
    const bytes = new Uint8Array([
      ...new TextEncoder().encode('{"a": 1}\n{"a": "'),
      0xff,
      ...new TextEncoder().encode('"}\n'),
    ]);
    await assertDataError(
      readText(jsonlFormat, bytes, { path: "data.jsonl" }),
      "data.jsonl",
      /^data\.jsonl:2: the file is not valid UTF-8/,
    );
  });

  it("refuses options", async () => {
    await assert.rejects(readText(jsonlFormat, "", { path: "data.jsonl", options: { x: 1 } }), {
      name: "LoomUsageError",
    });
  });
});
