import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { describe, it } from "node:test";
import OpenAI, { type APIError, toFile } from "openai";
import { ManualClock } from "../clock.ts";
import type { FaultRule } from "../faults.ts";
import { RequestLog } from "../log.ts";
import { BatchProgress } from "../schedule.ts";
import {
  type Emulator,
  type EmulatorContext,
  type EmulatorOptions,
  HttpError,
  startEmulator,
} from "../server.ts";
import { chatCompletion } from "./openai.ts";

type Options = Omit<EmulatorOptions, "provider">;
type Batch = OpenAI.Batches.Batch;
/** A line of a batch output or error file. */
interface Line {
  id: string;
  custom_id: string;
  // deno-lint-ignore no-explicit-any
  response: { status_code: number; request_id: string; body: any } | null;
  error: { code: string; message: string } | null;
}
type ErrorClass = new (...args: never[]) => APIError;

/** Asserts that `promise` rejects with an SDK error of class `cls` whose fields are as expected. */
async function rejectsWith(
  promise: Promise<unknown>,
  cls: ErrorClass,
  expected: {
    status?: number;
    type?: string;
    code?: string | null;
    param?: string | null;
    message?: RegExp;
  } = {},
  what = "",
): Promise<APIError> {
  const error: unknown = await promise.then(
    () => assert.fail(`${what}: resolved`),
    (e: unknown) => e,
  );
  assert.ok(error instanceof cls, `${what}: ${error}`);
  for (const key of ["status", "type", "code", "param"] as const) {
    if (key in expected) assert.equal(error[key] ?? null, expected[key], `${what}: ${key}`);
  }
  if (expected.message) assert.match(error.message, expected.message, what);
  return error;
}

/** Runs `fn` against a fresh OpenAI emulator and an SDK client pointed at it. */
async function withOpenAI(
  options: Options,
  fn: (emu: Emulator, client: OpenAI) => Promise<void>,
  client: Partial<ConstructorParameters<typeof OpenAI>[0]> = {},
): Promise<void> {
  const emu = await startEmulator({ provider: "openai", ...options });
  try {
    await fn(
      emu,
      new OpenAI({ apiKey: emu.apiKey, baseURL: emu.baseURL, maxRetries: 0, ...client }),
    );
  } finally {
    await emu.stop();
  }
}

const MODEL = "gpt-4o-mini";

/** A batch input line for the chat endpoint. */
function chatLine(
  customId: string,
  prompt: string,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    custom_id: customId,
    method: "POST",
    url: "/v1/chat/completions",
    body: { model: MODEL, messages: [{ role: "user", content: prompt }], ...extra },
  };
}

function jsonl(lines: unknown[]): string {
  return lines.map((l) => (typeof l === "string" ? l : JSON.stringify(l))).join("\n") + "\n";
}

async function upload(client: OpenAI, lines: unknown[], name = "in.jsonl") {
  return await client.files.create({
    file: await toFile(Buffer.from(jsonl(lines)), name),
    purpose: "batch",
  });
}

async function createBatch(client: OpenAI, lines: unknown[]): Promise<Batch> {
  const file = await upload(client, lines);
  return await client.batches.create({
    input_file_id: file.id,
    endpoint: "/v1/chat/completions",
    completion_window: "24h",
  });
}

/** Creates a batch and retrieves it once: under the instant schedule it has then ended. */
async function createSettled(client: OpenAI, lines: unknown[]): Promise<Batch> {
  const created = await createBatch(client, lines);
  assert.equal(created.status, "validating", "a create always answers validating");
  return await client.batches.retrieve(created.id);
}

async function fileText(client: OpenAI, id: string): Promise<string> {
  return await (await client.files.content(id)).text();
}

async function readLines(client: OpenAI, id: string | null | undefined): Promise<Line[]> {
  assert.ok(id, "a file id");
  return (await fileText(client, id)).split("\n").filter(Boolean).map((l) => JSON.parse(l));
}

/** Retrieves a batch until it is terminal, returning every status seen (create's included). */
async function pollToEnd(client: OpenAI, batch: Batch): Promise<{ batch: Batch; seen: Batch[] }> {
  const seen = [batch];
  while (!["completed", "failed", "expired", "cancelled"].includes(batch.status)) {
    batch = await client.batches.retrieve(batch.id);
    seen.push(batch);
    assert.ok(seen.length < 20, "the batch never ends");
  }
  return { batch, seen };
}

const prompts = (n: number) =>
  Array.from({ length: n }, (_, i) => chatLine(`row-${i}`, `prompt number ${i}`));

describe("openai emulator: chat completions", () => {
  it("answers deterministically with usage, ids and headers", async () => {
    await withOpenAI({}, async (_emu, client) => {
      const { data, response, request_id } = await client.chat.completions
        .create({
          model: MODEL,
          messages: [{ role: "system", content: "be brief" }, {
            role: "user",
            content: "hello there",
          }],
        })
        .withResponse();
      assert.match(data.id, /^chatcmpl-[0-9a-f]+$/);
      assert.equal(data.object, "chat.completion");
      assert.equal(data.model, MODEL);
      assert.equal(data.created, Math.floor(Date.UTC(2026, 10, 27, 10) / 1000));
      assert.equal(data.choices.length, 1);
      assert.equal(data.choices[0].message.content, "[gpt-4o-mini] hello there");
      assert.equal(data.choices[0].message.role, "assistant");
      assert.equal(data.choices[0].finish_reason, "stop");
      assert.deepEqual(data.usage, {
        prompt_tokens: 4,
        completion_tokens: 3,
        total_tokens: 7,
        prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
        completion_tokens_details: {
          reasoning_tokens: 0,
          audio_tokens: 0,
          accepted_prediction_tokens: 0,
          rejected_prediction_tokens: 0,
        },
      });
      assert.match(request_id ?? "", /^req_/);
      assert.equal(response.headers.get("x-ratelimit-limit-requests"), "10000");
    });
  });

  it("stops with finish_reason length at max_tokens / max_completion_tokens, and honours n and stop", async () => {
    await withOpenAI({}, async (_emu, client) => {
      const messages = [{ role: "user" as const, content: "one two three four five" }];
      const cut = await client.chat.completions.create({ model: MODEL, messages, max_tokens: 3 });
      assert.equal(cut.choices[0].message.content, "[gpt-4o-mini] one two");
      assert.equal(cut.choices[0].finish_reason, "length");
      assert.equal(cut.usage?.completion_tokens, 3);
      // A reasoning model spends the cap on reasoning first (16 tokens a prompt word: 80 here).
      const cut2 = await client.chat.completions.create({
        model: "gpt-5-mini",
        messages,
        max_completion_tokens: 82,
      });
      assert.equal(cut2.choices[0].message.content, "[gpt-5-mini] one");
      assert.equal(cut2.choices[0].finish_reason, "length");
      assert.deepEqual([
        cut2.usage?.completion_tokens,
        cut2.usage?.completion_tokens_details?.reasoning_tokens,
      ], [82, 80]);
      const many = await client.chat.completions.create({
        model: MODEL,
        messages,
        n: 3,
        stop: [" four"],
      });
      assert.deepEqual(many.choices.map((c) => [c.index, c.message.content, c.finish_reason]), [
        [0, "[gpt-4o-mini] one two three", "stop"],
        [1, "[gpt-4o-mini] one two three", "stop"],
        [2, "[gpt-4o-mini] one two three", "stop"],
      ]);
      assert.equal(many.usage?.completion_tokens, 12);
    });
  });

  it("answers structured output with a value of the schema, and streams", async () => {
    await withOpenAI({}, async (_emu, client) => {
      const schema = {
        type: "object",
        properties: {
          summary: { type: "string" },
          words: { type: "integer" },
          tags: { type: "array", items: { type: "string", enum: ["a", "b"] } },
        },
        required: ["summary", "words", "tags"],
        additionalProperties: false,
      };
      const structured = await client.chat.completions.create({
        model: MODEL,
        messages: [{ role: "user", content: "sum up" }],
        response_format: {
          type: "json_schema",
          json_schema: { name: "out", schema, strict: true },
        },
      });
      assert.deepEqual(JSON.parse(structured.choices[0].message.content!), {
        summary: "[gpt-4o-mini] sum up",
        words: 3,
        tags: ["a"],
      });
      const loose = { type: "object", properties: { a: { type: "string" } } };
      await rejectsWith(
        client.chat.completions.create({
          model: MODEL,
          messages: [{ role: "user", content: "x" }],
          response_format: {
            type: "json_schema",
            json_schema: { name: "out", schema: loose, strict: true },
          },
        }),
        OpenAI.BadRequestError,
        {
          code: "invalid_json_schema",
          param: "response_format",
          message: /'additionalProperties' is required/,
        },
      );
      await rejectsWith(
        client.chat.completions.create({
          model: MODEL,
          messages: [{ role: "user", content: "x" }],
          response_format: { type: "json_object" },
        }),
        OpenAI.BadRequestError,
        { param: "messages", message: /word 'json'/ },
      );
      const stream = await client.chat.completions.create({
        model: MODEL,
        messages: [{ role: "user", content: "stream me please" }],
        stream: true,
        stream_options: { include_usage: true },
      });
      let text = "";
      let finish: string | null = null;
      let usage: OpenAI.CompletionUsage | null | undefined;
      for await (const chunk of stream) {
        text += chunk.choices[0]?.delta.content ?? "";
        finish = chunk.choices[0]?.finish_reason ?? finish;
        usage = chunk.usage ?? usage;
      }
      assert.equal(text, "[gpt-4o-mini] stream me please");
      assert.equal(finish, "stop");
      assert.equal(usage?.total_tokens, 7);
    });
  });

  it("rejects invalid requests with the API's status, type, param and code, without retrying", async () => {
    await withOpenAI({}, async (emu, client) => {
      const hi = [{ role: "user", content: "x" }];
      const chat = (extra: Record<string, unknown>) => ({ model: MODEL, messages: hi, ...extra });
      const bad = OpenAI.BadRequestError;
      const cases: Array<
        [string, Record<string, unknown>, ErrorClass, string | null, string | null]
      > = [
        [
          "unknown model",
          chat({ model: "gpt-nope" }),
          OpenAI.NotFoundError,
          null,
          "model_not_found",
        ],
        ["missing messages", { model: MODEL }, bad, "messages", "missing_required_parameter"],
        ["empty messages", chat({ messages: [] }), bad, "messages", "empty_array"],
        ["temperature", chat({ temperature: 3 }), bad, "temperature", "decimal_above_max_value"],
        [
          "negative temperature",
          chat({ temperature: -1 }),
          bad,
          "temperature",
          "decimal_below_min_value",
        ],
        ["top_p", chat({ top_p: 1.5 }), bad, "top_p", "decimal_above_max_value"],
        ["n", chat({ n: 0 }), bad, "n", "integer_below_min_value"],
        ["max_tokens", chat({ max_tokens: 0 }), bad, "max_tokens", "integer_below_min_value"],
        ["max_tokens too large", chat({ max_tokens: 100000 }), bad, "max_tokens", "invalid_value"],
        [
          "max_tokens, reasoning model",
          chat({ model: "o4-mini", max_tokens: 10 }),
          bad,
          "max_tokens",
          "unsupported_parameter",
        ],
        [
          "temperature, reasoning model",
          chat({ model: "gpt-5", temperature: 0.2 }),
          bad,
          "temperature",
          "unsupported_value",
        ],
        ["seed type", chat({ seed: "1" }), bad, "seed", "invalid_type"],
        [
          "stop count",
          chat({ stop: ["a", "b", "c", "d", "e"] }),
          bad,
          "stop",
          "array_above_max_length",
        ],
        [
          "role",
          chat({ messages: [{ role: "bot", content: "x" }] }),
          bad,
          "messages[0].role",
          "invalid_value",
        ],
        [
          "content",
          chat({ messages: [{ role: "user" }] }),
          bad,
          "messages[0].content",
          "missing_required_parameter",
        ],
        [
          "tool_call_id",
          chat({ messages: [{ role: "tool", content: "x" }] }),
          bad,
          "messages[0].tool_call_id",
          "missing_required_parameter",
        ],
        [
          "part type",
          chat({
            messages: [{
              role: "system",
              content: [{ type: "image_url", image_url: { url: "x" } }],
            }],
          }),
          bad,
          "messages[0].content[0].type",
          "invalid_value",
        ],
        [
          "response_format",
          chat({ response_format: { type: "xml" } }),
          bad,
          "response_format.type",
          "invalid_value",
        ],
        [
          "stream_options",
          chat({ stream_options: { include_usage: true } }),
          bad,
          "stream_options",
          null,
        ],
        ["unknown argument", chat({ temprature: 1 }), bad, null, null],
      ];
      for (const [what, body, cls, param, code] of cases) {
        const expected = { param, code, type: "invalid_request_error" };
        const e = await rejectsWith(
          client.chat.completions.create(body as never),
          cls,
          expected,
          what,
        );
        assert.match(e.requestID ?? "", /^req_/, what);
      }
      const logged = emu.log.find("POST /v1/chat/completions");
      assert.equal(logged.length, cases.length);
      assert.ok(logged.every((e) => e.retryCount === 0 && (e.status === 400 || e.status === 404)));
    }, { maxRetries: 2 });
  });

  it("refuses a wrong or missing key with 401 invalid_api_key, never echoing the key", async () => {
    await withOpenAI({ apiKey: "sk-the-real-secret-key-1234" }, async (emu) => {
      const client = new OpenAI({
        apiKey: "sk-wrong-secret-key-987654",
        baseURL: emu.baseURL,
        maxRetries: 0,
      });
      const e = await rejectsWith(
        client.chat.completions.create({
          model: MODEL,
          messages: [{ role: "user", content: "x" }],
        }),
        OpenAI.AuthenticationError,
        {
          status: 401,
          code: "invalid_api_key",
          type: "invalid_request_error",
          message: /Incorrect API key provided: sk-wrong\*+7654\./,
        },
      );
      assert.ok(!e.message.includes("sk-wrong-secret-key-987654"));
      const short = new OpenAI({ apiKey: "test-kez", baseURL: emu.baseURL, maxRetries: 0 });
      await rejectsWith(short.models.list(), OpenAI.AuthenticationError, {
        message: /provided: te\*\*\*ez\./,
      });
      const res = await fetch(`${emu.baseURL}/chat/completions`, {
        method: "POST",
        body: "{}",
        headers: { "content-type": "application/json" },
      });
      assert.equal(res.status, 401);
      const body = (await res.json()) as { error: { message: string; code: string | null } };
      assert.match(body.error.message, /You didn't provide an API key/);
      assert.equal(body.error.code, null);
      assert.ok(emu.log.entries.every((e) => !JSON.stringify(e).includes("secret")));
    });
  });

  it("counts input tokens of a Responses-shaped request", async () => {
    await withOpenAI({}, async (_emu, client) => {
      const plain = await client.responses.inputTokens.count({
        model: MODEL,
        input: "one two three",
        instructions: "be very brief",
      });
      assert.deepEqual(plain, { object: "response.input_tokens", input_tokens: 6 });
      const list = await client.responses.inputTokens.count({
        model: MODEL,
        input: [
          { role: "user", content: "alpha beta" },
          // An earlier answer as the published definition has it (OutputMessage: id, status; output_text with annotations, logprobs).
          {
            type: "message",
            id: "msg_1",
            status: "completed",
            role: "assistant",
            content: [{ type: "output_text", text: "gamma", annotations: [], logprobs: [] }],
          } as never,
          { role: "user", content: [{ type: "input_text", text: "delta epsilon zeta" }] },
        ],
      });
      assert.equal(list.input_tokens, 6);
      await assert.rejects(
        client.responses.inputTokens.count({ model: "nope", input: "x" }),
        OpenAI.NotFoundError,
      );
      await rejectsWith(
        client.responses.inputTokens.count({
          model: MODEL,
          input: [{ role: "robot", content: "x" }] as never,
        }),
        OpenAI.BadRequestError,
        { param: "input[0].role", code: "invalid_value" },
      );
    });
  });

  it("answers the Responses API, cut at max_output_tokens", async () => {
    await withOpenAI({}, async (_emu, client) => {
      const r = await client.responses.create({ model: MODEL, input: "tell me something" });
      assert.equal(r.status, "completed");
      assert.equal(r.output_text, "[gpt-4o-mini] tell me something");
      assert.equal(r.usage?.input_tokens, 3);
      const words = Array.from({ length: 40 }, (_, i) => `w${i}`).join(" ");
      const cut = await client.responses.create({
        model: MODEL,
        input: words,
        max_output_tokens: 16,
      });
      assert.equal(cut.status, "incomplete");
      assert.equal(cut.incomplete_details?.reason, "max_output_tokens");
      assert.equal(cut.usage?.output_tokens, 16);
    });
  });
});

describe("openai emulator: structured output and the reply fault", () => {
  const schema = {
    type: "object",
    properties: {
      summary: { type: "string" },
      words: { type: "integer", minimum: 0 },
      score: { type: "number" },
      done: { type: "boolean" },
      tags: { type: "array", items: { type: "string", enum: ["x", "y"] } },
    },
    required: ["summary", "words", "score", "done", "tags"],
    additionalProperties: false,
  };
  const format = {
    type: "json_schema" as const,
    json_schema: { name: "answer", schema, strict: true },
  };
  const long = Array.from({ length: 40 }, (_, i) => `w${i}`).join(" ");

  it("answers a schema request with JSON that parses and conforms, through chat, responses and a batch", async () => {
    await withOpenAI({ schedule: { advance: "instant" } }, async (_emu, client) => {
      const chat = await client.chat.completions.create({
        model: MODEL,
        messages: [{ role: "user", content: "rate this" }],
        response_format: format,
      });
      const value = JSON.parse(chat.choices[0].message.content!);
      assert.deepEqual(Object.keys(value), ["summary", "words", "score", "done", "tags"]);
      assert.deepEqual(value, {
        summary: "[gpt-4o-mini] rate this",
        words: 3,
        score: 3,
        done: true,
        tags: ["x"],
      });
      assert.equal(chat.choices[0].finish_reason, "stop");
      // A JSON answer counts one token per 4 characters.
      assert.equal(
        chat.usage?.completion_tokens,
        Math.ceil(chat.choices[0].message.content!.length / 4),
      );

      const r = await client.responses.create({
        model: MODEL,
        input: "rate this",
        text: { format: { type: "json_schema", name: "answer", schema, strict: true } },
      });
      assert.equal(r.status, "completed");
      assert.deepEqual(JSON.parse(r.output_text), value);

      const created = await createBatch(client, [
        chatLine("s1", "rate this", { response_format: format }),
      ]);
      const batch = await client.batches.retrieve(created.id);
      const [line] = await readLines(client, batch.output_file_id);
      assert.deepEqual(JSON.parse(line.response?.body.choices[0].message.content), value);
    });
  });

  it("cuts JSON at max_tokens into unparseable text with finish_reason length (chat, responses)", async () => {
    await withOpenAI({}, async (_emu, client) => {
      const cut = await client.chat.completions.create({
        model: MODEL,
        messages: [{ role: "user", content: long }],
        response_format: format,
        max_tokens: 5,
      });
      const text = cut.choices[0].message.content!;
      assert.equal(cut.choices[0].finish_reason, "length");
      assert.equal(text, '{"summary":"[gpt-4o-');
      assert.throws(() => JSON.parse(text), SyntaxError);
      assert.equal(cut.usage?.completion_tokens, 5);
      const object = await client.chat.completions.create({
        model: MODEL,
        messages: [{ role: "user", content: `answer in json: ${long}` }],
        response_format: { type: "json_object" },
        max_completion_tokens: 3,
      });
      assert.deepEqual([object.choices[0].message.content, object.choices[0].finish_reason], [
        '{"answer":"[',
        "length",
      ]);
      const r = await client.responses.create({
        model: MODEL,
        input: long,
        max_output_tokens: 16,
        text: { format: { type: "json_schema", name: "answer", schema, strict: true } },
      });
      assert.equal(r.status, "incomplete");
      assert.equal(r.incomplete_details?.reason, "max_output_tokens");
      assert.equal(r.output_text.length, 64);
      assert.throws(() => JSON.parse(r.output_text), SyntaxError);
      assert.equal(r.usage?.output_tokens, 16);
    });
  });

  it("replaces the answer text under a reply fault: status 200, usual envelope and finish reason, logged", async () => {
    const faults: FaultRule[] = [{
      name: "garble",
      match: { promptContains: "[[garble]]" },
      action: { kind: "reply", text: '{"summary": 12' },
    }];
    await withOpenAI({ faults }, async (emu, client) => {
      const plain = await client.chat.completions.create({
        model: MODEL,
        messages: [{ role: "user", content: "fine" }],
        response_format: format,
      });
      assert.doesNotThrow(() => JSON.parse(plain.choices[0].message.content!));
      const bad = await client.chat.completions.create({
        model: MODEL,
        messages: [{ role: "user", content: "x [[garble]]" }],
        response_format: format,
      });
      assert.equal(bad.choices[0].message.content, '{"summary": 12');
      assert.equal(bad.choices[0].finish_reason, "stop");
      assert.equal(bad.object, "chat.completion");
      assert.equal(bad.usage?.completion_tokens, 4);
      // The finish reason stays the generated answer's: cut at max_tokens, it is still "length".
      const cut = await client.chat.completions.create({
        model: MODEL,
        messages: [{ role: "user", content: `${long} [[garble]]` }],
        max_tokens: 2,
      });
      assert.deepEqual([cut.choices[0].message.content, cut.choices[0].finish_reason], [
        '{"summary": 12',
        "length",
      ]);
      const stream = await client.chat.completions.create({
        model: MODEL,
        messages: [{ role: "user", content: "[[garble]]" }],
        stream: true,
      });
      let streamed = "";
      for await (const chunk of stream) streamed += chunk.choices[0]?.delta.content ?? "";
      assert.equal(streamed, '{"summary": 12');
      const r = await client.responses.create({ model: MODEL, input: "so [[garble]]" });
      assert.deepEqual([r.status, r.output_text], ["completed", '{"summary": 12']);
      // Only answering routes see reply rules: a models call is untouched and uncounted.
      await client.models.list();
      assert.deepEqual(
        emu.log.entries.map((e) => [e.path, e.status, e.fault]),
        [
          ["/v1/chat/completions", 200, undefined],
          ["/v1/chat/completions", 200, "garble"],
          ["/v1/chat/completions", 200, "garble"],
          ["/v1/chat/completions", 200, "garble"],
          ["/v1/responses", 200, "garble"],
          ["/v1/models", 200, undefined],
        ],
      );
    });
  });

  it("replaces the answers of the batch lines a reply fault matches, counting lines like requests", async () => {
    await withOpenAI({ schedule: { advance: "instant" } }, async (emu, client) => {
      emu.faults.add({
        match: { promptContains: "[[garble]]", first: 1 },
        action: { kind: "reply", text: "not json" },
      });
      const lines = [
        chatLine("a", "fine", { response_format: format }),
        chatLine("b", "one [[garble]]", { response_format: format }),
        chatLine("c", "two [[garble]]", { response_format: format }),
      ];
      const created = await createBatch(client, lines);
      const batch = await client.batches.retrieve(created.id);
      assert.equal(batch.status, "completed");
      const out = new Map(
        (await readLines(client, batch.output_file_id)).map((
          l,
        ) => [l.custom_id, l.response?.body.choices[0]]),
      );
      assert.equal(out.get("b").message.content, "not json");
      assert.equal(out.get("b").finish_reason, "stop");
      assert.deepEqual(JSON.parse(out.get("a").message.content).summary, "[gpt-4o-mini] fine");
      assert.deepEqual(
        JSON.parse(out.get("c").message.content).summary,
        "[gpt-4o-mini] two [[garble]]",
        "first: 1 spent on line b",
      );
      // The create and upload requests carried the marker, yet they answer no prompt: not faulted.
      assert.ok(emu.log.entries.every((e) => e.fault === undefined));
    });
  });
});

describe("openai emulator: the chat builder shared with OpenRouter", () => {
  it("builds and validates a completion outside the server, with the host's models, params and id prefix", () => {
    const counters = new Map<string, number>();
    const ctx: EmulatorContext = {
      options: { provider: "openrouter", apiKey: "k" },
      clock: new ManualClock(),
      log: new RequestLog(),
      progress: new BatchProgress({ advance: "manual" }, new ManualClock()),
      origin: "",
      next: (name) => {
        counters.set(name, (counters.get(name) ?? 0) + 1);
        return counters.get(name)!;
      },
      scenario: () => ({}),
      acceptsModel: (model, known) => known.includes(model),
      limit: (_name, fallback) => fallback,
    };
    const known = ["openai/gpt-4o-mini"];
    const body = {
      model: "openai/gpt-4o-mini",
      messages: [{ role: "user", content: "hi you" }],
      provider: { only: ["openai"] },
    };
    const out = chatCompletion(ctx, body, known, { extraParams: ["provider"], idPrefix: "gen-" });
    assert.match(String(out.id), /^gen-/);
    assert.equal(
      (out.choices as Array<{ message: { content: string } }>)[0].message.content,
      "[openai/gpt-4o-mini] hi you",
    );
    assert.throws(
      () => chatCompletion(ctx, body, known),
      (e: unknown) => e instanceof HttpError && e.status === 400 && /provider/.test(e.message),
    );
    assert.throws(
      () => chatCompletion(ctx, { ...body, model: "x/y" }, known, { extraParams: ["provider"] }),
      (e: unknown) => e instanceof HttpError && e.status === 404 && e.code === "model_not_found",
    );
  });
});

describe("openai emulator: files", () => {
  it("uploads, retrieves, lists, downloads and deletes", async () => {
    await withOpenAI({}, async (_emu, client) => {
      const file = await upload(client, prompts(2));
      assert.match(file.id, /^file-/);
      assert.equal(file.purpose, "batch");
      assert.equal(file.filename, "in.jsonl");
      assert.equal(file.bytes, Buffer.byteLength(jsonl(prompts(2))));
      assert.equal(file.expires_at, file.created_at + 30 * 86400);
      const other = await client.files.create({
        file: await toFile(Buffer.from("hi"), "notes.txt"),
        purpose: "user_data",
      });
      assert.equal(other.expires_at, null);
      assert.deepEqual(await client.files.retrieve(file.id), file);
      assert.equal(await fileText(client, file.id), jsonl(prompts(2)));
      const ids: string[] = [];
      for await (const f of client.files.list()) ids.push(f.id);
      assert.deepEqual(ids, [other.id, file.id]);
      const batchOnly: string[] = [];
      for await (const f of client.files.list({ purpose: "batch" })) batchOnly.push(f.id);
      assert.deepEqual(batchOnly, [file.id]);
      assert.deepEqual(await client.files.delete(file.id), {
        id: file.id,
        object: "file",
        deleted: true,
      });
      await rejectsWith(client.files.retrieve(file.id), OpenAI.NotFoundError, {
        message: /No such File object/,
      });
      await assert.rejects(client.files.content("file-unknown"), OpenAI.NotFoundError);
    });
  });

  it("checks uploads: batch files must be .jsonl within maxBytes, purposes are the documented ones", async () => {
    await withOpenAI({ limits: { maxBytes: 100 } }, async (_emu, client) => {
      await rejectsWith(
        client.files.create({ file: await toFile(Buffer.from("{}"), "in.csv"), purpose: "batch" }),
        OpenAI.BadRequestError,
        { message: /Must be \.jsonl/ },
      );
      await rejectsWith(
        client.files.create({
          file: await toFile(Buffer.from("x".repeat(101)), "in.jsonl"),
          purpose: "batch",
        }),
        OpenAI.BadRequestError,
        { message: /^400 File is too large\.$/, param: null, code: null },
      );
      await rejectsWith(
        client.files.create({
          file: await toFile(Buffer.from("x"), "in.jsonl"),
          purpose: "homework" as never,
        }),
        OpenAI.BadRequestError,
        { param: "purpose", code: "invalid_value" },
      );
      const big = await client.files.create({
        file: await toFile(Buffer.from("x".repeat(500)), "a.pdf"),
        purpose: "user_data",
      });
      assert.equal(big.bytes, 500);
    });
  });

  it("forgets a file once its expires_after has passed on the clock", async () => {
    const clock = new ManualClock();
    await withOpenAI({ clock }, async (_emu, client) => {
      const file = await client.files.create({
        file: await toFile(Buffer.from(jsonl(prompts(1))), "in.jsonl"),
        purpose: "batch",
        expires_after: { anchor: "created_at", seconds: 3600 },
      });
      assert.equal(file.expires_at, file.created_at + 3600);
      clock.advance(3600_000);
      await assert.rejects(client.files.retrieve(file.id), OpenAI.NotFoundError);
    });
  });
});

describe("openai emulator: batches", () => {
  it("runs the whole lifecycle, one state per poll, with unordered output and an error file", async () => {
    const clock = new ManualClock();
    await withOpenAI({ clock, batches: [{ failPromptContains: "FAIL" }] }, async (emu, client) => {
      const lines = [
        ...prompts(6),
        chatLine("bad-1", "please FAIL here"),
        chatLine("bad-2", "FAIL again"),
      ];
      const file = await upload(client, lines);
      const created = await client.batches.create({
        input_file_id: file.id,
        endpoint: "/v1/chat/completions",
        completion_window: "24h",
        metadata: { job: "nightly" },
      });
      assert.match(created.id, /^batch_[0-9a-f]{32}$/);
      assert.equal(created.status, "validating");
      assert.deepEqual(created.request_counts, { total: 0, completed: 0, failed: 0 });
      assert.equal(created.expires_at, created.created_at + 86400);
      assert.deepEqual(created.metadata, { job: "nightly" });

      const seen: Batch[] = [created];
      for (let i = 0; i < 4; i++) {
        clock.advance(10_000);
        seen.push(await client.batches.retrieve(created.id));
      }
      assert.deepEqual(seen.map((b) => b.status), [
        "validating",
        "in_progress",
        "in_progress",
        "finalizing",
        "completed",
      ]);
      assert.deepEqual(seen.map((b) => b.request_counts), [
        { total: 0, completed: 0, failed: 0 },
        { total: 8, completed: 0, failed: 0 },
        seen[2].request_counts, // half of the requests, in processing order
        { total: 8, completed: 6, failed: 2 },
        { total: 8, completed: 6, failed: 2 },
      ]);
      const half = seen[2].request_counts!;
      assert.equal(half.completed + half.failed, 4);
      const done = seen[4];
      const t0 = created.created_at;
      assert.deepEqual(
        [
          done.in_progress_at,
          done.finalizing_at,
          done.completed_at,
          done.failed_at,
          done.expired_at,
          done.cancelling_at,
          done.cancelled_at,
        ],
        [t0 + 10, t0 + 30, t0 + 40, null, null, null, null],
      );
      assert.equal(done.model, MODEL);
      assert.deepEqual(done.usage, {
        input_tokens: 18,
        input_tokens_details: { cached_tokens: 0 },
        output_tokens: 24,
        output_tokens_details: { reasoning_tokens: 0 },
        total_tokens: 42,
      });

      const output = await readLines(client, done.output_file_id);
      assert.equal(output.length, 6);
      assert.notDeepEqual(
        output.map((l) => l.custom_id),
        prompts(6).map((l) => l.custom_id),
        "output order is not the input's",
      );
      const byId = new Map(output.map((l) => [l.custom_id, l]));
      for (let i = 0; i < 6; i++) {
        const line = byId.get(`row-${i}`)!;
        assert.match(line.id, /^batch_req_/);
        assert.equal(line.error, null);
        assert.equal(line.response?.status_code, 200);
        assert.equal(line.response?.body.object, "chat.completion");
        assert.equal(
          line.response?.body.choices[0].message.content,
          `[gpt-4o-mini] prompt number ${i}`,
        );
      }
      const errors = await readLines(client, done.error_file_id);
      assert.deepEqual(errors.map((l) => l.custom_id).sort(), ["bad-1", "bad-2"]);
      for (const l of errors) {
        assert.equal(l.error, null);
        assert.equal(l.response?.status_code, 400);
        assert.equal(l.response?.body.error.type, "invalid_request_error");
        assert.equal(l.response?.body.error.code, "invalid_prompt");
      }
      const out = await client.files.retrieve(done.output_file_id!);
      assert.equal(out.purpose, "batch_output");
      assert.equal(out.filename, `${done.id}_output.jsonl`);
      assert.equal(emu.log.count(`GET /v1/batches/${done.id}`), 4);
    });
  });

  it("batches the Responses endpoint", async () => {
    await withOpenAI({ schedule: { advance: "instant" } }, async (_emu, client) => {
      const lines = [0, 1, 2].map((i) => ({
        custom_id: `r${i}`,
        method: "POST",
        url: "/v1/responses",
        body: { model: MODEL, input: `question ${i}` },
      }));
      const file = await upload(client, lines);
      const created = await client.batches.create({
        input_file_id: file.id,
        endpoint: "/v1/responses",
        completion_window: "24h",
      });
      assert.equal(created.status, "validating");
      const batch = await client.batches.retrieve(created.id);
      assert.equal(batch.status, "completed");
      const out = await readLines(client, batch.output_file_id);
      const texts = new Map(
        out.map((l) => [l.custom_id, l.response?.body.output[0].content[0].text]),
      );
      assert.deepEqual(
        texts,
        new Map([["r0", "[gpt-4o-mini] question 0"], ["r1", "[gpt-4o-mini] question 1"], [
          "r2",
          "[gpt-4o-mini] question 2",
        ]]),
      );
    });
  });

  it("lists batches newest first over several pages (SDK auto-pagination)", async () => {
    await withOpenAI({}, async (emu, client) => {
      const file = await upload(client, prompts(1));
      const ids: string[] = [];
      for (let i = 0; i < 23; i++) {
        ids.push(
          (await client.batches.create({
            input_file_id: file.id,
            endpoint: "/v1/chat/completions",
            completion_window: "24h",
          })).id,
        );
      }
      const listed: string[] = [];
      for await (const b of client.batches.list({ limit: 10 })) listed.push(b.id);
      assert.deepEqual(listed, ids.reverse());
      const pages = emu.log.find("GET /v1/batches");
      assert.deepEqual(pages.map((p) => p.query), [
        { limit: "10" },
        { limit: "10", after: ids[9] },
        { limit: "10", after: ids[19] },
      ]);
      const first = await client.batches.list({ limit: 10 });
      assert.equal(first.has_more, true);
      const last = await client.batches.list({ limit: 10, after: ids[19] });
      assert.equal(last.has_more, false);
      assert.equal(last.data.length, 3);
      await rejectsWith(client.batches.list({ limit: 101 }), OpenAI.BadRequestError, {
        param: "limit",
        code: "integer_above_max_value",
      });
      await assert.rejects(client.batches.retrieve("batch_unknown"), OpenAI.NotFoundError);
    });
  });

  it("cancels a validating batch: cancelling, then cancelled with nothing run", async () => {
    await withOpenAI({}, async (_emu, client) => {
      const created = await createBatch(client, prompts(4));
      const cancelling = await client.batches.cancel(created.id);
      assert.equal(cancelling.status, "cancelling");
      assert.equal(typeof cancelling.cancelling_at, "number");
      const { batch, seen } = await pollToEnd(client, cancelling);
      assert.equal(seen.length, 2);
      assert.equal(batch.status, "cancelled");
      assert.equal(batch.in_progress_at, null);
      assert.deepEqual(batch.request_counts, { total: 0, completed: 0, failed: 0 });
      assert.equal(batch.output_file_id, null);
      assert.equal(batch.error_file_id, null);
      await rejectsWith(client.batches.cancel(created.id), OpenAI.BadRequestError, {
        message: /status 'cancelled'/,
      });
    });
  });

  it("cancels an in-progress batch with partial results and batch_cancelled lines", async () => {
    await withOpenAI({}, async (_emu, client) => {
      const created = await createBatch(client, prompts(6));
      await client.batches.retrieve(created.id); // in_progress, 0 done
      const half = await client.batches.retrieve(created.id); // in_progress, 3 done
      assert.deepEqual(half.request_counts, { total: 6, completed: 3, failed: 0 });
      const cancelling = await client.batches.cancel(created.id);
      assert.equal(cancelling.status, "cancelling");
      assert.equal(
        (await client.batches.cancel(created.id)).status,
        "cancelling",
        "cancelling twice is harmless",
      );
      const done = await client.batches.retrieve(created.id);
      assert.equal(done.status, "cancelled");
      assert.equal(typeof done.cancelled_at, "number");
      assert.deepEqual(done.request_counts, { total: 6, completed: 3, failed: 0 });
      const output = await readLines(client, done.output_file_id);
      const errors = await readLines(client, done.error_file_id);
      assert.equal(output.length, 3);
      assert.equal(errors.length, 3);
      assert.deepEqual(
        [...output, ...errors].map((l) => l.custom_id).sort(),
        prompts(6).map((l) => l.custom_id).sort(),
      );
      for (const l of errors) {
        assert.equal(l.response, null);
        assert.equal(l.error?.code, "batch_cancelled");
      }
    });
  });

  it("expires with partial results by scenario", async () => {
    await withOpenAI({ batches: [{ end: "expire", processed: 2 }] }, async (_emu, client) => {
      const { batch, seen } = await pollToEnd(client, await createBatch(client, prompts(5)));
      assert.deepEqual(seen.map((b) => b.status), [
        "validating",
        "in_progress",
        "in_progress",
        "expired",
      ]);
      assert.equal(typeof batch.expired_at, "number");
      assert.equal(batch.finalizing_at, null);
      assert.deepEqual(batch.request_counts, { total: 5, completed: 2, failed: 0 });
      assert.equal((await readLines(client, batch.output_file_id)).length, 2);
      const expired = await readLines(client, batch.error_file_id);
      assert.equal(expired.length, 3);
      for (const l of expired) {
        assert.equal(l.response, null);
        assert.deepEqual(l.error, {
          code: "batch_expired",
          message: "This request could not be executed before the completion window expired.",
        });
      }
    });
  });

  it("expires when the clock passes expires_at, keeping what was done", async () => {
    const clock = new ManualClock();
    await withOpenAI({ clock, schedule: { advance: "manual" } }, async (emu, client) => {
      const created = await createBatch(client, prompts(4));
      emu.step(created.id, 2); // in_progress, half done
      const half = await client.batches.retrieve(created.id);
      assert.equal(half.status, "in_progress");
      assert.deepEqual(half.request_counts, { total: 4, completed: 2, failed: 0 });
      clock.advance(24 * 3600_000);
      const [listed] = (await client.batches.list()).data;
      assert.equal(listed.status, "expired");
      assert.equal(listed.expired_at, created.expires_at);
      assert.equal((await readLines(client, listed.output_file_id)).length, 2);
      assert.deepEqual((await readLines(client, listed.error_file_id)).map((l) => l.error?.code), [
        "batch_expired",
        "batch_expired",
      ]);
    });
  });

  it("lets result files expire (output_expires_after, else 30 days), after which they are 404", async () => {
    const clock = new ManualClock();
    await withOpenAI({ clock, schedule: { advance: "instant" } }, async (_emu, client) => {
      const file = await upload(client, prompts(2));
      const short = await client.batches.retrieve(
        (await client.batches.create({
          input_file_id: file.id,
          endpoint: "/v1/chat/completions",
          completion_window: "24h",
          output_expires_after: { anchor: "created_at", seconds: 3600 },
        })).id,
      );
      const long = await client.batches.retrieve(
        (await client.batches.create({
          input_file_id: file.id,
          endpoint: "/v1/chat/completions",
          completion_window: "24h",
        })).id,
      );
      assert.equal(
        (await client.files.retrieve(short.output_file_id!)).expires_at,
        short.completed_at! + 3600,
      );
      assert.equal(
        (await client.files.retrieve(long.output_file_id!)).expires_at,
        long.completed_at! + 30 * 86400,
      );
      clock.advance(3600_000);
      await rejectsWith(client.files.content(short.output_file_id!), OpenAI.NotFoundError, {
        type: "invalid_request_error",
      });
      assert.equal((await readLines(client, long.output_file_id)).length, 2);
      clock.advance(30 * 86400_000);
      await rejectsWith(client.files.content(long.output_file_id!), OpenAI.NotFoundError);
    });
  });

  it("moves on the emulator's clock under a clock schedule, stamping each state's due time", async () => {
    const clock = new ManualClock();
    await withOpenAI(
      { clock, schedule: { advance: "clock", stepMs: 60_000 } },
      async (_emu, client) => {
        const created = await createBatch(client, prompts(2));
        assert.equal((await client.batches.retrieve(created.id)).status, "validating");
        clock.advance(10 * 60_000);
        const done = await client.batches.retrieve(created.id);
        assert.equal(done.status, "completed");
        const t0 = created.created_at;
        assert.deepEqual([done.in_progress_at, done.finalizing_at, done.completed_at], [
          t0 + 60,
          t0 + 180,
          t0 + 240,
        ]);
      },
    );
  });

  it("fails validation with errors.data naming code, param and line", async () => {
    const cases: Array<[string, unknown[], Array<Partial<OpenAI.Batches.BatchError>>, Options?]> = [
      ["bad JSON line", [chatLine("a", "x"), "{not json", chatLine("c", "y")], [{
        code: "invalid_json_line",
        line: 2,
      }]],
      ["duplicate custom_id", [chatLine("a", "x"), chatLine("a", "y")], [{
        code: "duplicate_custom_id",
        param: "custom_id",
        line: 2,
      }]],
      ["mixed models", [chatLine("a", "x"), {
        ...chatLine("b", "y"),
        body: { model: "gpt-4.1", messages: [{ role: "user", content: "y" }] },
      }], [
        { code: "model_mismatch", param: "body.model", line: 2 },
      ]],
      ["url mismatch", [{ ...chatLine("a", "x"), url: "/v1/responses" }], [{
        code: "url_mismatch",
        param: "url",
        line: 1,
      }]],
      ["method", [{ ...chatLine("a", "x"), method: "GET" }], [{
        code: "invalid_value",
        param: "method",
        line: 1,
      }]],
      ["unknown model", [{ ...chatLine("a", "x"), body: { model: "gpt-nope", messages: [] } }], [{
        code: "model_not_found",
        param: "body.model",
        line: 1,
      }]],
      ["empty file", [], [{ code: "empty_file", line: null }]],
      ["too many requests", prompts(4), [{ code: "too_many_tasks", line: null, param: null }], {
        limits: { maxRequests: 3 },
      }],
      ["token limit (scenario)", prompts(2), [{ code: "token_limit_exceeded", line: null }], {
        batches: [{ end: "fail" }],
      }],
    ];
    for (const [what, lines, expected, options] of cases) {
      await withOpenAI(options ?? {}, async (_emu, client) => {
        const { batch, seen } = await pollToEnd(client, await createBatch(client, lines));
        assert.deepEqual(seen.map((b) => b.status), ["validating", "failed"], what);
        assert.equal(typeof batch.failed_at, "number", what);
        assert.equal(batch.errors?.object, "list", what);
        const got = batch.errors!.data!.map((e, i) =>
          Object.fromEntries(
            Object.keys(expected[i] ?? {}).map((k) => [k, (e as Record<string, unknown>)[k]]),
          )
        );
        assert.deepEqual(got, expected, what);
        assert.ok(
          batch.errors!.data!.every((e) => typeof e.message === "string" && e.message.length > 0),
          what,
        );
        assert.equal(batch.output_file_id, null, what);
        assert.equal(batch.error_file_id, null, what);
        assert.deepEqual(batch.request_counts, { total: 0, completed: 0, failed: 0 }, what);
      });
    }
  });

  it("checks the create request itself (400s)", async () => {
    await withOpenAI({}, async (_emu, client) => {
      const file = await upload(client, prompts(1));
      const create = (body: Record<string, unknown>) =>
        client.batches.create(
          {
            input_file_id: file.id,
            endpoint: "/v1/chat/completions",
            completion_window: "24h",
            ...body,
          } as never,
        );
      const cases: Array<[Record<string, unknown>, string | null, string | null]> = [
        [{ completion_window: "48h" }, "completion_window", "invalid_value"],
        [{ endpoint: "/v1/nope" }, "endpoint", "invalid_value"],
        [
          { metadata: Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, "v"])) },
          "metadata",
          "object_above_max_properties",
        ],
        [{ metadata: { k: "v".repeat(513) } }, "metadata.k", "string_above_max_length"],
        [{ input_file_id: "file-missing" }, "file_id", null],
      ];
      for (const [body, param, code] of cases) {
        await rejectsWith(
          create(body),
          OpenAI.BadRequestError,
          { param, code },
          JSON.stringify(body).slice(0, 80),
        );
      }
      const notes = await client.files.create({
        file: await toFile(Buffer.from("x"), "x.txt"),
        purpose: "user_data",
      });
      await rejectsWith(create({ input_file_id: notes.id }), OpenAI.BadRequestError, {
        message: /purpose 'batch'/,
      });
    });
  });

  it("completes with only an error file when every request fails (onlyErrors)", async () => {
    await withOpenAI({ batches: [{ onlyErrors: true }] }, async (_emu, client) => {
      const { batch } = await pollToEnd(client, await createBatch(client, prompts(3)));
      assert.equal(batch.status, "completed");
      assert.equal(batch.output_file_id, null);
      assert.deepEqual(batch.request_counts, { total: 3, completed: 0, failed: 3 });
      const errors = await readLines(client, batch.error_file_id);
      assert.deepEqual(errors.map((l) => l.response?.status_code), [400, 400, 400]);
      assert.ok(errors.every((l) => typeof l.response?.body.error.message === "string"));
    });
  });

  it("applies scenarios by nth batch", async () => {
    await withOpenAI(
      { schedule: { advance: "instant" }, batches: [{ nth: 2, onlyErrors: true }] },
      async (_emu, client) => {
        const first = await createSettled(client, prompts(2));
        const second = await createSettled(client, prompts(2));
        const third = await createSettled(client, prompts(2));
        assert.deepEqual([first, second, third].map((b) => b.request_counts?.failed), [0, 2, 0]);
      },
    );
  });

  it("reports per-request failures (invalid bodies) as 400 lines in the error file", async () => {
    await withOpenAI({ schedule: { advance: "instant" } }, async (_emu, client) => {
      const batch = await createSettled(client, [
        chatLine("ok", "fine"),
        chatLine("hot", "too hot", { temperature: 5 }),
      ]);
      assert.deepEqual(batch.request_counts, { total: 2, completed: 1, failed: 1 });
      const [line] = await readLines(client, batch.error_file_id);
      assert.equal(line.custom_id, "hot");
      assert.equal(line.response?.status_code, 400);
      assert.equal(line.response?.body.error.param, "temperature");
      assert.equal(line.response?.body.error.code, "decimal_above_max_value");
    });
  });

  it("does not see a fresh upload at first (eventual consistency); a retry works", async () => {
    await withOpenAI({ batches: [{ fileInvisibleFor: 1 }] }, async (_emu, client) => {
      const file = await upload(client, prompts(2));
      const create = () =>
        client.batches.create({
          input_file_id: file.id,
          endpoint: "/v1/chat/completions",
          completion_window: "24h",
        });
      await rejectsWith(create(), OpenAI.BadRequestError, {
        param: "file_id",
        type: "invalid_request_error",
        code: null,
        message: new RegExp(`Cannot find file ${file.id}`),
      });
      const batch = await create();
      assert.equal(batch.status, "validating");
    });
  });

  it("puts malformed and blank lines into the output file when asked", async () => {
    await withOpenAI({
      schedule: { advance: "instant" },
      batches: [{ malformedLines: 2, blankLines: 1 }],
    }, async (_emu, client) => {
      const batch = await createSettled(client, prompts(5));
      const raw = (await fileText(client, batch.output_file_id!)).split("\n");
      assert.equal(raw.at(-1), "", "ends with a newline");
      const body = raw.slice(0, -1);
      assert.equal(body.filter((l) => l === "").length, 1);
      const bad = body.filter((l) => {
        if (!l) return false;
        try {
          JSON.parse(l);
          return false;
        } catch {
          return true;
        }
      });
      assert.equal(bad.length, 2);
      assert.equal(body.length, 5 + 2 + 1);
    });
  });
});

describe("openai emulator: faults through the SDK", () => {
  const ask = (client: OpenAI, content = "hi") =>
    client.chat.completions.create({ model: MODEL, messages: [{ role: "user", content }] });
  const retries = (emu: Emulator) =>
    emu.log.find("POST /v1/chat/completions").map((e) => [e.retryCount, e.status]);

  it("retries 429 with retry-after-ms or retry-after, then succeeds", async () => {
    const faults: FaultRule[] = [
      {
        match: { path: "/chat/completions", first: 2 },
        action: { kind: "status", status: 429, retryAfterMs: 1 },
      },
    ];
    await withOpenAI({ faults }, async (emu, client) => {
      assert.equal((await ask(client)).choices[0].finish_reason, "stop");
      assert.deepEqual(retries(emu), [[0, 429], [1, 429], [2, 200]]);
    }, { maxRetries: 2 });
    const seconds: FaultRule[] = [{
      match: { first: 1 },
      action: { kind: "status", status: 429, retryAfter: 0 },
    }];
    await withOpenAI({ faults: seconds }, async (emu, client) => {
      await ask(client);
      assert.deepEqual(retries(emu), [[0, 429], [1, 200]]);
    }, { maxRetries: 2 });
  });

  it("gives up after maxRetries with a RateLimitError carrying the API's type and code", async () => {
    const faults: FaultRule[] = [{ action: { kind: "status", status: 429, retryAfterMs: 1 } }];
    await withOpenAI({ faults }, async (emu, client) => {
      await rejectsWith(ask(client), OpenAI.RateLimitError, {
        code: "rate_limit_exceeded",
        type: "requests",
      });
      assert.deepEqual(retries(emu), [[0, 429], [1, 429], [2, 429]]);
    }, { maxRetries: 2 });
    // Quota errors carry no retry hint; the SDK still retries them (default backoff).
    const quota: FaultRule[] = [{
      action: {
        kind: "status",
        status: 429,
        code: "insufficient_quota",
        message: "You exceeded your current quota.",
      },
    }];
    await withOpenAI({ faults: quota }, async (emu, client) => {
      const e = await rejectsWith(ask(client), OpenAI.RateLimitError, {
        code: "insufficient_quota",
        type: "insufficient_quota",
      });
      assert.equal(e.headers?.get("retry-after"), null);
      assert.deepEqual(retries(emu), [[0, 429], [1, 429]]);
    }, { maxRetries: 1 });
  });

  it("retries 5xx, 408 and 409 and surfaces the right error class when they persist", async () => {
    for (const status of [500, 502, 503, 504, 408, 409]) {
      const faults: FaultRule[] = [{
        match: { first: 1 },
        action: { kind: "status", status, retryAfterMs: 1 },
      }];
      await withOpenAI({ faults }, async (emu, client) => {
        await ask(client);
        assert.deepEqual(retries(emu), [[0, status], [1, 200]], String(status));
      }, { maxRetries: 1 });
    }
    const always: FaultRule[] = [{ action: { kind: "status", status: 503, retryAfterMs: 1 } }];
    await withOpenAI({ faults: always }, async (emu, client) => {
      await rejectsWith(ask(client), OpenAI.InternalServerError, {
        status: 503,
        type: "server_error",
        code: null,
      });
      assert.equal(emu.log.count("POST /v1/chat/completions"), 3);
    }, { maxRetries: 2 });
  });

  it("obeys x-should-retry over the status, and surfaces a proxy's HTML error page", async () => {
    const noRetry: FaultRule[] = [{ action: { kind: "status", status: 500, shouldRetry: false } }];
    await withOpenAI({ faults: noRetry }, async (emu, client) => {
      await rejectsWith(ask(client), OpenAI.InternalServerError, { status: 500 });
      assert.deepEqual(retries(emu), [[0, 500]]);
    }, { maxRetries: 2 });
    const retry400: FaultRule[] = [{
      match: { first: 1 },
      action: { kind: "status", status: 400, shouldRetry: true, retryAfterMs: 1 },
    }];
    await withOpenAI({ faults: retry400 }, async (emu, client) => {
      await ask(client);
      assert.deepEqual(retries(emu), [[0, 400], [1, 200]]);
    }, { maxRetries: 2 });
    const html: FaultRule[] = [{
      action: { kind: "status", status: 502, html: "<html><body>502 Bad Gateway</body></html>" },
    }];
    await withOpenAI({ faults: html }, async (_emu, client) => {
      const e = await rejectsWith(ask(client), OpenAI.InternalServerError, {
        status: 502,
        code: null,
      });
      assert.match(e.message, /502 Bad Gateway/);
    });
  });

  it("retries dropped connections and timeouts, and treats error-in-200 as a 500", async () => {
    await withOpenAI(
      { faults: [{ match: { first: 1 }, action: { kind: "drop" } }] },
      async (emu, client) => {
        await ask(client);
        assert.deepEqual(retries(emu), [[0, 0], [1, 200]]);
      },
      { maxRetries: 1 },
    );
    await withOpenAI({ faults: [{ action: { kind: "drop" } }] }, async (_emu, client) => {
      await assert.rejects(ask(client), OpenAI.APIConnectionError);
    });
    await withOpenAI(
      { faults: [{ match: { first: 1 }, action: { kind: "slow", delayMs: 400 } }] },
      async (emu, client) => {
        await ask(client);
        const attempts = emu.log.find("POST /v1/chat/completions");
        assert.ok(
          attempts.some((e) => e.retryCount === 1 && e.status === 200),
          JSON.stringify(attempts),
        );
      },
      { maxRetries: 1, timeout: 150 },
    );
    await withOpenAI(
      { faults: [{ match: { first: 1 }, action: { kind: "error-in-200" } }] },
      async (emu, client) => {
        await assert.rejects(ask(client), OpenAI.InternalServerError);
        assert.deepEqual(retries(emu), [[0, 500]]);
      },
    );
  });

  it("matches faults by prompt text and by batch; a faulted poll does not advance the batch", async () => {
    await withOpenAI({
      faults: [{ match: { promptContains: "SLOWDOWN" }, action: { kind: "status", status: 429 } }],
    }, async (emu, client) => {
      await ask(client, "fine");
      await assert.rejects(ask(client, "please SLOWDOWN"), OpenAI.RateLimitError);
      assert.deepEqual(retries(emu), [[0, 200], [0, 429]]);
    });
    await withOpenAI({}, async (emu, client) => {
      const created = await createBatch(client, prompts(2));
      emu.faults.add({
        match: { batch: created.id, first: 1 },
        action: { kind: "status", status: 503, retryAfterMs: 1 },
      });
      const polled = await client.batches.retrieve(created.id);
      assert.equal(polled.status, "in_progress", "one state for one successful poll");
      assert.deepEqual(
        emu.log.find(`GET /v1/batches/${created.id}`).map((e) => [e.retryCount, e.status]),
        [[0, 503], [1, 200]],
      );
    }, { maxRetries: 2 });
  });
});
