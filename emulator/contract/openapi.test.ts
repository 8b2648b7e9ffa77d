/**
 * The OpenAPI validator on OpenAI's published definition: each spec quirk handled (see
 * `spec.ts`), violations placed and ordered, and a missing spec failing loudly.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import process from "node:process";
import { startEmulator } from "../server.ts";
import { openApiValidator, pointerToParam } from "./openapi.ts";
import { defaultSpecPath, SPEC_ENV } from "./spec.ts";

// Resolved once: the whole file fails (never skips) when the definition cannot be found.
const spec = openApiValidator();
const chat = (extra: Record<string, unknown> = {}) => ({
  model: "gpt-4o-mini",
  messages: [{ role: "user", content: "hi" }],
  ...extra,
});
const first = (violations: ReturnType<typeof spec.request>) =>
  violations[0] && { param: violations[0].param, keyword: violations[0].keyword };

describe("openApiValidator: finding the definition", () => {
  it("fails loudly, naming the place, when the file is missing", async () => {
    assert.throws(
      () => openApiValidator("/nonexistent/openai-openapi.yaml"),
      /not found at \/nonexistent/,
    );
    await assert.rejects(
      startEmulator({ provider: "openai", openaiSpec: "/nonexistent/spec.yaml" }),
      /not found/,
    );
    const saved = process.env[SPEC_ENV];
    process.env[SPEC_ENV] = "/nonexistent/from-env.yaml";
    try {
      assert.throws(
        () => defaultSpecPath(),
        /LOOM_OPENAI_SPEC=\/nonexistent\/from-env\.yaml: no such file/,
      );
    } finally {
      if (saved === undefined) delete process.env[SPEC_ENV];
      else process.env[SPEC_ENV] = saved;
    }
  });

  it("finds operations by operationId, by method and path (with or without /v1) and schemas by name", () => {
    assert.equal(spec.operation("POST /v1/chat/completions").operationId, "createChatCompletion");
    assert.equal(spec.operation("POST /batches").request, "CreateBatchRequest");
    assert.equal(spec.operation("POST /v1/responses/input_tokens").request, "TokenCountsBody");
    assert.equal(spec.operation("createFile").request, "CreateFileRequest");
    assert.equal(
      spec.operation("createChatCompletion").stream,
      "CreateChatCompletionStreamResponse",
    );
    assert.equal(spec.operation("GET /v1/batches/batch_abc").operationId, "retrieveBatch");
    assert.equal(spec.operation("POST /v1/batches/batch_abc/cancel").operationId, "cancelBatch");
    assert.equal(spec.operation("GET /v1/files/file-1/content").operationId, "downloadFile");
    assert.throws(() => spec.operation("POST /v1/nothing"), /no operation/);
    assert.throws(() => spec.schema("NoSuchSchema", {}), /no component schema NoSuchSchema/);
  });
});

describe("openApiValidator: spec quirks", () => {
  it("accepts a valid chat request and names the parameter of a wrong one (refs resolved)", () => {
    assert.deepEqual(spec.request("createChatCompletion", chat()), []);
    assert.deepEqual(
      first(
        spec.request("createChatCompletion", chat({ messages: [{ role: "user", content: 5 }] })),
      ),
      {
        param: "messages[0].content",
        keyword: "type",
      },
    );
    assert.deepEqual(first(spec.request("createChatCompletion", { messages: [] })), {
      param: "model",
      keyword: "required",
    });
  });

  it("reads 3.0-style nullable: null accepted, other types still refused", () => {
    assert.deepEqual(
      spec.request(
        "createChatCompletion",
        chat({ max_completion_tokens: null, temperature: null }),
      ),
      [],
    );
    const v = spec.request("createChatCompletion", chat({ max_completion_tokens: "5" }));
    assert.deepEqual(first(v), { param: "max_completion_tokens", keyword: "type" });
    assert.deepEqual(v[0].params.type, ["integer", "null"]);
  });

  it("keeps a usable discriminator: the role picks the branch, so errors name that branch's fields", () => {
    assert.deepEqual(
      first(
        spec.request("createChatCompletion", chat({ messages: [{ role: "robot", content: "x" }] })),
      ),
      {
        param: "messages[0].role",
        keyword: "discriminator",
      },
    );
    // A tool message without tool_call_id: only the tool branch speaks.
    const v = spec.request(
      "createChatCompletion",
      chat({ messages: [{ role: "tool", content: "x" }] }),
    );
    assert.deepEqual(v.map((x) => x.param), ["messages[0].tool_call_id"]);
  });

  it("reads overlapping oneOf branches as anyOf (an input_text user message is two InputItem kinds)", () => {
    const body = {
      model: "gpt-4o-mini",
      input: [{ role: "user", content: [{ type: "input_text", text: "hi" }] }],
    };
    assert.deepEqual(spec.request("POST /v1/responses/input_tokens", body), []);
  });

  it("rewrites $recursiveRef: a nested compound filter is checked at every depth", () => {
    const leaf = { type: "eq", key: "a", value: "b" };
    assert.deepEqual(
      spec.schema("CompoundFilter", {
        type: "and",
        filters: [leaf, { type: "or", filters: [leaf] }],
      }),
      [],
    );
    const bad = spec.schema("CompoundFilter", {
      type: "and",
      filters: [{ type: "or", filters: [{ type: "or", filters: 5 }] }],
    });
    assert.ok(
      bad.some((v) => v.param === "filters[0].filters[0].filters"),
      JSON.stringify(bad.map((v) => v.param)),
    );
  });

  it("treats OpenAPI formats as annotations (a file part is a string) and refuses unknown multipart fields", () => {
    assert.deepEqual(spec.request("createFile", { file: "<binary>", purpose: "batch" }), []);
    assert.deepEqual(
      first(spec.request("createFile", { file: "<binary>", purpose: "batch", extra: "x" })),
      {
        param: "extra",
        keyword: "additionalProperties",
      },
    );
  });

  it("accepts in answers the nulls the spec's own examples show, and only in answers", () => {
    assert.ok(spec.spec().answerNullables.includes("Batch.output_file_id"));
    const batch = {
      id: "batch_1",
      object: "batch",
      endpoint: "/v1/chat/completions",
      input_file_id: "file-1",
      completion_window: "24h",
      status: "validating",
      created_at: 1,
      output_file_id: null,
      in_progress_at: null,
      errors: null,
    };
    assert.deepEqual(spec.response("retrieveBatch", batch), []);
    const published = spec.schema("Batch", batch, "request").map((v) => v.param).sort();
    assert.deepEqual(published, ["errors", "in_progress_at", "output_file_id"]);
  });

  it("validates error bodies against ErrorResponse for any status ≥ 400", () => {
    assert.deepEqual(
      spec.response("createChatCompletion", {
        error: { message: "m", type: "t", param: null, code: null },
      }, 400),
      [],
    );
    assert.deepEqual(
      first(spec.response("createChatCompletion", { error: { message: "m", type: "t" } }, 429)),
      {
        param: "error.param",
        keyword: "required",
      },
    );
  });

  it("checks batch output lines: the envelope, then the body by status", () => {
    const ok = {
      id: "batch_req_1",
      custom_id: "a",
      response: {
        status_code: 400,
        request_id: "r",
        body: { error: { message: "m", type: "t", param: null, code: null } },
      },
      error: null,
    };
    assert.deepEqual(spec.batchOutputLine("/v1/chat/completions", ok), []);
    const badBody = { ...ok, response: { ...ok.response, status_code: 200 } };
    assert.ok(
      spec.batchOutputLine("/v1/chat/completions", badBody).some((v) =>
        v.param === "response.body.id"
      ),
    );
    assert.deepEqual(first(spec.batchOutputLine("/v1/chat/completions", { ...ok, error: 5 })), {
      param: "error",
      keyword: "type",
    });
  });
});

describe("pointerToParam", () => {
  it("writes OpenAI's parameter style", () => {
    assert.equal(pointerToParam("/messages/0/content"), "messages[0].content");
    assert.equal(pointerToParam(""), "");
    assert.equal(pointerToParam("/a~1b/c~0d"), "a/b.c~d");
    assert.equal(
      pointerToParam("/logit_bias/50256", { logit_bias: { "50256": "x" } }),
      "logit_bias.50256",
    );
  });
});
