/** The anthropic provider's batch API (Message Batches) through the official SDK against the loopback emulator. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import Anthropic from "@anthropic-ai/sdk";
import { LoomIncompleteResultsError, LoomProviderError } from "../../../core/base/errors.ts";
import type {
  BatchApi,
  BatchItem,
  BatchOutcome,
  GenerateRequest,
} from "../../../core/spec/provider.ts";
import { ManualClock } from "../../../emulator/mod.ts";
import { useEmulator } from "../_shared/test-emulator.ts";
import { readLines as lines } from "../_shared/lines.ts";
import {
  createBatchApi,
  FIND_SKEW_MS,
  itemBytes,
  MAX_BYTES,
  MAX_REQUESTS,
  outcomeOf,
  statusOf,
} from "./batch.ts";
import anthropic from "./mod.ts";
import { messagesBody } from "./request.ts";

const MODEL = "claude-sonnet-5-5";
const context = { env: {}, home: "/nonexistent" };
const label = { job: "j1", shard: 0, name: "loom-j1-0" };

function request(
  prompt: string,
  params: GenerateRequest["params"] = { max_tokens: 50 },
  system?: string,
): GenerateRequest {
  return {
    model: MODEL,
    ...(system ? { system } : {}),
    messages: [{ role: "user", content: prompt }],
    params,
  };
}

function items(...prompts: string[]): BatchItem[] {
  return prompts.map((p, i) => ({ customId: `r${i + 1}`, request: request(p) }));
}

/** The provider's batch API, made by the plugin itself (so the wiring is tested too). */
async function batchApi(
  emu: { baseURL: string; apiKey: string },
  apiKey = emu.apiKey,
): Promise<BatchApi> {
  const provider = await anthropic.create({ apiKey, base_url: emu.baseURL }, context);
  assert.equal(provider.capabilities.batch, true);
  assert.ok(provider.batch);
  return provider.batch;
}

/** Every outcome, by custom id, and the error results() ended with (if any). */
async function collect(
  outcomes: AsyncIterable<BatchOutcome>,
): Promise<{ byId: Map<string, BatchOutcome>; order: string[]; error?: unknown }> {
  const byId = new Map<string, BatchOutcome>();
  const order: string[] = [];
  try {
    for await (const o of outcomes) {
      assert.ok(!byId.has(o.customId), `one outcome per request (${o.customId})`);
      byId.set(o.customId, o);
      order.push(o.customId);
    }
  } catch (error) {
    return { byId, order, error };
  }
  return { byId, order };
}

function answer(o: BatchOutcome | undefined): string {
  assert.ok(o && "result" in o, `an answer: ${JSON.stringify(o)}`);
  return o.result.text;
}

describe("anthropic batch API against the emulator", () => {
  const t = useEmulator({
    provider: "anthropic",
    schedule: { advance: "manual" },
    batches: [{ failPromptContains: "FAILME" }],
  });

  it("sends each item as { custom_id, params: messagesBody(request) }, exactly as many bytes as itemBytes counts", async () => {
    const batch = await batchApi(t.emu);
    const sent: BatchItem[] = [
      {
        customId: "r1",
        request: request("first prompt", { max_tokens: 50, stop: "END" }, "Be brief."),
      },
      { customId: "r2", request: request("second — ünïcode ✓ prompt") },
      {
        customId: "r3",
        request: request("third prompt", { max_tokens: 20, metadata: { user_id: "u1" } }),
      },
    ];
    const handle = await batch.submit(sent, label);
    assert.match(handle.id, /^msgbatch_/);
    assert.equal(typeof handle.data?.created_at, "string");
    const [create] = t.emu.log.find("POST /v1/messages/batches");
    assert.equal(create.status, 200);
    const body = create.body as { requests: Array<{ custom_id: string; params: unknown }> };
    assert.deepEqual(
      Object.keys(body),
      ["requests"],
      "no metadata or name: Anthropic batches carry none",
    );
    assert.deepEqual(
      body.requests,
      sent.map((i) => ({ custom_id: i.customId, params: messagesBody(i.request) })),
    );
    // `{"requests":[` + items joined by commas + `]}`: each item counts its comma, the last one's is the `]}`'s.
    assert.equal(
      create.bytes,
      sent.reduce((n, i) => n + itemBytes(i), 0) + `{"requests":[]}`.length - 1,
    );
    assert.equal(
      itemBytes(sent[1]),
      Buffer.byteLength(JSON.stringify(body.requests[1]), "utf8") + 1,
    );
    assert.ok(
      itemBytes(sent[1]) > JSON.stringify(body.requests[1]).length + 1,
      "UTF-8 bytes, not characters",
    );
    assert.deepEqual(batch.limits, { maxRequests: MAX_REQUESTS, maxBytes: MAX_BYTES });
    assert.ok(MAX_BYTES < 256_000_000 && MAX_REQUESTS === 100_000);
  });

  it("moves workspace_id and user_profile_id, which the SDK sends as headers, from the params to the batch", async () => {
    const batch = await batchApi(t.emu);
    const params = { max_tokens: 50, workspace_id: "wrkspc_01x", user_profile_id: "prof_01y" };
    const sent = [{ customId: "r1", request: request("one", params) }, {
      customId: "r2",
      request: request("two", params),
    }];
    await batch.submit(sent, label);
    const [create] = t.emu.log.find("POST /v1/messages/batches");
    assert.equal(create.status, 200);
    assert.equal(create.headers["anthropic-workspace-id"], "wrkspc_01x");
    assert.equal(create.headers["anthropic-user-profile-id"], "prof_01y");
    const body = create.body as { requests: Array<{ params: Record<string, unknown> }> };
    const { workspace_id: _w, user_profile_id: _u, ...expected } = messagesBody(sent[0].request);
    assert.deepEqual(body.requests[0].params, expected);
    const mixed = [sent[0], {
      customId: "r2",
      request: request("two", { ...params, workspace_id: "wrkspc_02z" }),
    }];
    await assert.rejects(
      () => batch.submit(mixed, label),
      (e: unknown) =>
        e instanceof LoomProviderError && e.fatal && /must share workspace_id/.test(e.message),
    );
  });

  it("sends the rewritten schema the strict API accepts, reads thinking as reasoning, and prints no SDK warning", async () => {
    const batch = await batchApi(t.emu);
    const responseSchema = {
      type: "object",
      properties: { tags: { type: "array", items: { type: "string" }, minItems: 2 } },
      required: ["tags"],
    };
    const printed: unknown[] = [];
    const globalConsole =
      (globalThis as unknown as { console: { warn: (...args: unknown[]) => void } }).console;
    const warn = globalConsole.warn;
    globalConsole.warn = (...args: unknown[]) => void printed.push(args);
    try {
      const deprecated = {
        ...request("tag this", {
          max_tokens: 2000,
          thinking: { type: "enabled", budget_tokens: 1024 },
        }),
        model: "claude-sonnet-4-5",
        responseSchema,
      };
      const handle = await batch.submit([{ customId: "s1", request: deprecated }], label);
      t.emu.step(handle.id);
      assert.equal((await batch.status(handle)).state, "completed");
      const { byId, error } = await collect(batch.results(handle, ["s1"]));
      assert.equal(error, undefined);
      const outcome = byId.get("s1");
      assert.ok(outcome && "result" in outcome, JSON.stringify(outcome));
      assert.equal(JSON.parse(outcome.result.text).tags.length, 2);
      assert.equal(outcome.result.usage?.reasoningTokens, 24);
    } finally {
      globalConsole.warn = warn;
    }
    assert.deepEqual(printed, []);
    const [create] = t.emu.log.find("POST /v1/messages/batches");
    const params = (create.body as {
      requests: Array<{ params: { output_config: { format: { schema: unknown } } } }>;
    }).requests[0].params;
    assert.deepEqual(params.output_config.format.schema, {
      type: "object",
      properties: {
        tags: { type: "array", items: { type: "string" }, description: '{"minItems":2}' },
      },
      additionalProperties: false,
      required: ["tags"],
    });
  });

  it("reports in_progress, then completed with counts, and answers every request parsed as sync parses them, joined by custom_id", async () => {
    const batch = await batchApi(t.emu);
    const sent = items("first prompt", "second prompt", "third prompt");
    sent[2] = { customId: "r3", request: request("third prompt is long", { max_tokens: 2 }) };
    const handle = await batch.submit(sent, label);
    assert.deepEqual(await batch.status(handle), {
      state: "in_progress",
      providerState: "in_progress",
      counts: { total: 3, succeeded: 0, failed: 0 },
    });
    t.emu.step(handle.id);
    assert.deepEqual(await batch.status(handle), {
      state: "completed",
      providerState: "ended",
      counts: { total: 3, succeeded: 3, failed: 0 },
    });
    const { byId, order, error } = await collect(batch.results(handle, ["r1", "r2", "r3"]));
    assert.equal(error, undefined);
    assert.notDeepEqual(order, ["r1", "r2", "r3"], "the emulator answers out of input order");
    assert.equal(answer(byId.get("r1")), `[${MODEL}] first prompt`);
    assert.equal(answer(byId.get("r2")), `[${MODEL}] second prompt`);
    const r1 = byId.get("r1") as Extract<BatchOutcome, { result: unknown }>;
    assert.equal(r1.result.finishReason, "end_turn");
    assert.equal(r1.result.truncated, undefined);
    assert.ok((r1.result.usage?.inputTokens ?? 0) > 0 && (r1.result.usage?.outputTokens ?? 0) > 0);
    const r3 = byId.get("r3") as Extract<BatchOutcome, { result: unknown }>;
    assert.deepEqual([r3.result.text, r3.result.finishReason, r3.result.truncated], [
      `[${MODEL}] third`,
      "max_tokens",
      true,
    ]);
    // Two requests: retrieve (for results_url), then the results themselves, with the client's auth.
    assert.deepEqual(t.emu.log.entries.slice(-2).map((e) => `${e.method} ${e.path}`), [
      `GET /v1/messages/batches/${handle.id}`,
      `GET /v1/messages/batches/${handle.id}/results`,
    ]);
  });

  it("a request that errors is a failed outcome naming the error type; the others answer; the batch completed", async () => {
    const batch = await batchApi(t.emu);
    const handle = await batch.submit(items("fine one", "please FAILME now", "fine two"), label);
    t.emu.step(handle.id);
    assert.deepEqual(await batch.status(handle), {
      state: "completed",
      providerState: "ended",
      counts: { total: 3, succeeded: 2, failed: 1 },
    });
    const { byId, error } = await collect(batch.results(handle, ["r1", "r2", "r3"]));
    assert.equal(error, undefined);
    assert.equal(answer(byId.get("r1")), `[${MODEL}] fine one`);
    assert.equal(answer(byId.get("r3")), `[${MODEL}] fine two`);
    assert.deepEqual(byId.get("r2"), {
      customId: "r2",
      error: "api_error: Internal server error",
      kind: "failed",
    });
  });

  it("cancel: canceling is still in_progress; then cancelled, with the answers that ran and the rest cancelled", async () => {
    const batch = await batchApi(t.emu);
    const handle = await batch.submit(items("a one", "b two", "c three", "d four"), label);
    await batch.cancel(handle);
    assert.equal(t.emu.log.count(`POST /v1/messages/batches/${handle.id}/cancel`), 1);
    assert.deepEqual(await batch.status(handle), {
      state: "in_progress",
      providerState: "canceling",
      counts: { total: 4, succeeded: 0, failed: 0 },
    });
    t.emu.step(handle.id);
    assert.deepEqual(await batch.status(handle), {
      state: "cancelled",
      providerState: "ended",
      counts: { total: 4, succeeded: 2, failed: 0 },
    });
    const { byId, error } = await collect(batch.results(handle, ["r1", "r2", "r3", "r4"]));
    assert.equal(error, undefined);
    assert.equal(answer(byId.get("r1")), `[${MODEL}] a one`);
    assert.equal(answer(byId.get("r2")), `[${MODEL}] b two`);
    for (const id of ["r3", "r4"]) {
      const o = byId.get(id);
      assert.ok(
        o && "kind" in o && o.kind === "cancelled",
        `${id} cancelled: ${JSON.stringify(o)}`,
      );
    }
  });

  it("asking for results before the batch ended is a retryable error", async () => {
    const batch = await batchApi(t.emu);
    const handle = await batch.submit(items("early"), label);
    const { byId, error } = await collect(batch.results(handle, ["r1"]));
    assert.equal(byId.size, 0);
    assert.ok(error instanceof LoomProviderError && error.retryable && !error.fatal, String(error));
    assert.match(
      error.message,
      new RegExp(`batch ${handle.id} has no results yet \\(it is in_progress\\)`),
    );
  });

  it("SDK errors go through toProviderError: a wrong key is fatal (and never shown), 529 and 429 are retryable, without SDK retries", async () => {
    const wrong = await batchApi(t.emu, "sk-ant-wrong-000000");
    await assert.rejects(
      () => wrong.submit(items("x"), label),
      (e: unknown) =>
        e instanceof LoomProviderError && e.fatal && e.status === 401 &&
        /check the API key/.test(e.message) && !e.message.includes("sk-ant-wrong"),
    );
    assert.equal(
      t.emu.log.count("POST /v1/messages/batches"),
      1,
      "the SDK does not retry (maxRetries 0)",
    );
    const batch = await batchApi(t.emu);
    t.emu.faults.add({
      match: { path: "/v1/messages/batches", first: 1 },
      action: { kind: "status", status: 529 },
    });
    await assert.rejects(
      () => batch.submit(items("x"), label),
      (e: unknown) => e instanceof LoomProviderError && e.retryable && e.status === 529,
    );
    const handle = await batch.submit(items("x"), label);
    t.emu.faults.add({
      match: { path: handle.id, first: 1 },
      action: { kind: "status", status: 429, retryAfterMs: 7 },
    });
    await assert.rejects(
      () => batch.status(handle),
      (e: unknown) =>
        e instanceof LoomProviderError && e.retryable && e.status === 429 && e.retryAfterMs === 7,
    );
    assert.equal((await batch.status(handle)).state, "in_progress");
  });
});

describe("anthropic batch API: expiry", () => {
  const t = useEmulator({
    provider: "anthropic",
    schedule: { advance: "manual" },
    batches: [{ end: "expire", processed: 2 }],
  });

  it("an expired batch is expired; the processed rows answer and the rest are kind expired", async () => {
    const batch = await batchApi(t.emu);
    const handle = await batch.submit(items("one", "two", "three", "four"), label);
    t.emu.step(handle.id);
    assert.deepEqual(await batch.status(handle), {
      state: "expired",
      providerState: "ended",
      counts: { total: 4, succeeded: 2, failed: 0 },
    });
    const { byId, error } = await collect(batch.results(handle, ["r1", "r2", "r3", "r4"]));
    assert.equal(error, undefined);
    assert.equal(answer(byId.get("r1")), `[${MODEL}] one`);
    assert.equal(answer(byId.get("r2")), `[${MODEL}] two`);
    for (const id of ["r3", "r4"]) {
      const o = byId.get(id);
      assert.ok(o && "kind" in o && o.kind === "expired", `${id} expired: ${JSON.stringify(o)}`);
    }
  });
});

describe("anthropic batch API: by the emulator's clock", () => {
  const clock = new ManualClock();
  const t = useEmulator({ provider: "anthropic", schedule: { advance: "manual" }, clock });

  it("a batch still running after 24 hours expires; 29 days after creation its results are gone (a clear error, not retried)", async () => {
    const batch = await batchApi(t.emu);
    const handle = await batch.submit(items("one", "two", "three"), label);
    clock.advance(24 * 3_600_000 + 1);
    assert.deepEqual(await batch.status(handle), {
      state: "expired",
      providerState: "ended",
      counts: { total: 3, succeeded: 1, failed: 0 },
    });
    const { byId } = await collect(batch.results(handle, ["r1", "r2", "r3"]));
    assert.equal(answer(byId.get("r1")), `[${MODEL}] one`);
    assert.deepEqual([byId.get("r2"), byId.get("r3")].map((o) => o && "kind" in o && o.kind), [
      "expired",
      "expired",
    ]);
    clock.advance(29 * 24 * 3_600_000);
    assert.match((await batch.status(handle)).message ?? "", /archived at .* no longer available/);
    const { error } = await collect(batch.results(handle, ["r1", "r2", "r3"]));
    // Neither retryable nor fatal: gone for good, but the job's other batches can still be merged.
    assert.ok(
      LoomIncompleteResultsError.isInstance(error) && !(error as { retryable?: unknown }).retryable,
      String(error),
    );
    assert.match(error.message, new RegExp(`results of batch ${handle.id} were archived`));
  });
});

describe("anthropic batch API: malformed result lines", () => {
  const t = useEmulator({
    provider: "anthropic",
    schedule: { advance: "manual" },
    batches: [{ malformedLines: 2, blankLines: 1 }],
  });

  it("keeps every good line around the malformed ones, skips blank lines, then names the batch and the bad lines", async () => {
    const batch = await batchApi(t.emu);
    const handle = await batch.submit(items("one", "two", "three"), label);
    t.emu.step(handle.id);
    // The SDK's own decoder loses everything after the first bad line.
    const client = new Anthropic({ apiKey: t.emu.apiKey, baseURL: t.emu.baseURL, maxRetries: 0 });
    const sdk: unknown[] = [];
    await assert.rejects(async () => {
      for await (const line of await client.messages.batches.results(handle.id)) sdk.push(line);
    }, SyntaxError);
    assert.equal(sdk.length, 1);

    const { byId, error } = await collect(batch.results(handle, ["r1", "r2", "r3"]));
    assert.deepEqual([...byId.keys()].sort(), ["r1", "r2", "r3"]);
    assert.deepEqual(
      ["r1", "r2", "r3"].map((id) => answer(byId.get(id))),
      ["one", "two", "three"].map((p) => `[${MODEL}] ${p}`),
    );
    // Not retryable (the same file fails the same way), so the core keeps what was read.
    assert.ok(LoomIncompleteResultsError.isInstance(error), String(error));
    assert.equal((error as { retryable?: unknown }).retryable, undefined);
    assert.match(
      error.message,
      new RegExp(
        `results of batch ${handle.id} have 2 lines that are not a result \\(lines 2, 3\\)`,
      ),
    );
  });

  it("splits lines on \\n, \\r\\n and \\r, also across chunks, keeping blank lines for numbering", async () => {
    const enc = new TextEncoder();
    const chunks = ["a\r", "\nb\n\nc\r", "d\n"].map((c) => enc.encode(c));
    // A multi-byte character split between chunks, too.
    const bytes = enc.encode("x\u00e9y\n");
    chunks.push(bytes.slice(0, 2), bytes.slice(2));
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        for (const c of chunks) controller.enqueue(c);
        controller.close();
      },
    });
    const got: string[] = [];
    for await (const line of lines(body)) got.push(line);
    assert.deepEqual(got, ["a", "b", "", "c", "d", "x\u00e9y"]);
  });

  it("reads each line on its own: unknown shapes are not results, errors name their type", () => {
    assert.equal(outcomeOf(""), undefined);
    assert.equal(outcomeOf(`{"custom_id":"x","result":{"type":"novel"}}`), undefined);
    assert.equal(
      outcomeOf(`{"custom_id":"x","result":{"type":"succeeded","message":{}}}`),
      undefined,
    );
    assert.deepEqual(
      outcomeOf(
        `{"custom_id":"x","result":{"type":"errored","error":{"type":"error","error":{"type":"invalid_request_error","message":"max_tokens: Field required"}}}}`,
      ),
      {
        customId: "x",
        error: "invalid_request_error: max_tokens: Field required",
        kind: "failed",
      },
    );
    assert.deepEqual(outcomeOf(`{"custom_id":"x","result":{"type":"canceled"}}`)?.customId, "x");
  });
});

describe("anthropic batch API: status mapping", () => {
  const base = {
    id: "msgbatch_1",
    type: "message_batch" as const,
    created_at: "2026-11-27T10:00:00.000000Z",
    expires_at: "2026-11-28T10:00:00.000000Z",
    ended_at: "2026-11-27T11:00:00.000000Z",
    archived_at: null,
    cancel_initiated_at: null,
    results_url: "http://127.0.0.1:1/r",
  };
  const counts = (
    c: Partial<Record<"processing" | "succeeded" | "errored" | "canceled" | "expired", number>>,
  ) => ({
    processing: 0,
    succeeded: 0,
    errored: 0,
    canceled: 0,
    expired: 0,
    ...c,
  });

  it("maps ended batches by cancel first, then expiry; all errored is still completed", () => {
    const state = (over: Record<string, unknown>) =>
      statusOf(
        { ...base, processing_status: "ended", request_counts: counts({}), ...over } as never,
      ).state;
    assert.equal(state({ request_counts: counts({ succeeded: 2 }) }), "completed");
    assert.equal(state({ request_counts: counts({ errored: 2 }) }), "completed");
    assert.equal(state({ request_counts: counts({ succeeded: 1, expired: 1 }) }), "expired");
    assert.equal(state({ request_counts: counts({ canceled: 2 }) }), "cancelled");
    assert.equal(
      state({ request_counts: counts({ succeeded: 2 }), cancel_initiated_at: base.created_at }),
      "cancelled",
    );
    assert.equal(
      state({
        request_counts: counts({ canceled: 1, expired: 1 }),
        cancel_initiated_at: base.created_at,
      }),
      "cancelled",
    );
    const running = statusOf(
      {
        ...base,
        processing_status: "in_progress",
        ended_at: null,
        results_url: null,
        request_counts: counts({ processing: 5 }),
      } as never,
    );
    assert.deepEqual(running, {
      state: "in_progress",
      providerState: "in_progress",
      counts: { total: 5, succeeded: 0, failed: 0 },
    });
  });
});

describe("anthropic batch API: finding a lost submission", () => {
  const clock = new ManualClock();
  const t = useEmulator({ provider: "anthropic", schedule: { advance: "manual" }, clock });

  it("lists newest first, returns the batches created since the hint (less the skew) with that many requests, inexact, and stops paging at older ones", async () => {
    const client = new Anthropic({ apiKey: t.emu.apiKey, baseURL: t.emu.baseURL, maxRetries: 0 });
    const batch = createBatchApi(client, { listPageSize: 2 });
    const three = items("a", "b", "c");
    const submit = async (n: number) =>
      (await batch.submit(n === 3 ? three : items("a", "b"), label)).id;
    // Long before: never candidates, whatever their size.
    await submit(3);
    await submit(3);
    await submit(3);
    clock.advance(3_600_000);
    const skewed = await submit(3); // within the skew before `after`
    clock.advance(FIND_SKEW_MS - 60_000);
    const after = new Date(clock.now()).toISOString();
    clock.advance(1_000);
    const n1 = await submit(3);
    const other = await submit(2);
    const n3 = await submit(3);
    t.emu.log.clear();
    const found = (await batch.find!(label, { after, requests: 3 }))!;
    assert.deepEqual(found.map((f) => f.handle.id), [n3, n1, skewed]);
    assert.ok(!found.some((f) => f.handle.id === other));
    assert.ok(
      found.every((f) => f.exact === false && typeof f.handle.data?.created_at === "string"),
    );
    // Pages of two, newest first: [n3, other], [n1, skewed], [old, old] — where it stops.
    assert.deepEqual(
      t.emu.log.find("GET /v1/messages/batches").map((e) => e.query.after_id ?? null),
      [null, other, skewed],
    );
    assert.deepEqual(await batch.find!(label, { after, requests: 7 }), []);
  });
});
