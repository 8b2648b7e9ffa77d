/** The openai provider's Batch API through the official SDK against the loopback emulator. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import OpenAI from "openai";
import { LoomIncompleteResultsError, LoomProviderError } from "../../../core/base/errors.ts";
import type {
  BatchApi,
  BatchItem,
  BatchLabel,
  BatchOutcome,
  GenerateRequest,
  ProviderV1,
} from "../../../core/spec/provider.ts";
import { tempDir } from "../../../core/test-support/temp.ts";
import type { Emulator, ManualClock } from "../../../emulator/mod.ts";
import openaiCompatiblePlugin from "../openai-compatible/mod.ts";
import openrouterPlugin from "../openrouter/mod.ts";
import { useEmulator } from "../_shared/test-emulator.ts";
import {
  BATCH_ENDPOINT,
  batchLine,
  batchStatus,
  OPENAI_BATCH_LIMITS,
  openaiBatchApi,
  type OpenAIBatchOptions,
  responseLines,
  resultOutcome,
} from "./batch.ts";
import openaiPlugin from "./mod.ts";
import { chatCompletionBody } from "./request.ts";

const request = (prompt: string): GenerateRequest => ({
  model: "gpt-4o-mini",
  system: "Be brief.",
  messages: [{ role: "user", content: prompt }],
  params: { temperature: 0, max_tokens: 50 },
});

/** Three items; the second has non-ASCII text, so bytes and characters differ. */
const ITEMS: BatchItem[] = [
  { customId: "r1", request: request("first prompt") },
  { customId: "r2", request: request("second prompt: héllo ✓ 日本") },
  { customId: "r3", request: request("third prompt") },
];

const label = (job: string, shard = 0): BatchLabel => ({
  job,
  shard,
  name: `loom-${job}-${shard}`,
});

/** An SDK client for the emulator, configured as the provider configures its own. */
function clientFor(emu: Emulator, apiKey = emu.apiKey): OpenAI {
  return new OpenAI({ apiKey, baseURL: emu.baseURL, maxRetries: 0 });
}

/** The batch API on its own, with waits shortened for tests. */
function apiFor(emu: Emulator, options: OpenAIBatchOptions = {}, apiKey?: string): BatchApi {
  return openaiBatchApi(clientFor(emu, apiKey), { fileRetryDelaysMs: [1, 1, 1], ...options });
}

/** The real openai provider (as the core creates it), pointed at the emulator. */
async function providerFor(emu: Emulator): Promise<ProviderV1> {
  return openaiPlugin.create({ apiKey: emu.apiKey, base_url: emu.baseURL }, {
    env: {},
    home: tempDir(),
  });
}

async function collect(outcomes: AsyncIterable<BatchOutcome>): Promise<BatchOutcome[]> {
  const all: BatchOutcome[] = [];
  for await (const o of outcomes) all.push(o);
  return all;
}

/** Outcomes keyed by custom id (results come in any order). */
function byId(outcomes: readonly BatchOutcome[]): Record<string, BatchOutcome> {
  const map: Record<string, BatchOutcome> = {};
  for (const o of outcomes) {
    assert.equal(map[o.customId], undefined, `one outcome per request (${o.customId})`);
    map[o.customId] = o;
  }
  return map;
}

/** Outcomes as `id → text | kind`, sorted by id. */
function summary(outcomes: readonly BatchOutcome[]): string[] {
  return outcomes.map((o) => `${o.customId} ${"result" in o ? o.result.text : o.kind}`).sort();
}

describe("openai batch API against the emulator (manual schedule)", () => {
  const t = useEmulator({ provider: "openai", schedule: { advance: "manual" } });

  it("is wired into the openai provider, not into openai-compatible; openrouter has its own", async () => {
    const provider = await providerFor(t.emu);
    assert.equal(provider.capabilities.batch, true);
    assert.ok(provider.batch);
    assert.deepEqual(provider.batch.limits, { maxRequests: 50_000, maxBytes: 200_000_000 });
    const context = { env: {}, home: tempDir() };
    const compatible = await openaiCompatiblePlugin.create(
      { apiKey: "k", base_url: t.emu.baseURL },
      context,
    );
    assert.equal(compatible.capabilities.batch, false);
    assert.equal(compatible.batch, undefined);
    // OpenRouter's Batch API is not OpenAI's (inline requests, 5,000 a batch): see openrouter/.
    const openrouter = await openrouterPlugin.create({ apiKey: "k" }, context);
    assert.equal(openrouter.capabilities.batch, true);
    assert.equal(openrouter.batch?.limits.maxRequests, 5_000);
  });

  it("uploads one JSONL line per item with the sync body builder, labelled, and itemBytes matches the file", async () => {
    const api = apiFor(t.emu);
    const handle = await api.submit(ITEMS, label("upload"));
    assert.match(handle.id, /^batch_/);
    const fileId = handle.data?.input_file_id as string;
    assert.match(fileId, /^file-/);

    const client = clientFor(t.emu);
    const text = await (await client.files.content(fileId)).text();
    const lines = text.split("\n");
    assert.equal(lines.pop(), "", "every line ends with a newline");
    assert.deepEqual(
      lines.map((l) => JSON.parse(l)),
      ITEMS.map((item) => ({
        custom_id: item.customId,
        method: "POST",
        url: "/v1/chat/completions",
        body: chatCompletionBody(item.request),
      })),
    );
    assert.deepEqual(lines, ITEMS.map(batchLine));

    const file = await client.files.retrieve(fileId);
    assert.equal(file.purpose, "batch");
    assert.equal(file.filename, "loom-upload-0.jsonl");
    const itemBytes = ITEMS.map((item) => api.itemBytes(item));
    assert.equal(itemBytes.reduce((a, b) => a + b, 0), file.bytes);
    assert.equal(itemBytes.reduce((a, b) => a + b, 0), new TextEncoder().encode(text).length);
    assert.ok(itemBytes[1] > batchLine(ITEMS[1]).length + 1, "bytes, not characters");

    const [create] = t.emu.log.find("POST /v1/batches");
    assert.deepEqual(create.body, {
      input_file_id: fileId,
      endpoint: BATCH_ENDPOINT,
      completion_window: "24h",
      metadata: { loom_job: "upload", loom_shard: "0", loom_name: "loom-upload-0" },
    });
    assert.equal(t.emu.log.count("POST /v1/files"), 1);
  });

  it("a streamed submit uploads the same file as an array, read once, more than one part long", async () => {
    const api = apiFor(t.emu);
    const client = clientFor(t.emu);
    const fileText = async (handle: { data?: Record<string, unknown> }) =>
      await (await client.files.content(handle.data?.input_file_id as string)).text();
    // 600 items: more than two of the builder's parts of 256 lines.
    const many = Array.from({ length: 600 }, (_, i) => ({
      ...ITEMS[i % ITEMS.length],
      customId: `row-${i}`,
    }));
    let reads = 0;
    const source = {
      count: many.length,
      async *items() {
        reads++;
        yield* many;
      },
    };
    const streamed = await api.submitStream!(source, label("stream"));
    const array = await api.submit(many, label("array"));
    assert.equal(reads, 1);
    assert.equal(await fileText(streamed), await fileText(array));
    assert.equal((await fileText(streamed)).split("\n").length, 601);
  });

  it("reports its upload before the create, reuses it when given, and deletes it (gone already is fine)", async () => {
    const api = apiFor(t.emu);
    const steps: string[] = [];
    const uploads: Array<Record<string, string>> = [];
    const options = {
      onUploaded: async (upload: Record<string, string>) =>
        void (steps.push("uploaded"), uploads.push(upload)),
      onCreate: async () =>
        void steps.push(`create after ${t.emu.log.count(/^POST \/v1\/batches$/)} creates`),
    };
    assert.equal(api.announcesCreate, true);
    const before = t.emu.log.count(/^POST \/v1\/batches$/);
    const first = await api.submit(ITEMS, label("reuse"), options);
    assert.deepEqual(steps, ["uploaded", `create after ${before} creates`]);
    const fileId = first.data?.input_file_id as string;
    assert.deepEqual(uploads, [{ input_file_id: fileId }]);
    const uploadsBefore = t.emu.log.count(/^POST \/v1\/files$/);
    const again = await api.submit(ITEMS, label("reuse"), { ...options, upload: uploads[0] });
    assert.equal(again.data?.input_file_id, fileId, "the retry creates from the same file");
    assert.equal(t.emu.log.count(/^POST \/v1\/files$/), uploadsBefore, "no second upload");
    await api.deleteUpload!({ input_file_id: fileId });
    await assert.rejects(
      clientFor(t.emu).files.retrieve(fileId),
      (e: unknown) => e instanceof OpenAI.APIError && e.status === 404,
    );
    await api.deleteUpload!({ input_file_id: fileId }); // a second delete finds it gone: no error
  });

  it("reports each state as the batch moves on, then every answer joined by custom_id, parsed as sync parses it", async () => {
    const provider = await providerFor(t.emu);
    const api = provider.batch!;
    const handle = await api.submit(ITEMS, label("states"));
    const seen = [];
    for (let i = 0; i < 5; i++) {
      if (i > 0) t.emu.step(handle.id);
      seen.push(await api.status(handle));
    }
    assert.deepEqual(seen.map((s) => `${s.state}/${s.providerState}`), [
      "validating/validating",
      "in_progress/in_progress",
      "in_progress/in_progress",
      "in_progress/finalizing",
      "completed/completed",
    ]);
    assert.deepEqual(seen[2].counts, { total: 3, succeeded: 1, failed: 0 });
    assert.deepEqual(seen[4].counts, { total: 3, succeeded: 3, failed: 0 });
    assert.equal(seen[4].message, undefined);

    const outcomes = await collect(api.results(handle, ITEMS.map((i) => i.customId)));
    const got = byId(outcomes);
    assert.deepEqual(Object.keys(got).sort(), ["r1", "r2", "r3"]);
    assert.notDeepEqual(
      outcomes.map((o) => o.customId),
      ["r1", "r2", "r3"],
      "the emulator shuffles: joined by id, not order",
    );
    for (const item of ITEMS) {
      const sync = await provider.generate(item.request);
      assert.deepEqual(
        got[item.customId],
        { customId: item.customId, result: sync },
        "the same answer as sync",
      );
    }
    assert.equal(
      (got.r1 as { result: { text: string } }).result.text,
      "[gpt-4o-mini] first prompt",
    );
  });

  it("cancels: cancelling counts as running, and the cancelled batch keeps the answers it had", async () => {
    const api = apiFor(t.emu);
    const handle = await api.submit(ITEMS, label("cancel"));
    t.emu.step(handle.id, 2); // in progress, one of three done
    assert.equal((await api.status(handle)).counts?.succeeded, 1);
    await api.cancel(handle);
    assert.equal(t.emu.log.count(`POST /v1/batches/${handle.id}/cancel`), 1);
    const cancelling = await api.status(handle);
    assert.deepEqual([cancelling.state, cancelling.providerState], ["in_progress", "cancelling"]);
    t.emu.step(handle.id);
    assert.equal((await api.status(handle)).state, "cancelled");
    const outcomes = await collect(api.results(handle, []));
    assert.equal(outcomes.length, 3);
    assert.equal(outcomes.filter((o) => "result" in o).length, 1);
    const unrun = outcomes.filter((o) => !("result" in o));
    assert.deepEqual(unrun.map((o) => "kind" in o && o.kind), ["cancelled", "cancelled"]);
    assert.match((unrun[0] as { error: string }).error, /^batch_cancelled: /);
    // Cancelling a batch that already ended is no failure: there is nothing left to cancel.
    await api.cancel(handle);
  });

  it("refuses results of a batch still running, without calling it fatal", async () => {
    const api = apiFor(t.emu);
    const handle = await api.submit(ITEMS.slice(0, 1), label("early"));
    await assert.rejects(collect(api.results(handle, ["r1"])), (e: unknown) => {
      assert.ok(e instanceof LoomProviderError);
      assert.match(e.message, /is validating; its results exist once it has ended/);
      assert.equal(e.fatal, false);
      return true;
    });
  });

  it("finds the batches labelled for a submission, newest first, ignoring others and older ones", async () => {
    const clock = t.emu.clock as ManualClock;
    const api = apiFor(t.emu, { listPageSize: 2 });
    const wanted = label("find", 3);
    const old = await api.submit(ITEMS.slice(0, 1), wanted);
    clock.advance(60 * 60 * 1000);
    const after = new Date(clock.now()).toISOString();
    const first = await api.submit(ITEMS.slice(0, 1), wanted);
    await api.submit(ITEMS.slice(0, 1), label("find", 4));
    await api.submit(ITEMS.slice(0, 1), label("other"));
    const second = await api.submit(ITEMS.slice(0, 1), wanted);
    await api.submit(ITEMS.slice(0, 1), label("other", 1));

    const found = await api.find!(wanted, { after, requests: 1 });
    assert.deepEqual(found, [
      { handle: { id: second.id, data: second.data }, exact: true },
      { handle: { id: first.id, data: first.data }, exact: true },
    ]);
    assert.ok(t.emu.log.count("GET /v1/batches") >= 3, "paged through the list");
    assert.ok(t.emu.log.find("GET /v1/batches").every((c) => c.query.limit === "2"));

    // Without the time bound, the older batch with the same label is there too.
    const all = await api.find!(wanted, { after: "not a time", requests: 1 });
    assert.deepEqual(all!.map((f) => f.handle.id), [second.id, first.id, old.id]);
    assert.deepEqual(await api.find!(label("nothing"), { after, requests: 1 }), []);
  });

  it("stops the run on a wrong key at submission, without showing the key", async () => {
    const api = apiFor(t.emu, {}, "sk-wrong-key-123456");
    await assert.rejects(api.submit(ITEMS, label("badkey")), (e: unknown) => {
      assert.ok(e instanceof LoomProviderError);
      assert.equal(e.fatal, true);
      assert.equal(e.status, 401);
      assert.match(e.message, /check the API key/);
      assert.ok(!e.message.includes("sk-wrong-key-123456"));
      return true;
    });
    assert.equal(t.emu.log.count("POST /v1/batches"), 0);
  });

  it("retries a rate-limited status check through Loom (retryable), not the SDK", async () => {
    const api = apiFor(t.emu);
    const handle = await api.submit(ITEMS.slice(0, 1), label("429"));
    t.emu.faults.add({
      match: { first: 1 },
      action: { kind: "status", status: 429, retryAfterMs: 7 },
    });
    await assert.rejects(api.status(handle), (e: unknown) => {
      assert.ok(e instanceof LoomProviderError);
      assert.deepEqual([e.retryable, e.fatal, e.status, e.retryAfterMs], [true, false, 429, 7]);
      return true;
    });
    assert.equal((await api.status(handle)).state, "validating");
  });
});

describe("openai batch API: one request fails, the others answer", () => {
  const t = useEmulator({
    provider: "openai",
    schedule: { advance: "instant" },
    batches: [{ failPromptContains: "second" }],
  });

  it("gives the failed request kind failed with its status and message", async () => {
    const api = apiFor(t.emu);
    const handle = await api.submit(ITEMS, label("partial"));
    const status = await api.status(handle);
    assert.deepEqual([status.state, status.counts], ["completed", {
      total: 3,
      succeeded: 2,
      failed: 1,
    }]);
    const got = byId(await collect(api.results(handle, [])));
    assert.deepEqual(summary(Object.values(got)), [
      "r1 [gpt-4o-mini] first prompt",
      "r2 failed",
      "r3 [gpt-4o-mini] third prompt",
    ]);
    assert.match((got.r2 as { error: string }).error, /^400: Invalid prompt: /);
  });
});

describe("openai batch API: expiry with partial results", () => {
  const t = useEmulator({
    provider: "openai",
    schedule: { advance: "instant" },
    batches: [{ end: "expire", processed: 1 }],
  });

  it("answers the processed requests and marks the rest expired", async () => {
    const api = apiFor(t.emu);
    const handle = await api.submit(ITEMS, label("expire"));
    assert.equal((await api.status(handle)).state, "expired");
    const outcomes = await collect(api.results(handle, []));
    assert.equal(outcomes.length, 3);
    const answered = outcomes.filter((o) => "result" in o);
    assert.equal(answered.length, 1);
    const expired = outcomes.filter((o) => !("result" in o));
    assert.deepEqual(expired.map((o) => "kind" in o && o.kind), ["expired", "expired"]);
    assert.match(
      (expired[0] as { error: string }).error,
      /^batch_expired: This request could not be executed/,
    );
  });
});

describe("openai batch API: completed with only an error file", () => {
  const t = useEmulator({
    provider: "openai",
    schedule: { advance: "instant" },
    batches: [{ onlyErrors: true }],
  });

  it("yields every request's error although there is no output file", async () => {
    const api = apiFor(t.emu);
    const handle = await api.submit(ITEMS, label("errors"));
    const batch = await clientFor(t.emu).batches.retrieve(handle.id);
    assert.deepEqual([batch.status, batch.output_file_id ?? null, typeof batch.error_file_id], [
      "completed",
      null,
      "string",
    ]);
    const outcomes = await collect(api.results(handle, []));
    assert.deepEqual(summary(outcomes), ["r1 failed", "r2 failed", "r3 failed"]);
    assert.ok(outcomes.every((o) => "error" in o && /^400: /.test(o.error)));
  });
});

describe("openai batch API: unreadable result lines", () => {
  const t = useEmulator({
    provider: "openai",
    schedule: { advance: "instant" },
    batches: [{ malformedLines: 2, blankLines: 2 }],
  });

  it("yields every readable line, skips blank ones, then names the unreadable lines", async () => {
    const api = apiFor(t.emu);
    const handle = await api.submit(ITEMS, label("malformed"));
    const batch = await clientFor(t.emu).batches.retrieve(handle.id);
    const outcomes: BatchOutcome[] = [];
    await assert.rejects(
      (async () => {
        for await (const o of api.results(handle, [])) outcomes.push(o);
      })(),
      (e: unknown) => {
        assert.ok(
          e instanceof LoomIncompleteResultsError && !(e instanceof LoomProviderError),
          "no retry fixes it: the lines read are kept",
        );
        assert.match(
          e.message,
          new RegExp(
            `batch ${handle.id}: 2 result lines could not be read \\(${batch.output_file_id} lines \\d+, \\d+\\)`,
          ),
        );
        return true;
      },
    );
    assert.deepEqual(summary(outcomes), [
      "r1 [gpt-4o-mini] first prompt",
      "r2 [gpt-4o-mini] second prompt: héllo ✓ 日本",
      "r3 [gpt-4o-mini] third prompt",
    ]);
  });
});

describe("openai batch API: a fresh upload not yet visible to batches.create", () => {
  const t = useEmulator({
    provider: "openai",
    schedule: { advance: "instant" },
    batches: [{ fileInvisibleFor: 2 }],
  });

  it("retries the create a few times, after short waits", async () => {
    const api = apiFor(t.emu, { fileRetryDelaysMs: [1, 1, 1] });
    const handle = await api.submit(ITEMS, label("eventual"));
    assert.deepEqual(t.emu.log.find("POST /v1/batches").map((c) => c.status), [400, 400, 200]);
    assert.equal(t.emu.log.count("POST /v1/files"), 1, "one upload");
    assert.equal((await api.status(handle)).state, "completed");
  });

  it("gives up with a retryable error when the file stays invisible", async () => {
    const api = apiFor(t.emu, { fileRetryDelaysMs: [1] });
    await assert.rejects(api.submit(ITEMS, label("eventual", 1)), (e: unknown) => {
      assert.ok(e instanceof LoomProviderError);
      assert.deepEqual([e.retryable, e.fatal], [true, false]);
      assert.match(e.message, /still unknown to the Batch API after 2 attempts/);
      return true;
    });
    assert.deepEqual(t.emu.log.find("POST /v1/batches").map((c) => c.status), [400, 400]);
  });
});

describe("openai batch API: a batch that fails validation", () => {
  const t = useEmulator({
    provider: "openai",
    schedule: { advance: "instant" },
    batches: [{ end: "fail" }],
  });

  it("reports failed with the provider's reason, and no results", async () => {
    const api = apiFor(t.emu);
    const handle = await api.submit(ITEMS, label("fail"));
    const status = await api.status(handle);
    assert.equal(status.state, "failed");
    assert.match(status.message ?? "", /Enqueued token limit reached for gpt-4o-mini/);
    assert.deepEqual(await collect(api.results(handle, [])), []);
  });
});

describe("openai batch result lines and statuses", () => {
  it("reads each kind of result line", () => {
    const ok = {
      custom_id: "a",
      response: {
        status_code: 200,
        body: { choices: [{ message: { content: "hi" }, finish_reason: "length" }] },
      },
      error: null,
    };
    assert.deepEqual(resultOutcome(ok), {
      customId: "a",
      result: {
        text: "hi",
        finishReason: "length",
        truncated: true,
        usage: { inputTokens: undefined, outputTokens: undefined },
      },
    });
    const refused = {
      custom_id: "a",
      response: {
        status_code: 200,
        body: { choices: [{ message: { content: null, refusal: "no" }, finish_reason: "stop" }] },
      },
    };
    assert.equal((resultOutcome(refused) as { result: { refusal?: string } }).result.refusal, "no");
    assert.deepEqual(
      resultOutcome({ custom_id: "b", response: { status_code: 500, body: {} }, error: null }),
      { customId: "b", error: "500: no error message", kind: "failed" },
    );
    assert.deepEqual(
      resultOutcome({
        custom_id: "c",
        response: null,
        error: { code: "batch_cancelled", message: "m" },
      }),
      { customId: "c", error: "batch_cancelled: m", kind: "cancelled" },
    );
    assert.deepEqual(
      resultOutcome({
        custom_id: "d",
        response: null,
        error: { code: "server_error", message: "m" },
      }),
      { customId: "d", error: "server_error: m", kind: "failed" },
    );
    assert.equal(resultOutcome({ custom_id: "e", response: null, error: null }), undefined);
    assert.equal(resultOutcome({ response: { status_code: 200, body: {} } }), undefined);
    assert.equal(resultOutcome([1]), undefined);
  });

  it("maps every OpenAI status and joins the errors of a failed batch", () => {
    const batch = (status: string, extra: Record<string, unknown> = {}) =>
      ({
        id: "batch_1",
        object: "batch",
        endpoint: BATCH_ENDPOINT,
        input_file_id: "file-1",
        completion_window: "24h",
        created_at: 1,
        status,
        ...extra,
      }) as unknown as OpenAI.Batches.Batch;
    const states = [
      "validating",
      "in_progress",
      "finalizing",
      "cancelling",
      "completed",
      "failed",
      "expired",
      "cancelled",
    ].map((s) => batchStatus(batch(s)).state);
    assert.deepEqual(states, [
      "validating",
      "in_progress",
      "in_progress",
      "in_progress",
      "completed",
      "failed",
      "expired",
      "cancelled",
    ]);
    const failed = batchStatus(batch("failed", {
      errors: {
        object: "list",
        data: [{ code: "invalid_json_line", message: "bad JSON", line: 2 }, {
          code: "empty_file",
          message: "empty",
          line: null,
        }],
      },
    }));
    assert.equal(failed.message, "line 2: bad JSON; empty");
    assert.equal(failed.counts, undefined);
    assert.deepEqual(OPENAI_BATCH_LIMITS, { maxRequests: 50_000, maxBytes: 200 * 1000 * 1000 });
  });
});

describe("openai batch file reading", () => {
  it("splits a streamed file into lines, whatever the chunks cut", async () => {
    const bytes = new TextEncoder().encode('{"a":"日本"}\r\n\n{"b":1}\nlast');
    const chunks = [bytes.slice(0, 7), bytes.slice(7, 9), bytes.slice(9, 16), bytes.slice(16)];
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        for (const c of chunks) controller.enqueue(c);
        controller.close();
      },
    });
    const lines: string[] = [];
    for await (const line of responseLines(new Response(body), (e) => e)) lines.push(line);
    assert.deepEqual(lines, ['{"a":"日本"}', "", '{"b":1}', "last"]);
  });

  it("turns a failed read into the error it is given", async () => {
    let sent = false;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent) return controller.error(new Error("connection reset"));
        sent = true;
        controller.enqueue(new TextEncoder().encode("one\ntw"));
      },
    });
    const lines: string[] = [];
    await assert.rejects(
      (async () => {
        for await (
          const line of responseLines(
            new Response(body),
            (e) => new LoomProviderError(`read: ${(e as Error).message}`, { retryable: true }),
          )
        ) lines.push(line);
      })(),
      /read: connection reset/,
    );
    assert.deepEqual(lines, ["one"]);
  });
});
