/**
 * `llm_cost` and the run's reported cost, offline: echo answers with a cost in its usage (as
 * OpenRouter's `usage.cost`), through a sync run, its cached rerun and a batch merge, in CSV, JSON
 * and JSONL.
 */
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { parse } from "csv-parse/sync";
import { pricedRegistry, TOKENS_A_DOLLAR } from "../test-support/priced-echo.ts";
import { loadJob } from "../job/load.ts";
import { runJob } from "../commands/run.ts";
import { tempDir } from "../test-support/temp.ts";

/** Prompts: the 1st and 4th are the same request; the 3rd fails (echo's `fail_on`). */
const PROMPTS = [
  "a short one",
  "a somewhat longer prompt to answer",
  "this one is BAD",
  "a short one",
];

function setup(ext: "csv" | "json" | "jsonl") {
  const dir = tempDir();
  const input = join(dir, `in.${ext}`);
  const rows = PROMPTS.map((text, i) => ({ id: String(i + 1), text }));
  writeFileSync(
    input,
    ext === "csv"
      ? `id,text\n${rows.map((r) => `${r.id},${r.text}`).join("\n")}\n`
      : ext === "json"
      ? JSON.stringify(rows)
      : rows.map((r) => JSON.stringify(r)).join("\n") + "\n",
  );
  const calls = { n: 0 };
  const registry = pricedRegistry({ calls });
  const env = { LOOM_HOME: join(dir, "home") };
  /** Runs the job in `mode` into `out` (batch: waits for the batches and merges). */
  const run = async (mode: "sync" | "batch", out: string) => {
    writeFileSync(
      join(dir, "job.yaml"),
      `dataset: { path: in.${ext} }\nprompt: { column: text }\nprovider: priced\n` +
        `provider_options: { fail_on: BAD }\nmodel: m\nmode: ${mode}\n` +
        `output: { path: ${out}, with_usage: true }\n`,
    );
    const job = await loadJob({ file: join(dir, "job.yaml"), cwd: dir });
    return runJob(job, { env, cwd: dir, registry, wait: true, pollMs: 1 });
  };
  const text = (out: string) => readFileSync(join(dir, out), "utf8");
  return { run, text, calls };
}

/** The cost echo's answer to `prompt` reports: its output tokens (4 characters a token) priced. */
const costOf = (prompt: string) => Math.ceil(prompt.length / 4) / TOKENS_A_DOLLAR;

describe("llm_cost", () => {
  it("CSV: each row's reported cost in plain decimals after the token columns; the same from the cache and from a batch", async () => {
    const t = setup("csv");
    const first = await t.run("sync", "sync.csv");
    const csv = t.text("sync.csv");
    assert.equal(
      csv.split("\n")[0],
      "id,text,llm_response,llm_error,llm_finish_reason,llm_input_tokens,llm_output_tokens,llm_reasoning_tokens,llm_cost",
    );
    const rows = parse(csv, { columns: true }) as Record<string, string>[];
    assert.deepEqual(rows.map((r) => r.llm_cost), [
      "0.0000003",
      "0.0000009",
      "",
      "0.0000003",
    ], "a failed row has none");
    assert.ok(!/e-/.test(csv), "no exponent");
    assert.deepEqual(rows.map((r) => Number(r.llm_cost)), [
      costOf(PROMPTS[0]),
      costOf(PROMPTS[1]),
      0,
      costOf(PROMPTS[3]),
    ]);
    // Rows 1 and 4 sent the same request at once: one call, counted once.
    assert.equal(t.calls.n, 3, "two answered calls and one that failed");
    assert.equal(first.cost, Math.round((costOf(PROMPTS[0]) + costOf(PROMPTS[1])) * 1e10) / 1e10);

    const again = await t.run("sync", "cached.csv");
    assert.deepEqual([again.cached, again.ok], [3, 0]);
    assert.equal(t.calls.n, 4, "only the failed row is sent again");
    assert.equal(again.cost, undefined, "nothing was paid for in this run");
    assert.equal(t.text("cached.csv"), csv, "the cached rows keep their cost");

    const merged = await t.run("batch", "batch.csv");
    assert.deepEqual([merged.ok, merged.errors], [3, 1]);
    assert.equal(t.text("batch.csv"), csv, "a batch merge writes the same columns");
    assert.equal(
      merged.cost,
      Math.round((2 * costOf(PROMPTS[0]) + costOf(PROMPTS[1])) * 1e10) / 1e10,
      "every answer of the batches, each its own request",
    );
  });

  for (const ext of ["json", "jsonl"] as const) {
    it(`${ext.toUpperCase()}: a number, null where none was reported; the same from a batch`, async () => {
      const t = setup(ext);
      await t.run("sync", `sync.${ext}`);
      const text = t.text(`sync.${ext}`);
      const rows = (ext === "json"
        ? JSON.parse(text)
        : text.trim().split("\n").map((l) =>
          JSON.parse(l)
        )) as Record<string, unknown>[];
      assert.deepEqual(rows.map((r) => r.llm_cost), [
        costOf(PROMPTS[0]),
        costOf(PROMPTS[1]),
        null,
        costOf(PROMPTS[3]),
      ]);
      assert.deepEqual(Object.keys(rows[0]).slice(-2), ["llm_reasoning_tokens", "llm_cost"]);
      await t.run("batch", `batch.${ext}`);
      assert.equal(t.text(`batch.${ext}`), text);
    });
  }

  it("is empty for a provider that reports no cost", async () => {
    const dir = tempDir();
    writeFileSync(join(dir, "in.csv"), "text\nhello\n");
    writeFileSync(
      join(dir, "job.yaml"),
      "dataset: { path: in.csv }\nprompt: { column: text }\nprovider: echo\nmodel: m\nmode: sync\n" +
        "output: { path: out.csv, with_usage: true }\n",
    );
    const summary = await runJob(await loadJob({ file: join(dir, "job.yaml"), cwd: dir }), {
      env: { LOOM_HOME: join(dir, "home") },
      cwd: dir,
    });
    assert.equal(summary.cost, undefined);
    assert.equal(
      readFileSync(join(dir, "out.csv"), "utf8").split("\n")[1],
      "hello,hello,,stop,2,2,,",
    );
  });
});
