import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, afterEach, describe, it } from "node:test";
import { ApiError, type BatchJob, GoogleGenAI, type HttpOptions, Type } from "@google/genai";
import { countTokens } from "../answers.ts";
import { ManualClock } from "../clock.ts";
import { type Emulator, type EmulatorOptions, startEmulator } from "../server.ts";

const MODEL = "gemini-2.5-flash";
const HOUR = 3_600_000;
const RFC3339_NANOS = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/;

const running: Emulator[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((e) => e.stop()));
});

const scratch = mkdtempSync(join(tmpdir(), "loom-gemini-emulator-"));
after(() => rmSync(scratch, { recursive: true, force: true }));

/**
 * Starts a Gemini emulator and an SDK client pinned to v1beta with a short timeout. `raw` collects
 * every JSON answer as sent, through the SDK's own `fetch` hook: the SDK maps only part of an
 * Operation (not `done`, `response`, `error` or `batchStats`), and those are part of the contract.
 */
async function setup(options: Partial<EmulatorOptions> = {}, http: HttpOptions = {}) {
  const emulator = await startEmulator({ provider: "gemini", ...options });
  running.push(emulator);
  const raw: Array<Record<string, unknown>> = [];
  const capture = async (input: string | URL | Request, init?: RequestInit) => {
    const response = await fetch(input, init);
    const type = (response.headers.get("content-type") ?? "").split(";")[0];
    if (type === "application/json") {
      raw.push((await response.clone().json()) as Record<string, unknown>);
    }
    return response;
  };
  const ai = new GoogleGenAI({
    apiKey: emulator.apiKey,
    httpOptions: {
      baseUrl: emulator.baseURL,
      apiVersion: "v1beta",
      timeout: 5_000,
      fetch: capture,
      ...http,
    },
  });
  return { emulator, ai, raw };
}

/** The ApiError a call rejects with, and the google.rpc.Status body it carries. */
async function apiError(call: Promise<unknown>) {
  const error = await call.then(() => assert.fail("expected an ApiError"), (e: unknown) => e);
  assert.ok(error instanceof ApiError, `not an ApiError: ${error}`);
  const body = JSON.parse(error.message) as {
    error: { code: number; message: string; status: string; details?: unknown[] };
  };
  assert.equal(body.error.code, error.status);
  return body.error;
}

/** Polls until the batch leaves PENDING/RUNNING (a handful of polls under the default schedule). */
async function settle(ai: GoogleGenAI, name: string): Promise<BatchJob> {
  for (let i = 0; i < 10; i++) {
    const job = await ai.batches.get({ name });
    if (job.state !== "JOB_STATE_PENDING" && job.state !== "JOB_STATE_RUNNING") return job;
  }
  throw new Error(`batch ${name} never finished`);
}

function tempFile(name: string, text: string): string {
  const path = join(scratch, name);
  writeFileSync(path, text);
  return path;
}

const line = (key: string, text: string, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ key, request: { contents: [{ role: "user", parts: [{ text }] }], ...extra } });

describe("generateContent and countTokens", () => {
  it("answers on v1beta with text, STOP, usage, modelVersion and responseId", async () => {
    const { emulator, ai } = await setup();
    const result = await ai.models.generateContent({
      model: MODEL,
      contents: "tell me a joke",
      config: { systemInstruction: "be brief", temperature: 0.5, topP: 0.9 },
    });
    assert.equal(result.text, `[${MODEL}] tell me a joke`);
    assert.equal(result.candidates?.[0].finishReason, "STOP");
    assert.equal(result.candidates?.[0].content?.role, "model");
    const usage = result.usageMetadata;
    const prompt = countTokens("be brief") + countTokens("tell me a joke");
    const output = countTokens(result.text ?? "");
    // gemini-2.5-flash thinks by default (2 tokens unless the limit says otherwise): reported
    // apart from the candidates, counted in the total.
    assert.deepEqual(
      [
        usage?.promptTokenCount,
        usage?.candidatesTokenCount,
        usage?.thoughtsTokenCount,
        usage?.totalTokenCount,
      ],
      [prompt, output, 2, prompt + output + 2],
    );
    assert.equal(result.modelVersion, MODEL);
    assert.match(result.responseId ?? "", /^[A-Za-z0-9_-]{22}$/);
    const [entry] = emulator.log.entries;
    assert.equal(`${entry.method} ${entry.path}`, `POST /v1beta/models/${MODEL}:generateContent`);
    assert.equal(entry.headers["x-goog-api-key"], "***");
    assert.deepEqual((entry.body as { generationConfig: unknown }).generationConfig, {
      temperature: 0.5,
      topP: 0.9,
    });
  });

  it("serves the SDK's default API version (v1) and countTokens", async () => {
    const emulator = await startEmulator({ provider: "gemini" });
    running.push(emulator);
    const ai = new GoogleGenAI({
      apiKey: emulator.apiKey,
      httpOptions: { baseUrl: emulator.baseURL, timeout: 5_000 },
    });
    const result = await ai.models.generateContent({
      model: "gemini-2.0-flash",
      contents: "hello",
    });
    assert.equal(result.text, "[gemini-2.0-flash] hello");
    const counted = await ai.models.countTokens({ model: MODEL, contents: "one two three four" });
    assert.equal(counted.totalTokens, 4);
    assert.deepEqual(emulator.log.entries.map((e) => e.path), [
      "/v1/models/gemini-2.0-flash:generateContent",
      `/v1/models/${MODEL}:countTokens`,
    ]);
  });

  it("cuts at maxOutputTokens (MAX_TOKENS), ends at a stop sequence, repeats candidates", async () => {
    const { ai } = await setup();
    const cut = await ai.models.generateContent({
      model: MODEL,
      contents: "one two three four",
      config: { maxOutputTokens: 3, thinkingConfig: { thinkingBudget: 0 } },
    });
    assert.equal(cut.text, `[${MODEL}] one two`);
    assert.equal(cut.candidates?.[0].finishReason, "MAX_TOKENS");
    assert.equal(cut.usageMetadata?.candidatesTokenCount, 3);
    const stopped = await ai.models.generateContent({
      model: MODEL,
      contents: "alpha beta gamma",
      config: { stopSequences: ["gamma"] },
    });
    assert.equal(stopped.text, `[${MODEL}] alpha beta `);
    assert.equal(stopped.candidates?.[0].finishReason, "STOP");
    const two = await ai.models.generateContent({
      model: MODEL,
      contents: "hi",
      config: { candidateCount: 2 },
    });
    assert.deepEqual(two.candidates?.map((c) => c.index), [0, 1]);
    assert.equal(two.usageMetadata?.candidatesTokenCount, 4);
  });

  it("rejects invalid requests with the real API's status and wording", async () => {
    const { emulator, ai } = await setup();
    const generate = (config: Record<string, unknown>, contents: unknown = "hi", model = MODEL) =>
      apiError(ai.models.generateContent({ model, contents: contents as string, config }));

    const hot = await generate({ temperature: 3 });
    assert.deepEqual([hot.code, hot.status], [400, "INVALID_ARGUMENT"]);
    assert.match(hot.message, /temperature value of 3/);
    assert.match((await generate({ maxOutputTokens: 0 })).message, /maxOutputTokens value of 0/);
    assert.match((await generate({ topP: 1.5 })).message, /topP/);
    const role = await generate({}, [{ role: "assistant", parts: [{ text: "hi" }] }]);
    assert.equal(role.message, "Please use a valid role: user, model.");
    const empty = await generate({}, [{ role: "user", parts: [] }]);
    assert.equal(
      empty.message,
      "* GenerateContentRequest.contents[0].parts: contents.parts must not be empty.\n",
    );
    assert.equal(empty.status, "INVALID_ARGUMENT");

    // Fields the SDK would never send go through `extraBody`, as a raw client would send them.
    const unknown = await generate({
      httpOptions: { extraBody: { generationConfig: { bogus: 1 } } },
    });
    assert.equal(
      unknown.message,
      `Invalid JSON payload received. Unknown name "bogus" at 'generation_config': Cannot find field.`,
    );
    assert.equal(
      (unknown.details?.[0] as { "@type": string })["@type"],
      "type.googleapis.com/google.rpc.BadRequest",
    );
    const typed = await generate({
      httpOptions: { extraBody: { generationConfig: { temperature: "hot" } } },
    });
    assert.equal(
      typed.message,
      `Invalid value at 'generation_config.temperature' (TYPE_FLOAT), "hot"`,
    );
    const noContents = await generate({ httpOptions: { extraBody: { contents: [] } } });
    assert.match(noContents.message, /contents is not specified/);

    const missing = await generate({}, "hi", "gemini-0-nope");
    assert.deepEqual([missing.code, missing.status], [404, "NOT_FOUND"]);
    assert.match(missing.message, /models\/gemini-0-nope is not found for API version v1beta/);
    assert.equal(emulator.log.entries.every((e) => e.status >= 400), true);
  });

  it("authenticates with the API key: 400 for a wrong key, 403 with none, ?key= accepted", async () => {
    const { emulator } = await setup();
    const wrong = new GoogleGenAI({
      apiKey: "nope",
      httpOptions: { baseUrl: emulator.baseURL, apiVersion: "v1beta", timeout: 5_000 },
    });
    const denied = await apiError(wrong.models.generateContent({ model: MODEL, contents: "hi" }));
    assert.deepEqual([denied.code, denied.status, denied.message], [
      400,
      "INVALID_ARGUMENT",
      "API key not valid. Please pass a valid API key.",
    ]);
    assert.equal((denied.details?.[0] as { reason: string }).reason, "API_KEY_INVALID");
    const countWrong = await apiError(wrong.batches.get({ name: "batches/x" }));
    assert.equal(countWrong.code, 400);

    // The SDK always sends its key in a header; a keyless call and `?key=` need a plain client.
    const url = `${emulator.baseURL}/v1beta/models/${MODEL}:countTokens`;
    const body = JSON.stringify({ contents: [{ parts: [{ text: "a b" }] }] });
    const headers = { "content-type": "application/json" };
    const none = await fetch(url, { method: "POST", headers, body });
    assert.equal(none.status, 403);
    assert.equal(
      ((await none.json()) as { error: { status: string } }).error.status,
      "PERMISSION_DENIED",
    );
    const bearer = await fetch(url, {
      method: "POST",
      headers: { ...headers, authorization: "Bearer x" },
      body,
    });
    assert.equal(bearer.status, 401);
    await bearer.body?.cancel();
    const query = await fetch(`${url}?key=${emulator.apiKey}`, { method: "POST", headers, body });
    assert.deepEqual(await query.json(), {
      totalTokens: 2,
      promptTokensDetails: [{ modality: "TEXT", tokenCount: 2 }],
    });
  });
});

describe("thinking", () => {
  const generate = (
    ai: GoogleGenAI,
    model: string,
    config: Record<string, unknown>,
    contents = "think about this",
  ) => ai.models.generateContent({ model, contents, config });

  it("thinks by default on 2.5 Flash and Gemini 3, never on 2.0, on Flash-Lite only with a budget", async () => {
    const { ai } = await setup({ limits: { thinkingTokens: 7 } });
    const thoughts = async (model: string, config: Record<string, unknown> = {}) =>
      (await generate(ai, model, config)).usageMetadata?.thoughtsTokenCount;
    assert.equal(await thoughts("gemini-2.5-flash"), 7);
    assert.equal(await thoughts("gemini-2.5-pro"), 7);
    assert.equal(await thoughts("gemini-3-flash-preview"), 7);
    assert.equal(await thoughts("gemini-2.0-flash"), undefined, "proto3 JSON leaves the zero out");
    assert.equal(await thoughts("gemini-2.5-flash-lite"), undefined);
    assert.equal(
      await thoughts("gemini-2.5-flash-lite", { thinkingConfig: { thinkingBudget: 600 } }),
      600,
    );
    assert.equal(
      await thoughts("gemini-2.5-flash", { thinkingConfig: { thinkingBudget: 0 } }),
      undefined,
    );
    assert.equal(await thoughts("gemini-2.5-flash", { thinkingConfig: { thinkingBudget: -1 } }), 7);
    assert.equal(
      await thoughts("gemini-2.5-flash", { thinkingConfig: { thinking_budget: 5 } }),
      5,
      "proto JSON's snake_case name",
    );
    assert.equal(
      await thoughts("gemini-3-flash-preview", { thinkingConfig: { thinkingLevel: "LOW" } }),
      4,
    );
  });

  it("spends thinking out of maxOutputTokens: the whole budget thought leaves no text and MAX_TOKENS", async () => {
    const { ai } = await setup({ limits: { thinkingTokens: 30 } });
    const prompt = "think about this";
    const emptied = await generate(ai, MODEL, { maxOutputTokens: 20 }, prompt);
    const [candidate] = emptied.candidates ?? [];
    assert.equal(candidate.finishReason, "MAX_TOKENS");
    assert.equal(candidate.content?.parts, undefined, "no text part at all");
    assert.equal(emptied.text, undefined);
    const usage = emptied.usageMetadata;
    assert.deepEqual([
      usage?.candidatesTokenCount,
      usage?.thoughtsTokenCount,
      usage?.totalTokenCount,
    ], [undefined, 20, countTokens(prompt) + 20]);
    const room = await generate(ai, MODEL, { maxOutputTokens: 100 }, prompt);
    assert.equal(room.text, `[${MODEL}] ${prompt}`);
    assert.equal(room.candidates?.[0].finishReason, "STOP");
    assert.equal(room.usageMetadata?.thoughtsTokenCount, 30);
    const summarised = await generate(ai, MODEL, {
      maxOutputTokens: 100,
      thinkingConfig: { includeThoughts: true },
    }, prompt);
    assert.deepEqual(summarised.candidates?.[0].content?.parts?.map((p) => p.thought === true), [
      true,
      false,
    ]);
    assert.equal(
      summarised.text,
      `[${MODEL}] ${prompt}`,
      "the SDK's text leaves the thought summary out",
    );
  });

  it("refuses what the thinking guide rules out", async () => {
    const { ai } = await setup();
    const refused = async (model: string, thinkingConfig: Record<string, unknown>) => {
      const body = await apiError(generate(ai, model, { thinkingConfig }));
      assert.deepEqual([body.code, body.status], [400, "INVALID_ARGUMENT"]);
      return body.message;
    };
    assert.match(
      await refused("gemini-2.5-pro", { thinkingBudget: 0 }),
      /only works in thinking mode/,
    );
    assert.match(
      await refused("gemini-3-flash-preview", { thinkingBudget: 100, thinkingLevel: "HIGH" }),
      /Only one of thinking_budget and thinking_level/,
    );
    assert.match(
      await refused("gemini-2.5-flash", { thinkingLevel: "LOW" }),
      /Thinking level is not supported/,
    );
  });
});

describe("structured output and the reply fault", () => {
  const jsonSchema = {
    type: "object",
    properties: {
      headline: { type: "string" },
      length: { type: "integer", minimum: 10 },
      score: { type: ["number", "null"] },
      final: { type: "boolean" },
      topics: { type: "array", items: { type: "string" }, minItems: 2 },
    },
    required: ["headline", "length", "score", "final", "topics"],
  };
  const long = Array.from({ length: 40 }, (_, i) => `w${i}`).join(" ");

  it("answers responseJsonSchema and responseSchema (OpenAPI types) with JSON that parses and conforms", async () => {
    const { emulator, ai } = await setup();
    const plain = await ai.models.generateContent({
      model: MODEL,
      contents: "sum it up",
      config: { responseMimeType: "application/json", responseJsonSchema: jsonSchema },
    });
    const answer = `[${MODEL}] sum it up`;
    assert.deepEqual(JSON.parse(plain.text ?? ""), {
      headline: answer,
      length: 10,
      score: 4,
      final: true,
      topics: [answer, answer],
    });
    assert.equal(plain.candidates?.[0].finishReason, "STOP");
    assert.equal(
      plain.usageMetadata?.candidatesTokenCount,
      Math.ceil((plain.text ?? "").length / 4),
    );

    // The SDK sends responseSchema with upper-case types; propertyOrdering sets the key order.
    const openapi = await ai.models.generateContent({
      model: MODEL,
      contents: "sum it up",
      config: {
        responseMimeType: "application/json",
        responseSchema: {
          type: Type.OBJECT,
          properties: {
            rating: { type: Type.INTEGER },
            verdict: { type: Type.STRING, enum: ["good", "bad"] },
            notes: { type: Type.ARRAY, items: { type: Type.STRING }, nullable: true },
            title: { type: Type.STRING },
          },
          propertyOrdering: ["title", "verdict", "rating", "notes"],
        },
      },
    });
    const body = emulator.log.entries.at(-1)!.body as {
      generationConfig: { responseSchema: { type: string } };
    };
    assert.equal(body.generationConfig.responseSchema.type, "OBJECT");
    const value = JSON.parse(openapi.text ?? "");
    assert.deepEqual(Object.keys(value), ["title", "verdict", "rating", "notes"]);
    assert.deepEqual(value, { title: answer, verdict: "good", rating: 4, notes: [answer] });

    const bare = await ai.models.generateContent({
      model: MODEL,
      contents: "sum it up",
      config: { responseMimeType: "application/json" },
    });
    assert.equal(JSON.parse(bare.text ?? ""), answer, "no schema: the answer as a JSON string");
  });

  it("cuts JSON at maxOutputTokens into unparseable text with finishReason MAX_TOKENS", async () => {
    const { ai } = await setup();
    const cut = await ai.models.generateContent({
      model: MODEL,
      contents: long,
      config: {
        responseMimeType: "application/json",
        responseJsonSchema: jsonSchema,
        maxOutputTokens: 7,
      },
    });
    const text = cut.text ?? "";
    assert.equal(cut.usageMetadata?.thoughtsTokenCount, 2, "thinking took 2 of the 7 tokens");
    assert.equal(text, '{"headline":"[gemini');
    assert.throws(() => JSON.parse(text), SyntaxError);
    assert.equal(cut.candidates?.[0].finishReason, "MAX_TOKENS");
    assert.equal(cut.usageMetadata?.candidatesTokenCount, 5);
  });

  it("replaces the text under a reply fault, sync and in the batch lines it matches", async () => {
    const { emulator, ai } = await setup({ schedule: { advance: "instant" } });
    emulator.faults.add({
      name: "garble",
      match: { promptContains: "[[garble]]" },
      action: { kind: "reply", text: "[1, 2" },
    });
    const config = { responseMimeType: "application/json", responseJsonSchema: jsonSchema };
    const bad = await ai.models.generateContent({ model: MODEL, contents: "x [[garble]]", config });
    assert.equal(bad.text, "[1, 2");
    assert.equal(bad.candidates?.[0].finishReason, "STOP");
    assert.equal(bad.usageMetadata?.candidatesTokenCount, 2);
    assert.equal(bad.modelVersion, MODEL);
    const cut = await ai.models.generateContent({
      model: MODEL,
      contents: `${long} [[garble]]`,
      config: { ...config, maxOutputTokens: 3 },
    });
    assert.deepEqual([cut.text, cut.candidates?.[0].finishReason], ["[1, 2", "MAX_TOKENS"]);
    assert.deepEqual(
      emulator.log.find(":generateContent").map((e) => [e.status, e.fault]),
      [[200, "garble"], [200, "garble"]],
    );

    const job = await ai.batches.create({
      model: MODEL,
      src: [
        { contents: "first [[garble]]", config },
        { contents: "second", config },
        { contents: "third [[garble]]", config },
      ],
    });
    emulator.faults.clear();
    emulator.faults.add({
      match: { batch: job.name!, promptContains: "[[garble]]", every: 2 },
      action: { kind: "reply", text: "nope" },
    });
    const done = await settle(ai, job.name!);
    const texts = (done.dest?.inlinedResponses ?? []).map((r) =>
      r.response?.candidates?.[0].content?.parts?.[0].text ?? ""
    );
    assert.equal(
      texts[2],
      "nope",
      "every: 2 counts the matching lines: the second one is replaced",
    );
    assert.equal(JSON.parse(texts[0]).headline, `[${MODEL}] first [[garble]]`);
    assert.equal(JSON.parse(texts[1]).headline, `[${MODEL}] second`);
  });
});

describe("inline batches", () => {
  it("moves PENDING → RUNNING → SUCCEEDED and returns responses and errors in input order", async () => {
    const { emulator, ai, raw } = await setup({ batches: [{ failPromptContains: "[[fail]]" }] });
    const created = await ai.batches.create({
      model: MODEL,
      src: [
        { contents: "first question", metadata: { key: "a" } },
        { contents: "please [[fail]]", metadata: { key: "b" } },
        { contents: "too hot", config: { temperature: 9 }, metadata: { key: "c" } },
        {
          contents: [{ role: "user", parts: [{ text: "last one" }] }],
          config: { systemInstruction: "be terse" },
        },
      ],
      config: { displayName: "inline-job" },
    });
    assert.match(created.name ?? "", /^batches\/[a-z0-9]+$/);
    assert.equal(created.state, "JOB_STATE_PENDING");
    assert.equal(created.displayName, "inline-job");
    assert.equal(created.model, `models/${MODEL}`);
    assert.match(created.createTime ?? "", RFC3339_NANOS);
    const pending = raw.at(-1)!;
    assert.equal("done" in pending, false);
    assert.deepEqual((pending.metadata as Record<string, unknown>).batchStats, {
      requestCount: "4",
      pendingRequestCount: "4",
    });
    assert.equal(
      (pending.metadata as Record<string, unknown>)["@type"],
      "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch",
    );

    assert.equal((await ai.batches.get({ name: created.name! })).state, "JOB_STATE_RUNNING");
    const done = await ai.batches.get({ name: created.name! });
    assert.equal(done.state, "JOB_STATE_SUCCEEDED");
    assert.match(done.endTime ?? "", RFC3339_NANOS);
    const out = done.dest?.inlinedResponses ?? [];
    assert.equal(out.length, 4);
    assert.equal(
      out[0].response?.candidates?.[0].content?.parts?.[0].text,
      `[${MODEL}] first question`,
    );
    assert.deepEqual(out[0].metadata, { key: "a" });
    // A google.rpc.Status, as the batch proto types it: rpc code 3 (INVALID_ARGUMENT), no name.
    assert.deepEqual([out[1].error?.code, (out[1].error as { status?: string }).status], [
      3,
      undefined,
    ]);
    assert.deepEqual(out[1].metadata, { key: "b" });
    assert.match(out[2].error?.message ?? "", /temperature value of 9/);
    assert.equal(out[3].response?.usageMetadata?.promptTokenCount, 4);
    assert.equal(out[3].metadata, undefined);

    const final = raw.at(-1)!;
    assert.equal(final.done, true);
    const metadata = final.metadata as Record<string, unknown>;
    assert.deepEqual(metadata.batchStats, {
      requestCount: "4",
      successfulRequestCount: "2",
      failedRequestCount: "2",
    });
    const response = final.response as Record<string, unknown>;
    assert.equal(
      response["@type"],
      "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatchOutput",
    );
    assert.deepEqual(
      response.inlinedResponses,
      (metadata.output as Record<string, unknown>).inlinedResponses,
    );
    assert.equal(emulator.log.count(/^GET \/v1beta\/batches\//), 2);
  });

  it("ends by the first poll under the instant schedule, and refuses inline batches over maxInlineBytes", async () => {
    const { ai } = await setup({
      schedule: { advance: "instant" },
      limits: { maxInlineBytes: 2_000 },
    });
    const created = await ai.batches.create({ model: MODEL, src: [{ contents: "quick" }] });
    assert.equal(created.state, "JOB_STATE_PENDING", "a create always answers a pending job");
    const job = await ai.batches.get({ name: created.name! });
    assert.equal(job.state, "JOB_STATE_SUCCEEDED");
    assert.equal(
      job.dest?.inlinedResponses?.[0].response?.candidates?.[0].content?.parts?.[0].text,
      `[${MODEL}] quick`,
    );
    const big = await apiError(
      ai.batches.create({ model: MODEL, src: [{ contents: "word ".repeat(500) }] }),
    );
    assert.deepEqual([big.code, big.message], [
      400,
      "Request payload size exceeds the limit: 2000 bytes.",
    ]);
    const model = await apiError(
      ai.batches.create({ model: "gemini-0-nope", src: [{ contents: "x" }] }),
    );
    assert.equal(model.code, 404);
  });
});

describe("files and file batches", () => {
  it("uploads a JSONL file, runs it as a batch and serves the responses file in input order", async () => {
    const { emulator, ai, raw } = await setup({ batches: [{ failPromptContains: "[[fail]]" }] });
    const path = tempFile(
      "requests.jsonl",
      [
        line("k1", "first row"),
        "",
        "this is not json",
        line("k2", "second [[fail]] row"),
        line("k3", "third row", { generationConfig: { maxOutputTokens: 2 } }),
        JSON.stringify({
          key: "k4",
          request: { contents: [{ parts: [{ text: "x" }] }], bogus: true },
        }),
        JSON.stringify({ contents: [{ parts: [{ text: "bare request" }] }] }),
      ].join("\n"),
    );
    const file = await ai.files.upload({
      file: path,
      config: { mimeType: "jsonl", displayName: "requests" },
    });
    assert.match(file.name ?? "", /^files\/[a-z0-9-]{1,40}$/);
    assert.deepEqual([file.state, file.source, file.mimeType, file.displayName], [
      "ACTIVE",
      "UPLOADED",
      "jsonl",
      "requests",
    ]);
    assert.equal(file.sizeBytes, String(readFileSync(path).length));
    assert.deepEqual(await ai.files.get({ name: file.name! }), file);

    const created = await ai.batches.create({ model: MODEL, src: file.name! });
    assert.equal(created.state, "JOB_STATE_PENDING");
    const done = await settle(ai, created.name!);
    assert.equal(done.state, "JOB_STATE_SUCCEEDED");
    const fileName = done.dest?.fileName ?? "";
    assert.match(fileName, /^files\/batch-[a-z0-9]+$/);
    const final = raw.at(-1)!;
    assert.deepEqual((final.metadata as Record<string, unknown>).inputConfig, {
      fileName: file.name,
    });
    assert.deepEqual((final.response as Record<string, unknown>).responsesFile, fileName);
    assert.deepEqual((final.metadata as Record<string, unknown>).batchStats, {
      requestCount: "6",
      successfulRequestCount: "3",
      failedRequestCount: "3",
    });

    const result = await ai.files.get({ name: fileName });
    assert.equal(result.source, "GENERATED");
    assert.match(result.downloadUri ?? "", /:download\?alt=media$/);
    const target = join(scratch, "responses.jsonl");
    await ai.files.download({ file: fileName, downloadPath: target });
    const lines = readFileSync(target, "utf8").trimEnd().split("\n").map((l) => JSON.parse(l));
    assert.deepEqual(lines.map((l) => l.key), ["k1", undefined, "k2", "k3", "k4", undefined]);
    assert.equal(lines[0].response.candidates[0].content.parts[0].text, `[${MODEL}] first row`);
    assert.equal(lines[1].error.code, 3);
    assert.deepEqual(Object.keys(lines[2].error), ["code", "message"]);
    assert.equal(lines[3].response.candidates[0].finishReason, "MAX_TOKENS");
    assert.match(lines[4].error.message, /Unknown name "bogus"/);
    assert.equal(lines[5].response.candidates[0].content.parts[0].text, `[${MODEL}] bare request`);

    // Only generated files can be read back.
    const refused = await apiError(
      ai.files.download({ file: file.name!, downloadPath: join(scratch, "x") }),
    );
    assert.equal(refused.code, 400);
    assert.equal(emulator.log.count("/upload/v1beta/files"), 2);
  });

  it("uploads a file over 8 MiB in two chunks (active, then final)", async () => {
    const { emulator, ai } = await setup();
    const size = 9 * 1024 * 1024;
    const file = await ai.files.upload({
      file: new Blob([new Uint8Array(size).fill(0x61)]),
      config: { mimeType: "jsonl" },
    });
    assert.equal(file.sizeBytes, String(size));
    const uploads = emulator.log.find("/upload/v1beta/files");
    assert.deepEqual(uploads.map((e) => e.headers["x-goog-upload-command"]), [
      "start",
      "upload",
      "upload, finalize",
    ]);
    assert.deepEqual(uploads.slice(1).map((e) => [e.headers["x-goog-upload-offset"], e.bytes]), [
      ["0", 8 * 1024 * 1024],
      [String(8 * 1024 * 1024), 1024 * 1024],
    ]);
    assert.equal(uploads[1].query.upload_protocol, "resumable");
  });

  it("lists files page by page, deletes them, and answers 403 for missing files", async () => {
    const { emulator, ai } = await setup();
    const names: string[] = [];
    for (const text of ["a", "b", "c"]) {
      names.push(
        (await ai.files.upload({ file: new Blob([text]), config: { mimeType: "text/plain" } }))
          .name!,
      );
    }
    const seen: string[] = [];
    for await (const f of await ai.files.list({ config: { pageSize: 2 } })) seen.push(f.name!);
    assert.deepEqual(seen, [...names].reverse());
    assert.equal(emulator.log.count("GET /v1beta/files"), 2);
    await ai.files.delete({ name: names[0] });
    const gone = await apiError(ai.files.get({ name: names[0] }));
    assert.deepEqual([gone.code, gone.status], [403, "PERMISSION_DENIED"]);
    const missing = await apiError(ai.batches.create({ model: MODEL, src: "files/nothere" }));
    assert.equal(missing.code, 403);
    const named = await ai.files.upload({
      file: new Blob(["d"]),
      config: { mimeType: "text/plain", name: "my-file" },
    });
    assert.equal(named.name, "files/my-file");
    const taken = await apiError(
      ai.files.upload({
        file: new Blob(["e"]),
        config: { mimeType: "text/plain", name: "my-file" },
      }),
    );
    assert.deepEqual([taken.code, taken.status], [409, "ALREADY_EXISTS"]);
  });

  it("serves results at /download/{ver}/… too, and corrupts the responses file on request", async () => {
    const { emulator, ai } = await setup({ batches: [{ malformedLines: 1, blankLines: 2 }] });
    const path = tempFile(
      "three.jsonl",
      [line("a", "one"), line("b", "two"), line("c", "three")].join("\n"),
    );
    const file = await ai.files.upload({ file: path, config: { mimeType: "jsonl" } });
    const done = await settle(
      ai,
      (await ai.batches.create({ model: MODEL, src: file.name! })).name!,
    );
    const target = join(scratch, "corrupt.jsonl");
    await ai.files.download({ file: done.dest!.fileName!, downloadPath: target });
    const lines = readFileSync(target, "utf8").split("\n").slice(0, -1);
    assert.equal(lines.length, 6);
    assert.equal(lines.filter((l) => l === "").length, 2);
    const broken = lines.filter((l) => {
      if (l === "") return false;
      try {
        JSON.parse(l);
        return false;
      } catch {
        return true;
      }
    });
    assert.equal(broken.length, 1);
    // The REST docs download from /download/v1beta/…; the SDK cannot be pointed there.
    const id = done.dest!.fileName!.slice("files/".length);
    const response = await fetch(`${emulator.url}/download/v1beta/files/${id}:download?alt=media`, {
      headers: { "x-goog-api-key": emulator.apiKey },
    });
    assert.equal(response.status, 200);
    assert.equal(await response.text(), readFileSync(target, "utf8"));
  });

  it("makes the SDK fail when the upload start lacks x-goog-upload-url (limit omitUploadUrl)", async () => {
    const { ai } = await setup({ limits: { omitUploadUrl: 1 } });
    await assert.rejects(
      ai.files.upload({ file: new Blob(["x"]), config: { mimeType: "jsonl" } }),
      /Failed to get upload url/,
    );
    const file = await ai.files.upload({ file: new Blob(["x"]), config: { mimeType: "jsonl" } });
    assert.equal(file.sizeBytes, "1");
  });
});

describe("batch lifecycle", () => {
  it("lists batches newest first through the SDK pager", async () => {
    const { emulator, ai } = await setup();
    const names: string[] = [];
    for (let i = 0; i < 5; i++) {
      names.push((await ai.batches.create({ model: MODEL, src: [{ contents: `q${i}` }] })).name!);
    }
    const seen: string[] = [];
    for await (const job of await ai.batches.list({ config: { pageSize: 2 } })) {
      seen.push(job.name!);
    }
    assert.deepEqual(seen, [...names].reverse());
    const lists = emulator.log.find("GET /v1beta/batches");
    assert.equal(lists.length, 3);
    assert.deepEqual(lists.map((e) => e.query.pageSize), ["2", "2", "2"]);
    assert.equal(lists[0].query.pageToken, undefined);
    assert.ok(lists[1].query.pageToken && lists[2].query.pageToken);
  });

  it("cancels (then refuses to cancel again) and deletes", async () => {
    const { ai, raw } = await setup();
    const job = await ai.batches.create({
      model: MODEL,
      src: [{ contents: "x" }, { contents: "y" }],
    });
    await ai.batches.cancel({ name: job.name! });
    assert.deepEqual(raw.at(-1), {});
    const cancelled = await ai.batches.get({ name: job.name! });
    assert.equal(cancelled.state, "JOB_STATE_CANCELLED");
    assert.equal(cancelled.dest, undefined);
    const op = raw.at(-1)!;
    assert.equal(op.done, true);
    assert.equal((op.error as { code: number }).code, 1);
    const again = await apiError(ai.batches.cancel({ name: job.name! }));
    assert.deepEqual([again.code, again.status], [400, "FAILED_PRECONDITION"]);
    await ai.batches.delete({ name: job.name! });
    const gone = await apiError(ai.batches.get({ name: job.name! }));
    assert.deepEqual([gone.code, gone.status], [404, "NOT_FOUND"]);
  });

  it("fails the Nth batch (end: fail) with a top-level error and no output", async () => {
    const { ai, raw } = await setup({ batches: [{ nth: 2, end: "fail" }] });
    const first = await ai.batches.create({ model: MODEL, src: [{ contents: "fine" }] });
    const second = await ai.batches.create({ model: MODEL, src: [{ contents: "doomed" }] });
    const failed = await ai.batches.get({ name: second.name! });
    assert.equal(failed.state, "JOB_STATE_FAILED");
    assert.equal(failed.dest, undefined);
    const op = raw.at(-1)!;
    assert.equal(op.done, true);
    assert.equal((op.error as { code: number }).code, 3);
    assert.match((op.error as { message: string }).message, /could not be validated/);
    assert.equal("response" in op, false);
    assert.equal((await settle(ai, first.name!)).state, "JOB_STATE_SUCCEEDED");
  });

  it("expires a batch unfinished after 48 h on the clock, and on end: expire", async () => {
    const clock = new ManualClock();
    const { emulator, ai, raw } = await setup({
      clock,
      schedule: { advance: "manual" },
      batches: [{ nth: 2, end: "expire" }],
    });
    const slow = await ai.batches.create({ model: MODEL, src: [{ contents: "slow" }] });
    clock.advance(47 * HOUR);
    assert.equal((await ai.batches.get({ name: slow.name! })).state, "JOB_STATE_PENDING");
    clock.advance(HOUR);
    const expired = await ai.batches.get({ name: slow.name! });
    assert.equal(expired.state, "JOB_STATE_EXPIRED");
    assert.equal(expired.dest, undefined);
    assert.equal(expired.endTime, "2026-11-29T10:00:00.000000000Z");
    const op = raw.at(-1)!;
    assert.equal(op.done, true);
    assert.equal("output" in (op.metadata as object) || "response" in op, false);

    const doomed = await ai.batches.create({ model: MODEL, src: [{ contents: "later" }] });
    emulator.step(doomed.name!.slice("batches/".length), 1);
    assert.equal((await ai.batches.get({ name: doomed.name! })).state, "JOB_STATE_RUNNING");
    emulator.step(doomed.name!.slice("batches/".length), 1);
    assert.equal((await ai.batches.get({ name: doomed.name! })).state, "JOB_STATE_EXPIRED");
  });
});

describe("faults through the SDK", () => {
  it("surfaces 429 and 5xx at once: the SDK does not retry by default", async () => {
    const { emulator, ai } = await setup({
      faults: [
        { match: { first: 1 }, action: { kind: "status", status: 429, retryAfter: 1 } },
        { match: { first: 1, path: ":countTokens" }, action: { kind: "status", status: 500 } },
        { match: { first: 1, path: "/batches" }, action: { kind: "status", status: 503 } },
        // OpenRouter's error-in-200 has no Gemini counterpart: the framework answers a plain 500.
        { match: { first: 1, path: "/files" }, action: { kind: "error-in-200" } },
      ],
    });
    const limited = await apiError(ai.models.generateContent({ model: MODEL, contents: "hi" }));
    assert.deepEqual([limited.code, limited.status], [429, "RESOURCE_EXHAUSTED"]);
    assert.equal(
      (limited.details?.[0] as { "@type": string })["@type"],
      "type.googleapis.com/google.rpc.RetryInfo",
    );
    const internal = await apiError(ai.models.countTokens({ model: MODEL, contents: "hi" }));
    assert.deepEqual([internal.code, internal.status], [500, "INTERNAL"]);
    const unavailable = await apiError(ai.batches.list());
    assert.deepEqual([unavailable.code, unavailable.status, unavailable.message], [
      503,
      "UNAVAILABLE",
      "The model is overloaded. Please try again later.",
    ]);
    const files = await apiError(ai.files.list());
    assert.deepEqual([files.code, files.status], [500, "INTERNAL"]);
    assert.deepEqual(emulator.log.entries.map((e) => [e.status, e.fault]), [
      [429, "status"],
      [500, "status"],
      [503, "status"],
      [500, "error-in-200"],
    ]);
  });

  it("says when to retry a 429 in RetryInfo (limit retryDelaySeconds), with no retry-after header unless asked", async () => {
    const emulator = await startEmulator({
      provider: "gemini",
      limits: { retryDelaySeconds: 0.25 },
      faults: [{ match: { first: 2 }, action: { kind: "status", status: 429 } }],
    });
    running.push(emulator);
    const call = () =>
      fetch(`${emulator.baseURL}/v1beta/models/${MODEL}:generateContent`, {
        method: "POST",
        headers: { "x-goog-api-key": emulator.apiKey, "content-type": "application/json" },
        body: JSON.stringify({ contents: [{ parts: [{ text: "hi" }] }] }),
      });
    const limited = await call();
    assert.equal(limited.status, 429);
    assert.equal(
      limited.headers.get("retry-after"),
      null,
      "Gemini documents no retry-after header",
    );
    const body = (await limited.json()) as { error: { details: Array<Record<string, unknown>> } };
    assert.deepEqual(body.error.details, [{
      "@type": "type.googleapis.com/google.rpc.RetryInfo",
      retryDelay: "0.25s",
    }]);
    assert.equal((await call()).status, 429);
    assert.equal((await call()).status, 200);
  });

  it("retries with httpOptions.retryOptions until an attempt succeeds, or the attempts run out", async () => {
    const retryOptions = { attempts: 3, initialDelay: 0.001, maxDelay: 0.001, jitter: 0 };
    const { emulator, ai } = await setup(
      { faults: [{ match: { first: 2 }, action: { kind: "status", status: 503 } }] },
      { retryOptions },
    );
    const result = await ai.models.generateContent({ model: MODEL, contents: "persist" });
    assert.equal(result.text, `[${MODEL}] persist`);
    // genai sends no retry-count header: the log's order tells the attempts apart.
    assert.deepEqual(emulator.log.entries.map((e) => e.status), [503, 503, 200]);

    emulator.log.clear();
    emulator.faults.add({ match: { first: 3 }, action: { kind: "status", status: 429 } });
    const exhausted = await apiError(ai.models.countTokens({ model: MODEL, contents: "x" }));
    assert.equal(exhausted.code, 429);
    assert.deepEqual(emulator.log.entries.map((e) => e.status), [429, 429, 429]);
  });

  it("answers slowly within the timeout, and times out beyond it", async () => {
    const { emulator, ai } = await setup({
      faults: [
        { match: { promptContains: "[[slow]]" }, action: { kind: "slow", delayMs: 5 } },
        { match: { promptContains: "[[stuck]]" }, action: { kind: "slow", delayMs: 300 } },
      ],
    });
    const slow = await ai.models.generateContent({ model: MODEL, contents: "a [[slow]] answer" });
    assert.equal(slow.text, `[${MODEL}] a [[slow]] answer`);
    // The stuck answer comes long after this call's own timeout: the SDK aborts it.
    const stuck = ai.models.generateContent({
      model: MODEL,
      contents: "a [[stuck]] answer",
      config: { httpOptions: { timeout: 50 } },
    });
    await assert.rejects(stuck, (e: unknown) => !(e instanceof ApiError));
    assert.equal(emulator.log.entries[0].fault, "slow");
  });

  it("drops a connection: the SDK surfaces a network error, the next call succeeds", async () => {
    const { emulator, ai } = await setup({
      faults: [{ match: { first: 1 }, action: { kind: "drop" } }],
    });
    await assert.rejects(
      ai.models.generateContent({ model: MODEL, contents: "lost" }),
      (e: unknown) => !(e instanceof ApiError),
    );
    const result = await ai.models.generateContent({ model: MODEL, contents: "found" });
    assert.equal(result.text, `[${MODEL}] found`);
    assert.deepEqual(emulator.log.entries.map((e) => [e.status, e.fault]), [[0, "drop"], [
      200,
      undefined,
    ]]);
  });

  it("faults one batch's polls by id, and batch prompts by content", async () => {
    const { emulator, ai } = await setup();
    const job = await ai.batches.create({ model: MODEL, src: [{ contents: "a" }] });
    const id = job.name!.slice("batches/".length);
    emulator.faults.add({
      match: { batch: id, first: 1 },
      action: { kind: "status", status: 500 },
    });
    emulator.faults.add({
      match: { promptContains: "[[reject]]" },
      action: { kind: "status", status: 400, message: "nope" },
    });
    assert.equal((await apiError(ai.batches.get({ name: job.name! }))).code, 500);
    assert.equal((await ai.batches.get({ name: job.name! })).state, "JOB_STATE_RUNNING");
    const rejected = await apiError(
      ai.batches.create({ model: MODEL, src: [{ contents: "x [[reject]]" }] }),
    );
    assert.deepEqual([rejected.code, rejected.message], [400, "nope"]);
  });
});
