/**
 * OpenAI's reasoning models (o1/o3/o4-mini/gpt-5) against the emulator: the parameters they
 * refuse (refused by the emulator as the API does, and by Loom before any request, in sync and
 * batch mode), and reasoning tokens (counted in the output, able to use the whole max_tokens).
 */
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { parse } from "csv-parse/sync";
import OpenAI from "openai";
import { fetchJobs } from "../../../core/batch/jobs.ts";
import { LoomJobError } from "../../../core/base/errors.ts";
import { loadJob } from "../../../core/job/load.ts";
import { runJob } from "../../../core/commands/run.ts";
import { tempDir } from "../../../core/test-support/temp.ts";
import { useEmulator } from "../_shared/test-emulator.ts";
import { openaiBatchApi } from "./batch.ts";

const t = useEmulator({ provider: "openai", schedule: { advance: "instant" } });

const client = () => new OpenAI({ apiKey: t.emu.apiKey, baseURL: t.emu.baseURL, maxRetries: 0 });

/** A job file for the openai provider at the emulator; returns a loader and the output rows. */
function job(model: string, params: string, extra = "", rows = ["first prompt", "second prompt"]) {
  const dir = tempDir();
  const env = { LOOM_HOME: join(dir, "home"), OPENAI_API_KEY: t.emu.apiKey };
  writeFileSync(
    join(dir, "in.csv"),
    `id,text\n${rows.map((r, i) => `${i + 1},${r}`).join("\n")}\n`,
  );
  writeFileSync(
    join(dir, "job.yaml"),
    `dataset: { path: in.csv }\nprompt: { column: text }\nprovider: openai\n` +
      `provider_options: { base_url: "${t.emu.baseURL}" }\nmodel: ${model}\n` +
      `params: ${params}\noutput: { path: out.csv, with_usage: true, with_meta: true }\n${extra}`,
  );
  const run = async () =>
    runJob(await loadJob({ file: join(dir, "job.yaml"), cwd: dir }), {
      env,
      cwd: dir,
      force: true,
    });
  const output = () =>
    parse(readFileSync(join(dir, "out.csv")), { columns: true }) as Record<string, string>[];
  return { run, output, opts: { env, cwd: dir } };
}

describe("reasoning models refuse sampling and log-probability parameters", () => {
  const refused: Array<[string, Record<string, unknown>]> = [
    ["stop", { stop: ["\n\n"] }],
    ["presence_penalty", { presence_penalty: 0.5 }],
    ["frequency_penalty", { frequency_penalty: 0.5 }],
    ["logprobs", { logprobs: true, top_logprobs: 2 }],
    ["logit_bias", { logit_bias: { "50256": -100 } }],
  ];

  it("the emulator answers each with the API's 400 unsupported_parameter, through the SDK", async () => {
    for (const model of ["o4-mini", "o3", "gpt-5-mini"]) {
      for (const [param, extra] of refused) {
        await assert.rejects(
          client().chat.completions.create({
            model,
            messages: [{ role: "user", content: "hi" }],
            ...extra,
          }),
          (e: unknown) => {
            assert.ok(e instanceof OpenAI.BadRequestError, `${model} ${param}`);
            assert.equal(e.code, "unsupported_parameter");
            assert.equal(e.param, param);
            assert.equal(
              (e.error as { message: string }).message,
              `Unsupported parameter: '${param}' is not supported with this model.`,
            );
            return true;
          },
        );
      }
    }
    const ok = await client().chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "hi" }],
      stop: ["\n\n"],
      presence_penalty: 0.5,
      frequency_penalty: 0.5,
      logprobs: true,
      top_logprobs: 2,
      logit_bias: { "50256": -100 },
    });
    assert.equal(ok.choices[0].message.content, "[gpt-4o-mini] hi", "other models take them");
  });

  for (const mode of ["sync", "batch"]) {
    it(`Loom refuses them before any request in ${mode} mode, placed in the job file`, async () => {
      const { run } = job(
        "o4-mini",
        "{ stop: END, presence_penalty: 0.5, frequency_penalty: 0.1, logprobs: true, top_logprobs: 2, logit_bias: { '1': 5 } }",
        `mode: ${mode}\n`,
      );
      await assert.rejects(run, (e: unknown) => {
        assert.ok(e instanceof LoomJobError);
        assert.deepEqual(e.issues.map((i) => i.path), [
          "params.stop",
          "params.presence_penalty",
          "params.frequency_penalty",
          "params.logprobs",
          "params.top_logprobs",
          "params.logit_bias",
        ]);
        assert.ok(e.issues.every((i) => /job\.yaml:\d+:\d+/.test(i.where)));
        assert.match(e.issues[0].message, /o4-mini is a reasoning model and does not support stop/);
        return true;
      });
      assert.equal(
        t.emu.log.entries.length,
        0,
        "no request of any kind: no file, no batch, no completion",
      );
    });
  }
});

describe("reasoning tokens", () => {
  it("the emulator spends 16 a prompt word, in completion_tokens and against the cap", async () => {
    const messages = [{ role: "user" as const, content: "first prompt" }];
    const full = await client().chat.completions.create({
      model: "o4-mini",
      messages,
      max_completion_tokens: 100,
    });
    assert.equal(full.choices[0].message.content, "[o4-mini] first prompt");
    assert.deepEqual([
      full.usage?.completion_tokens,
      full.usage?.completion_tokens_details?.reasoning_tokens,
    ], [35, 32]);
    const spent = await client().chat.completions.create({
      model: "o4-mini",
      messages,
      max_completion_tokens: 20,
    });
    assert.deepEqual([spent.choices[0].message.content, spent.choices[0].finish_reason], [
      "",
      "length",
    ]);
    assert.deepEqual([
      spent.usage?.completion_tokens,
      spent.usage?.completion_tokens_details?.reasoning_tokens,
    ], [20, 20]);
    const plain = await client().chat.completions.create({ model: "gpt-4o-mini", messages });
    assert.equal(plain.usage?.completion_tokens_details?.reasoning_tokens, 0);
    const response = await client().responses.create({
      model: "gpt-5-mini",
      input: "first prompt",
      max_output_tokens: 100,
    });
    assert.deepEqual([
      response.usage?.output_tokens,
      response.usage?.output_tokens_details.reasoning_tokens,
      response.output_text,
    ], [35, 32, "[gpt-5-mini] first prompt"]);
    assert.deepEqual(response.output.map((item) => item.type), ["reasoning", "message"]);
    const capped = await client().responses.create({
      model: "gpt-5-mini",
      input: "first prompt",
      max_output_tokens: 16,
    });
    assert.deepEqual([
      capped.status,
      capped.incomplete_details?.reason,
      capped.output_text,
      capped.usage?.output_tokens_details.reasoning_tokens,
    ], ["incomplete", "max_output_tokens", "", 16]);
  });

  it("a run reports them in llm_reasoning_tokens, within llm_output_tokens, with the answering model", async () => {
    const { run, output } = job("gpt-5-mini", "{ max_tokens: 200 }", "mode: sync\n");
    const summary = await run();
    assert.deepEqual([summary.ok, summary.errors], [2, 0]);
    const rows = output();
    assert.deepEqual(
      rows.map((r) => [r.llm_response, r.llm_output_tokens, r.llm_reasoning_tokens, r.llm_model]),
      [["[gpt-5-mini] first prompt", "35", "32", "gpt-5-mini"], [
        "[gpt-5-mini] second prompt",
        "35",
        "32",
        "gpt-5-mini",
      ]],
    );
  });

  it("an answer emptied by reasoning at max_tokens is a row error saying to raise it, never cached", async () => {
    const { run, output } = job(
      "gpt-5-mini",
      "{ max_tokens: 20 }",
      "mode: sync\nsync: { cache: true }\n",
    );
    const first = await run();
    assert.deepEqual([first.ok, first.errors], [0, 2]);
    for (const row of output()) {
      assert.equal(row.llm_response, "");
      assert.match(row.llm_error, /max_tokens/);
      assert.deepEqual([row.llm_finish_reason, row.llm_output_tokens, row.llm_reasoning_tokens], [
        "length",
        "20",
        "20",
      ], "paid for: all of it reasoning");
    }
    assert.equal(t.emu.log.count("POST /v1/chat/completions"), 2);
    const again = await run();
    assert.equal(again.errors, 2);
    assert.equal(
      t.emu.log.count("POST /v1/chat/completions"),
      4,
      "nothing was cached: the rerun asks again",
    );
  });

  it("in batch mode too: the emptied answers become row errors when the batch is merged", async () => {
    const { run, output, opts } = job("o4-mini", "{ max_tokens: 20 }", "mode: batch\n", [
      "first prompt",
      "a much longer second prompt",
    ]);
    const submitted = await run();
    const [fetched] = await fetchJobs([submitted.job!.id], opts);
    assert.ok(!("error" in fetched));
    assert.deepEqual([fetched.summary?.ok, fetched.summary?.errors], [0, 2]);
    for (const row of output()) {
      assert.match(row.llm_error, /max_tokens/);
      assert.equal(row.llm_reasoning_tokens, "20");
    }
  });

  it("batch output lines carry them too", async () => {
    const api = openaiBatchApi(client(), { fileRetryDelaysMs: [1] });
    const request = (prompt: string, max: number) => ({
      model: "o4-mini",
      messages: [{ role: "user" as const, content: prompt }],
      params: { max_tokens: max },
    });
    const handle = await api.submit(
      [{ customId: "a", request: request("first prompt", 100) }, {
        customId: "b",
        request: request("first prompt", 20),
      }],
      { job: "j", shard: 0, name: "loom-j-0" },
    );
    assert.equal((await api.status(handle)).state, "completed");
    const got: Record<string, unknown> = {};
    for await (const o of api.results(handle, [])) got[o.customId] = "result" in o ? o.result : o;
    assert.deepEqual(got.a, {
      text: "[o4-mini] first prompt",
      finishReason: "stop",
      usage: { inputTokens: 2, outputTokens: 35, reasoningTokens: 32 },
      model: "o4-mini",
    });
    assert.deepEqual(got.b, {
      text: "",
      finishReason: "length",
      truncated: true,
      usage: { inputTokens: 2, outputTokens: 20, reasoningTokens: 20 },
      model: "o4-mini",
    });
  });
});

describe("a dated snapshot of a reasoning model (an emulator that takes any model id)", () => {
  const any = useEmulator({ provider: "openai", models: "any" });

  it("reasons and refuses like its model", async () => {
    const snapshot = new OpenAI({
      apiKey: any.emu.apiKey,
      baseURL: any.emu.baseURL,
      maxRetries: 0,
    });
    const messages = [{ role: "user" as const, content: "first prompt" }];
    const answer = await snapshot.chat.completions.create({
      model: "o4-mini-2025-04-16",
      messages,
    });
    assert.equal(answer.usage?.completion_tokens_details?.reasoning_tokens, 32);
    await assert.rejects(
      snapshot.chat.completions.create({ model: "o4-mini-2025-04-16", messages, stop: "x" }),
      (e: unknown) =>
        e instanceof OpenAI.BadRequestError && e.code === "unsupported_parameter" &&
        e.param === "stop",
    );
    const other = await snapshot.chat.completions.create({ model: "my-local-model", messages });
    assert.equal(
      other.usage?.completion_tokens_details?.reasoning_tokens,
      0,
      "an unknown id does not reason",
    );
  });
});
