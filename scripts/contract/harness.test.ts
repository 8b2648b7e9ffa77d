/**
 * The harness itself: the proxy records what crossed it (decoded, with secrets masked, upload
 * URLs routed back through it), and each validator finds a planted violation at the right JSON
 * path, so a green traffic test means something.
 */
import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { anthropicValidator } from "./anthropic.ts";
import { geminiValidator } from "./gemini.ts";
import { openApiChecks } from "./openapi.ts";
import { openAiValidator } from "./openai.ts";
import { decodeBody, type DecodedBody, type Exchange, startRecordingProxy } from "./proxy.ts";
import { anthropicOutputSchemaProblems, openAiStrictProblems } from "./schema-rules.ts";
import type { Violation } from "./violations.ts";

/** The credential headers each provider's SDK sends, masked as the proxy records them. */
const CREDENTIALS = {
  authorization: "***",
  "x-api-key": "***",
  "anthropic-version": "2023-06-01",
  "x-goog-api-key": "***",
};

/** An exchange as the proxy would record it. */
function exchange(
  method: string,
  path: string,
  request: DecodedBody | unknown,
  status: number,
  response: DecodedBody | unknown,
  extra: {
    query?: Record<string, string>;
    requestHeaders?: Record<string, string>;
    responseHeaders?: Record<string, string>;
  } = {},
): Exchange {
  const body = (b: unknown): DecodedBody =>
    b === undefined
      ? { kind: "empty" }
      : b && typeof b === "object" && "kind" in b
      ? b as DecodedBody
      : { kind: "json", value: b };
  return {
    seq: 1,
    method,
    path,
    query: extra.query ?? {},
    request: { headers: { ...CREDENTIALS, ...extra.requestHeaders }, body: body(request) },
    response: { status, headers: extra.responseHeaders ?? {}, body: body(response) },
  };
}

const where = (violations: Violation[]) =>
  violations.map((v) => `${v.direction} ${v.path}: ${v.message}`);

describe("recording proxy", () => {
  let upstream: ReturnType<typeof createServer>;
  let origin = "";
  before(async () => {
    upstream = createServer((req: IncomingMessage, res: ServerResponse) => {
      const chunks: Buffer[] = [];
      req.on("data", (c) => chunks.push(c));
      req.on("end", () => {
        if (req.url?.startsWith("/start")) {
          res.writeHead(200, {
            "x-goog-upload-url": `${origin}/upload?upload_id=1`,
            "content-type": "application/json",
          });
          res.end(JSON.stringify({ uri: `${origin}/files/1` }));
        } else if (req.url?.startsWith("/stream")) {
          res.writeHead(200, { "content-type": "text/event-stream" });
          res.end('data: {"a":1}\n\nevent: done\ndata: [DONE]\n\n');
        } else {
          res.writeHead(201, { "content-type": "application/octet-stream" });
          res.end('{"custom_id":"r1"}\n{"custom_id":"r2"}\n');
        }
      });
    });
    await new Promise<void>((resolve) => upstream.listen(0, "127.0.0.1", resolve));
    origin = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((resolve) => upstream.close(() => resolve())));

  it("forwards, decodes both directions, masks credentials and routes handed-out URLs through itself", async () => {
    const proxy = await startRecordingProxy(origin);
    try {
      const form = new FormData();
      form.append("purpose", "batch");
      form.append("file", new Blob(['{"custom_id":"a","body":{}}\n']), "in.jsonl");
      const upload = await fetch(`${proxy.url}/v1/files?key=secret-1`, {
        method: "POST",
        body: form,
        headers: { authorization: "Bearer sk-secret" },
      });
      assert.equal(upload.status, 201);
      assert.equal(await upload.text(), '{"custom_id":"r1"}\n{"custom_id":"r2"}\n');
      const start = await fetch(`${proxy.url}/start`, {
        method: "POST",
        body: "{}",
        headers: { "x-goog-api-key": "g-secret" },
      });
      assert.equal(start.headers.get("x-goog-upload-url"), `${proxy.url}/upload?upload_id=1`);
      assert.deepEqual(await start.json(), { uri: `${proxy.url}/files/1` });
      await (await fetch(`${proxy.url}/stream`)).text();

      const [first, second, third] = proxy.exchanges;
      assert.deepEqual([first.method, first.path, first.query], ["POST", "/v1/files", {
        key: "***",
      }]);
      assert.equal(first.request.headers.authorization, "***");
      assert.equal(second.request.headers["x-goog-api-key"], "***");
      assert.ok(
        !JSON.stringify(proxy.exchanges).includes("secret"),
        "no credential in the recording",
      );
      assert.equal(first.request.body.kind, "multipart");
      const parts = first.request.body.kind === "multipart" ? first.request.body.parts : [];
      assert.deepEqual(parts.map((p) => [p.name, p.filename, p.body.kind]), [[
        "purpose",
        undefined,
        "text",
      ], ["file", "in.jsonl", "jsonl"]]);
      assert.deepEqual(first.response.body, {
        kind: "jsonl",
        lines: [{ custom_id: "r1" }, { custom_id: "r2" }],
      });
      assert.equal(second.response.headers["x-goog-upload-url"], `${proxy.url}/upload?upload_id=1`);
      assert.deepEqual(third.response.body, {
        kind: "sse",
        events: [{ data: { a: 1 } }, { event: "done", data: "[DONE]" }],
      });
    } finally {
      await proxy.stop();
    }
  });

  it("sniffs bodies without a telling content type", async () => {
    const enc = (s: string) => new TextEncoder().encode(s);
    assert.deepEqual(await decodeBody(enc('{"a":1}')), { kind: "json", value: { a: 1 } });
    assert.deepEqual(await decodeBody(enc('{"a":1}\n\n{"b":2}\n')), {
      kind: "jsonl",
      lines: [{ a: 1 }, { b: 2 }],
    });
    assert.deepEqual(await decodeBody(enc("plain words")), { kind: "text", text: "plain words" });
    assert.deepEqual(await decodeBody(new Uint8Array()), { kind: "empty" });
  });
});

describe("OpenAI validator (published OpenAPI definition)", () => {
  const validate = openAiValidator(openApiChecks(), { basePath: "/v1", closedRequests: true });

  it("finds a wrong request member and a missing answer member at their JSON paths", () => {
    const bad = exchange(
      "POST",
      "/v1/chat/completions",
      { model: "gpt-4o-mini", messages: [{ role: "usr", content: "hi" }] },
      200,
      {
        id: "c1",
        object: "chat.completion",
        created: 1,
        model: "gpt-4o-mini",
        choices: [{
          index: 0,
          finish_reason: "stop",
          logprobs: null,
          message: { role: "assistant", content: "x", refusal: null },
        }],
      },
    );
    assert.ok(
      where(validate(bad)).some((v) => v.startsWith("request /messages/0/role")),
      where(validate(bad)).join("\n"),
    );
    const noChoices = exchange(
      "POST",
      "/v1/chat/completions",
      { model: "m", messages: [{ role: "user", content: "hi" }] },
      200,
      {
        id: "c1",
        object: "chat.completion",
        created: 1,
        model: "m",
      },
    );
    assert.deepEqual(where(validate(noChoices)), [
      "response /choices: must have required property 'choices'",
    ]);
  });

  it("checks each line of an uploaded batch file against the line's endpoint, and each result line", () => {
    const file = {
      kind: "jsonl",
      lines: [{
        custom_id: "1",
        method: "POST",
        url: "/v1/chat/completions",
        body: { model: "m", messages: "hi" },
      }],
    };
    const upload = exchange(
      "POST",
      "/v1/files",
      {
        kind: "multipart",
        parts: [{ name: "purpose", body: { kind: "text", text: "batch" } }, {
          name: "file",
          filename: "a.jsonl",
          body: file,
        }],
      },
      200,
      {
        id: "file-1",
        object: "file",
        bytes: 1,
        created_at: 1,
        filename: "a.jsonl",
        purpose: "batch",
        status: "processed",
        expires_at: null,
        status_details: null,
      },
    );
    assert.ok(
      where(validate(upload)).some((v) => v.startsWith("request /file/line 1/body/messages")),
      where(validate(upload)).join("\n"),
    );
    const results = exchange("GET", "/v1/files/file-2/content", undefined, 200, {
      kind: "jsonl",
      lines: [{
        id: "r",
        custom_id: "1",
        response: { status_code: 200, request_id: "q", body: { id: "c" } },
        error: null,
      }],
    });
    assert.ok(
      where(validate(results)).some((v) => v.startsWith("response line 1/response/body")),
      where(validate(results)).join("\n"),
    );
  });

  it("refuses a top-level member the definition doesn't name, as the API does", () => {
    const x = exchange(
      "POST",
      "/v1/chat/completions",
      { model: "m", messages: [{ role: "user", content: "hi" }], top_k: 3 },
      400,
      {
        error: {
          message: "Unrecognized request argument supplied: top_k",
          type: "invalid_request_error",
          param: null,
          code: null,
        },
      },
    );
    assert.deepEqual(where(validate(x)), [
      "request /top_k: Unrecognized request argument supplied: top_k",
    ]);
    assert.deepEqual(
      openAiValidator(openApiChecks(), { basePath: "/api/v1", closedRequests: false })({
        ...x,
        path: "/api/v1/chat/completions",
      }),
      [],
    );
  });

  it("holds OpenRouter's errors to its own documented shape, status included", () => {
    const router = openAiValidator(openApiChecks(), {
      basePath: "/api/v1",
      closedRequests: false,
      errors: "openrouter",
    });
    const body = { model: "m", messages: [{ role: "user", content: "hi" }] };
    assert.deepEqual(
      router(
        exchange("POST", "/api/v1/chat/completions", body, 429, {
          error: { code: 429, message: "slow down" },
        }),
      ),
      [],
    );
    assert.deepEqual(
      where(
        router(
          exchange("POST", "/api/v1/chat/completions", body, 429, {
            error: { code: "rate_limited", message: "x" },
          }),
        ),
      ),
      [
        "response /error/code: must be integer",
      ],
    );
    assert.deepEqual(
      where(
        router(
          exchange("POST", "/api/v1/chat/completions", body, 502, {
            error: { code: 429, message: "x" },
          }),
        ),
      ),
      [
        "response /error/code: is 429, the HTTP status 502",
      ],
    );
  });

  it("refuses a path the definition does not have, and checks error bodies", () => {
    assert.deepEqual(where(validate(exchange("POST", "/v1/chat/complete", {}, 404, {}))), [
      "request : no operation of the published definition serves this method and path",
    ]);
    assert.deepEqual(
      where(validate(exchange("GET", "/v1/batches/b1", undefined, 404, { message: "nope" }))),
      [
        "response /error: must have required property 'error'",
      ],
    );
  });
});

describe("Anthropic validator (schemas generated from the SDK's types)", () => {
  it("finds an unknown request field, and names the branch of a tagged union that failed", async () => {
    const validate = await anthropicValidator();
    const x = exchange(
      "POST",
      "/v1/messages",
      {
        model: "claude-sonnet-5-5",
        max_tokens: 5,
        messages: [{ role: "user", content: "hi" }],
        stop: ["x"],
      },
      200,
      {
        id: "m",
        type: "message",
        role: "assistant",
        model: "claude-sonnet-5-5",
        content: [{ type: "text", text: "x" }],
        stop_reason: "end_turn",
        stop_sequence: null,
      },
    );
    const found = where(validate(x));
    assert.ok(
      found.includes("request : must NOT have additional properties (stop)"),
      found.join("\n"),
    );
    assert.ok(
      found.includes("response /content/0: must have required property 'citations'"),
      found.join("\n"),
    );
    assert.ok(!found.some((v) => v.includes("thinking")), "other union branches stay quiet");
    const unversioned = where(
      validate({ ...x, request: { ...x.request, headers: { "x-api-key": "***" } } }),
    );
    assert.ok(
      unversioned.includes("request header anthropic-version: missing"),
      unversioned.join("\n"),
    );
  });
});

describe("Gemini validator (schemas from the published protos)", () => {
  const validate = geminiValidator();

  it("holds requests to camelCase names and answers to proto3 JSON (int64 as strings)", () => {
    const gen = exchange(
      "POST",
      "/v1beta/models/gemini-2.5-flash:generateContent",
      {
        contents: [{ role: "user", parts: [{ text: "hi" }] }],
        generationConfig: { max_output_tokens: 5 },
      },
      200,
      { candidates: [], usageMetadata: { promptTokenCount: 1 } },
    );
    assert.deepEqual(where(validate(gen)), [
      "request /generationConfig: must NOT have additional properties (max_output_tokens)",
    ]);
    const op = exchange("GET", "/v1beta/batches/b1", undefined, 200, {
      name: "batches/b1",
      metadata: { "@type": "t", state: "BATCH_STATE_RUNNING", batchStats: { requestCount: 2 } },
    });
    assert.deepEqual(where(validate(op)), [
      "response /metadata/batchStats/requestCount: must be string",
    ]);
  });

  it("checks the resumable upload protocol's headers and the uploaded lines", () => {
    const start = exchange(
      "POST",
      "/upload/v1beta/files",
      { file: { displayName: "x" } },
      200,
      undefined,
      {
        requestHeaders: { "x-goog-upload-command": "start" },
      },
    );
    assert.deepEqual(where(validate(start)).sort(), [
      "request header x-goog-upload-header-content-length: missing",
      "request header x-goog-upload-header-content-type: missing",
      "request header x-goog-upload-protocol: missing",
      "response header x-goog-upload-status: missing",
      "response header x-goog-upload-url: missing",
    ]);
    const chunk = exchange(
      "POST",
      "/upload/v1beta/files",
      { kind: "jsonl", lines: [{ key: "1", request: { contents: [], model_name: "x" } }] },
      200,
      {
        file: { name: "files/1", state: "ACTIVE" },
      },
      {
        query: { upload_id: "u" },
        requestHeaders: {
          "x-goog-upload-command": "upload, finalize",
          "x-goog-upload-offset": "0",
        },
        responseHeaders: { "x-goog-upload-status": "final" },
      },
    );
    assert.deepEqual(where(validate(chunk)), [
      "request line 1/request: must NOT have additional properties (model_name)",
    ]);
  });
});

describe("answer-schema rules the request types can't express", () => {
  it("OpenAI strict mode: unsupported keywords, open objects, optional properties, arrays without items", () => {
    const schema = {
      type: "object",
      properties: {
        a: { type: "array" },
        b: { allOf: [{ type: "string" }] },
        c: { type: "object", properties: { d: { type: "string" } } },
      },
      required: ["a", "b"],
      additionalProperties: false,
    };
    assert.deepEqual(openAiStrictProblems(schema).map((p) => `${p.path}: ${p.message}`), [
      "/properties/c: strict mode needs every property required",
      "/properties/a: strict mode needs items on an array",
      "/properties/b/allOf: strict mode does not support `allOf`",
      "/properties/c: strict mode needs additionalProperties: false on every object",
      "/properties/c/properties/d: strict mode needs every property required",
    ]);
    const validate = openAiValidator(openApiChecks(), { basePath: "/v1", closedRequests: true });
    const lax = exchange(
      "POST",
      "/v1/chat/completions",
      {
        model: "m",
        messages: [{ role: "user", content: "hi" }],
        response_format: { type: "json_schema", json_schema: { name: "s", strict: false, schema } },
      },
      400,
      { error: { message: "x", type: "invalid_request_error", param: null, code: null } },
    );
    assert.deepEqual(validate(lax), [], "a schema sent without strict is not held to strict rules");
  });

  it("Anthropic output_config: every object closed, minItems 0 or 1", () => {
    const schema = {
      type: "object",
      properties: {
        t: {
          type: "array",
          items: { type: "object", properties: {}, additionalProperties: false },
          minItems: 3,
        },
      },
    };
    assert.deepEqual(anthropicOutputSchemaProblems(schema).map((p) => p.path), [
      "",
      "/properties/t/minItems",
    ]);
  });
});

/** The JSON paths of some problems. */
const where2 = (found: ReadonlyArray<{ path: string }>) => found.map((p) => p.path);

describe("OpenAPI checks over the emulator's contract validator", () => {
  it("addresses operations by method and path, names unknown ones, and lists a request's members", () => {
    const checks = openApiChecks();
    assert.equal(checks.serves("POST", "/chat/completions"), true);
    assert.equal(checks.request("POST", "/nope", {}), undefined);
    assert.deepEqual(
      where2(
        checks.request("POST", "/chat/completions", {
          model: "m",
          messages: [{ role: "user", content: 5 }],
        })!,
      ).slice(0, 1),
      ["/messages/0/content"],
    );
    assert.deepEqual(
      checks.response("POST", "/chat/completions", 400, {
        error: { message: "x", type: "invalid_request_error", param: null, code: null },
      }),
      [],
    );
    const members = checks.requestMembers("POST", "/chat/completions")!;
    for (
      const name of ["model", "messages", "max_completion_tokens", "response_format", "temperature"]
    ) assert.ok(members.has(name), name);
    assert.equal(members.has("max_tokens_field"), false);
  });
});

describe("Gemini generationConfig rules from the proto", () => {
  it("needs responseMimeType with a response schema, and only one kind of response schema", () => {
    const validate = geminiValidator();
    const send = (generationConfig: Record<string, unknown>) =>
      where(
        validate(
          exchange(
            "POST",
            "/v1beta/models/m:generateContent",
            { contents: [{ role: "user", parts: [{ text: "hi" }] }], generationConfig },
            200,
            {},
          ),
        ),
      );
    assert.deepEqual(
      send({ responseMimeType: "application/json", responseJsonSchema: { type: "object" } }),
      [],
    );
    assert.deepEqual(send({ responseJsonSchema: { type: "object" } }), [
      "request /generationConfig: must have property responseMimeType when property responseJsonSchema is present",
    ]);
    assert.equal(
      send({ responseMimeType: "application/json", responseJsonSchema: {}, responseSchema: {} })
        .length,
      1,
    );
  });
});
