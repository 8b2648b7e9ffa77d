// Answers are read as loose JSON: the contract module checks their shape, these tests their values.
// deno-lint-ignore-file no-explicit-any
import assert from "node:assert/strict";
import { after, before, beforeEach, describe, it } from "node:test";
import type { LoggedRequest } from "../log.ts";
import { type Emulator, startEmulator } from "../server.ts";
import {
  checkOpenRouterBatchTraffic,
  type ContractViolation,
  OPENROUTER_BATCH_CONTRACT,
} from "./openrouter-batch.ts";

const MODEL = "openai/gpt-4o-mini";
const CHAT = "/v1/chat/completions";

async function call(emu: Emulator, method: string, path: string, body?: unknown, raw?: string) {
  const res = await fetch(`${emu.baseURL}${path}`, {
    method,
    headers: { authorization: `Bearer ${emu.apiKey}`, "content-type": "application/json" },
    body: raw ?? (body === undefined ? undefined : JSON.stringify(body)),
  });
  return { status: res.status, json: (await res.json()) as Record<string, any> };
}

const request = (customId: string, content: string) => ({
  custom_id: customId,
  body: { messages: [{ role: "user", content }] },
});
const create = (requests: unknown[], extra: Record<string, unknown> = {}) => ({
  endpoint: CHAT,
  model: MODEL,
  ...extra,
  requests,
});

const describeViolations = (v: ContractViolation[]) =>
  v.map((x) => `#${x.seq} ${x.request} [${x.direction}] ${x.message}`).join("\n");

describe("OpenRouter batch contract: the emulator's traffic through a whole lifecycle", () => {
  let emu: Emulator;
  before(async () => {
    emu = await startEmulator({
      provider: "openrouter",
      schedule: { advance: "polls", polls: 1 },
      batches: [
        { nth: 2, failPromptContains: "BROKEN" },
        { nth: 3, end: "fail" },
        { nth: 4, end: "expire", processed: 1 },
      ],
    });
  });
  after(() => emu.stop());

  it("conforms in every request and answer, and every operation is exercised", async () => {
    const poll = async (id: string) => {
      for (let i = 0; i < 8; i++) {
        const got = await call(emu, "GET", `/batches/${id}`);
        if (["completed", "failed", "expired"].includes(got.json.status)) return got.json;
      }
      throw new Error(`batch ${id} did not end`);
    };
    const plain = await call(
      emu,
      "POST",
      "/batches",
      create([request("a", "one"), request("b", "two")], {
        completion_window: "24h",
        provider: { only: ["OpenAI"], allow_fallbacks: false },
      }),
    );
    assert.equal(plain.status, 202);
    const partlyFailed = await call(
      emu,
      "POST",
      "/batches",
      create([request("ok", "fine"), request("bad", "BROKEN")]),
    );
    const failed = await call(emu, "POST", "/batches", create([request("x", "never")]));
    const expired = await call(
      emu,
      "POST",
      "/batches",
      create([request("p", "q"), request("r", "s")]),
    );
    const ends = [];
    for (const made of [plain, partlyFailed, failed, expired]) ends.push(await poll(made.json.id));
    assert.deepEqual(ends.map((b) => b.status), ["completed", "completed", "failed", "expired"]);
    assert.equal(ends[0].provider, "OpenAI");

    const page1 = await call(emu, "GET", "/batches?limit=3");
    await call(emu, "GET", `/batches?limit=3&after=${page1.json.last_id}`);
    await call(emu, "GET", "/batches?status=completed&status=failed");
    await call(emu, "GET", `/batches/${plain.json.id}/results?limit=1`);
    await call(emu, "GET", `/batches/${partlyFailed.json.id}/results`);
    const inFlight = await call(emu, "POST", "/batches", create([request("z", "later")]));
    assert.equal((await call(emu, "DELETE", `/batches/${inFlight.json.id}`)).status, 409);
    const stopping = await call(emu, "POST", `/batches/${inFlight.json.id}/cancel`);
    assert.equal(stopping.status, 200);
    let stopped = await call(emu, "GET", `/batches/${inFlight.json.id}`);
    for (let i = 0; i < 3 && stopped.json.status !== "cancelled"; i++) {
      stopped = await call(emu, "GET", `/batches/${inFlight.json.id}`);
    }
    assert.equal(stopped.json.status, "cancelled");
    assert.deepEqual(stopped.json.results, []);
    assert.equal((await call(emu, "POST", `/batches/${inFlight.json.id}/cancel`)).status, 409);
    assert.equal((await call(emu, "DELETE", `/batches/${failed.json.id}`)).status, 200);
    assert.equal((await call(emu, "GET", `/batches/${failed.json.id}`)).status, 404);

    const entries = emu.log.entries;
    const violations = checkOpenRouterBatchTraffic(entries);
    assert.equal(violations.length, 0, describeViolations(violations));
    // Not vacuous: every operation of the contract was met, with answers recorded.
    const rel = (e: LoggedRequest) => e.path.replace("/api/v1", "");
    for (const op of OPENROUTER_BATCH_CONTRACT) {
      const met = entries.filter((e) =>
        e.method === op.method && op.path.test(rel(e)) && e.status === op.success.status
      );
      assert.ok(met.length > 0, `${op.name} was exercised`);
      assert.ok(met.every((e) => e.answer !== undefined), `${op.name} answers are recorded`);
    }
  });
});

describe("OpenRouter batch contract: the checker finds what departs from the reference", () => {
  const entry = (over: Partial<LoggedRequest>): LoggedRequest => ({
    seq: 1,
    method: "POST",
    path: "/api/v1/batches",
    query: {},
    headers: {},
    bytes: 0,
    status: 202,
    ...over,
  });
  const goodBatch = {
    id: "batch_1",
    object: "batch",
    endpoint: CHAT,
    model: MODEL,
    completion_window: "24h",
    status: "validating",
    created_at: 1,
    finalized_at: null,
    request_counts: { total: 1, completed: 0, failed: 0 },
    error: null,
    usage: null,
    results: null,
  };

  it("accepts a conforming exchange", () => {
    const ok = entry({ body: create([request("a", "b")]), answer: goodBatch });
    assert.deepEqual(checkOpenRouterBatchTraffic([ok]), []);
  });

  it("reports requests before model, an unknown field, an undocumented operation and a bad answer", () => {
    const found = checkOpenRouterBatchTraffic([
      entry({
        seq: 1,
        body: { requests: [request("a", "b")], endpoint: CHAT, model: MODEL },
        answer: goodBatch,
      }),
      entry({ seq: 2, body: { ...create([request("a", "b")]), metadata: {} }, answer: goodBatch }),
      entry({ seq: 3, path: "/api/v1/batches/batch_1/archive", status: 404 }),
      entry({
        seq: 4,
        method: "GET",
        path: "/api/v1/batches/batch_1",
        status: 200,
        answer: { ...goodBatch, status: "completed", invented: 1 },
      }),
      entry({ seq: 5, method: "DELETE", path: "/api/v1/batches/batch_1", status: 418, answer: {} }),
      entry({
        seq: 6,
        method: "GET",
        path: "/api/v1/batches/batch_1/results",
        status: 200,
        answer: {
          object: "list",
          has_more: false,
          next_cursor: null,
          data: [
            {
              id: "r1",
              custom_id: "a",
              error: null,
              response: {
                status_code: 200,
                request_id: null,
                body: { object: "chat.completion", choices: "x" },
              },
            },
            {
              id: "r2",
              custom_id: "b",
              error: null,
              response: { status_code: 200, request_id: null, body: { object: "list", data: [] } },
            },
          ],
        },
      }),
    ]);
    const bySeq = (n: number) => found.filter((v) => v.seq === n).map((v) => v.message).join(" | ");
    assert.match(bySeq(1), /before requests/);
    assert.match(bySeq(2), /additional properties \(metadata\)/);
    assert.match(bySeq(3), /no such operation/);
    assert.match(bySeq(4), /invented/);
    assert.match(bySeq(4), /terminal status includes its results/);
    assert.match(bySeq(5), /status 418/);
    // A chat completion body is held to its shape; another endpoint's body only to be an object.
    assert.match(bySeq(6), /\/data\/0\/response\/body/);
    assert.doesNotMatch(bySeq(6), /\/data\/1/);
    assert.ok(found.every((v) => v.reference.startsWith("https://")));
  });
});

describe("OpenRouter batch contract: refusals get the documented status and error shape", () => {
  let emu: Emulator;
  before(async () => {
    emu = await startEmulator({
      provider: "openrouter",
      limits: { maxRequests: 3, maxBytes: 4000 },
    });
  });
  after(() => emu.stop());
  beforeEach(() => emu.log.clear());

  const refused = async (
    status: number,
    message: RegExp,
    body?: unknown,
    raw?: string,
  ) => {
    const res = await call(emu, "POST", "/batches", body, raw);
    assert.equal(res.status, status, JSON.stringify(res.json));
    assert.equal(res.json.error.code, status);
    assert.match(res.json.error.message, message);
    // The answer conforms; only the request departs from the contract (when a schema can say so).
    const v = checkOpenRouterBatchTraffic(emu.log.entries);
    assert.deepEqual(v.filter((x) => x.direction === "answer"), [], describeViolations(v));
    assert.equal((await call(emu, "GET", "/batches")).json.data.length, 0, "nothing was created");
    emu.log.clear();
    return v;
  };

  it("refuses a body that is not JSON, or not an object", async () => {
    await refused(400, /parse the JSON/, undefined, '{"endpoint": ');
    await refused(400, /JSON object/, [1, 2]);
  });

  it("refuses endpoint and model after requests (the stream-parse rule)", async () => {
    const v = await refused(400, /before requests/, {
      requests: [request("a", "b")],
      endpoint: CHAT,
      model: MODEL,
    });
    assert.ok(v.some((x) => /before requests/.test(x.message)));
    await refused(400, /before requests/, {
      endpoint: CHAT,
      requests: [request("a", "b")],
      model: MODEL,
    });
  });

  it("refuses a missing or unknown endpoint, and an endpoint the emulator cannot run", async () => {
    await refused(400, /endpoint/, { model: MODEL, requests: [request("a", "b")] });
    await refused(
      400,
      /Invalid endpoint/,
      create([request("a", "b")], { endpoint: "/v1/completions" }),
    );
    await refused(400, /only/, create([request("a", "b")], { endpoint: "/v1/embeddings" }));
  });

  it("refuses missing, empty, long and duplicate custom_ids, and a body that is not an object", async () => {
    await refused(400, /custom_id/, create([{ body: request("a", "b").body }]));
    await refused(400, /custom_id/, create([{ custom_id: "", body: {} }]));
    await refused(400, /custom_id/, create([{ custom_id: "x".repeat(65), body: {} }]));
    await refused(400, /Duplicate custom_id "a"/, create([request("a", "b"), request("a", "c")]));
    await refused(400, /body must be a JSON object/, create([{ custom_id: "a", body: "hi" }]));
    await refused(400, /body/, create([{ custom_id: "a" }]));
  });

  it("refuses an empty batch and one over the request-count and byte limits (413)", async () => {
    await refused(400, /at least one/, create([]));
    await refused(
      413,
      /at most 3 requests/,
      create([1, 2, 3, 4].map((i) => request(`r${i}`, "x"))),
    );
    await refused(413, /maximum size of 4000 bytes/, create([request("a", "x".repeat(4000))]));
  });

  it("refuses an unknown model, a request body's different model, and unsupported options", async () => {
    await refused(400, /not a valid model ID/, create([request("a", "b")], { model: "acme/nope" }));
    await refused(
      400,
      /does not match the batch model/,
      create([{ custom_id: "a", body: { ...request("a", "b").body, model: "openai/gpt-4o" } }]),
    );
    await refused(
      400,
      /completion_window/,
      create([request("a", "b")], { completion_window: "48h" }),
    );
    await refused(
      400,
      /provider\.order/,
      create([request("a", "b")], { provider: { order: ["x"] } }),
    );
    await refused(400, /metadata/, create([request("a", "b")], { metadata: { job: "x" } }));
    await refused(400, /callback_url/, create([request("a", "b")], { callback_url: "ftp://x" }));
  });

  it("accepts a request body that repeats the batch's model, or omits it, and a callback_url", async () => {
    const res = await call(
      emu,
      "POST",
      "/batches",
      create([
        { custom_id: "a", body: { ...request("a", "b").body, model: MODEL } },
        request("c", "d"),
      ], { callback_url: "https://example.com/hook" }),
    );
    assert.equal(res.status, 202);
    assert.deepEqual(checkOpenRouterBatchTraffic(emu.log), []);
  });

  it("answers 401 without the right key, on every batch route", async () => {
    for (
      const [method, path] of [["POST", "/batches"], ["GET", "/batches"], ["GET", "/batches/b1"]]
    ) {
      const res = await fetch(`${emu.baseURL}${path}`, {
        method,
        headers: { authorization: "Bearer wrong", "content-type": "application/json" },
        body: method === "POST" ? JSON.stringify(create([request("a", "b")])) : undefined,
      });
      assert.equal(res.status, 401);
      assert.equal(((await res.json()) as { error: { code: number } }).error.code, 401);
    }
    const v = checkOpenRouterBatchTraffic(emu.log.entries);
    assert.deepEqual(v.filter((x) => x.direction === "answer"), []);
  });
});
