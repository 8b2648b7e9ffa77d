/** Structured output through a whole run, with the offline echo provider (its answer is the prompt). */
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { parse } from "csv-parse/sync";
import { LoomJobError } from "../base/errors.ts";
import { loadJob } from "../job/load.ts";
import { tempDir } from "../test-support/temp.ts";
import { runJob } from "../commands/run.ts";

const SCHEMA = JSON.stringify({
  type: "object",
  properties: {
    label: { type: "string" },
    score: { type: "integer", maximum: 5 },
    tags: { type: "array", items: { type: "string" } },
  },
  required: ["label", "score"],
});

/** Each prompt is the answer echo gives: good JSON, JSON the schema refuses, and no JSON. */
const PROMPTS = [
  '{"label":"fine","score":4,"tags":["a","b"]}',
  '{"label":"too high","score":9}',
  "not json at all",
  '{"label":"plain","score":1}',
];

function setup(output: string, extra = "") {
  const dir = tempDir();
  writeFileSync(
    join(dir, "in.jsonl"),
    PROMPTS.map((p, i) => JSON.stringify({ id: i + 1, prompt: p })).join("\n") + "\n",
  );
  writeFileSync(
    join(dir, "in.csv"),
    "id,prompt\n" + PROMPTS.map((p, i) => `${i + 1},"${p.replaceAll('"', '""')}"`).join("\n") +
      "\n",
  );
  writeFileSync(join(dir, "schema.json"), SCHEMA);
  const input = output.endsWith(".csv") ? "in.csv" : "in.jsonl";
  writeFileSync(
    join(dir, "job.yaml"),
    `dataset: { path: ${input} }\nprovider: echo\nmodel: m\nmode: sync\nschema: schema.json\noutput: { path: ${output}, with_usage: true }\n${extra}`,
  );
  const run = async () =>
    runJob(await loadJob({ file: join(dir, "job.yaml"), cwd: dir }), {
      env: { LOOM_HOME: join(dir, "home") },
      force: true,
    });
  return { dir, run };
}

describe("structured output", () => {
  it("CSV: the schema's fields become columns; bad answers are row errors that keep the raw text", async () => {
    const t = setup("out.csv");
    const summary = await t.run();
    assert.deepEqual([summary.ok, summary.errors], [2, 2]);
    const text = readFileSync(join(t.dir, "out.csv"), "utf8");
    assert.equal(
      text.split("\n")[0],
      "id,prompt,label,score,tags,llm_response,llm_error,llm_finish_reason,llm_input_tokens,llm_output_tokens,llm_reasoning_tokens,llm_cost",
    );
    const rows = parse(text, { columns: true }) as Record<string, string>[];
    assert.deepEqual(rows.map((r) => [r.id, r.label, r.score, r.tags]), [
      ["1", "fine", "4", '["a","b"]'],
      ["2", "", "", ""],
      ["3", "", "", ""],
      ["4", "plain", "1", ""],
    ]);
    assert.deepEqual(
      rows.map((r) => r.llm_response),
      PROMPTS,
      "llm_response keeps what the model said",
    );
    assert.equal(rows[0].llm_error, "");
    assert.match(rows[1].llm_error, /does not match the schema: \/score must be <= 5/);
    assert.match(rows[2].llm_error, /not valid JSON/);
    assert.equal(
      rows[1].llm_finish_reason,
      "stop",
      "usage of a rejected answer is kept: it was paid for",
    );
  });

  it("JSONL: llm_response is the parsed object; a rejected answer keeps its text", async () => {
    const t = setup("out.jsonl");
    await t.run();
    const rows = readFileSync(join(t.dir, "out.jsonl"), "utf8").trim().split("\n").map((l) =>
      JSON.parse(l)
    );
    assert.deepEqual(rows[0].llm_response, { label: "fine", score: 4, tags: ["a", "b"] });
    assert.equal(rows[0].llm_error, null);
    assert.equal(rows[1].llm_response, PROMPTS[1]);
    assert.match(rows[1].llm_error, /score must be <= 5/);
    assert.equal(
      Object.keys(rows[0]).includes("label"),
      false,
      "no field columns in a nested format",
    );
  });

  it("caches only accepted answers, so a rerun asks again for the rejected ones", async () => {
    const t = setup("out.jsonl");
    await t.run();
    const again = await t.run();
    assert.deepEqual([again.ok, again.cached, again.errors], [0, 2, 2]);
  });

  it("refuses a schema whose fields collide with input columns, at the schema's line", async () => {
    const t = setup("out.csv");
    writeFileSync(
      join(t.dir, "schema.json"),
      JSON.stringify({ type: "object", properties: { prompt: { type: "string" } } }),
    );
    await assert.rejects(t.run, (e: unknown) => {
      assert.ok(e instanceof LoomJobError);
      assert.match(e.issues[0].where, /job\.yaml:5:9$/);
      assert.match(e.issues[0].message, /"prompt" would become column/);
      return true;
    });
  });
});
