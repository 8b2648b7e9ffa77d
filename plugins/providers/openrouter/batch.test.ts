/** OpenRouter's batch API: the body it sends, and how statuses and results map onto Loom's. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { LoomUsageError } from "../../../core/base/errors.ts";
import { tempDir } from "../../../core/test-support/temp.ts";
import type { BatchItem } from "../../../core/spec/provider.ts";
import { chatCompletionBody } from "../openai/request.ts";
import {
  batchesURL,
  batchStatus,
  createBody,
  encodeItem,
  itemBytes,
  OPENROUTER_BATCH_LIMITS,
  resultOutcome,
} from "./batch.ts";
import plugin from "./mod.ts";

const item = (customId: string, content: string, params = {}): BatchItem => ({
  customId,
  request: {
    model: "openai/gpt-4o-mini",
    system: "Be brief.",
    messages: [{ role: "user", content }],
    params: { max_tokens: 20, temperature: 0.2, ...params },
  },
});

describe("openrouter batch body", () => {
  it("puts endpoint and model before requests, and each body is the sync body with max_tokens", () => {
    const items = [item("r-1", "héllo ✓"), item("r-2", 'quote " and\nnewline')];
    const text = createBody(items);
    assert.ok(
      text.startsWith('{"endpoint":"/v1/chat/completions","model":"openai/gpt-4o-mini",'),
      text.slice(0, 80),
    );
    assert.ok(text.indexOf('"requests":') > text.indexOf('"model":'));
    const body = JSON.parse(text);
    assert.deepEqual(body, {
      endpoint: "/v1/chat/completions",
      model: "openai/gpt-4o-mini",
      completion_window: "24h",
      requests: items.map((i) => ({
        custom_id: i.customId,
        body: chatCompletionBody(i.request, "max_tokens"),
      })),
    });
    assert.equal(body.requests[0].body.max_tokens, 20);
    assert.equal(body.requests[0].body.max_completion_tokens, undefined);
  });

  it("sizes each request exactly: the body is the head, the requests with a comma each, and the end", () => {
    const items = [item("a", "short"), item("b", "日本語".repeat(50)), item("c", "x")];
    const body = Buffer.byteLength(createBody(items), "utf8");
    const head = Buffer.byteLength(createBody([items[0]]), "utf8") - itemBytes(items[0]) - 1;
    // head + each item and its separator, less the last separator, plus "]}".
    assert.equal(body, head + items.reduce((n, i) => n + itemBytes(i), 0) - 1 + 2);
    for (const i of items) {
      assert.equal(itemBytes(i), Buffer.byteLength(encodeItem(i), "utf8") + 1);
      assert.ok(!encodeItem(i).includes("\n"));
    }
  });

  it("lifts the routing a request's provider parameter asks for to the batch (only and allow_fallbacks)", () => {
    const routed = item("a", "hi", {
      provider: { only: ["google-vertex"], allow_fallbacks: false, sort: "price" },
    });
    const body = JSON.parse(createBody([routed]));
    assert.deepEqual(body.provider, { only: ["google-vertex"], allow_fallbacks: false });
    assert.deepEqual(body.requests[0].body.provider, routed.request.params.provider);
    assert.ok(
      createBody([routed]).indexOf('"provider"') < createBody([routed]).indexOf('"requests"'),
    );
  });

  it("uses the documented limits: 5,000 requests, 200 MB less room for the envelope", () => {
    assert.deepEqual(OPENROUTER_BATCH_LIMITS, { maxRequests: 5_000, maxBytes: 199_000_000 });
  });
});

describe("openrouter batch path", () => {
  it("resolves batch_path against the base URL: under it by default, a rooted path on its host", () => {
    assert.equal(
      batchesURL("https://openrouter.ai/api/v1"),
      "https://openrouter.ai/api/v1/batches",
    );
    assert.equal(
      batchesURL("https://openrouter.ai/api/v1/"),
      "https://openrouter.ai/api/v1/batches",
    );
    assert.equal(
      batchesURL("https://openrouter.ai/api/v1", "/api/beta/batches"),
      "https://openrouter.ai/api/beta/batches",
    );
    assert.equal(
      batchesURL("http://127.0.0.1:9/api/v1", "https://example.test/x/batches/"),
      "https://example.test/x/batches",
    );
  });

  it("refuses a batch_path that is not a path, naming the option", async () => {
    const context = { env: {}, home: tempDir() };
    for (const bad of [5, "", "batches?x=1"]) {
      await assert.rejects(
        async () => await plugin.create({ apiKey: "k", batch_path: bad }, context),
        (e: unknown) => e instanceof LoomUsageError && /batch_path must be a path/.test(e.message),
      );
    }
    const ok = await plugin.create({ apiKey: "k", batch_path: "/api/beta/batches" }, context);
    assert.equal(ok.capabilities.batch, true);
  });
});

describe("openrouter batch status", () => {
  it("maps every documented status, keeps the provider's word and counts, and the failure's reason", () => {
    const states = {
      validating: "validating",
      in_progress: "in_progress",
      finalizing: "in_progress",
      cancelling: "in_progress",
      completed: "completed",
      failed: "failed",
      expired: "expired",
      cancelled: "cancelled",
      something_new: "in_progress",
    };
    for (const [status, state] of Object.entries(states)) {
      const s = batchStatus({
        id: "b",
        status,
        request_counts: { total: 3, completed: 2, failed: 1 },
      });
      assert.deepEqual(s, {
        state,
        providerState: status,
        counts: { total: 3, succeeded: 2, failed: 1 },
      });
    }
    assert.equal(
      batchStatus({ id: "b", status: "failed", error: { message: "model not available" } }).message,
      "model not available",
    );
    assert.equal(batchStatus({ id: "b", status: "completed", error: null }).message, undefined);
  });
});

describe("openrouter batch results", () => {
  const completion = (text: string, extra: Record<string, unknown> = {}) => ({
    id: "gen-1",
    object: "chat.completion",
    model: "openai/gpt-4o-mini",
    choices: [{ index: 0, finish_reason: "stop", message: { role: "assistant", content: text } }],
    usage: { prompt_tokens: 5, completion_tokens: 2, total_tokens: 7, cost: 0.00001 },
    ...extra,
  });

  it("reads an answer as sync answers are read", () => {
    const o = resultOutcome({
      id: "r1",
      custom_id: "a",
      response: { status_code: 200, request_id: null, body: completion("hi") },
      error: null,
    });
    assert.ok(o && "result" in o);
    assert.equal(o.result.text, "hi");
    assert.equal(o.result.finishReason, "stop");
    assert.equal(o.result.model, "openai/gpt-4o-mini");
    assert.deepEqual([o.result.usage?.inputTokens, o.result.usage?.outputTokens], [5, 2]);
  });

  it("makes a per-request error, an error status or an error inside a 200 that request's failure", () => {
    assert.deepEqual(
      resultOutcome({
        custom_id: "a",
        response: null,
        error: { message: "context too long", type: "invalid_request_error", param: null },
      }),
      { customId: "a", error: "invalid_request_error: context too long", kind: "failed" },
    );
    assert.deepEqual(
      resultOutcome({
        custom_id: "b",
        response: { status_code: 400, body: { error: { message: "bad request" } } },
        error: null,
      }),
      { customId: "b", error: "400: bad request", kind: "failed" },
    );
    const inChoice = resultOutcome({
      custom_id: "c",
      response: {
        status_code: 200,
        body: completion("partial", {
          choices: [{ finish_reason: "error", error: { code: 502, message: "upstream died" } }],
        }),
      },
    });
    assert.ok(inChoice && "error" in inChoice && inChoice.kind === "failed");
    assert.match(inChoice.error, /^openrouter: 502 upstream died/);
  });

  it("knows what is not a result", () => {
    for (
      const bad of [null, 5, {}, { custom_id: 3 }, { custom_id: "a" }, {
        custom_id: "a",
        response: {},
      }]
    ) {
      assert.equal(resultOutcome(bad), undefined, JSON.stringify(bad));
    }
  });
});
