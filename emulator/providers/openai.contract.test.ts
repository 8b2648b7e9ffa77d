/**
 * The OpenAI emulator against OpenAI's published OpenAPI definition, through the official SDK:
 * requests the definition refuses are refused (400 naming the parameter) where the hand-written
 * checks say nothing (each case is first shown accepted with the contract check off), and every
 * answer (completions, chunks, token counts, files, batches, list pages, result lines, errors)
 * matches the definition's response schemas.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { describe, it } from "node:test";
import OpenAI, { toFile } from "openai";
import { openApiValidator, type Violation } from "../contract/openapi.ts";
import { type Emulator, type EmulatorOptions, startEmulator } from "../server.ts";

const spec = openApiValidator();
const MODEL = "gpt-4o-mini";

/** Asserts no violations, showing them when there are. */
function valid(violations: Violation[], what: string): void {
  assert.deepEqual(
    violations.map((v) => `${v.param || "(body)"}: ${v.keyword} ${v.message}`),
    [],
    what,
  );
}

async function withOpenAI(
  options: Omit<EmulatorOptions, "provider">,
  fn: (emu: Emulator, client: OpenAI) => Promise<void>,
) {
  const emu = await startEmulator({ provider: "openai", ...options });
  try {
    await fn(emu, new OpenAI({ apiKey: emu.apiKey, baseURL: emu.baseURL, maxRetries: 0 }));
  } finally {
    await emu.stop();
  }
}

/** The raw JSON of an SDK call's answer (what the wire carried, not the SDK's object). */
async function raw(call: { asResponse(): Promise<Response> }): Promise<unknown> {
  return await (await call.asResponse()).json();
}

/** The error body an SDK call is refused with. */
async function refusal(
  call: Promise<unknown>,
): Promise<{ status: number; body: { error: Record<string, unknown> } }> {
  const e = await call.then(() => assert.fail("accepted"), (e: unknown) => e);
  assert.ok(e instanceof OpenAI.APIError, String(e));
  return { status: e.status as number, body: { error: e.error as Record<string, unknown> } };
}

const jsonl = (lines: unknown[]) => lines.map((l) => JSON.stringify(l)).join("\n") + "\n";
const chatLine = (id: string, extra: Record<string, unknown> = {}) => ({
  custom_id: id,
  method: "POST",
  url: "/v1/chat/completions",
  body: { model: MODEL, messages: [{ role: "user", content: `prompt ${id}` }], ...extra },
});
const upload = async (client: OpenAI, lines: unknown[]) =>
  await client.files.create({
    file: await toFile(Buffer.from(jsonl(lines)), "in.jsonl"),
    purpose: "batch",
  });

/** Requests the published schemas refuse and the hand-written checks did not. */
const REFUSED: Array<{ extra: Record<string, unknown>; param: string; code: string }> = [
  { extra: { verbosity: "loud" }, param: "verbosity", code: "invalid_value" },
  { extra: { modalities: ["smell"] }, param: "modalities[0]", code: "invalid_value" },
  {
    extra: { prediction: { type: "content", content: 5 } },
    param: "prediction.content",
    code: "invalid_type",
  },
  { extra: { logit_bias: { "50256": "high" } }, param: "logit_bias.50256", code: "invalid_type" },
];

describe("openai emulator: requests checked against the published definition", () => {
  it("refuses chat parameters the definition refuses, naming them (accepted with the check off)", async () => {
    for (const openaiSpec of [false, undefined] as const) {
      await withOpenAI({ openaiSpec }, async (_emu, client) => {
        for (const { extra, param, code } of REFUSED) {
          const call = client.chat.completions.create(
            { model: MODEL, messages: [{ role: "user", content: "hi" }], ...extra } as never,
          );
          if (openaiSpec === false) {
            await call; // the hand-written checks alone let it through
            continue;
          }
          const { status, body } = await refusal(call);
          assert.equal(status, 400, param);
          assert.equal(body.error.type, "invalid_request_error", param);
          assert.equal(body.error.param, param);
          assert.equal(body.error.code, code, param);
          assert.match(
            String(body.error.message),
            new RegExp(`'${param.replace(/[[\].]/g, "\\$&")}'|Invalid value`),
            param,
          );
          valid(spec.response("createChatCompletion", body, status), `error body for ${param}`);
        }
      });
    }
  });

  it("keeps the hand-written message where it has one", async () => {
    await withOpenAI({}, async (_emu, client) => {
      const { body } = await refusal(
        client.chat.completions.create({
          model: MODEL,
          messages: [{ role: "user", content: "hi" }],
          temperature: 5,
        }),
      );
      assert.equal(body.error.code, "decimal_above_max_value");
      assert.equal(body.error.param, "temperature");
    });
  });

  it("refuses an input-token count the definition refuses", async () => {
    for (const openaiSpec of [false, undefined] as const) {
      await withOpenAI({ openaiSpec }, async (_emu, client) => {
        const call = client.responses.inputTokens.count(
          { model: MODEL, input: "one two", truncation: "sometimes" } as never,
        );
        if (openaiSpec === false) return void (await call);
        const { status, body } = await refusal(call);
        assert.equal(status, 400);
        assert.equal(body.error.param, "truncation");
        assert.equal(body.error.code, "invalid_value");
      });
    }
  });

  it("refuses an upload with a form field the definition does not have", async () => {
    for (const openaiSpec of [false, undefined] as const) {
      await withOpenAI({ openaiSpec }, async (_emu, client) => {
        const form = new FormData();
        form.set("purpose", "batch");
        form.set("colour", "blue");
        form.set("file", new Blob([jsonl([chatLine("a")])]), "in.jsonl");
        const res = await fetch(`${client.baseURL}/files`, {
          method: "POST",
          body: form,
          headers: { authorization: `Bearer ${client.apiKey}` },
        });
        const body = (await res.json()) as { error: Record<string, unknown> };
        if (openaiSpec === false) return assert.equal(res.status, 200);
        assert.equal(res.status, 400);
        assert.equal(body.error.message, "Unrecognized request argument supplied: colour");
        assert.equal(body.error.param, null);
        valid(spec.response("createFile", body, 400), "error body");
        // With expires_after (nested multipart fields, numbers as text) an upload passes.
        const ok = await client.files.create({
          file: await toFile(Buffer.from(jsonl([chatLine("a")])), "in.jsonl"),
          purpose: "batch",
          expires_after: { anchor: "created_at", seconds: 3600 },
        });
        assert.equal(ok.purpose, "batch");
      });
    }
  });

  it("fails a batch line whose body the definition refuses, alone, in the error file", async () => {
    for (const openaiSpec of [false, undefined] as const) {
      await withOpenAI({ openaiSpec, schedule: { advance: "instant" } }, async (_emu, client) => {
        const file = await upload(client, [
          chatLine("fine"),
          chatLine("loud", { verbosity: "loud" }),
        ]);
        const created = await client.batches.create({
          input_file_id: file.id,
          endpoint: "/v1/chat/completions",
          completion_window: "24h",
        });
        const batch = await client.batches.retrieve(created.id);
        assert.equal(batch.status, "completed");
        if (openaiSpec === false) {
          return assert.deepEqual(batch.request_counts, { total: 2, completed: 2, failed: 0 });
        }
        assert.deepEqual(batch.request_counts, { total: 2, completed: 1, failed: 1 });
        const lines = (await (await client.files.content(batch.error_file_id!)).text()).trim()
          .split("\n").map((l) => JSON.parse(l));
        assert.equal(lines.length, 1);
        assert.equal(lines[0].custom_id, "loud");
        assert.equal(lines[0].response.status_code, 400);
        assert.equal(lines[0].response.body.error.param, "verbosity");
        valid(spec.batchOutputLine("/v1/chat/completions", lines[0]), "error line");
      });
    }
  });
});

describe("openai emulator: answers match the published response schemas", () => {
  it("chat completions: plain, structured, reasoning, several choices", async () => {
    await withOpenAI({}, async (_emu, client) => {
      const messages = [{ role: "system" as const, content: "be brief" }, {
        role: "user" as const,
        content: "hello there",
      }];
      valid(
        spec.response(
          "createChatCompletion",
          await raw(client.chat.completions.create({ model: MODEL, messages })),
        ),
        "plain",
      );
      valid(
        spec.response(
          "createChatCompletion",
          await raw(client.chat.completions.create({ model: MODEL, messages, n: 2 })),
        ),
        "n=2",
      );
      valid(
        spec.response(
          "createChatCompletion",
          await raw(client.chat.completions.create({ model: "o4-mini", messages })),
        ),
        "reasoning",
      );
      const structured = client.chat.completions.create({
        model: MODEL,
        messages,
        response_format: {
          type: "json_schema",
          json_schema: {
            name: "answer",
            strict: true,
            schema: {
              type: "object",
              properties: { a: { type: "string" } },
              required: ["a"],
              additionalProperties: false,
            },
          },
        },
      });
      valid(spec.response("createChatCompletion", await raw(structured)), "structured");
      const cut = client.chat.completions.create({
        model: MODEL,
        messages,
        max_completion_tokens: 1,
      });
      valid(spec.response("createChatCompletion", await raw(cut)), "cut at max tokens");
    });
  });

  it("streamed chat completion chunks", async () => {
    await withOpenAI({}, async (_emu, client) => {
      const stream = await client.chat.completions.create({
        model: MODEL,
        messages: [{ role: "user", content: "count these words please" }],
        stream: true,
        stream_options: { include_usage: true },
      });
      let chunks = 0;
      for await (const chunk of stream) {
        chunks++;
        valid(
          spec.streamEvent("createChatCompletion", JSON.parse(JSON.stringify(chunk))),
          `chunk ${chunks}`,
        );
      }
      assert.ok(chunks >= 2);
    });
  });

  it("Responses: plain and structured answers, and a Responses batch's result lines", async () => {
    await withOpenAI({ schedule: { advance: "instant" } }, async (_emu, client) => {
      valid(
        spec.response(
          "createResponse",
          await raw(client.responses.create({ model: MODEL, input: "hello there" })),
        ),
        "plain",
      );
      const structured = client.responses.create({
        model: "o4-mini",
        input: "hello there",
        text: {
          format: {
            type: "json_schema",
            name: "answer",
            strict: true,
            schema: {
              type: "object",
              properties: { a: { type: "string" } },
              required: ["a"],
              additionalProperties: false,
            },
          },
        },
      });
      valid(spec.response("createResponse", await raw(structured)), "structured");
      const line = {
        custom_id: "r1",
        method: "POST",
        url: "/v1/responses",
        body: { model: MODEL, input: "one two" },
      };
      const file = await upload(client, [line]);
      const created = await client.batches.create({
        input_file_id: file.id,
        endpoint: "/v1/responses",
        completion_window: "24h",
      });
      const batch = await client.batches.retrieve(created.id);
      assert.equal(batch.status, "completed");
      const text = await (await client.files.content(batch.output_file_id!)).text();
      valid(spec.batchOutputLine("/v1/responses", JSON.parse(text.trim())), "responses line");
    });
  });

  it("input-token counts", async () => {
    await withOpenAI({}, async (_emu, client) => {
      valid(
        spec.response(
          "Getinputtokencounts",
          await raw(client.responses.inputTokens.count({ model: MODEL, input: "a b c" })),
        ),
        "count",
      );
    });
  });

  it("files: upload, retrieve, list page, delete", async () => {
    await withOpenAI({}, async (_emu, client) => {
      valid(spec.response("listFiles", await raw(client.files.list())), "empty list");
      valid(spec.response("listBatches", await raw(client.batches.list())), "empty batch list");
      const file = await upload(client, [chatLine("a")]);
      valid(spec.response("createFile", JSON.parse(JSON.stringify(file))), "upload");
      valid(spec.response("retrieveFile", await raw(client.files.retrieve(file.id))), "retrieve");
      valid(spec.response("listFiles", await raw(client.files.list())), "list");
      valid(spec.response("deleteFile", await raw(client.files.delete(file.id))), "delete");
    });
  });

  it("batches at every state, list pages, cancel, failure, and result lines", async () => {
    await withOpenAI(
      { batches: [{ nth: 2, end: "expire" }, { nth: 3, end: "fail" }] },
      async (_emu, client) => {
        const lines = [chatLine("a"), chatLine("b"), chatLine("c", { temperature: 5 })];
        const statuses = new Set<string>();
        const check = (b: unknown, what: string) => {
          statuses.add((b as { status: string }).status);
          valid(spec.response("retrieveBatch", b), what);
        };
        const createRaw = async () => {
          const file = await upload(client, lines);
          const b = await raw(
            client.batches.create({
              input_file_id: file.id,
              endpoint: "/v1/chat/completions",
              completion_window: "24h",
            }),
          );
          check(b, "created");
          return b as { id: string };
        };
        for (const n of [1, 2, 3]) {
          const { id } = await createRaw();
          for (let i = 0; i < 8; i++) {
            const b = (await raw(client.batches.retrieve(id))) as {
              status: string;
              output_file_id: string | null;
              error_file_id: string | null;
            };
            check(b, `batch ${n} ${b.status}`);
            if (!["completed", "expired", "failed"].includes(b.status)) continue;
            for (const fileId of [b.output_file_id, b.error_file_id]) {
              if (!fileId) continue;
              const text = await (await client.files.content(fileId)).text();
              for (const line of text.trim().split("\n")) {
                valid(
                  spec.batchOutputLine("/v1/chat/completions", JSON.parse(line)),
                  `batch ${n} line`,
                );
              }
              valid(
                spec.response("retrieveFile", await raw(client.files.retrieve(fileId))),
                "result file",
              );
            }
            break;
          }
        }
        const { id } = await createRaw();
        const cancelling = await raw(client.batches.cancel(id));
        valid(spec.response("cancelBatch", cancelling), "cancelling");
        statuses.add((cancelling as { status: string }).status);
        check(await raw(client.batches.retrieve(id)), "cancelled");
        valid(
          spec.response("listBatches", await raw(client.batches.list({ limit: 2 }))),
          "list page",
        );
        const every = [
          "validating",
          "in_progress",
          "finalizing",
          "completed",
          "expired",
          "failed",
          "cancelling",
          "cancelled",
        ];
        assert.deepEqual([...statuses].sort(), every.sort());
      },
    );
  });

  it("error bodies: 400, 401, 404, 429", async () => {
    await withOpenAI({
      faults: [{ match: { path: "/v1/models" }, action: { kind: "status", status: 429 } }],
    }, async (emu, client) => {
      const bad = await refusal(client.chat.completions.create({ model: MODEL, messages: [] }));
      valid(spec.response("createChatCompletion", bad.body, bad.status), "400");
      const denied = await refusal(
        new OpenAI({ apiKey: "wrong-key-123", baseURL: emu.baseURL, maxRetries: 0 }).files.list(),
      );
      valid(spec.response("listFiles", denied.body, denied.status), "401");
      const missing = await refusal(client.batches.retrieve("batch_nope"));
      valid(spec.response("retrieveBatch", missing.body, missing.status), "404");
      const limited = await refusal(client.models.list());
      assert.equal(limited.status, 429);
      valid(spec.response("listModels", limited.body, limited.status), "429");
    });
  });
});
