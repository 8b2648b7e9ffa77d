import assert from "node:assert/strict";
import { afterEach, describe, it } from "node:test";
import Anthropic, {
  AnthropicError,
  APIConnectionError,
  APIConnectionTimeoutError,
  AuthenticationError,
  BadRequestError,
  type ClientOptions,
  ContentTooLargeError,
  InternalServerError,
  NotFoundError,
  OverloadedError,
  RateLimitError,
  ServiceUnavailableError,
} from "@anthropic-ai/sdk";
import type { MessageBatchIndividualResponse } from "@anthropic-ai/sdk/resources/messages/batches";
import { countTokens } from "../answers.ts";
import { ManualClock } from "../clock.ts";
import type { FaultAction, FaultRule } from "../faults.ts";
import { type Emulator, type EmulatorOptions, startEmulator } from "../server.ts";

const MODEL = "claude-sonnet-5";
const HOUR = 3_600_000;
const RFC3339_MICROS = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/;

const running: Emulator[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((e) => e.stop()));
});

/** Starts an Anthropic emulator and an SDK client for it (no retries unless asked, short timeout). */
async function setup(options: Partial<EmulatorOptions> = {}, client: ClientOptions = {}) {
  const emulator = await startEmulator({ provider: "anthropic", ...options });
  running.push(emulator);
  const { apiKey, baseURL } = emulator;
  const sdk = new Anthropic({ apiKey, baseURL, maxRetries: 0, timeout: 5_000, ...client });
  return { emulator, client: sdk };
}

/**
 * The SDK's own backoff (0.5 s, 1 s, … with jitter) is a real sleep, used when an answer carries
 * no usable retry hint or never arrives. Tests shorten it to 1 ms and count its uses, which also
 * shows whether the SDK took the emulator's hint instead.
 */
function backoff(client: Anthropic): { uses: number } {
  const counter = { uses: 0 };
  (client as unknown as { calculateDefaultRetryTimeoutMillis: () => number })
    .calculateDefaultRetryTimeoutMillis = () => {
      counter.uses++;
      return 1;
    };
  return counter;
}

function ask(prompt: string, maxTokens = 100) {
  return {
    model: MODEL,
    max_tokens: maxTokens,
    messages: [{ role: "user" as const, content: prompt }],
  };
}

/** The error a promise rejects with, checked against a class. */
async function failure<T extends Error>(
  promise: Promise<unknown>,
  type: new (...args: never[]) => T,
): Promise<T> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof type, `expected ${type.name}, got ${String(error)}`);
    return error;
  }
  assert.fail(`expected ${type.name}, but the call succeeded`);
}

/** All results of a batch, by custom_id. */
async function resultsById(
  client: Anthropic,
  id: string,
): Promise<Map<string, MessageBatchIndividualResponse["result"]>> {
  const out = new Map<string, MessageBatchIndividualResponse["result"]>();
  for await (const line of await client.messages.batches.results(id)) {
    out.set(line.custom_id, line.result);
  }
  return out;
}

describe("anthropic messages", () => {
  it("answers deterministically with end_turn, token usage and a request id", async () => {
    const { emulator, client } = await setup();
    const message = await client.messages.create({
      ...ask("Say hello to the world"),
      system: "Be brief.",
    });
    assert.match(message.id, /^msg_01/);
    assert.equal(message.type, "message");
    assert.equal(message.role, "assistant");
    assert.deepEqual(message.content, [{
      type: "text",
      text: `[${MODEL}] Say hello to the world`,
      citations: null,
    }]);
    assert.equal(message.stop_reason, "end_turn");
    assert.equal(message.stop_sequence, null);
    assert.equal(
      message.usage.input_tokens,
      countTokens("Be brief.") + countTokens("Say hello to the world"),
    );
    assert.equal(message.usage.output_tokens, 6);
    assert.equal(message.usage.service_tier, "standard");
    assert.match(message._request_id ?? "", /^req_/);
    const [entry] = emulator.log.find("POST /v1/messages");
    assert.equal(entry.headers["anthropic-version"], "2026-10-21");
    assert.equal(entry.headers["authorization"], "***");
    assert.equal(entry.retryCount, 0);
    assert.equal(entry.status, 200);
  });

  it("cuts the answer at max_tokens, at a stop sequence, and answers max_tokens 0 with no content", async () => {
    const { client } = await setup();
    const cut = await client.messages.create(ask("one two three four", 3));
    assert.deepEqual(cut.content, [{ type: "text", text: `[${MODEL}] one two`, citations: null }]);
    assert.equal(cut.stop_reason, "max_tokens");
    assert.equal(cut.usage.output_tokens, 3);
    const stopped = await client.messages.create({
      ...ask("alpha beta gamma"),
      stop_sequences: ["gamma", "beta"],
    });
    assert.deepEqual(stopped.content, [{
      type: "text",
      text: `[${MODEL}] alpha `,
      citations: null,
    }]);
    assert.equal(stopped.stop_reason, "stop_sequence");
    assert.equal(stopped.stop_sequence, "beta");
    const warm = await client.messages.create(ask("prefill the cache", 0));
    assert.deepEqual(warm.content, []);
    assert.equal(warm.stop_reason, "max_tokens");
    assert.equal(warm.usage.output_tokens, 0);
  });

  it("takes system blocks and several turns (consecutive turns of a role are merged, not refused)", async () => {
    const { client } = await setup();
    const message = await client.messages.create({
      model: MODEL,
      max_tokens: 50,
      system: [{ type: "text", text: "You are terse." }],
      messages: [
        { role: "user", content: "first" },
        { role: "assistant", content: [{ type: "text", text: "ok" }] },
        { role: "user", content: [{ type: "text", text: "second" }] },
        { role: "user", content: "third" },
      ],
    });
    assert.deepEqual(message.content, [{
      type: "text",
      text: `[${MODEL}] third`,
      citations: null,
    }]);
    assert.equal(message.usage.input_tokens, 3 + 1 + 1 + 1 + 1);
  });

  it("refuses invalid requests with the SDK's error classes and the API's error body", async () => {
    const { emulator, client } = await setup({ limits: { maxOutputTokens: 1000 } });
    const bad: Array<[string, Record<string, unknown>, string]> = [
      [
        "no max_tokens",
        { model: MODEL, messages: [{ role: "user", content: "x" }] },
        "max_tokens: Field required",
      ],
      [
        "negative max_tokens",
        { ...ask("x", -1) },
        "max_tokens: Input should be greater than or equal to 0",
      ],
      ["max_tokens over the ceiling", { ...ask("x", 1001) }, "max_tokens: 1001 > 1000"],
      [
        "no model",
        { max_tokens: 5, messages: [{ role: "user", content: "x" }] },
        "model: Field required",
      ],
      ["no messages", { model: MODEL, max_tokens: 5 }, "messages: Field required"],
      [
        "empty messages",
        { model: MODEL, max_tokens: 5, messages: [] },
        "messages: at least one message is required",
      ],
      [
        "assistant first",
        { ...ask("x"), messages: [{ role: "assistant", content: "hi" }] },
        "first message must use",
      ],
      [
        "system role",
        { ...ask("x"), messages: [{ role: "system", content: "hi" }] },
        "messages.0.role",
      ],
      [
        "content a number",
        { ...ask("x"), messages: [{ role: "user", content: 5 }] },
        "messages.0.content",
      ],
      [
        "empty content",
        { ...ask("x"), messages: [{ role: "user", content: "" }] },
        "non-empty content",
      ],
      [
        "unknown block",
        { ...ask("x"), messages: [{ role: "user", content: [{ type: "video" }] }] },
        "content.0.type",
      ],
      ["system a number", { ...ask("x"), system: 3 }, "system:"],
      [
        "stop_sequences a string",
        { ...ask("x"), stop_sequences: "END" },
        "stop_sequences: Input should be a valid list",
      ],
      [
        "temperature on 2026-10-21",
        { ...ask("x"), temperature: 0.5 },
        "temperature: not supported",
      ],
      ["top_k on 2026-10-21", { ...ask("x"), top_k: 5 }, "top_k: not supported"],
      [
        "unknown field",
        { ...ask("x"), frequency_penalty: 1 },
        "frequency_penalty: Extra inputs are not permitted",
      ],
    ];
    for (const [what, body, message] of bad) {
      const err = await failure(client.messages.create(body as never), BadRequestError);
      assert.equal(err.status, 400, what);
      assert.equal(err.type, "invalid_request_error", what);
      assert.ok(err.apiMessage?.includes(message), `${what}: ${err.apiMessage}`);
      const envelope = err.error as { type: string; request_id: string };
      assert.equal(envelope.type, "error");
      assert.equal(err.requestID, envelope.request_id, what);
    }
    const unknown = await failure(
      client.messages.create({ ...ask("x"), model: "claude-nonexistent" }),
      NotFoundError,
    );
    assert.equal(unknown.type, "not_found_error");
    assert.equal(unknown.apiMessage, "model: claude-nonexistent");
    assert.ok(emulator.log.entries.every((e) => e.retryCount === 0));
  });

  it("accepts x-api-key with 2023-06-01, where sampling parameters are allowed within range", async () => {
    const { emulator, client } = await setup({}, {
      defaultHeaders: {
        "anthropic-version": "2023-06-01",
        "x-api-key": "test-key",
        Authorization: null,
      },
    });
    const body = { ...ask("hello"), temperature: 0.2, top_p: 0.9, top_k: 40 } as never;
    const message = await client.messages.create(body);
    assert.equal(message.stop_reason, "end_turn");
    const [entry] = emulator.log.entries;
    assert.equal(entry.headers["x-api-key"], "***");
    assert.equal(entry.headers["authorization"], undefined);
    assert.equal(entry.headers["anthropic-version"], "2023-06-01");
    const hot = await failure(
      client.messages.create({ ...ask("x"), temperature: 1.5 } as never),
      BadRequestError,
    );
    assert.equal(hot.apiMessage, "temperature: Input should be less than or equal to 1");
  });

  it("requires a known anthropic-version header", async () => {
    const { client } = await setup();
    const version = (value: string | null) =>
      client.messages.create(ask("x"), { headers: { "anthropic-version": value } });
    const missing = await failure(version(null), BadRequestError);
    assert.equal(missing.apiMessage, "anthropic-version: header is required");
    const unknown = await failure(version("2020-01-01"), BadRequestError);
    assert.match(unknown.apiMessage ?? "", /not a valid version/);
  });

  it("refuses a wrong or missing key with 401 authentication_error", async () => {
    const { emulator } = await setup();
    const wrong = new Anthropic({
      apiKey: "nope",
      baseURL: emulator.baseURL,
      maxRetries: 2,
      timeout: 5_000,
    });
    const err = await failure(wrong.messages.create(ask("x")), AuthenticationError);
    assert.equal(err.status, 401);
    assert.equal(err.type, "authentication_error");
    assert.equal(err.apiMessage, "invalid x-api-key");
    // An explicitly omitted Authorization header is the SDK's way to send no credentials at all.
    const none = new Anthropic({
      apiKey: "k",
      baseURL: emulator.baseURL,
      maxRetries: 0,
      defaultHeaders: { Authorization: null },
    });
    const count = none.messages.countTokens({
      model: MODEL,
      messages: [{ role: "user", content: "x" }],
    });
    const missing = await failure(count, AuthenticationError);
    assert.equal(missing.apiMessage, "x-api-key header is required");
    assert.equal(emulator.log.count("POST /v1/messages"), 1, "401 is not retried");
  });

  it("counts tokens like a message's usage, and validates the same way", async () => {
    const { emulator, client } = await setup();
    const params = {
      model: MODEL,
      system: "Answer in French.",
      messages: [{ role: "user" as const, content: "How are you today?" }],
    };
    const counted = await client.messages.countTokens(params);
    assert.deepEqual(counted, { input_tokens: 7 });
    const message = await client.messages.create({ ...params, max_tokens: 20 });
    assert.equal(message.usage.input_tokens, counted.input_tokens);
    await failure(client.messages.countTokens({ ...params, model: "claude-x" }), NotFoundError);
    const extra = await failure(
      client.messages.countTokens({ ...params, max_tokens: 5 } as never),
      BadRequestError,
    );
    assert.equal(extra.apiMessage, "max_tokens: Extra inputs are not permitted");
    assert.equal(emulator.log.count("POST /v1/messages/count_tokens"), 3);
  });
});

describe("anthropic extended thinking", () => {
  it("puts a signed thinking block first, counted in output_tokens and against max_tokens", async () => {
    const { client } = await setup();
    const prompt = "think about this";
    const answerTokens = `[${MODEL}] ${prompt}`.split(" ").length;
    const message = await client.messages.create({
      ...ask(prompt, 2000),
      thinking: { type: "enabled", budget_tokens: 1024 },
    });
    const [thinking, text] = message.content;
    assert.ok(thinking.type === "thinking" && text?.type === "text");
    assert.ok(thinking.signature.length > 0);
    assert.equal(thinking.thinking.split(" ").length, 8 * answerTokens);
    assert.deepEqual(text, { type: "text", text: `[${MODEL}] ${prompt}`, citations: null });
    assert.equal(message.stop_reason, "end_turn");
    assert.deepEqual(message.usage.output_tokens_details, { thinking_tokens: 8 * answerTokens });
    assert.equal(
      message.usage.output_tokens,
      9 * answerTokens,
      "thinking and text are both billed output",
    );

    const omitted = await client.messages.create({
      ...ask(prompt, 2000),
      thinking: { type: "adaptive", display: "omitted" },
    });
    assert.ok(
      omitted.content[0].type === "thinking" && omitted.content[0].thinking === "" &&
        omitted.content[0].signature,
    );
    assert.equal(omitted.usage.output_tokens_details?.thinking_tokens, 8 * answerTokens);

    const plain = await client.messages.create(ask(prompt));
    assert.equal(plain.usage.output_tokens_details, null);
    assert.deepEqual(plain.content.map((b) => b.type), ["text"]);
  });

  it("leaves no text when thinking fills max_tokens, and stops with max_tokens", async () => {
    const { client } = await setup();
    const message = await client.messages.create({
      ...ask("a question", 10),
      thinking: { type: "adaptive" },
    });
    assert.deepEqual(message.content.map((b) => b.type), ["thinking"]);
    assert.equal(message.stop_reason, "max_tokens");
    assert.equal(message.usage.output_tokens, 10);
    assert.deepEqual(message.usage.output_tokens_details, { thinking_tokens: 10 });
  });

  it("validates thinking: a budget of at least 1024, below max_tokens, a known type", async () => {
    const { client } = await setup();
    const cases: Array<[unknown, number, RegExp]> = [
      [
        { type: "enabled", budget_tokens: 512 },
        2000,
        /^thinking\.enabled\.budget_tokens: Input should be greater than or equal to 1024/,
      ],
      [
        { type: "enabled", budget_tokens: 2000 },
        2000,
        /^max_tokens: must be greater than thinking\.budget_tokens/,
      ],
      [{ type: "enabled" }, 2000, /budget_tokens: Field required/],
      [{ type: "deep" }, 2000, /^thinking\.type: Input tag 'deep'/],
    ];
    for (const [thinking, max, message] of cases) {
      const err = await failure(
        client.messages.create({ ...ask("x", max), thinking } as never),
        BadRequestError,
      );
      assert.match(err.apiMessage ?? "", message);
    }
    const counted = await client.messages.countTokens({
      model: MODEL,
      messages: ask("x").messages,
      thinking: { type: "enabled", budget_tokens: 1024 },
    });
    assert.equal(counted.input_tokens, 1, "count_tokens has no max_tokens to compare with");
  });
});

describe("anthropic structured output and the reply fault", () => {
  const schema = {
    type: "object",
    properties: {
      title: { type: "string" },
      count: { type: "integer" },
      ratio: { type: "number" },
      ok: { type: "boolean" },
      labels: { type: "array", items: { type: "string" } },
      when: { type: "string", format: "date" },
    },
    required: ["title", "count", "ratio", "ok", "labels", "when"],
    additionalProperties: false,
  };
  const structured = (prompt: string, maxTokens = 1000) => ({
    ...ask(prompt, maxTokens),
    output_config: { format: { type: "json_schema" as const, schema } },
  });
  const long = Array.from({ length: 40 }, (_, i) => `w${i}`).join(" ");

  it("answers output_config.format with one text block of JSON that parses and conforms", async () => {
    const { client } = await setup();
    const message = await client.messages.create(structured("name this"));
    assert.equal(message.content.length, 1);
    const block = message.content[0];
    assert.ok(block.type === "text");
    const value = JSON.parse(block.text);
    assert.deepEqual(value, {
      title: `[${MODEL}] name this`,
      count: 3,
      ratio: 3,
      ok: true,
      labels: [`[${MODEL}] name this`],
      when: "2026-01-01",
    });
    assert.equal(message.stop_reason, "end_turn");
    assert.equal(
      message.usage.output_tokens,
      Math.ceil(block.text.length / 4),
      "JSON counts 4 characters a token",
    );
    const counted = await client.messages.countTokens({
      model: MODEL,
      messages: [{ role: "user", content: "name this" }],
      output_config: { format: { type: "json_schema", schema } },
    });
    assert.equal(counted.input_tokens, 2);
  });

  it("validates output_config the way the API does: a 400 naming the field", async () => {
    const { client } = await setup();
    const cases: Array<[unknown, string]> = [
      ["json", "output_config: Input should be a valid dictionary"],
      [{ format: [] }, "output_config.format: Input should be a valid dictionary"],
      [{ format: { schema } }, "output_config.format.type: Field required"],
      [
        { format: { type: "xml", schema } },
        "output_config.format.type: Input should be 'json_schema'",
      ],
      [{ format: { type: "json_schema" } }, "output_config.format.schema: Field required"],
      [
        { format: { type: "json_schema", schema: "{}" } },
        "output_config.format.schema: Input should be a valid dictionary",
      ],
      [
        { format: { type: "json_schema", schema, name: "x" } },
        "output_config.format.name: Extra inputs are not permitted",
      ],
      [{ effort: "extreme" }, "output_config.effort: Input should be"],
    ];
    for (const [config, message] of cases) {
      const err = await failure(
        client.messages.create({ ...ask("x"), output_config: config } as never),
        BadRequestError,
      );
      assert.equal(err.type, "invalid_request_error");
      assert.ok(
        err.apiMessage?.startsWith(message),
        `${JSON.stringify(config)}: ${err.apiMessage}`,
      );
    }
    const plain = await client.messages.create({
      ...ask("no format"),
      output_config: { effort: "low", format: null },
    });
    assert.deepEqual(plain.content, [{
      type: "text",
      text: `[${MODEL}] no format`,
      citations: null,
    }]);
  });

  it("refuses a schema the API refuses, in messages, count_tokens and batch requests alike", async () => {
    const { client } = await setup({ schedule: { advance: "instant" } });
    const open = {
      type: "object",
      properties: { tags: { type: "array", items: { type: "string" } } },
      required: ["tags"],
    };
    const closed = (extra: Record<string, unknown>) => ({
      ...open,
      additionalProperties: false,
      ...extra,
    });
    const tags = (items: Record<string, unknown>) =>
      closed({ properties: { tags: { type: "array", items: { type: "string" }, ...items } } });
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [
        open,
        /^output_config\.format\.schema: For 'object' type, 'additionalProperties' must be explicitly set to false$/,
      ],
      [
        closed({ properties: { o: { type: "object", properties: {} } } }),
        /^output_config\.format\.schema: For 'object' type, 'additionalProperties' must be/,
      ],
      [
        { ...open, additionalProperties: true },
        /^output_config\.format\.schema: For 'object' type, 'additionalProperties: true' is not supported\.\nPlease set/,
      ],
      [tags({ minItems: 2 }), /schema\.properties\.tags\.minItems: only 0 and 1 are supported/],
      [tags({ maxItems: 3 }), /keyword 'maxItems' is not supported/],
      [
        closed({ properties: { n: { type: "integer", minimum: 1 } } }),
        /keyword 'minimum' is not supported/,
      ],
      [
        closed({ properties: { s: { type: "string", maxLength: 5 } } }),
        /keyword 'maxLength' is not supported/,
      ],
      [
        closed({ properties: { s: { type: "string", format: "phone" } } }),
        /format 'phone' is not supported/,
      ],
      [
        closed({ $schema: "https://json-schema.org/draft/2020-12/schema" }),
        /keyword '\$schema' is not supported/,
      ],
      [
        closed({ properties: { e: { enum: [{ a: 1 }] } } }),
        /enum: only strings, numbers, booleans and null/,
      ],
      [closed({ properties: { next: { $ref: "#" } } }), /recursive schemas are not supported/],
    ];
    for (const [bad, message] of cases) {
      const format = { type: "json_schema" as const, schema: bad };
      const err = await failure(
        client.messages.create({ ...ask("x"), output_config: { format } }),
        BadRequestError,
      );
      assert.equal(err.type, "invalid_request_error");
      assert.match(err.apiMessage ?? "", message, JSON.stringify(bad));
      const counted = await failure(
        client.messages.countTokens({
          model: MODEL,
          messages: ask("x").messages,
          output_config: { format },
        }),
        BadRequestError,
      );
      assert.match(counted.apiMessage ?? "", message);
    }
    const batch = await client.messages.batches.create({
      requests: [{
        custom_id: "open",
        params: { ...ask("x"), output_config: { format: { type: "json_schema", schema: open } } },
      }],
    });
    await client.messages.batches.retrieve(batch.id);
    const result = (await resultsById(client, batch.id)).get("open");
    assert.ok(result?.type === "errored");
    assert.match(
      result.error.error.message,
      /'additionalProperties' must be explicitly set to false/,
    );
    const fine = closed({
      properties: {
        tags: { type: "array", items: { type: "string", format: "email" }, minItems: 1 },
      },
      $defs: {},
    });
    assert.equal(
      (await client.messages.create({
        ...ask("x"),
        output_config: { format: { type: "json_schema", schema: fine } },
      })).stop_reason,
      "end_turn",
    );
  });

  it("cuts JSON at max_tokens into unparseable text with stop_reason max_tokens", async () => {
    const { client } = await setup();
    const cut = await client.messages.create(structured(long, 6));
    const block = cut.content[0];
    assert.ok(block.type === "text");
    assert.equal(block.text, `{"title":"[${MODEL}] w0`.slice(0, 24));
    assert.throws(() => JSON.parse(block.text), SyntaxError);
    assert.equal(cut.stop_reason, "max_tokens");
    assert.equal(cut.usage.output_tokens, 6);
  });

  it("replaces the text under a reply fault, sync and in the batch lines it matches", async () => {
    const { emulator, client } = await setup({ schedule: { advance: "instant" } });
    emulator.faults.add({
      name: "garble",
      match: { promptContains: "[[garble]]" },
      action: { kind: "reply", text: '{"title": ' },
    });
    const bad = await client.messages.create(structured("x [[garble]]"));
    assert.deepEqual(bad.content, [{ type: "text", text: '{"title": ', citations: null }]);
    assert.equal(bad.stop_reason, "end_turn");
    assert.equal(bad.type, "message");
    assert.equal(bad.usage.output_tokens, 3);
    const cut = await client.messages.create(structured(`${long} [[garble]]`, 2));
    assert.deepEqual([cut.content, cut.stop_reason], [[{
      type: "text",
      text: '{"title": ',
      citations: null,
    }], "max_tokens"]);
    const fine = await client.messages.create(structured("fine"));
    assert.ok(
      fine.content[0].type === "text" &&
        JSON.parse(fine.content[0].text).title === `[${MODEL}] fine`,
    );
    assert.deepEqual(emulator.log.find("POST /v1/messages").map((e) => [e.status, e.fault]), [
      [200, "garble"],
      [200, "garble"],
      [200, undefined],
    ]);

    emulator.faults.clear();
    const batch = await client.messages.batches.create({
      requests: [
        { custom_id: "a", params: structured("one [[garble]]") },
        { custom_id: "b", params: structured("two") },
      ],
    });
    emulator.faults.add({
      match: { batch: batch.id, promptContains: "[[garble]]" },
      action: { kind: "reply", text: "oops" },
    });
    const results = await resultsById(client, batch.id);
    const a = results.get("a");
    const b = results.get("b");
    assert.ok(a?.type === "succeeded" && b?.type === "succeeded");
    assert.deepEqual(a.message.content, [{ type: "text", text: "oops", citations: null }]);
    assert.equal(a.message.stop_reason, "end_turn");
    assert.ok(b.message.content[0].type === "text");
    assert.equal(JSON.parse(b.message.content[0].text).title, `[${MODEL}] two`);
  });
});

describe("anthropic message batches", () => {
  const request = (id: string, prompt: string, params: Record<string, unknown> = {}) => ({
    custom_id: id,
    params: { ...ask(prompt), ...params },
  });

  it("runs create → polls → ended → results joined by custom_id (succeeded and errored)", async () => {
    const { emulator, client } = await setup({ batches: [{ failPromptContains: "FAIL" }] });
    const created = await client.messages.batches.create({
      requests: [
        request("a", "first prompt"),
        request("b", "please FAIL here"),
        request("c", "third", { messages: [] }), // params are validated asynchronously
        request("d", "fourth prompt", { max_tokens: 2 }),
      ],
    });
    assert.match(created.id, /^msgbatch_01/);
    assert.equal(created.type, "message_batch");
    assert.equal(created.processing_status, "in_progress");
    assert.deepEqual(created.request_counts, {
      processing: 4,
      succeeded: 0,
      errored: 0,
      canceled: 0,
      expired: 0,
    });
    assert.equal(created.results_url, null);
    assert.equal(created.ended_at, null);
    assert.equal(created.created_at, "2026-11-27T10:00:00.000000Z");
    assert.equal(created.expires_at, "2026-11-28T10:00:00.000000Z");
    assert.match(created.created_at, RFC3339_MICROS);

    const first = await client.messages.batches.retrieve(created.id);
    assert.equal(first.processing_status, "in_progress");
    assert.equal(first.request_counts.processing, 4);
    const second = await client.messages.batches.retrieve(created.id);
    assert.equal(second.processing_status, "ended");
    assert.deepEqual(second.request_counts, {
      processing: 0,
      succeeded: 2,
      errored: 2,
      canceled: 0,
      expired: 0,
    });
    assert.equal(second.results_url, `${emulator.url}/v1/messages/batches/${created.id}/results`);
    assert.match(second.ended_at ?? "", RFC3339_MICROS);

    const order: string[] = [];
    const results = new Map<string, MessageBatchIndividualResponse["result"]>();
    for await (const line of await client.messages.batches.results(created.id)) {
      order.push(line.custom_id);
      results.set(line.custom_id, line.result);
    }
    assert.notDeepEqual(order, ["a", "b", "c", "d"], "results come back in another order");
    assert.deepEqual([...order].sort(), ["a", "b", "c", "d"]);
    const a = results.get("a");
    assert.ok(a?.type === "succeeded");
    assert.deepEqual(a.message.content, [{
      type: "text",
      text: `[${MODEL}] first prompt`,
      citations: null,
    }]);
    assert.equal(a.message.usage.service_tier, "batch");
    const d = results.get("d");
    assert.ok(d?.type === "succeeded");
    assert.equal(d.message.stop_reason, "max_tokens");
    const b = results.get("b");
    assert.ok(b?.type === "errored");
    assert.equal(b.error.type, "error");
    assert.equal(b.error.error.type, "api_error");
    assert.match(b.error.request_id ?? "", /^req_/);
    const c = results.get("c");
    assert.ok(c?.type === "errored");
    assert.equal(c.error.error.type, "invalid_request_error");
    assert.equal(c.error.error.message, "messages: at least one message is required");

    const fetched = emulator.log.find(`/v1/messages/batches/${created.id}/results`);
    assert.equal(fetched.length, 1);
    assert.equal(
      fetched[0].headers["authorization"],
      "***",
      "the results URL is called with credentials",
    );
  });

  it("reports errors for every request under onlyErrors and end: fail", async () => {
    const { client } = await setup({
      schedule: { advance: "instant" },
      batches: [{ nth: 1, onlyErrors: true }, { nth: 2, end: "fail" }],
    });
    const one = await client.messages.batches.create({
      requests: [request("x", "p"), request("y", "q")],
    });
    const two = await client.messages.batches.create({ requests: [request("x", "p")] });
    assert.deepEqual((await client.messages.batches.retrieve(one.id)).request_counts, {
      processing: 0,
      succeeded: 0,
      errored: 2,
      canceled: 0,
      expired: 0,
    });
    const types = [...(await resultsById(client, one.id)).values()].map((r) =>
      r.type === "errored" && r.error.error.type
    );
    assert.deepEqual(types, ["api_error", "api_error"]);
    const failed = (await resultsById(client, two.id)).get("x");
    assert.ok(failed?.type === "errored");
    assert.equal(failed.error.error.type, "invalid_request_error");
  });

  it("has no results_url until ended, so the SDK refuses results() early", async () => {
    const { client } = await setup({ schedule: { advance: "manual" } });
    const batch = await client.messages.batches.create({ requests: [request("a", "x")] });
    const err = await failure(client.messages.batches.results(batch.id), AnthropicError);
    assert.match(err.message, /No batch `results_url`/);
    assert.equal(
      (await client.messages.batches.retrieve(batch.id)).processing_status,
      "in_progress",
    );
  });

  it("cancels: canceling (with cancel_initiated_at) → ended with some succeeded and the rest canceled", async () => {
    const clock = new ManualClock();
    const { emulator, client } = await setup({ schedule: { advance: "manual" }, clock });
    const batch = await client.messages.batches.create({
      requests: ["r1", "r2", "r3", "r4"].map((id) => request(id, `prompt ${id}`)),
    });
    clock.advance(60_000);
    const canceling = await client.messages.batches.cancel(batch.id);
    assert.equal(canceling.processing_status, "canceling");
    assert.equal(canceling.cancel_initiated_at, "2026-11-27T10:01:00.000000Z");
    assert.deepEqual(canceling.request_counts, {
      processing: 4,
      succeeded: 0,
      errored: 0,
      canceled: 0,
      expired: 0,
    });
    assert.equal(
      (await client.messages.batches.cancel(batch.id)).processing_status,
      "canceling",
      "cancel is idempotent",
    );
    assert.equal((await client.messages.batches.retrieve(batch.id)).processing_status, "canceling");
    emulator.step(batch.id);
    const ended = await client.messages.batches.retrieve(batch.id);
    assert.equal(ended.processing_status, "ended");
    assert.deepEqual(ended.request_counts, {
      processing: 0,
      succeeded: 2,
      errored: 0,
      canceled: 2,
      expired: 0,
    });
    const results = await resultsById(client, batch.id);
    assert.deepEqual([...results].map(([id, r]) => [id, r.type]).sort(), [
      ["r1", "succeeded"],
      ["r2", "succeeded"],
      ["r3", "canceled"],
      ["r4", "canceled"],
    ]);
    const again = await failure(client.messages.batches.cancel(batch.id), BadRequestError);
    assert.match(again.apiMessage ?? "", /already ended/);
  });

  it("expires by scenario with part of its results (processed)", async () => {
    const { client } = await setup({ batches: [{ end: "expire", processed: 1 }] });
    const batch = await client.messages.batches.create({
      requests: ["e1", "e2", "e3"].map((id) => request(id, id)),
    });
    await client.messages.batches.retrieve(batch.id);
    const ended = await client.messages.batches.retrieve(batch.id);
    assert.equal(ended.processing_status, "ended");
    assert.equal(ended.ended_at, ended.expires_at);
    assert.deepEqual(ended.request_counts, {
      processing: 0,
      succeeded: 1,
      errored: 0,
      canceled: 0,
      expired: 2,
    });
    const results = await resultsById(client, batch.id);
    assert.equal(results.get("e1")?.type, "succeeded");
    assert.equal(results.get("e2")?.type, "expired");
    assert.equal(results.get("e3")?.type, "expired");
  });

  it("expires by the clock when still unfinished after 24 hours", async () => {
    const clock = new ManualClock();
    const { client } = await setup({ schedule: { advance: "manual" }, clock });
    const batch = await client.messages.batches.create({
      requests: ["k1", "k2", "k3", "k4"].map((id) => request(id, id)),
    });
    clock.advance(24 * HOUR - 1);
    assert.equal(
      (await client.messages.batches.retrieve(batch.id)).processing_status,
      "in_progress",
    );
    clock.advance(2);
    const ended = await client.messages.batches.retrieve(batch.id);
    assert.equal(ended.processing_status, "ended");
    assert.equal(ended.ended_at, "2026-11-28T10:00:00.000000Z");
    assert.deepEqual(ended.request_counts, {
      processing: 0,
      succeeded: 2,
      errored: 0,
      canceled: 0,
      expired: 2,
    });
    const types = [...(await resultsById(client, batch.id)).values()].map((r) => r.type).sort();
    assert.deepEqual(types, ["expired", "expired", "succeeded", "succeeded"]);
  });

  it("archives results 29 days after creation (results 404)", async () => {
    const clock = new ManualClock();
    const { client } = await setup({ schedule: { advance: "instant" }, clock });
    const batch = await client.messages.batches.create({ requests: [request("a", "x")] });
    assert.equal((await resultsById(client, batch.id)).get("a")?.type, "succeeded");
    clock.advance(29 * 24 * HOUR);
    const archived = await client.messages.batches.retrieve(batch.id);
    assert.equal(archived.archived_at, "2026-12-26T10:00:00.000000Z");
    const err = await failure(resultsById(client, batch.id), NotFoundError);
    assert.equal(err.type, "not_found_error");
  });

  it("deletes only ended batches; a deleted batch is gone from retrieve and list", async () => {
    const { emulator, client } = await setup({ schedule: { advance: "manual" } });
    const batch = await client.messages.batches.create({ requests: [request("a", "x")] });
    const busy = await failure(client.messages.batches.delete(batch.id), BadRequestError);
    assert.match(busy.apiMessage ?? "", /cannot be deleted/);
    await client.messages.batches.cancel(batch.id);
    emulator.step(batch.id);
    assert.deepEqual(await client.messages.batches.delete(batch.id), {
      id: batch.id,
      type: "message_batch_deleted",
    });
    await failure(client.messages.batches.retrieve(batch.id), NotFoundError);
    await failure(client.messages.batches.delete(batch.id), NotFoundError);
    assert.equal((await client.messages.batches.list()).data.length, 0);
  });

  it("lists newest first with limit, after_id, before_id, has_more, first_id and last_id", async () => {
    const { emulator, client } = await setup({ schedule: { advance: "instant" } });
    const ids: string[] = [];
    for (let i = 1; i <= 5; i++) {
      ids.push((await client.messages.batches.create({ requests: [request(`r${i}`, "x")] })).id);
    }
    const newest = [...ids].reverse();

    const page = await client.messages.batches.list({ limit: 2 });
    assert.deepEqual(page.data.map((b) => b.id), newest.slice(0, 2));
    assert.equal(page.has_more, true);
    assert.equal(page.first_id, newest[0]);
    assert.equal(page.last_id, newest[1]);
    assert.equal(page.data[0].processing_status, "ended", "listing shows the current state");

    emulator.log.clear();
    const all: string[] = [];
    for await (const b of client.messages.batches.list({ limit: 2 })) all.push(b.id);
    assert.deepEqual(all, newest);
    assert.equal(emulator.log.count("GET /v1/messages/batches"), 3);
    assert.equal(emulator.log.entries[1].query.after_id, newest[1]);

    const after = await client.messages.batches.list({ after_id: ids[3], limit: 2 });
    assert.deepEqual(after.data.map((b) => b.id), [ids[2], ids[1]]);
    assert.equal(after.has_more, true);

    const backwards: string[] = [];
    for await (const b of client.messages.batches.list({ before_id: ids[1], limit: 2 })) {
      backwards.push(b.id);
    }
    assert.deepEqual(backwards, [ids[3], ids[2], ids[4]], "before_id pages towards the newest");

    const last = await client.messages.batches.list({ after_id: ids[0] });
    assert.deepEqual(last.data, []);
    assert.equal(last.has_more, false);
    assert.equal(last.first_id, null);
    await failure(client.messages.batches.list({ limit: 1001 }), BadRequestError);
  });

  it("enforces the custom_id rule, uniqueness, the count and size limits, max_tokens ≥ 1 and no stream", async () => {
    const { emulator, client } = await setup({ limits: { maxRequests: 3, maxBytes: 2_000 } });
    const cases: Array<[string, unknown[], RegExp]> = [
      ["bad character", [request("has space", "x")], /custom_id: String should match pattern/],
      ["too long", [request("a".repeat(65), "x")], /custom_id: String should match pattern/],
      ["empty", [request("", "x")], /custom_id: String should match pattern/],
      [
        "duplicate",
        [request("same", "x"), request("same", "y")],
        /requests\.1\.custom_id: Duplicate custom_id 'same'/,
      ],
      ["none", [], /at least 1 item/],
      ["too many", ["a", "b", "c", "d"].map((id) => request(id, "x")), /at most 3 items/],
      [
        "max_tokens 0",
        [request("z", "x", { max_tokens: 0 })],
        /requests\.0\.params\.max_tokens: .* greater than or equal to 1/,
      ],
      [
        "no max_tokens",
        [{ custom_id: "z", params: { model: MODEL, messages: [] } }],
        /params\.max_tokens: Field required/,
      ],
      ["stream", [request("z", "x", { stream: true })], /params\.stream/],
    ];
    for (const [what, requests, message] of cases) {
      const err = await failure(
        client.messages.batches.create({ requests } as never),
        BadRequestError,
      );
      assert.equal(err.type, "invalid_request_error", what);
      assert.match(err.apiMessage ?? "", message, what);
    }
    const tooBig = client.messages.batches.create({
      requests: [request("big", "x".repeat(3_000))],
    });
    const big = await failure(tooBig, ContentTooLargeError);
    assert.equal(big.status, 413);
    assert.equal(big.type, "request_too_large");
    assert.equal((await client.messages.batches.list()).data.length, 0, "nothing was created");
    assert.equal(emulator.log.count("POST /v1/messages/batches"), cases.length + 1);
    const ok = await client.messages.batches.create({
      requests: [request("A-z_0-9", "x"), request("b".repeat(64), "y")],
    });
    assert.equal(ok.request_counts.processing, 2);
  });

  it("can refuse invalid params at create instead (validateParamsAtCreate knob)", async () => {
    const { client } = await setup({ limits: { validateParamsAtCreate: 1 } });
    const create = (params: Record<string, unknown>) =>
      client.messages.batches.create({ requests: [request("a", "x", params)] });
    const err = await failure(create({ messages: [] }), BadRequestError);
    assert.equal(err.apiMessage, "requests.0.params.messages: at least one message is required");
    await failure(create({ model: "claude-x" }), NotFoundError);
  });

  for (
    const [kind, scenario] of [["malformed", { malformedLines: 1 }], ["blank", {
      blankLines: 1,
    }]] as const
  ) {
    it(`breaks the SDK's results stream mid-iteration with a ${kind} line`, async () => {
      const { client } = await setup({ schedule: { advance: "instant" }, batches: [scenario] });
      const batch = await client.messages.batches.create({
        requests: [request("a", "x"), request("b", "y")],
      });
      const seen: string[] = [];
      const err = await failure(
        (async () => {
          for await (const line of await client.messages.batches.results(batch.id)) {
            seen.push(line.custom_id);
          }
        })(),
        SyntaxError,
      );
      assert.ok(err instanceof SyntaxError);
      assert.equal(seen.length, 1, "one good line came before the bad one");
    });
  }
});

describe("anthropic faults through the SDK", () => {
  const status = (
    code: number,
    hint: { retryAfter?: number; retryAfterMs?: number } = {},
  ): FaultAction => ({
    kind: "status",
    status: code,
    ...hint,
  });

  it("retries a 429 with retry-after (seconds), then succeeds", async () => {
    // The API sends whole seconds; a fraction keeps the SDK's sleep at 1 ms.
    const faults = [{ match: { first: 2 }, action: status(429, { retryAfter: 0.001 }) }];
    const { emulator, client } = await setup({ faults }, { maxRetries: 2 });
    const own = backoff(client);
    await client.messages.create(ask("x"));
    assert.deepEqual(emulator.log.entries.map((e) => [e.retryCount, e.status]), [
      [0, 429],
      [1, 429],
      [2, 200],
    ]);
    assert.equal(own.uses, 0, "the SDK waited as retry-after said");
  });

  it("retries a 429 with retry-after-ms, and gives up with RateLimitError after maxRetries", async () => {
    const { emulator, client } = await setup({
      faults: [{ action: status(429, { retryAfterMs: 1 }) }],
    }, { maxRetries: 2 });
    const own = backoff(client);
    const err = await failure(client.messages.create(ask("x")), RateLimitError);
    assert.equal(err.type, "rate_limit_error");
    assert.equal(err.headers?.get("retry-after-ms"), "1");
    assert.deepEqual(emulator.log.entries.map((e) => e.retryCount), [0, 1, 2]);
    assert.equal(own.uses, 0, "the SDK waited as retry-after-ms said");
  });

  it("retries a 429 with neither header on the SDK's own backoff", async () => {
    const { emulator, client } = await setup({
      faults: [{ match: { first: 3 }, action: status(429) }],
    }, { maxRetries: 3 });
    const own = backoff(client);
    const counted = await client.messages.countTokens({
      model: MODEL,
      messages: [{ role: "user", content: "x" }],
    });
    assert.equal(counted.input_tokens, 1);
    const entries = emulator.log.entries;
    assert.deepEqual(entries.map((e) => [e.retryCount, e.status]), [[0, 429], [1, 429], [2, 429], [
      3,
      200,
    ]]);
    assert.equal(own.uses, 3);
    emulator.faults.add({ action: status(429) });
    const spent = await failure(
      client.messages.create(ask("y"), { maxRetries: 0 }),
      RateLimitError,
    );
    assert.equal(spent.headers?.get("retry-after"), null);
    assert.equal(spent.headers?.get("retry-after-ms"), null);
  });

  for (
    const [code, type, klass] of [
      [500, "api_error", InternalServerError],
      [502, "api_error", InternalServerError],
      [503, "api_error", ServiceUnavailableError],
      [529, "overloaded_error", OverloadedError],
    ] as const
  ) {
    it(`retries a ${code}, and surfaces it as ${klass.name} (${type}) when retries run out`, async () => {
      const faults = [{ match: { first: 1 }, action: status(code, { retryAfterMs: 1 }) }];
      const { emulator, client } = await setup({ faults }, { maxRetries: 1 });
      const own = backoff(client);
      const message = await client.messages.create(ask("x"));
      assert.equal(message.stop_reason, "end_turn");
      assert.deepEqual(emulator.log.entries.map((e) => [e.retryCount, e.status]), [[0, code], [
        1,
        200,
      ]]);
      assert.equal(own.uses, 0);
      emulator.faults.add({ action: status(code) });
      const err = await failure(client.messages.create(ask("y"), { maxRetries: 0 }), klass);
      assert.equal(err.status, code);
      assert.equal(err.type, type);
    });
  }

  it("obeys x-should-retry over the status, and surfaces a proxy's HTML error page", async () => {
    const { emulator, client } = await setup({
      faults: [
        {
          match: { promptContains: "NO-RETRY" },
          action: { kind: "status", status: 500, shouldRetry: false },
        },
        {
          match: { promptContains: "RETRY-400", first: 1 },
          action: { kind: "status", status: 400, retryAfterMs: 1, shouldRetry: true },
        },
        {
          match: { promptContains: "PROXY" },
          action: { kind: "status", status: 502, html: "<html>Bad gateway</html>" },
        },
      ],
    }, { maxRetries: 2 });
    await failure(client.messages.create(ask("NO-RETRY")), InternalServerError);
    assert.equal(emulator.log.count("POST /v1/messages"), 1);
    const message = await client.messages.create(ask("RETRY-400"));
    assert.equal(message.stop_reason, "end_turn");
    assert.deepEqual(emulator.log.entries.slice(1).map((e) => [e.retryCount, e.status]), [
      [0, 400],
      [1, 200],
    ]);
    const proxy = await failure(
      client.messages.create(ask("PROXY"), { maxRetries: 0 }),
      InternalServerError,
    );
    assert.equal(proxy.status, 502);
    assert.equal(proxy.type, null);
    assert.match(proxy.message, /Bad gateway/);
  });

  it("answers slowly within the client's timeout, and times out beyond it", async () => {
    const { emulator, client } = await setup({
      faults: [{ match: { promptContains: "SLOW" }, action: { kind: "slow", delayMs: 20 } }],
    });
    const message = await client.messages.create(ask("SLOW but fine"));
    assert.equal(message.stop_reason, "end_turn");
    emulator.faults.clear();
    emulator.faults.add({
      match: { promptContains: "SLOWER" },
      action: { kind: "slow", delayMs: 600 },
    });
    await failure(
      client.messages.create(ask("SLOWER than the timeout"), { timeout: 100 }),
      APIConnectionTimeoutError,
    );
    assert.equal(emulator.log.entries[0].fault, "slow");
  });

  it("retries a dropped connection, and fails with APIConnectionError when every attempt is dropped", async () => {
    const faults: FaultRule[] = [{ match: { first: 1 }, action: { kind: "drop" } }];
    const { emulator, client } = await setup({ faults }, { maxRetries: 1 });
    const own = backoff(client);
    const message = await client.messages.create(ask("x"));
    assert.equal(message.stop_reason, "end_turn");
    const attempts = emulator.log.entries.map((e) => [e.retryCount, e.status, e.fault]);
    assert.deepEqual(attempts, [[0, 0, "drop"], [1, 200, undefined]]);
    assert.equal(own.uses, 1, "a dropped connection carries no hint");
    emulator.faults.add({ action: { kind: "drop" } });
    await failure(client.messages.create(ask("y"), { maxRetries: 0 }), APIConnectionError);
  });

  it("applies faults to batch endpoints: by prompt at create, by batch id on retrieve", async () => {
    const { emulator, client } = await setup(
      {
        faults: [{
          match: { promptContains: "MARK", first: 1 },
          action: status(529, { retryAfterMs: 1 }),
        }],
      },
      { maxRetries: 2 },
    );
    const batch = await client.messages.batches.create({
      requests: [{ custom_id: "m", params: ask("MARK this") }],
    });
    emulator.faults.add({
      match: { batch: batch.id, method: "GET", first: 2 },
      action: status(503, { retryAfterMs: 1 }),
    });
    const retrieved = await client.messages.batches.retrieve(batch.id);
    assert.equal(
      retrieved.processing_status,
      "in_progress",
      "failed attempts do not count as polls",
    );
    const creates = emulator.log.find("POST /v1/messages/batches");
    assert.deepEqual(creates.map((e) => [e.retryCount, e.status]), [[0, 529], [1, 200]]);
    assert.deepEqual(
      emulator.log.find(`GET /v1/messages/batches/${batch.id}`).map((
        e,
      ) => [e.retryCount, e.status]),
      [
        [0, 503],
        [1, 503],
        [2, 200],
      ],
    );
  });
});

describe("anthropic batch end times", () => {
  it("never ends a batch after its expiry: a step due before it completes, a step after it expires", async () => {
    const clock = new ManualClock();
    const emu = await startEmulator({
      provider: "anthropic",
      clock,
      schedule: { advance: "clock", stepMs: 60_000 },
    });
    const client = new Anthropic({ apiKey: emu.apiKey, baseURL: emu.baseURL, maxRetries: 0 });
    const params = {
      model: "claude-sonnet-4-5",
      max_tokens: 16,
      messages: [{ role: "user" as const, content: "hi" }],
    };
    try {
      const batch = await client.messages.batches.create({
        requests: [{ custom_id: "a", params }],
      });
      clock.advance(25 * 3600_000);
      const ended = await client.messages.batches.retrieve(batch.id);
      assert.equal(ended.processing_status, "ended");
      assert.equal(ended.request_counts.succeeded, 1);
      assert.equal(Date.parse(ended.ended_at!), Date.parse(ended.created_at) + 60_000);
    } finally {
      await emu.stop();
    }
    const late = await startEmulator({
      provider: "anthropic",
      clock,
      schedule: { advance: "manual" },
    });
    const lateClient = new Anthropic({ apiKey: late.apiKey, baseURL: late.baseURL, maxRetries: 0 });
    try {
      const batch = await lateClient.messages.batches.create({
        requests: [{ custom_id: "a", params }],
      });
      clock.advance(25 * 3600_000);
      late.step(batch.id);
      const ended = await lateClient.messages.batches.retrieve(batch.id);
      assert.equal(ended.request_counts.expired, 1);
      assert.equal(ended.ended_at, ended.expires_at);
    } finally {
      await late.stop();
    }
  });
});
