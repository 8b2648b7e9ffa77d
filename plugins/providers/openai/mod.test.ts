/** The openai provider through the official SDK against the loopback emulator, in sync mode. */
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { parse } from "csv-parse/sync";
import { LoomJobError, LoomProviderError } from "../../../core/base/errors.ts";
import { loadJob } from "../../../core/job/load.ts";
import { runJob } from "../../../core/commands/run.ts";
import { tempDir } from "../../../core/test-support/temp.ts";
import { FAST_RETRY, useEmulator } from "../_shared/test-emulator.ts";
import {
  chatCompletionBody,
  chatCompletionResult,
  chatParamProblems,
  isReasoningModel,
  responseFormat,
} from "./request.ts";

const t = useEmulator({ provider: "openai" });

/** Writes a dataset and a job for the openai provider pointed at the emulator. */
async function job(rows: string[], extra = "") {
  const dir = tempDir();
  writeFileSync(
    join(dir, "in.csv"),
    `id,text\n${rows.map((r, i) => `${i + 1},${r}`).join("\n")}\n`,
  );
  writeFileSync(
    join(dir, "job.yaml"),
    `dataset: { path: in.csv }\nprompt: { column: text, system: Be brief. }\nprovider: openai\n` +
      `provider_options: { base_url: "${t.emu.baseURL}" }\nmodel: gpt-4o-mini\nmode: sync\n` +
      `params: { temperature: 0, max_tokens: 50 }\noutput: { path: out.csv }\nsync: { workers: 2, cache: false }\n${extra}`,
  );
  return { dir, loaded: await loadJob({ file: join(dir, "job.yaml"), cwd: dir }) };
}

describe("openai provider (sync) against the emulator", () => {
  it("answers every row in place, through the SDK, with the shared request builder", async () => {
    const { dir, loaded } = await job(["first prompt", "second prompt", "third prompt"]);
    const summary = await runJob(loaded, {
      env: { LOOM_HOME: join(dir, "home"), OPENAI_API_KEY: t.emu.apiKey },
      cwd: dir,
    });
    assert.deepEqual([summary.ok, summary.errors], [3, 0]);
    const rows = parse(readFileSync(join(dir, "out.csv")), { columns: true }) as Record<
      string,
      string
    >[];
    assert.deepEqual(rows.map((r) => r.llm_response), [
      "[gpt-4o-mini] first prompt",
      "[gpt-4o-mini] second prompt",
      "[gpt-4o-mini] third prompt",
    ]);
    const bodies = t.emu.log.find("POST /v1/chat/completions").map((c) =>
      c.body as { messages: Array<{ content: string }> } & Record<string, unknown>
    );
    const sent = bodies.find((b) => b.messages.at(-1)?.content === "first prompt")!;
    assert.deepEqual(sent.messages, [{ role: "system", content: "Be brief." }, {
      role: "user",
      content: "first prompt",
    }]);
    assert.equal(sent.max_completion_tokens, 50);
    assert.equal(sent.max_tokens, undefined);
  });

  it("retries 429 and 5xx itself (the SDK's retries are off), honouring retry-after-ms", async () => {
    t.emu.faults.add({
      match: { first: 2 },
      action: { kind: "status", status: 429, retryAfterMs: 1 },
    });
    t.emu.faults.add({ match: { first: 3 }, action: { kind: "status", status: 503 } });
    const { dir, loaded } = await job(["only row"]);
    const summary = await runJob(loaded, {
      env: { LOOM_HOME: join(dir, "home"), OPENAI_API_KEY: t.emu.apiKey },
      cwd: dir,
      retry: FAST_RETRY,
    });
    assert.equal(summary.ok, 1);
    const calls = t.emu.log.find("POST /v1/chat/completions");
    assert.deepEqual(calls.map((c) => c.status), [429, 429, 503, 200]);
    assert.ok(calls.every((c) => c.retryCount === 0), "each attempt is Loom's, not the SDK's");
  });

  it("stops the whole run at once on a wrong key, saying so, without the key", async () => {
    const { dir, loaded } = await job(Array.from({ length: 20 }, (_, i) => `row ${i}`));
    await assert.rejects(
      () =>
        runJob(loaded, {
          env: { LOOM_HOME: join(dir, "home") },
          apiKey: "sk-wrong-key-123456",
          cwd: dir,
        }),
      (e: unknown) => {
        assert.ok(e instanceof LoomProviderError);
        assert.match(e.message, /401.*check the API key/);
        assert.ok(!e.message.includes("sk-wrong-key-123456"));
        return true;
      },
    );
    assert.ok(
      t.emu.log.count("POST /v1/chat/completions") <= 2,
      "no call per row after the first refusal",
    );
  });

  it("stops before any work when there is no key at all", async () => {
    const { dir, loaded } = await job(["a"]);
    await assert.rejects(
      () => runJob(loaded, { env: { LOOM_HOME: join(dir, "home") }, cwd: dir }),
      /no API key for openai: set OPENAI_API_KEY/,
    );
    assert.equal(t.emu.log.count("POST /v1/chat/completions"), 0);
  });

  it("builds the Chat Completions body from the neutral request", () => {
    assert.deepEqual(
      chatCompletionBody({
        model: "m",
        system: "s",
        messages: [{ role: "user", content: "u" }],
        params: { temperature: 0, max_tokens: 9, seed: 1 },
      }),
      {
        model: "m",
        messages: [{ role: "system", content: "s" }, { role: "user", content: "u" }],
        temperature: 0,
        seed: 1,
        max_completion_tokens: 9,
      },
    );
  });
  it("refuses, before any call, sampling parameters a reasoning model refuses", async () => {
    const { dir, loaded } = await job(["a"], "");
    const gpt5 = await loadJob({
      file: join(dir, "job.yaml"),
      cwd: dir,
      overrides: [{ path: ["model"], value: "gpt-5-mini", flag: "--model" }],
    });
    await assert.rejects(
      () =>
        runJob(gpt5, {
          env: { LOOM_HOME: join(dir, "home"), OPENAI_API_KEY: t.emu.apiKey },
          cwd: dir,
        }),
      (e: unknown) => {
        assert.ok(e instanceof LoomJobError);
        assert.deepEqual(e.issues.map((i) => i.path), ["params.temperature"]);
        assert.match(e.issues[0].where, /job\.yaml:\d+:\d+/);
        assert.match(e.issues[0].message, /gpt-5-mini is a reasoning model/);
        return true;
      },
    );
    assert.equal(t.emu.log.count("POST /v1/chat/completions"), 0);
    assert.ok(loaded.spec.model === "gpt-4o-mini");
  });

  it("knows OpenAI's reasoning models and the shared parameter rules", () => {
    assert.deepEqual(
      ["o1", "o3-mini", "o4-mini-2025-04-16", "gpt-5", "gpt-5.1", "gpt-5-nano"].filter(
        isReasoningModel,
      ).length,
      6,
    );
    assert.deepEqual(
      ["gpt-4o", "gpt-4.1-mini", "gpt-5-chat-latest", "omni-moderation"].filter(isReasoningModel),
      [],
    );
    const problems = (params: Record<string, unknown>, model = "gpt-4o", structured = false) =>
      chatParamProblems(params, { model, structured }, true).map((p) => p.param);
    assert.deepEqual(problems({ n: 2, stream: true }), ["n", "stream"]);
    assert.deepEqual(problems({ response_format: { type: "json_object" } }, "gpt-4o", true), [
      "response_format",
    ]);
    assert.deepEqual(problems({ temperature: 1, top_p: 0.5, reasoning_effort: "low" }, "o3"), [
      "top_p",
    ]);
    assert.deepEqual(
      problems({
        stop: "x",
        presence_penalty: 0,
        frequency_penalty: 0,
        logprobs: false,
        top_logprobs: 0,
        logit_bias: {},
        seed: 1,
      }, "gpt-5"),
      ["stop", "presence_penalty", "frequency_penalty", "logprobs", "top_logprobs", "logit_bias"],
      "refused whatever the value: the API refuses the parameter itself",
    );
    assert.deepEqual(
      problems({ stop: "x", presence_penalty: 0.5, logit_bias: { "1": 2 } }, "gpt-4.1"),
      [],
    );
    assert.deepEqual(problems({ reasoning_effort: "low" }, "gpt-4o"), ["reasoning_effort"]);
    assert.deepEqual(
      chatParamProblems({ temperature: 0 }, { model: "o3", structured: false }, false),
      [],
      "other endpoints' models are theirs to judge",
    );
  });

  it("sends an answer schema as response_format, strict when the schema allows it", () => {
    const closed = {
      type: "object",
      title: "Review card",
      properties: { a: { type: "string" } },
      required: ["a"],
      additionalProperties: false,
    };
    assert.deepEqual(responseFormat(closed), {
      type: "json_schema",
      json_schema: { name: "Review_card", schema: closed, strict: true },
    });
    const open = {
      type: "object",
      properties: { a: { type: "string" }, b: { type: "object", properties: {} } },
      required: ["a", "b"],
      additionalProperties: false,
    };
    assert.equal(
      (responseFormat(open).json_schema as { strict: boolean; name: string }).strict,
      false,
      "a nested object is open",
    );
    assert.equal(
      (responseFormat({ type: "object", properties: {} }).json_schema as { name: string }).name,
      "answer",
    );
    const composed = {
      ...closed,
      properties: { a: { type: "string", allOf: [{ minLength: 1 }] } },
    };
    assert.equal(
      (responseFormat(composed).json_schema as { strict: boolean }).strict,
      false,
      "outside the strict subset",
    );
  });

  it("reads an answer's reasoning tokens (within the output tokens) and the model that answered", () => {
    const result = chatCompletionResult({
      model: "o4-mini-2025-04-16",
      choices: [{ finish_reason: "length", message: { content: "" } }],
      usage: {
        prompt_tokens: 5,
        completion_tokens: 64,
        completion_tokens_details: { reasoning_tokens: 64 },
      },
    });
    assert.deepEqual(result, {
      text: "",
      finishReason: "length",
      truncated: true,
      usage: { inputTokens: 5, outputTokens: 64, reasoningTokens: 64 },
      model: "o4-mini-2025-04-16",
    });
    assert.deepEqual(
      chatCompletionResult({
        choices: [{ message: { content: "hi" } }],
        usage: { prompt_tokens: 1, completion_tokens: 1 },
      }).usage,
      {
        inputTokens: 1,
        outputTokens: 1,
      },
      "a server that gives no details reports no reasoning tokens",
    );
  });

  it("reads the cost a server reports with the usage (OpenRouter's usage.cost), and nothing else as one", () => {
    const usage = (cost: unknown) =>
      chatCompletionResult({
        choices: [{ message: { content: "hi" } }],
        usage: { prompt_tokens: 10, completion_tokens: 2, cost } as never,
      }).usage;
    assert.deepEqual(usage(0.0000123), { inputTokens: 10, outputTokens: 2, cost: 0.0000123 });
    assert.deepEqual(usage(0), { inputTokens: 10, outputTokens: 2, cost: 0 }, "a free model");
    for (const notAnAmount of [undefined, null, "0.01", -1, Infinity, NaN]) {
      assert.deepEqual(
        usage(notAnAmount),
        { inputTokens: 10, outputTokens: 2 },
        String(notAnAmount),
      );
    }
    // After the reasoning tokens: the order the batch outcome store packs usage in.
    const reasoned = chatCompletionResult({
      choices: [{ message: { content: "hi" } }],
      usage: {
        prompt_tokens: 1,
        completion_tokens: 9,
        completion_tokens_details: { reasoning_tokens: 8 },
        cost: 0.5,
      },
    }).usage!;
    assert.deepEqual(Object.keys(reasoned), [
      "inputTokens",
      "outputTokens",
      "reasoningTokens",
      "cost",
    ]);
  });
});
