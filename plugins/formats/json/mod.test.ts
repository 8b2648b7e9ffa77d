import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { DatasetRow } from "../../../core/spec/format.ts";
import {
  assertDataError,
  formatConformance,
  readText,
  writeText,
} from "../../../core/testing/format-conformance.ts";
import plugin, { jsonFormat } from "./mod.ts";

formatConformance({
  format: jsonFormat,
  sample: (rows) => JSON.stringify(rows, null, 2),
  malformed: ['{"a": 1}', '[{"a": 1}, 2]', '[{"a": 1},]', '[{"a": }]', '[{"a": 1}', '[{"a": 1}] x'],
});

const read = (text: string, chunkSize?: number) =>
  readText(jsonFormat, text, { path: "data.json", chunkSize });

async function rewrite(text: string, added = ["llm_response"], chunkSize?: number) {
  const { layout, rows } = await read(text, chunkSize);
  return writeText(jsonFormat, layout, rows, added, (row) => ({ llm_response: `ok ${row.index}` }));
}

const rejects = (text: string, pattern: RegExp) =>
  assertDataError(read(text), "data.json", pattern);

describe("json format", () => {
  it("is a format plugin claiming .json", () => {
    assert.equal(plugin.kind, "format");
    assert.equal(plugin.name, "json");
    assert.deepEqual(jsonFormat.extensions, [".json"]);
  });

  it("writes one element per line, input members first, byte for byte", async () => {
    const element =
      '{"id": 12345678901234567890, "meta": {"tags": ["a", "]", "}"], "deep": {"x": null, "f": 1.50}}, "s": "q\\"u\\\\ote"}';
    const input = `[\n  ${element},\n  {"id":2,"prompt":"yo"}\n]\n`;
    for (const size of [1, 5, 64 * 1024]) {
      assert.equal(
        await rewrite(input, ["llm_response"], size),
        "[\n" + element.slice(0, -1) + ',"llm_response":"ok 0"},\n' +
          '{"id":2,"prompt":"yo","llm_response":"ok 1"}\n]\n',
      );
    }
  });

  it("gives prompts big integers as their exact digits, nested values parsed", async () => {
    const { rows } = await read(
      '[{"id": 12345678901234567890, "n": -9007199254740993, "small": 42, "meta": {"a": [1, {"b": null}]}}]',
    );
    assert.deepEqual(rows[0].fields, {
      id: "12345678901234567890",
      n: "-9007199254740993",
      small: 42,
      meta: { a: [1, { b: null }] },
    });
  });

  it("adds members to pretty-printed elements in their style", async () => {
    const input = JSON.stringify([{ id: 1, prompt: "hi" }, { id: 2, nested: { a: 1 } }], null, 2);
    assert.equal(
      await rewrite(input),
      '[\n{\n    "id": 1,\n    "prompt": "hi",\n    "llm_response": "ok 0"\n  },\n' +
        '{\n    "id": 2,\n    "nested": {\n      "a": 1\n    },\n    "llm_response": "ok 1"\n  }\n]\n',
    );
  });

  it("handles empty objects, and added keys the input already has", async () => {
    assert.equal(
      await rewrite("[{}, { }]"),
      '[\n{"llm_response":"ok 0"},\n{"llm_response":"ok 1" }\n]\n',
    );
    assert.equal(
      await rewrite(
        '[{"id":1,"llm_response":"old","z":[1]}, {"llm\\u005fresponse": {"x": 1}, "a": 2}]',
      ),
      '[\n{"id":1,"llm_response":"ok 0","z":[1]},\n{"llm\\u005fresponse": "ok 1", "a": 2}\n]\n',
    );
  });

  it("writes added values as JSON, null included", async () => {
    const { layout, rows } = await read('[{"a":1}]');
    const output = await writeText(
      jsonFormat,
      layout,
      rows,
      ["s", "n", "b", "z"],
      () => ({ s: 'q"\n', n: 1.5, b: false, z: null }),
    );
    assert.equal(output, '[\n{"a":1,"s":"q\\"\\n","n":1.5,"b":false,"z":null}\n]\n');
  });

  it("is not confused by brackets, commas and escapes inside strings", async () => {
    const input = '[{"s": "\\"]},[{\\\\", "t": "\\u005d"} ,{"u":"}"}]';
    for (const size of [1, 2, 64]) {
      const { rows } = await read(input, size);
      assert.deepEqual(rows.map((row) => row.fields), [{ s: '"]},[{\\', t: "]" }, { u: "}" }]);
    }
  });

  it("reads an empty array or an empty file as no rows", async () => {
    assert.equal((await read("[]")).rows.length, 0);
    assert.equal((await read(" \n\t\r\n")).rows.length, 0);
    assert.equal(await rewrite("[ ]"), "[\n]\n");
  });

  it("reports each element's line", async () => {
    const { rows } = await read('\n[\n  {"a": 1},\n\n  {\n    "a": 2\n  }, {"a": 3}\n]');
    assert.deepEqual(rows.map((row: DatasetRow) => [row.index, row.line]), [[0, 3], [1, 5], [
      2,
      7,
    ]]);
  });

  it("refuses a top level that is not an array", async () => {
    await rejects(
      '\n  {"a": 1}',
      /^data\.json:2:3: the file must be a JSON array of objects .*\.jsonl/,
    );
    await rejects('"text"', /^data\.json:1:1: the file must be a JSON array/);
  });

  it("refuses elements that are not objects, naming the line and element", async () => {
    await rejects(
      '[\n{"a": 1},\n"text"\n]',
      /^data\.json:3: array element \[1\]: expected a JSON object .*got a string/,
    );
    await rejects(
      "[\n[1, 2]]",
      /^data\.json:2: array element \[0\]: expected a JSON object .*got an array/,
    );
    await rejects("[null]", /^data\.json:1: array element \[0\]: .*got null/);
  });

  it("refuses invalid JSON, naming the line and element", async () => {
    await rejects(
      '[\n{"a": 1},\n{"a": }\n]',
      /^data\.json:3: array element \[1\]: invalid JSON \(/,
    );
    await rejects(
      '[{"a": 1},]',
      /^data\.json:1:11: expected an array element after ',', found "]"/,
    );
    await rejects("[,]", /^data\.json:1:2: expected an array element after '\['/);
    await rejects(
      '[{"a": 1} {"b": 2}]',
      /^data\.json:1:11: expected ',' or '\]' after array element \[0\], found "\{"/,
    );
    await rejects(
      '[{"a": 1}}]',
      /^data\.json:1:10: expected ',' or '\]' after array element \[0\], found "\}"/,
    );
    await rejects(
      '[{"a": 1}] x',
      /^data\.json:1:12: the array is already closed, found "x"/,
    );
    await rejects('[{"a": 1}', /^data\.json:1: unexpected end of file: the array is not closed/);
    await rejects('[{"a": "never closed}]\n', /^data\.json:2: unexpected end of file/);
  });

  it("reports an element's own error before a fault after it, however the input is cut", async () => {
    // The splitter used to look past a bad element to the end of its chunk first.
    for (const chunkSize of [undefined, 1, 4]) {
      await assertDataError(
        readText(jsonFormat, '[{"a": 1}, {]\nx', { path: "data.json", chunkSize }),
        "data.json",
        /^data\.json:1: array element \[1\]: invalid JSON \(/,
      );
    }
  });

  it("reads strings with escapes cut anywhere", async () => {
    const text = '[{"a": "x\\\\\\"\\u00e9\\\\", "b\\"": "]}\\\\"}, {"c": "\\\\"}]';
    const expected = JSON.parse(text);
    for (const chunkSize of [1, 2, 3, 5, 1024]) {
      const { rows } = await read(text, chunkSize);
      assert.deepEqual(rows.map((row: DatasetRow) => row.fields), expected);
    }
  });

  it("refuses options", async () => {
    await assert.rejects(
      readText(jsonFormat, "[]", { path: "data.json", options: { delimiter: ";" } }),
      {
        name: "LoomUsageError",
        message: /^data\.json: unknown json option "delimiter" .*takes no options/,
      },
    );
  });

  it("writes rows it did not read from their fields", async () => {
    const rows: DatasetRow[] = [{ index: 0, line: 1, fields: { a: "x", b: [1] } }];
    assert.equal(
      await writeText(jsonFormat, {}, rows, ["r"], () => ({ r: "ok" })),
      '[\n{"a":"x","b":[1],"r":"ok"}\n]\n',
    );
  });
});
