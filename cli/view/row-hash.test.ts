/**
 * The per-row hashes the row index keeps for compare: equal inputs and answers hash alike across
 * formats, a structured answer's field columns are not input, and different values differ.
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { Registry } from "../../core/plugins/registry.ts";
import { tempDir } from "../../core/test-support/temp.ts";
import { hash32, RowHasher } from "./row-hash.ts";
import { RowIndexes } from "./row-index.ts";

const dir = tempDir("loom-view-hash-");
const indexes = new RowIndexes(tempDir("loom-view-hash-spill-"));
after(() => indexes.close());
const registry = new Registry();

async function digestsOf(name: string, content: string) {
  const path = join(dir, name);
  writeFileSync(path, content);
  const { format } = await registry.formatForPath(path, { env: {}, home: dir });
  const index = await indexes.of(path, format);
  await index.finished;
  return index.digests;
}

describe("the row index's hashes", () => {
  it("hash32 is FNV-1a: known values, and one letter changes it", () => {
    assert.equal(hash32(""), 0x811c9dc5);
    assert.equal(hash32("a"), 0xe40c292c);
    assert.notEqual(hash32("answer one"), hash32("answer onf"));
  });

  it("a CSV and a JSONL of the same rows: same inputs, same answers where they are the same", async () => {
    const csv = await digestsOf(
      "a.csv",
      "id,text,llm_response,llm_error\n1,hi,hello,\n2,yo,,boom\n3,hey,there,\n",
    );
    const jsonl = await digestsOf(
      "b.jsonl",
      [
        { id: 1, text: "hi", llm_response: "hello", llm_error: null },
        { id: 2, text: "yo", llm_response: "what", llm_error: null },
        { id: 3, text: "hey!", llm_response: "there", llm_error: null },
      ].map((r) => JSON.stringify(r)).join("\n") + "\n",
    );
    assert.deepEqual([csv.rows, csv.done, csv.status], [3, true, [0, 1, 0]]);
    assert.deepEqual(jsonl.status, [0, 0, 0]);
    assert.equal(csv.input[0], jsonl.input[0], "CSV's id \"1\" is JSON's 1");
    assert.equal(csv.input[1], jsonl.input[1]);
    assert.notEqual(csv.input[2], jsonl.input[2], "hey and hey! are other inputs");
    assert.equal(csv.answer[0], jsonl.answer[0]);
    assert.notEqual(csv.answer[1], jsonl.answer[1]);
    assert.equal(csv.answer[2], jsonl.answer[2]);
    assert.equal(csv.answer[1], hash32(""), "a failed row has no answer");
    assert.deepEqual(csv.columns, ["id", "text", "llm_response", "llm_error"]);
  });

  it("a structured answer's field columns are not input: two models' CSVs line up", async () => {
    const head = "id,text,score,label,llm_response,llm_error\n";
    const a = await digestsOf(
      "s1.csv",
      head + '1,x,,,,refused\n2,y,3,good,"{""score"":3,""label"":""good""}",\n',
    );
    const b = await digestsOf(
      "s2.csv",
      head +
        '1,x,5,bad,"{""score"":5,""label"":""bad""}",\n2,y,4,fine,"{""score"":4,""label"":""fine""}",\n',
    );
    assert.deepEqual(a.input, b.input);
    assert.notEqual(a.answer[1], b.answer[1]);
  });

  it("RowHasher: a JSON-looking answer whose keys are no columns leaves every column input", () => {
    const hasher = new RowHasher();
    const one = hasher.of({ id: "1", note: "n", llm_response: '{"note":1,"other":2}' });
    const two = hasher.of({ id: "1", note: "m", llm_response: '{"note":1,"other":2}' });
    assert.notEqual(one.input, two.input);
    assert.equal(one.answer, two.answer);
  });

  it("rows() reads given positions in file order and skips those past the end; search finds", async () => {
    const path = join(dir, "c.csv");
    writeFileSync(path, "id,text,llm_response\n1,a,alpha\n2,b,bravo\n3,c,charlie\n");
    const { format } = await registry.formatForPath(path, { env: {}, home: dir });
    const index = await indexes.of(path, format);
    const rows = await index.rows([2, 0, 7]);
    assert.deepEqual(rows.map((r) => [r.n, r.fields.llm_response]), [[0, "alpha"], [2, "charlie"]]);
    assert.deepEqual(await index.search("BRAVO"), [1]);
  });
});
