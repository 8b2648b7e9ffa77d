/**
 * The row index of `loom view`: read through Loom's formats (CSV, JSON, JSONL, gzip), a corrupt
 * row shown as such, the rows before a place the format cannot read kept, and a file that changed
 * indexed again.
 */
import assert from "node:assert/strict";
import { utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { after, describe, it } from "node:test";
import { Registry } from "../../core/plugins/registry.ts";
import { tempDir } from "../../core/test-support/temp.ts";
import { RowIndexes } from "./row-index.ts";

const dir = tempDir("loom-view-index-");
const indexes = new RowIndexes(tempDir("loom-view-spill-"));
after(() => indexes.close());
const registry = new Registry();

async function indexOf(name: string, content: string | Uint8Array) {
  const path = join(dir, name);
  writeFileSync(path, content);
  const { format } = await registry.formatForPath(path, { env: {}, home: dir });
  const index = await indexes.of(path, format);
  await index.finished;
  return index;
}

const line = (fields: Record<string, unknown>) => JSON.stringify(fields) + "\n";

describe("the row index", () => {
  it("reads gzipped JSONL; a line that is no JSON is one corrupt row, the others read", async () => {
    const text = line({ id: 1, llm_response: { a: 1 }, llm_error: null }) +
      line({ id: 2, llm_response: null, llm_error: "refused" }) + '{"id": 3, "llm_resp\n' +
      line({ id: 4, llm_response: "x", llm_error: null }) + "[5]\n" + line({ id: 6 });
    const index = await indexOf("out.jsonl.gz", gzipSync(text));
    const page = await index.page({ offset: 0, limit: 10 });
    assert.deepEqual(page.rows.map((r) => [r.n, r.status, r.line, r.fields.id]), [
      [0, "ok", 1, 1],
      [1, "error", 2, 2],
      [2, "corrupt", 3, undefined],
      [3, "ok", 4, 4],
      [4, "corrupt", 5, undefined],
      [5, "ok", 6, 6],
    ]);
    assert.deepEqual(page.rows[0].fields.llm_response, { a: 1 }, "objects stay objects");
    assert.match(page.rows[2].problem!, /^line 3 cannot be read: invalid JSON/);
    assert.match(page.rows[4].problem!, /^line 5 cannot be read: expected a JSON object/);
    assert.equal(page.stopped, undefined);
    assert.deepEqual(page.counts, { ok: 3, error: 1, corrupt: 2 });
  });

  it("a structured answer's fields are named in first-met order; text answers and CSV add none", async () => {
    const index = await indexOf(
      "structured.jsonl",
      line({ id: 1, llm_response: { headline: "h", sentiment: "neutral" } }) +
        line({ id: 2, llm_response: "not json {", llm_error: "the answer is not valid JSON" }) +
        line({ id: 3, llm_response: { headline: "g", places: ["Oslo"], sentiment: "positive" } }) +
        line({ id: 4, llm_response: ["a list", "is not an object"] }),
    );
    const page = await index.page({ offset: 0, limit: 10 });
    assert.deepEqual(page.answerFields, ["headline", "sentiment", "places"]);
    const wide = await indexOf(
      "wide.jsonl",
      line({ llm_response: Object.fromEntries([...Array(60)].map((_, i) => [`f${i}`, i])) }),
    );
    assert.equal((await wide.page({ offset: 0, limit: 1 })).answerFields.length, 40);
    const csv = await indexOf("plain.csv", "id,llm_response\n1,hello\n");
    assert.deepEqual((await csv.page({ offset: 0, limit: 1 })).answerFields, []);
  });

  it("a CSV record the format refuses is a corrupt row; the header still reads the rest", async () => {
    const index = await indexOf(
      "broken.csv",
      'id,text,llm_error\n1,a,\n2,"b"x,\n3,c,\n4,"d\nstill d",oops\n',
    );
    const page = await index.page({ offset: 0, limit: 10 });
    assert.deepEqual(page.rows.map((r) => [r.status, r.line, r.fields.text]), [
      ["ok", 2, "a"],
      ["corrupt", 3, undefined],
      ["ok", 4, "c"],
      ["error", 5, "d\nstill d"],
    ]);
  });

  it("a gzip file cut short: the rows before stay, the end is one corrupt row", async () => {
    const whole = gzipSync(Array.from({ length: 5000 }, (_, i) => line({ id: i })).join(""));
    const index = await indexOf("cut.jsonl.gz", whole.subarray(0, whole.length - 200));
    const page = await index.page({ offset: 0, limit: 1, sort: "status", descending: true });
    assert.ok(index.indexed > 100);
    assert.equal(page.rows[0].status, "corrupt");
    assert.match(page.stopped!, /not a valid gzip file|cannot read it/);
  });

  it("a row whose Loom columns are not what Loom writes is corrupt, the others are not", async () => {
    const index = await indexOf(
      "out.csv",
      "id,llm_response,llm_error,llm_input_tokens,llm_output_tokens\n1,a,,3,4\n2,b,,x,4\n3,,no,,\n",
    );
    const page = await index.page({ offset: 0, limit: 10 });
    assert.deepEqual(page.rows.map((r) => [r.status, r.problem]), [
      ["ok", undefined],
      ["corrupt", "llm_input_tokens is not a number"],
      ["error", undefined],
    ]);
    assert.deepEqual(
      (await index.page({ offset: 0, limit: 10, failed: true })).rows.map((r) => r.n),
      [1, 2],
      "failed only: the failed and the corrupt rows",
    );
  });

  it("reads a JSON array; a row past the end is undefined", async () => {
    const index = await indexOf("out.json", '[{"id":1,"llm_error":null},{"id":2,"llm_error":"e"}]');
    assert.equal((await index.row(1))!.status, "error");
    assert.equal(await index.row(2), undefined);
  });

  it("a file that changed (size or mtime) is indexed again; the same one is kept", async () => {
    const first = await indexOf("again.jsonl", line({ id: 1 }));
    const path = join(dir, "again.jsonl");
    const { format } = await registry.formatForPath(path, { env: {}, home: dir });
    assert.equal(await indexes.of(path, format), first, "unchanged: the same index");
    writeFileSync(path, line({ id: 1 }) + line({ id: 2 }));
    const second = await indexes.of(path, format);
    assert.notEqual(second, first);
    await second.finished;
    assert.equal(second.indexed, 2);
    utimesSync(path, new Date(), new Date(Date.now() + 5000));
    assert.notEqual(await indexes.of(path, format), second, "a new mtime: indexed again");
  });

  it("a text search finds rows in any column, whatever the case, and pages through them", async () => {
    const rows = Array.from(
      { length: 120 },
      (_, i) => line({ id: i, text: i % 3 ? "plain" : "NeEdLe" }),
    );
    const index = await indexOf("search.jsonl", rows.join(""));
    const first = await index.page({ offset: 0, limit: 25, text: "needle" });
    assert.equal(first.matched, 40);
    assert.deepEqual(first.rows.slice(0, 3).map((r) => r.n), [0, 3, 6]);
    assert.equal((await index.page({ offset: 0, limit: 5, text: "text" })).matched, 0, "no names");
    assert.equal((await index.page({ offset: 0, limit: 5, text: "fields" })).matched, 0);
    const quoted = await indexOf("quoted.jsonl", line({ a: 'say "hi"\nthere' }) + line({ a: "x" }));
    assert.deepEqual(
      (await quoted.page({ offset: 0, limit: 5, text: '"HI"\nthe' })).rows.map((r) => r.n),
      [0],
    );
    const last = await index.page({ offset: 25, limit: 25, text: "needle" });
    assert.deepEqual([last.rows.length, last.rows.at(-1)!.n], [15, 117]);
  });

  it("a search matches values only: not a name, a null, a line number or a corrupt line's frame", async () => {
    const index = await indexOf(
      "frames.jsonl",
      line({ id: "a", note: null, llm_response: { headline: "Oslo rain" } }) +
        line({ id: "b", note: "nullable", llm_response: "plain" }) +
        "{broken\n" +
        line({ id: "c", note: "details on page 7", llm_response: "ok" }),
    );
    const found = async (text: string) =>
      (await index.page({ offset: 0, limit: 10, text })).rows.map((r) => r.n);
    assert.deepEqual(await found("oslo"), [0], "inside a structured answer");
    assert.deepEqual(await found("headline"), [0], "a structured answer's key is in its value");
    assert.deepEqual(await found("note"), [], "a column's name is no value");
    assert.deepEqual(await found("null"), [1], "a null shows as nothing");
    assert.deepEqual(await found("4"), [], "a line number is no value");
    assert.deepEqual(await found("7"), [3]);
    // Not the line's own key: the answer's "headline", and the corrupt row's problem.
    assert.deepEqual(await found("line"), [0, 2]);
    assert.deepEqual(await found("cannot be read"), [2]);
  });
});
