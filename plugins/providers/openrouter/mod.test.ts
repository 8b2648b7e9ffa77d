/** The openrouter provider through the openai SDK against the loopback emulator. */
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { parse } from "csv-parse/sync";
import { LoomProviderError } from "../../../core/base/errors.ts";
import { loadJob } from "../../../core/job/load.ts";
import { runJob } from "../../../core/commands/run.ts";
import { cancelJob, fetchJobs } from "../../../core/batch/jobs.ts";
import { tempDir } from "../../../core/test-support/temp.ts";
import { FAST_RETRY, useEmulator } from "../_shared/test-emulator.ts";

const t = useEmulator({ provider: "openrouter" });

async function job(
  mode = "sync",
  more: { cache?: boolean; model?: string; meta?: boolean; extra?: string } = {},
) {
  const dir = tempDir();
  writeFileSync(join(dir, "in.csv"), "id,prompt\n1,hello\n2,there\n");
  writeFileSync(
    join(dir, "job.yaml"),
    `dataset: { path: in.csv }\nprovider: openrouter\nprovider_options: { base_url: "${t.emu.baseURL}" }\n` +
      `model: ${
        more.model ?? "openai/gpt-4o-mini"
      }\nmode: ${mode}\noutput: { path: out.csv, with_meta: ${
        more.meta ?? false
      } }\nsync: { cache: ${more.cache ?? false} }\n` +
      (more.extra ?? ""),
  );
  const env = { LOOM_HOME: join(dir, "home"), OPENROUTER_API_KEY: t.emu.apiKey };
  return { dir, env, loaded: await loadJob({ file: join(dir, "job.yaml"), cwd: dir }) };
}

describe("openrouter provider against the emulator", () => {
  it("answers rows, and retries an error that arrives inside an HTTP 200", async () => {
    t.emu.faults.add({
      match: { promptContains: "hello", first: 1 },
      action: { kind: "error-in-200", code: 502 },
    });
    const { dir, env, loaded } = await job();
    const summary = await runJob(loaded, { env, cwd: dir, retry: FAST_RETRY });
    assert.deepEqual([summary.ok, summary.errors], [2, 0]);
    assert.match(readFileSync(join(dir, "out.csv"), "utf8"), /\[openai\/gpt-4o-mini\] hello/);
    assert.equal(t.emu.log.count("POST /api/v1/chat/completions"), 3);
  });

  it("runs in batch mode; where cancellation is off (403), loom cancel says so and the job goes on", async () => {
    // OpenRouter enables batch cancellation per organization; "other organizations get 403".
    t.emu.faults.add({
      match: { path: "/cancel" },
      action: {
        kind: "status",
        status: 403,
        message: "Batch cancellation is not enabled for this organization",
      },
    });
    const { dir, env, loaded } = await job("batch");
    const summary = await runJob(loaded, { env, cwd: dir });
    assert.ok(summary.job, "a batch job was submitted");
    assert.equal(t.emu.log.count("POST /api/v1/batches"), 1);
    const { record, failed } = await cancelJob(summary.job.id, {
      env,
      cwd: dir,
      retry: FAST_RETRY,
    });
    assert.equal(failed.length, 1);
    assert.match(
      failed[0].error,
      /^openrouter: OpenRouter did not cancel batch batch_\w+ \(HTTP 403/,
    );
    assert.match(failed[0].error, /per organization.*`loom fetch` once it has ended/);
    assert.notEqual(record.shards[0].state, "cancelled");
    const [fetched] = await fetchJobs([summary.job.id], { env, cwd: dir, wait: true, pollMs: 1 });
    assert.ok(!("error" in fetched) && fetched.summary?.ok === 2, JSON.stringify(fetched));
    assert.deepEqual(rows(dir).map((r) => r.llm_response), [
      "[openai/gpt-4o-mini] hello",
      "[openai/gpt-4o-mini] there",
    ]);
  });

  it("stops the run when credits run out (402)", async () => {
    t.emu.faults.add({ action: { kind: "status", status: 402, message: "Insufficient credits" } });
    const { dir, env, loaded } = await job();
    await assert.rejects(
      () => runJob(loaded, { env, cwd: dir, retry: FAST_RETRY }),
      (e: unknown) => e instanceof LoomProviderError && e.fatal && e.status === 402,
    );
  });
});

/** The rows of a written CSV. */
function rows(dir: string): Array<Record<string, string>> {
  return parse(readFileSync(join(dir, "out.csv"), "utf8"), { columns: true });
}

describe("openrouter errors inside a choice (HTTP 200, finish_reason error)", () => {
  it("makes the row an error, never its partial text an answer, and caches nothing: a rerun asks again", async () => {
    t.emu.faults.add({
      match: { promptContains: "hello" },
      action: { kind: "error-in-choice", code: 400, message: "Upstream rejected the output" },
    });
    const { dir, env, loaded } = await job("sync", { cache: true });
    const first = await runJob(loaded, { env, cwd: dir, retry: FAST_RETRY });
    assert.deepEqual([first.ok, first.errors], [1, 1]);
    const [hello] = rows(dir);
    assert.equal(hello.llm_response, "");
    assert.match(hello.llm_error, /openrouter: 400 Upstream rejected the output/);
    assert.equal(
      t.emu.log.count("POST /api/v1/chat/completions"),
      2,
      "a 400 in the choice concerns the row: not retried",
    );
    t.emu.faults.clear();
    t.emu.log.clear();
    const again = await runJob(loaded, { env, cwd: dir, retry: FAST_RETRY, force: true });
    assert.deepEqual(
      [again.ok, again.cached, again.errors],
      [1, 1, 0],
      "the failed row was asked again, the answered one came from the cache",
    );
    assert.equal(t.emu.log.count("POST /api/v1/chat/completions"), 1);
    assert.equal(rows(dir)[0].llm_response, "[openai/gpt-4o-mini] hello");
  });

  it("retries a retryable code (502, 429) and then answers", async () => {
    t.emu.faults.add({
      match: { promptContains: "hello", first: 1 },
      action: { kind: "error-in-choice", code: 502 },
    });
    t.emu.faults.add({
      match: { promptContains: "there", first: 1 },
      action: { kind: "error-in-choice", code: 429 },
    });
    const { dir, env, loaded } = await job();
    const summary = await runJob(loaded, { env, cwd: dir, retry: FAST_RETRY });
    assert.deepEqual([summary.ok, summary.errors], [2, 0]);
    assert.deepEqual(rows(dir).map((r) => r.llm_response), [
      "[openai/gpt-4o-mini] hello",
      "[openai/gpt-4o-mini] there",
    ]);
    assert.equal(t.emu.log.count("POST /api/v1/chat/completions"), 4);
  });

  it("stops the run when the choice says the credits ran out (402)", async () => {
    t.emu.faults.add({
      action: { kind: "error-in-choice", code: 402, message: "Insufficient credits" },
    });
    const { dir, env, loaded } = await job();
    await assert.rejects(
      () => runJob(loaded, { env, cwd: dir, retry: FAST_RETRY }),
      (e: unknown) => e instanceof LoomProviderError && e.fatal && e.status === 402,
    );
  });
});

describe("openrouter requests and fallbacks", () => {
  it("sends the token cap as max_tokens, the field OpenRouter documents", async () => {
    const { dir, env, loaded } = await job("sync", { extra: "params: { max_tokens: 1 }\n" });
    await runJob(loaded, { env, cwd: dir, retry: FAST_RETRY });
    const body = t.emu.log.entries[0].body as Record<string, unknown>;
    assert.deepEqual([body.max_tokens, body.max_completion_tokens], [1, undefined]);
    assert.deepEqual(rows(dir).map((r) => r.llm_response), [
      "[openai/gpt-4o-mini]",
      "[openai/gpt-4o-mini]",
    ]);
  });

  it("with with_meta, names in llm_model the fallback model that answered when the job's model was down", async () => {
    t.emu.faults.add({ match: { promptContains: "hello" }, action: { kind: "model-down" } });
    const { dir, env, loaded } = await job("sync", {
      model: "openai/gpt-4o",
      meta: true,
      // OpenRouter's fallback list, passed through as a request field.
      extra: "params: { models: [anthropic/claude-haiku-4.5] }\n",
    });
    const summary = await runJob(loaded, { env, cwd: dir, retry: FAST_RETRY });
    assert.deepEqual([summary.ok, summary.errors], [2, 0]);
    assert.deepEqual(
      rows(dir).map((r) => [r.llm_response, r.llm_model]),
      [
        ["[anthropic/claude-haiku-4.5] hello", "anthropic/claude-haiku-4.5"],
        ["[openai/gpt-4o] there", "openai/gpt-4o"],
      ],
    );
  });
});
