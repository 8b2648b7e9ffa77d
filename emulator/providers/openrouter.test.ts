import assert from "node:assert/strict";
import { after, before, beforeEach, describe, it } from "node:test";
import OpenAI from "openai";
import { parseFaultSpec } from "../faults.ts";
import { type Emulator, startEmulator } from "../server.ts";

let emu: Emulator;
let client: OpenAI;

before(async () => {
  emu = await startEmulator({ provider: "openrouter" });
  client = new OpenAI({ apiKey: emu.apiKey, baseURL: emu.baseURL, maxRetries: 2, timeout: 5_000 });
});
after(() => emu.stop());
beforeEach(() => {
  emu.faults.clear();
  emu.log.clear();
});

const ask = (model = "openai/gpt-4o-mini", content = "Summarize: the rain in Spain") =>
  client.chat.completions.create({
    model,
    messages: [{ role: "system", content: "Be brief." }, { role: "user", content }],
  });

describe("openrouter emulator through the openai SDK", () => {
  it("answers at /api/v1/chat/completions with OpenRouter's extra members", async () => {
    const completion = await ask() as OpenAI.ChatCompletion & {
      provider: string;
      usage: { cost: number };
    };
    assert.match(completion.id, /^gen-/);
    assert.equal(completion.provider, "OpenAI");
    assert.equal(completion.model, "openai/gpt-4o-mini");
    assert.equal(
      completion.choices[0].message.content,
      "[openai/gpt-4o-mini] Summarize: the rain in Spain",
    );
    assert.equal(
      (completion.choices[0] as unknown as { native_finish_reason: string }).native_finish_reason,
      "stop",
    );
    assert.deepEqual(
      [
        completion.usage.prompt_tokens,
        completion.usage.completion_tokens,
        completion.usage.total_tokens,
      ],
      [7, 6, 13],
    );
    assert.ok(completion.usage.cost > 0);
    assert.equal(emu.log.count("POST /api/v1/chat/completions"), 1);
  });

  it("answers json_schema requests with conforming JSON, cuts them at max_tokens, and obeys reply faults", async () => {
    const schema = {
      type: "object",
      properties: { gist: { type: "string" }, size: { type: "integer" } },
      required: ["gist", "size"],
      additionalProperties: false,
    };
    const response_format = {
      type: "json_schema" as const,
      json_schema: { name: "gist", schema, strict: true },
    };
    const model = "openai/gpt-4o-mini";
    const whole = await client.chat.completions.create({
      model,
      messages: [{ role: "user", content: "make it short" }],
      response_format,
    });
    assert.deepEqual(JSON.parse(whole.choices[0].message.content!), {
      gist: `[${model}] make it short`,
      size: 4,
    });
    const cut = await client.chat.completions.create({
      model,
      messages: [{ role: "user", content: "make it short" }],
      response_format,
      max_tokens: 2,
    });
    assert.deepEqual([cut.choices[0].message.content, cut.choices[0].finish_reason], [
      '{"gist":',
      "length",
    ]);
    assert.equal(
      (cut.choices[0] as unknown as { native_finish_reason: string }).native_finish_reason,
      "length",
    );
    emu.faults.add({ match: { promptContains: "short" }, action: { kind: "reply", text: "{}" } });
    const replaced = await client.chat.completions.create({
      model,
      messages: [{ role: "user", content: "make it short" }],
      response_format,
    });
    assert.equal(replaced.choices[0].message.content, "{}");
    assert.equal(replaced.usage?.completion_tokens, 1);
    assert.deepEqual(emu.log.entries.map((e) => [e.status, e.fault]), [[200, undefined], [
      200,
      undefined,
    ], [200, "reply"]]);
  });

  it("accepts OpenRouter's routing fields and rejects unknown model ids with a numeric error code", async () => {
    const routed = await client.chat.completions.create({
      model: "anthropic/claude-haiku-4.5",
      messages: [{ role: "user", content: "hi" }],
      // @ts-expect-error: OpenRouter-only fields, passed through by the SDK as they are
      provider: { order: ["Anthropic"], allow_fallbacks: false },
      models: ["openai/gpt-4o-mini"],
    });
    assert.equal((routed as unknown as { provider: string }).provider, "Anthropic");
    await assert.rejects(() => ask("gpt-4o-mini"), (e: unknown) => {
      assert.ok(e instanceof OpenAI.BadRequestError);
      assert.equal(e.status, 400);
      assert.equal((e.error as { code: number }).code, 400);
      assert.match(e.message, /gpt-4o-mini is not a valid model ID/);
      return true;
    });
  });

  it("answers 401 for a missing or wrong key and 402 when credits run out", async () => {
    const wrong = new OpenAI({ apiKey: "sk-or-v1-wrong", baseURL: emu.baseURL, maxRetries: 0 });
    await assert.rejects(
      () =>
        wrong.chat.completions.create({
          model: "openai/gpt-4o-mini",
          messages: [{ role: "user", content: "x" }],
        }),
      (e: unknown) => e instanceof OpenAI.AuthenticationError && /User not found/.test(e.message),
    );
    emu.log.clear();
    emu.faults.add({
      match: { first: 1 },
      action: {
        kind: "status",
        status: 402,
        message: "Insufficient credits. Add more using https://openrouter.ai/credits",
      },
    });
    await assert.rejects(() => ask(), (e: unknown) => {
      assert.ok(e instanceof OpenAI.APIError);
      assert.equal(e.status, 402);
      assert.deepEqual((e.error as { code: number }).code, 402);
      return true;
    });
    assert.equal(emu.log.count("POST /api/v1/chat/completions"), 1, "402 is not retried");
  });

  it("reports a failure after generation started as HTTP 200 with an error body and no choices", async () => {
    emu.faults.add({
      match: { promptContains: "[[midstream]]" },
      action: { kind: "error-in-200", message: "Upstream error", code: 502 },
    });
    const result = await ask("openai/gpt-4o-mini", "[[midstream]] hello") as unknown as Record<
      string,
      unknown
    >;
    assert.equal(result.choices, undefined);
    assert.deepEqual((result.error as { code: number; message: string }).code, 502);
    assert.equal(emu.log.entries[0].status, 200);
    const fine = await ask("openai/gpt-4o-mini", "hello");
    assert.equal(fine.choices.length, 1);
  });

  it("retries 429 and 5xx as the SDK does, visible in the log's retry counts", async () => {
    emu.faults.add({
      match: { first: 2 },
      action: { kind: "status", status: 429, retryAfterMs: 1 },
    });
    await ask();
    assert.deepEqual(emu.log.entries.map((e) => [e.status, e.retryCount]), [[429, 0], [429, 1], [
      200,
      2,
    ]]);
    emu.log.clear();
    emu.faults.clear();
    emu.faults.add({
      match: { first: 1 },
      action: { kind: "status", status: 502, retryAfterMs: 1, message: "Provider returned error" },
    });
    await ask();
    assert.deepEqual(emu.log.entries.map((e) => e.status), [502, 200]);
  });
});

describe("openrouter upstream errors", () => {
  it("answers a real 502 with the upstream provider named in metadata", async () => {
    emu.faults.clear();
    emu.faults.add({
      match: { first: 1 },
      action: {
        kind: "status",
        status: 502,
        message: "Provider returned error",
        extra: { metadata: { provider_name: "OpenAI", raw: "bad gateway" } },
      },
    });
    const noRetry = new OpenAI({ apiKey: emu.apiKey, baseURL: emu.baseURL, maxRetries: 0 });
    await assert.rejects(
      () =>
        noRetry.chat.completions.create({
          model: "openai/gpt-4o-mini",
          messages: [{ role: "user", content: "x" }],
        }),
      (e: unknown) => {
        assert.ok(e instanceof OpenAI.APIError);
        assert.equal(e.status, 502);
        assert.deepEqual((e.error as { metadata: unknown }).metadata, {
          provider_name: "OpenAI",
          raw: "bad gateway",
        });
        return true;
      },
    );
  });
});

describe("openrouter errors inside a choice and model fallbacks", () => {
  it("answers an error-in-choice fault with HTTP 200, the partial text, finish_reason error and the error in the choice", async () => {
    emu.faults.clear();
    emu.log.clear();
    emu.faults.add({
      match: { promptContains: "[[cut]]" },
      action: { kind: "error-in-choice", code: 502, message: "Upstream stream reset" },
    });
    const completion = await ask("openai/gpt-4o-mini", "[[cut]] one two three four five six");
    const choice = completion.choices[0] as unknown as {
      message: { content: string };
      finish_reason: string;
      native_finish_reason: string;
      error: { code: number; message: string; metadata: { provider_name: string } };
    };
    assert.equal(choice.message.content, "[openai/gpt-4o-mini] [[cut]] one two");
    assert.deepEqual([choice.finish_reason, choice.native_finish_reason], ["error", "error"]);
    assert.deepEqual(
      [choice.error.code, choice.error.message, choice.error.metadata.provider_name],
      [502, "Upstream stream reset", "OpenAI"],
    );
    assert.equal(completion.usage?.completion_tokens, 4);
    assert.deepEqual(emu.log.entries.map((e) => [e.status, e.fault]), [[200, "error-in-choice"]]);
  });

  it("serves a request from its models fallbacks when its model is down, naming the model that answered", async () => {
    emu.faults.clear();
    emu.faults.add({ action: { kind: "model-down", model: "openai/gpt-4o" } });
    const body = {
      model: "openai/gpt-4o",
      messages: [{ role: "user" as const, content: "hi" }],
      models: ["anthropic/claude-haiku-4.5"],
    };
    const served = await client.chat.completions.create(
      body as OpenAI.ChatCompletionCreateParamsNonStreaming,
    );
    assert.equal(served.model, "anthropic/claude-haiku-4.5");
    assert.equal((served as unknown as { provider: string }).provider, "Anthropic");
    assert.equal(served.choices[0].message.content, "[anthropic/claude-haiku-4.5] hi");
    // The fault concerns one model: a request for another one is served by it.
    assert.equal((await ask("openai/gpt-4o-mini", "hi")).model, "openai/gpt-4o-mini");
    const noRetry = new OpenAI({ apiKey: emu.apiKey, baseURL: emu.baseURL, maxRetries: 0 });
    await assert.rejects(
      () =>
        noRetry.chat.completions.create({
          model: "openai/gpt-4o",
          messages: [{ role: "user", content: "hi" }],
        }),
      (e: unknown) =>
        e instanceof OpenAI.APIError && e.status === 502 &&
        /openai\/gpt-4o is temporarily unavailable/.test(e.message),
    );
  });

  it("parses the launcher's spelling of both faults", () => {
    assert.deepEqual(parseFaultSpec("error-in-choice,code=429,prompt=X").action, {
      kind: "error-in-choice",
      code: 429,
    });
    assert.deepEqual(parseFaultSpec("model-down=openai/gpt-4o").action, {
      kind: "model-down",
      model: "openai/gpt-4o",
    });
    assert.deepEqual(parseFaultSpec("model-down").action, { kind: "model-down" });
  });
});
