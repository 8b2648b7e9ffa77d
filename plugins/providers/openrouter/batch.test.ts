/** OpenRouter's batch API: the body it sends, and how statuses and results map onto Loom's. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Buffer } from "node:buffer";
import { LoomProviderError, LoomUsageError } from "../../../core/base/errors.ts";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  type Emulator,
  type EmulatorOptions,
  realClock,
  startEmulator,
} from "../../../emulator/mod.ts";
import { checkOpenRouterBatchTraffic } from "../../../emulator/contract/openrouter-batch.ts";
import { fetchJobs, retryJob } from "../../../core/batch/jobs.ts";
import { runJob } from "../../../core/commands/run.ts";
import { loadJob } from "../../../core/job/load.ts";
import { FAST_RETRY } from "../_shared/test-emulator.ts";
import { tempDir } from "../../../core/test-support/temp.ts";
import type {
  BatchApi,
  BatchHandle,
  BatchItem,
  BatchOutcome,
} from "../../../core/spec/provider.ts";
import { chatCompletionBody } from "../openai/request.ts";
import { batchesURL, sameModel } from "./batch.ts";
import { createBody, encodeItem, itemBytes, OPENROUTER_BATCH_LIMITS } from "./body.ts";
import { batchStatus, resultOutcome } from "./results.ts";
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

describe("openrouter find's model match", () => {
  it("matches the model whatever its variant, and a batch that names none", () => {
    assert.ok(sameModel("openai/gpt-4o-mini", "openai/gpt-4o-mini"));
    assert.ok(sameModel("openai/gpt-4o-mini", "openai/gpt-4o-mini:batch"));
    assert.ok(sameModel("openai/gpt-4o-mini:batch", "openai/gpt-4o-mini"));
    assert.ok(sameModel(undefined, "openai/gpt-4o-mini"));
    assert.ok(!sameModel("openai/gpt-4o", "openai/gpt-4o-mini"));
    assert.ok(!sameModel("anthropic/claude-haiku-4.5", "openai/gpt-4o-mini:batch"));
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

// --- Against the emulator, through the openai SDK the provider uses ---------------------------

const MODEL = "openai/gpt-4o-mini";
const label = (shard = 0) => ({ job: "j1", shard, name: `loom-j1-${shard}` });
const items = (...prompts: string[]) => prompts.map((p, i) => item(`row-${i}`, p));

async function apiFor(emu: Emulator, more: Record<string, unknown> = {}) {
  const provider = await plugin.create(
    { apiKey: emu.apiKey, base_url: emu.baseURL, ...more },
    { env: {}, home: tempDir() },
  );
  return provider.batch!;
}

/** Steps the emulator's schedule until the batch has ended; its last status. */
async function ended(emu: Emulator, api: BatchApi, handle: BatchHandle) {
  for (let i = 0; i < 20; i++) {
    const status = await api.status(handle);
    if (["completed", "failed", "expired", "cancelled"].includes(status.state)) return status;
    emu.step();
  }
  assert.fail("the batch never ended");
}

async function outcomes(api: BatchApi, handle: BatchHandle, ids: readonly string[]) {
  const all: BatchOutcome[] = [];
  for await (const o of api.results(handle, ids)) all.push(o);
  return new Map(all.map((o) => [o.customId, o]));
}

async function withEmu(
  options: Partial<EmulatorOptions>,
  work: (emu: Emulator) => Promise<void>,
): Promise<void> {
  const emu = await startEmulator({
    provider: "openrouter",
    models: "any",
    schedule: { advance: "manual" },
    ...options,
  });
  try {
    await work(emu);
  } finally {
    await emu.stop();
  }
}

describe("openrouter batch API against the emulator", () => {
  it("sends one body, endpoint and model first, the requests as sync builds them; answers carry usage.cost", async () => {
    await withEmu({}, async (emu) => {
      const api = await apiFor(emu);
      const batch = items("first", "second ✓");
      const handle = await api.submit(batch, label());
      const [create] = emu.log.entries.filter((e) => e.method === "POST");
      assert.equal(create.path, "/api/v1/batches");
      const body = create.body as Record<string, unknown>;
      assert.deepEqual(Object.keys(body), ["endpoint", "model", "completion_window", "requests"]);
      assert.deepEqual(body, JSON.parse(createBody(batch)));
      assert.equal(create.bytes, Buffer.byteLength(createBody(batch)));
      const status = await ended(emu, api, handle);
      assert.deepEqual(status.counts, { total: 2, succeeded: 2, failed: 0 });
      const got = await outcomes(api, handle, batch.map((i) => i.customId));
      const first = got.get("row-0");
      assert.ok(first && "result" in first);
      assert.equal(first.result.text, `[${MODEL}] first`);
      assert.ok((first.result.usage?.inputTokens ?? 0) > 0);
    });
  });

  it("serves batch_path: the quickstart's /api/beta/batches on the base URL's host", async () => {
    await withEmu({}, async (emu) => {
      const api = await apiFor(emu, { batch_path: "/api/beta/batches" });
      const handle = await api.submit(items("beta"), label());
      await ended(emu, api, handle);
      assert.ok(emu.log.entries.length > 1);
      assert.ok(
        emu.log.entries.every((e) => e.path.startsWith("/api/beta/batches")),
        emu.log.entries.map((e) => e.path).join(", "),
      );
    });
  });

  it("gives a failed batch OpenRouter's reason, and no answers", async () => {
    await withEmu({ batches: [{ end: "fail" }] }, async (emu) => {
      const api = await apiFor(emu);
      const handle = await api.submit(items("doomed"), label());
      const status = await ended(emu, api, handle);
      assert.equal(status.state, "failed");
      assert.equal(status.providerState, "failed");
      assert.ok(status.message && status.message.length > 0, JSON.stringify(status));
      const got = await outcomes(api, handle, ["row-0"]);
      assert.ok(![...got.values()].some((o) => "result" in o));
    });
  });

  it("keeps what an expired batch ran; the rest are expired, never answers", async () => {
    await withEmu({ batches: [{ end: "expire", processed: 1 }] }, async (emu) => {
      const api = await apiFor(emu);
      const batch = items("a", "b", "c");
      const handle = await api.submit(batch, label());
      assert.equal((await ended(emu, api, handle)).state, "expired");
      const got = await outcomes(api, handle, batch.map((i) => i.customId));
      assert.equal(got.size, 3);
      const kinds = [...got.values()].map((o) => ("result" in o ? "answer" : o.kind)).sort();
      assert.deepEqual(kinds, ["answer", "expired", "expired"]);
    });
  });

  it("fails a request alone inside a completed batch, with its error's message", async () => {
    await withEmu({ batches: [{ failPromptContains: "BAD" }] }, async (emu) => {
      const api = await apiFor(emu);
      const batch = items("good", "BAD one");
      const handle = await api.submit(batch, label());
      assert.equal((await ended(emu, api, handle)).state, "completed");
      const bad = (await outcomes(api, handle, ["row-0", "row-1"])).get("row-1");
      assert.ok(bad && "error" in bad && bad.kind === "failed", JSON.stringify(bad));
      assert.ok(bad.error.length > 5);
    });
  });

  it("refuses to read the results of a batch that has not ended", async () => {
    await withEmu({}, async (emu) => {
      const api = await apiFor(emu);
      const handle = await api.submit(items("wait"), label());
      await assert.rejects(
        () => outcomes(api, handle, ["row-0"]),
        (e: unknown) =>
          e instanceof LoomProviderError && /results exist once it has ended/.test(e.message),
      );
    });
  });

  it("a refused create (400) is not retryable and names OpenRouter's reason", async () => {
    await withEmu({}, async (emu) => {
      const api = await apiFor(emu);
      emu.faults.add({
        match: { method: "POST", path: "/api/v1/batches" },
        action: { kind: "status", status: 400, message: "model has no batch variant" },
      });
      await assert.rejects(
        () => api.submit(items("x"), label()),
        (e: unknown) =>
          e instanceof LoomProviderError && e.status === 400 && !e.retryable &&
          /model has no batch variant/.test(e.message),
      );
    });
  });

  it("find answers the batches that could be it: created since, as many requests, the same model", async () => {
    await withEmu({}, async (emu) => {
      const api = await apiFor(emu, {});
      const before = new Date(emu.clock.now() - 1000).toISOString();
      const two = await api.submit(items("a", "b"), label(0));
      const other = await api.submit(
        [item("x", "c"), item("y", "d")].map((i) => ({
          ...i,
          request: { ...i.request, model: "anthropic/claude-haiku-4.5" },
        })),
        label(1),
      );
      const one = await api.submit(items("e"), label(2));
      const found = await api.find!(label(3), { after: before, requests: 2, model: MODEL });
      assert.deepEqual(found, [{ handle: { id: two.id }, exact: false }]);
      const any = await api.find!(label(3), { after: before, requests: 2 });
      assert.deepEqual(any?.map((f) => f.handle.id).sort(), [two.id, other.id].sort());
      assert.deepEqual(
        (await api.find!(label(3), { after: before, requests: 1, model: MODEL }))?.map((f) =>
          f.handle.id
        ),
        [one.id],
      );
      // Created long after the batches: none of them.
      const later = new Date(emu.clock.now() + 3_600_000).toISOString();
      assert.deepEqual(await api.find!(label(3), { after: later, requests: 2 }), []);
    });
  });

  it("find follows the list's pages (after = last_id)", async () => {
    await withEmu({}, async (emu) => {
      const provider = await plugin.create(
        { apiKey: emu.apiKey, base_url: emu.baseURL },
        { env: {}, home: tempDir() },
      );
      const before = new Date(emu.clock.now() - 1000).toISOString();
      const api = provider.batch!;
      const first = await api.submit(items("a", "b"), label(0));
      for (let n = 1; n <= 3; n++) await api.submit(items("c"), label(n));
      const { openrouterBatchApi } = await import("./batch.ts");
      const { default: OpenAI } = await import("openai");
      const small = openrouterBatchApi(
        new OpenAI({ apiKey: emu.apiKey, baseURL: emu.baseURL, maxRetries: 0 }),
        { listPageSize: 1 },
      );
      emu.log.clear();
      const found = await small.find!(label(9), { after: before, requests: 2, model: MODEL });
      assert.deepEqual(found?.map((f) => f.handle.id), [first.id]);
      const lists = emu.log.entries.filter((e) => e.method === "GET");
      assert.ok(lists.length >= 4, `one page a batch: ${lists.length} lists`);
      assert.ok(lists.slice(1).every((e) => typeof e.query.after === "string"));
    });
  });
});

describe("openrouter batch cancel", () => {
  it("cancels a running batch: POST /batches/{id}/cancel, then the unrun requests are reported cancelled", async () => {
    await withEmu({}, async (emu) => {
      const api = await apiFor(emu);
      const batch = items("one", "two", "three", "four");
      const handle = await api.submit(batch, label());
      emu.step(handle.id, 2); // in_progress, half done
      await api.cancel(handle);
      // Repeating it while the batch still runs is safe.
      await api.cancel(handle);
      const status = await ended(emu, api, handle);
      assert.equal(status.state, "cancelled");
      const got = await outcomes(api, handle, batch.map((b) => b.customId));
      // "OpenRouter returns no result rows for a cancelled batch": every request is reported.
      assert.equal(got.size, batch.length);
      for (const o of got.values()) {
        assert.ok("error" in o && o.kind === "cancelled", JSON.stringify(o));
      }
      // Cancelling an ended batch (409) has nothing left to do.
      await api.cancel(handle);
      const cancels = emu.log.entries.filter((e) => e.path.endsWith("/cancel"));
      assert.deepEqual(cancels.map((e) => e.status), [200, 200, 409]);
    });
  });

  it("cancellation not enabled for the organization (403): not fatal (the key is fine), says so", async () => {
    await withEmu({ batches: [{ cancelForbidden: true }] }, async (emu) => {
      const api = await apiFor(emu);
      const handle = await api.submit(items("run on"), label());
      await assert.rejects(
        () => api.cancel(handle),
        (e: unknown) =>
          e instanceof LoomProviderError && e.status === 403 && !e.fatal && !e.retryable &&
          /not enabled for this organization.*per organization.*loom fetch/.test(e.message) &&
          !e.message.includes(emu.apiKey),
      );
      assert.equal((await ended(emu, api, handle)).state, "completed");
    });
  });

  it("a batch the service does not know (404) is an error that says what to do", async () => {
    await withEmu({}, async (emu) => {
      const api = await apiFor(emu);
      const missing = await api.cancel({ id: "batch_unknown" }).then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.ok(missing instanceof LoomProviderError, String(missing));
      assert.deepEqual([missing.status, missing.fatal, missing.retryable], [404, false, false]);
      assert.match(missing.message, /did not cancel batch batch_unknown.*loom fetch/);
    });
  });
});

describe("openrouter batch traffic against the contract of OpenRouter's API reference", () => {
  it("a whole job (shards, a failed request, an expired shard, retry, a lost create looked for) sends only documented requests", async () => {
    const emu = await startEmulator({
      provider: "openrouter",
      models: "any",
      schedule: { advance: "instant" },
      clock: realClock,
      batches: [{ failPromptContains: "BAD" }, { nth: 2, end: "expire", processed: 1 }],
    });
    try {
      const dir = tempDir();
      const rows = ["one", "two BAD", "three", "four", "five", "six", "seven"];
      writeFileSync(
        join(dir, "in.csv"),
        `id,text\n${rows.map((r, i) => `${i + 1},${r}`).join("\n")}\n`,
      );
      writeFileSync(
        join(dir, "job.yaml"),
        `dataset: { path: in.csv }\nprompt: { column: text }\nprovider: openrouter\n` +
          `provider_options: { base_url: "${emu.baseURL}" }\nmodel: ${MODEL}\n` +
          `params: { max_tokens: 50, provider: { only: [openai] } }\noutput: { path: out.csv }\n` +
          `batch: { max_requests: 3 }\n`,
      );
      const opts = {
        env: { LOOM_HOME: join(dir, "home"), OPENROUTER_API_KEY: emu.apiKey },
        cwd: dir,
        retry: FAST_RETRY,
      };
      const job = (await runJob(await loadJob({ file: join(dir, "job.yaml"), cwd: dir }), opts))
        .job!;
      assert.equal(job.shards, 3);
      const [fetched] = await fetchJobs([job.id], { ...opts, wait: true, pollMs: 1 });
      assert.ok(!("error" in fetched));
      assert.deepEqual(fetched.record.shards.map((s) => s.state), [
        "completed",
        "expired",
        "completed",
      ]);
      await retryJob(job.id, opts);
      await fetchJobs([job.id], { ...opts, wait: true, pollMs: 1 });
      // A lookup as after a lost create.
      const api = await apiFor(emu);
      await api.find!(label(), { after: new Date(0).toISOString(), requests: 3, model: MODEL });
      const creates = emu.log.entries.filter((e) => e.method === "POST");
      assert.equal(creates.length, 4, "three shards and one retry");
      for (const c of creates) {
        assert.deepEqual((c.body as Record<string, unknown>).provider, { only: ["openai"] });
      }
      const methods = new Set(
        emu.log.entries.map((e) => `${e.method} ${e.path.split("/").length}`),
      );
      assert.ok(methods.has("GET 4") && methods.has("GET 5"), [...methods].join(", "));
      assert.deepEqual(checkOpenRouterBatchTraffic(emu.log.entries), []);
    } finally {
      await emu.stop();
    }
  });
});

describe("openrouter batch refusals before any request", () => {
  it("refuses an empty batch, one over the limits and one mixing models, sending nothing", async () => {
    await withEmu({}, async (emu) => {
      const api = await apiFor(emu);
      const fatal = (pattern: RegExp) => (e: unknown) =>
        e instanceof LoomProviderError && e.fatal && pattern.test(e.message);
      await assert.rejects(() => api.submit([], label()), fatal(/at least one request/));
      const many = Array.from({ length: 5_001 }, (_, i) => item(`r${i}`, "x"));
      await assert.rejects(() => api.submit(many, label()), fatal(/at most 5000 requests/));
      const mixed = [item("a", "x"), {
        ...item("b", "y"),
        request: { ...item("b", "y").request, model: "openai/gpt-4o" },
      }];
      await assert.rejects(() => api.submit(mixed, label()), fatal(/a batch runs one model/));
      assert.equal(emu.log.entries.length, 0);
    });
  });
});
