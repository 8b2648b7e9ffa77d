/** The google provider's batch API through the official @google/genai SDK against the loopback emulator. */
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { parse } from "csv-parse/sync";
import { fetchJobs } from "../../../core/batch/jobs.ts";
import { loadJob } from "../../../core/job/load.ts";
import { runJob } from "../../../core/commands/run.ts";
import { tempDir } from "../../../core/test-support/temp.ts";
import { ApiError, GoogleGenAI } from "@google/genai";
import { LoomIncompleteResultsError, LoomProviderError } from "../../../core/base/errors.ts";
import type {
  BatchHandle,
  BatchItem,
  BatchLabel,
  BatchOutcome,
  GenerateRequest,
} from "../../../core/spec/provider.ts";
import type { Emulator } from "../../../emulator/mod.ts";
import { useEmulator } from "../_shared/test-emulator.ts";
import { batchState, googleBatch, inputLine, statusText } from "./batch.ts";
import plugin from "./mod.ts";
import { answerResult, generateContentParams, wireRequest } from "./request.ts";

const MODEL = "gemini-2.5-flash";
const FAIL = "please fail";

/** A Gemini client and Loom's batch API over it, for one emulator. */
function client(emu: Emulator, options: { inlineMaxBytes?: number; apiKey?: string } = {}) {
  const apiKey = options.apiKey ?? emu.apiKey;
  const ai = new GoogleGenAI({
    apiKey,
    httpOptions: { baseUrl: emu.baseURL, apiVersion: "v1beta" },
  });
  const batch = googleBatch({
    ai,
    ApiError,
    apiKey,
    baseUrl: emu.baseURL,
    timeoutMs: 30_000,
    inlineMaxBytes: options.inlineMaxBytes,
  });
  return { ai, batch };
}

function request(prompt: string, extra: Partial<GenerateRequest> = {}): GenerateRequest {
  return {
    model: MODEL,
    system: "Be brief.",
    messages: [{ role: "user", content: prompt }],
    params: { temperature: 0, max_tokens: 50 },
    ...extra,
  };
}

function items(...prompts: string[]): BatchItem[] {
  return prompts.map((p, i) => ({ customId: `row-${i + 1}`, request: request(p) }));
}

function label(shard: number, job = "job1"): BatchLabel {
  return { job, shard, name: `loom-${job}-${shard}` };
}

/** The emulator's id of a batch (`batches/<id>` without the prefix). */
const bare = (handle: BatchHandle) => handle.id.replace(/^batches\//, "");

async function collect(iterable: AsyncIterable<BatchOutcome>): Promise<BatchOutcome[]> {
  const out: BatchOutcome[] = [];
  for await (const outcome of iterable) out.push(outcome);
  return out;
}

/** Outcomes by custom id, as `text` for answers and `kind: error` otherwise. */
function byId(outcomes: BatchOutcome[]): Record<string, string> {
  return Object.fromEntries(
    outcomes.map((o) => [o.customId, "result" in o ? o.result.text : `${o.kind}: ${o.error}`]),
  );
}

const isFatal = (key: string) => (e: unknown) =>
  e instanceof LoomProviderError && e.fatal && !e.retryable && !e.message.includes(key);

describe("google batch API against the emulator", () => {
  const t = useEmulator({
    provider: "gemini",
    schedule: { advance: "manual" },
    batches: [{ failPromptContains: FAIL }],
  });

  it("sends a small batch inline, keyed by custom id, and joins the results by key", async () => {
    const { batch } = client(t.emu);
    const handle = await batch.submit(
      items("first prompt", "second prompt", "third prompt"),
      label(1),
    );
    assert.match(handle.id, /^batches\//);
    assert.deepEqual(handle.data, { mode: "inline" });
    const create = t.emu.log.find(`/v1beta/models/${MODEL}:batchGenerateContent`)[0].body as {
      batch: {
        displayName: string;
        inputConfig: { requests: { requests: Array<{ request: unknown; metadata: unknown }> } };
      };
    };
    assert.equal(create.batch.displayName, "loom-job1-1");
    const sent = create.batch.inputConfig.requests.requests;
    assert.deepEqual(sent.map((r) => r.metadata), [{ key: "row-1" }, { key: "row-2" }, {
      key: "row-3",
    }]);
    // The inline request is exactly the file line's request: both modes send the same thing.
    assert.deepEqual(sent[0].request, wireRequest(request("first prompt")));
    assert.equal(t.emu.log.count("/upload/"), 0);

    assert.deepEqual(await batch.status(handle), {
      state: "validating",
      providerState: "JOB_STATE_PENDING",
    });
    t.emu.step(bare(handle));
    assert.deepEqual(await batch.status(handle), {
      state: "in_progress",
      providerState: "JOB_STATE_RUNNING",
    });
    t.emu.step(bare(handle));
    assert.deepEqual(await batch.status(handle), {
      state: "completed",
      providerState: "JOB_STATE_SUCCEEDED",
    });

    // Given in another order: the metadata keys, not positions, join the results.
    const outcomes = await collect(batch.results(handle, ["row-3", "row-2", "row-1"]));
    assert.deepEqual(byId(outcomes), {
      "row-1": `[${MODEL}] first prompt`,
      "row-2": `[${MODEL}] second prompt`,
      "row-3": `[${MODEL}] third prompt`,
    });
    const first = outcomes.find((o) => o.customId === "row-1")!;
    assert.ok("result" in first);
    assert.equal(first.result.finishReason, "STOP");
    // gemini-2.5-flash thinks (2 tokens in the emulator): billed as output, reported as reasoning.
    assert.deepEqual(first.result.usage, {
      inputTokens: 4,
      outputTokens: 3 + 2,
      reasoningTokens: 2,
    });
    assert.equal(first.result.model, MODEL, "the answering model, from modelVersion");
  });

  it("uploads a JSONL file over the inline threshold, creates from it and downloads the results", async () => {
    const { ai, batch } = client(t.emu, { inlineMaxBytes: 0 });
    let uploaded = "";
    const upload = ai.files.upload.bind(ai.files);
    ai.files.upload = async (params) => {
      uploaded = await (params.file as Blob).text();
      return upload(params);
    };
    const batchItems = items("alpha prompt", "beta prompt", "gamma prompt");
    const handle = await batch.submit(batchItems, label(2));
    assert.equal(handle.data?.mode, "file");
    assert.match(String(handle.data?.file), /^files\//);

    // Lines are {key, request: <REST wire form of generateContentParams>}; itemBytes is exact.
    const lines = uploaded.split("\n");
    assert.equal(lines.pop(), "");
    assert.deepEqual(
      lines.map((l) => JSON.parse(l)),
      batchItems.map((i) => ({ key: i.customId, request: wireRequest(i.request) })),
    );
    assert.deepEqual(JSON.parse(lines[0]).request, {
      contents: [{ role: "user", parts: [{ text: "alpha prompt" }] }],
      systemInstruction: { parts: [{ text: "Be brief." }], role: "user" },
      generationConfig: { temperature: 0, maxOutputTokens: 50 },
    });
    assert.equal(
      batchItems.reduce((n, i) => n + batch.itemBytes(i), 0),
      new TextEncoder().encode(uploaded).length,
    );

    const start = t.emu.log.find("POST /upload/v1beta/files")[0].body as {
      file: { displayName: string; mimeType: string };
    };
    assert.deepEqual(start.file, {
      displayName: "loom-job1-2",
      mimeType: "jsonl",
      sizeBytes: String(new TextEncoder().encode(uploaded).length),
    });
    const create = t.emu.log.find(`/v1beta/models/${MODEL}:batchGenerateContent`)[0].body as {
      batch: Record<string, unknown>;
    };
    assert.deepEqual(create.batch, {
      displayName: "loom-job1-2",
      inputConfig: { fileName: handle.data?.file },
    });

    t.emu.step(bare(handle), 2);
    assert.equal((await batch.status(handle)).state, "completed");
    const outcomes = await collect(batch.results(handle, batchItems.map((i) => i.customId)));
    assert.deepEqual(byId(outcomes), {
      "row-1": `[${MODEL}] alpha prompt`,
      "row-2": `[${MODEL}] beta prompt`,
      "row-3": `[${MODEL}] gamma prompt`,
    });
    const alpha = outcomes[0];
    assert.ok("result" in alpha);
    assert.deepEqual([alpha.result.usage, alpha.result.model], [{
      inputTokens: 4,
      outputTokens: 3 + 2,
      reasoningTokens: 2,
    }, MODEL]);
    const download = t.emu.log.find(/GET \/download\/v1beta\/files\/batch-[^/]+:download$/);
    assert.equal(download.length, 1);
    assert.equal(download[0].query.alt, "media");
    assert.equal(download[0].headers["x-goog-api-key"], "***");
  });

  it("reports its upload before the create, reuses it when given, and deletes it (gone already is fine)", async () => {
    const { batch } = client(t.emu, { inlineMaxBytes: 0 });
    const steps: string[] = [];
    const uploads: Array<Record<string, string>> = [];
    const options = {
      onUploaded: async (upload: Record<string, string>) =>
        void (steps.push("uploaded"), uploads.push(upload)),
      onCreate: async () =>
        void steps.push(`create after ${t.emu.log.count(/batchGenerateContent$/)} creates`),
    };
    assert.equal(batch.announcesCreate, true);
    const first = await batch.submit(items("one prompt"), label(7), options);
    assert.deepEqual(steps, ["uploaded", "create after 0 creates"]);
    assert.deepEqual(uploads, [{ file: first.data?.file }]);
    const uploadCalls = t.emu.log.count("POST /upload/v1beta/files");
    const again = await batch.submit(items("one prompt"), label(7), {
      ...options,
      upload: uploads[0],
    });
    assert.equal(again.data?.file, first.data?.file, "the retry creates from the same file");
    assert.equal(t.emu.log.count("POST /upload/v1beta/files"), uploadCalls, "no second upload");
    const file = String(first.data?.file);
    await batch.deleteUpload!({ file });
    const gone = await fetch(`${t.emu.baseURL}/v1beta/${file}`, {
      headers: { "x-goog-api-key": t.emu.apiKey },
    });
    assert.equal(gone.status, 403, "the Files API's answer for a file that is not there");
    await batch.deleteUpload!({ file }); // a second delete finds it gone: no error
  });

  it("builds file lines that equal what the SDK sends for a sync call of the same request", async () => {
    const provider = await plugin.create({ apiKey: t.emu.apiKey, base_url: t.emu.baseURL }, {
      env: {},
      home: "/nonexistent",
    });
    assert.equal(provider.capabilities.batch, true);
    assert.ok(provider.batch);
    const req = request("structured please", {
      params: { temperature: 0.5, max_tokens: 400, top_p: 0.9, stop: "END", seed: 7, top_k: 3 },
      responseSchema: {
        type: "object",
        properties: { answer: { type: "string" } },
        required: ["answer"],
      },
    });
    await provider.generate(req);
    const sync = t.emu.log.find(`/v1beta/models/${MODEL}:generateContent`)[0].body;
    assert.deepEqual(wireRequest(req), sync);
    assert.deepEqual(JSON.parse(inputLine({ customId: "x", request: req })), {
      key: "x",
      request: sync,
    });
    // And the plugin's own batch API runs a batch.
    const handle = await provider.batch.submit([{ customId: "only", request: req }], label(3));
    t.emu.step(bare(handle), 2);
    const [outcome] = await collect(provider.batch.results(handle, ["only"]));
    assert.ok("result" in outcome && JSON.parse(outcome.result.text).answer !== undefined);
  });

  it("joins inline responses that come back without metadata by position", async () => {
    const { ai, batch } = client(t.emu);
    // A batch whose requests carry no metadata, so its responses have none either.
    const src = ["one", "two", "three"].map((p) => {
      const { contents, config } = generateContentParams(request(`${p} prompt`));
      return { contents, config };
    });
    const job = await ai.batches.create({
      model: MODEL,
      src: src as never,
      config: { displayName: "loom-job1-4" },
    });
    const handle = { id: job.name!, data: { mode: "inline" } };
    t.emu.step(bare(handle), 2);
    const outcomes = await collect(batch.results(handle, ["a", "b", "c"]));
    assert.deepEqual(outcomes.map((o) => [o.customId, "result" in o ? o.result.text : o.error]), [
      ["a", `[${MODEL}] one prompt`],
      ["b", `[${MODEL}] two prompt`],
      ["c", `[${MODEL}] three prompt`],
    ]);
  });

  it("reports the requests that failed inside a completed batch as failed, inline and from a file", async () => {
    for (const inlineMaxBytes of [undefined, 0]) {
      const { batch } = client(t.emu, { inlineMaxBytes });
      const handle = await batch.submit(
        items("fine prompt", `${FAIL} now`, "another fine prompt"),
        label(5),
      );
      t.emu.step(bare(handle), 2);
      assert.equal((await batch.status(handle)).state, "completed");
      const outcomes = byId(await collect(batch.results(handle, ["row-1", "row-2", "row-3"])));
      assert.deepEqual(outcomes, {
        "row-1": `[${MODEL}] fine prompt`,
        "row-2": "failed: INVALID_ARGUMENT: Request contains an invalid argument.",
        "row-3": `[${MODEL}] another fine prompt`,
      }, `inlineMaxBytes ${inlineMaxBytes}`);
    }
  });

  it("cancels a batch: status cancelled, every request cancelled; cancelling an ended batch is a no-op", async () => {
    const { batch } = client(t.emu);
    const handle = await batch.submit(items("to be cancelled", "me too"), label(6));
    t.emu.step(bare(handle));
    await batch.cancel(handle);
    assert.equal(t.emu.log.count(`POST /v1beta/${handle.id}:cancel`), 1);
    assert.deepEqual(await batch.status(handle), {
      state: "cancelled",
      providerState: "JOB_STATE_CANCELLED",
    });
    const outcomes = await collect(batch.results(handle, ["row-1", "row-2"]));
    assert.deepEqual(
      outcomes.map((o) => ("kind" in o ? [o.customId, o.kind] : [o.customId, "result"])),
      [["row-1", "cancelled"], ["row-2", "cancelled"]],
    );
    await batch.cancel(handle); // the emulator refuses (FAILED_PRECONDITION); the batch has ended anyway
    await assert.rejects(
      () => batch.cancel({ id: "batches/nosuchbatch" }),
      (e: unknown) => e instanceof LoomProviderError && e.status === 404,
    );
  });

  it("refuses results of a batch that has not finished", async () => {
    const { batch } = client(t.emu);
    const handle = await batch.submit(items("still running"), label(7));
    await assert.rejects(
      () => collect(batch.results(handle, ["row-1"])),
      /has not finished \(JOB_STATE_PENDING\)/,
    );
    t.emu.step(bare(handle), 2);
  });

  it("finds the batches labelled with a name, and only those", async () => {
    const { batch } = client(t.emu);
    const mine = await batch.submit(items("find me"), label(1, "findjob"));
    const other = await batch.submit(items("not me"), label(2, "findjob"));
    const found = await batch.find!(label(1, "findjob"), {
      after: new Date(0).toISOString(),
      requests: 1,
    });
    assert.deepEqual(found, [{ handle: { id: mine.id }, exact: true }]);
    assert.notEqual(mine.id, other.id);
    assert.deepEqual(
      await batch.find!(label(9, "findjob"), { after: new Date(0).toISOString(), requests: 1 }),
      [],
    );
    t.emu.step(undefined, 2);
  });

  it("stops on a wrong key (fatal, without the key in the message) and retries 429 and 5xx", async () => {
    const wrong = "AIza-wrong-000000";
    const { batch } = client(t.emu, { apiKey: wrong });
    await assert.rejects(() => batch.submit(items("x"), label(8)), isFatal(wrong));
    await assert.rejects(() => batch.status({ id: "batches/anything" }), isFatal(wrong));
    await assert.rejects(
      () => batch.find!(label(8), { after: new Date(0).toISOString(), requests: 1 }),
      isFatal(wrong),
    );

    const good = client(t.emu, { inlineMaxBytes: 0 }).batch;
    t.emu.faults.add({
      match: { path: ":batchGenerateContent", first: 1 },
      action: { kind: "status", status: 429 },
    });
    await assert.rejects(
      () => good.submit(items("x"), label(8)),
      (e: unknown) => e instanceof LoomProviderError && e.retryable && e.status === 429,
    );
    const handle = await good.submit(items("x"), label(8));
    t.emu.step(bare(handle), 2);
    // The results download (a raw GET, not the SDK) maps its failures the same way.
    t.emu.faults.add({
      match: { path: ":download", first: 1 },
      action: { kind: "status", status: 503 },
    });
    await assert.rejects(
      () => collect(good.results(handle, ["row-1"])),
      (e: unknown) => e instanceof LoomProviderError && e.retryable && e.status === 503,
    );
    assert.deepEqual(byId(await collect(good.results(handle, ["row-1"]))), {
      "row-1": `[${MODEL}] x`,
    });
    await assert.rejects(
      () => collect(client(t.emu, { apiKey: wrong }).batch.results(handle, ["row-1"])),
      isFatal(wrong),
    );
  });
});

describe("google batch API: a batch that fails validation", () => {
  const t = useEmulator({
    provider: "gemini",
    schedule: { advance: "instant" },
    batches: [{ end: "fail" }],
  });

  it("reports the reason from the operation's error, which the SDK drops", async () => {
    const { ai, batch } = client(t.emu);
    const handle = await batch.submit(items("never", "ran"), label(1, "failjob"));
    assert.equal(
      (await ai.batches.get({ name: handle.id })).error,
      undefined,
      "the SDK still drops it",
    );
    const status = await batch.status(handle);
    assert.deepEqual([status.state, status.providerState], ["failed", "JOB_STATE_FAILED"]);
    assert.equal(
      status.message,
      "INVALID_ARGUMENT: Batch failed: the input could not be validated.",
    );
    const gets = t.emu.log.find(/^GET \/v1beta\/batches\//);
    assert.ok(
      gets.every((g) => g.headers["x-goog-api-key"] !== t.emu.apiKey),
      "the key is masked in the log, and sent as a header",
    );
  });

  it("gives every row of the failed batch the reason, through fetch", async () => {
    const dir = tempDir();
    writeFileSync(join(dir, "in.csv"), "id,text\n1,one\n2,two\n");
    writeFileSync(
      join(dir, "job.yaml"),
      `dataset: { path: in.csv }\nprompt: { column: text }\nprovider: google\nprovider_options: { base_url: "${t.emu.baseURL}" }\n` +
        `model: ${MODEL}\nparams: { max_tokens: 50 }\noutput: { path: out.csv }\n`,
    );
    const opts = { env: { LOOM_HOME: join(dir, "home"), GOOGLE_API_KEY: t.emu.apiKey }, cwd: dir };
    const job = (await runJob(await loadJob({ file: join(dir, "job.yaml"), cwd: dir }), opts)).job!;
    const [fetched] = await fetchJobs([job.id], { ...opts, wait: true, pollMs: 1 });
    assert.ok(!("error" in fetched));
    assert.deepEqual(fetched.record.shards.map((s) => [s.state, s.message]), [[
      "failed",
      "INVALID_ARGUMENT: Batch failed: the input could not be validated.",
    ]]);
    const rows = parse(readFileSync(join(dir, "out.csv")), { columns: true }) as Record<
      string,
      string
    >[];
    assert.deepEqual(
      rows.map((r) => r.llm_error),
      Array(2).fill(
        "the batch failed: INVALID_ARGUMENT: Batch failed: the input could not be validated.",
      ),
    );
  });
});

describe("google batch API: an expiring batch", () => {
  const t = useEmulator({
    provider: "gemini",
    schedule: { advance: "manual" },
    batches: [{ end: "expire" }],
  });

  it("reports status expired and every request as expired", async () => {
    const { batch } = client(t.emu);
    const handle = await batch.submit(items("never", "answered", "at all"), label(1, "expjob"));
    t.emu.step(bare(handle), 2);
    assert.deepEqual(await batch.status(handle), {
      state: "expired",
      providerState: "JOB_STATE_EXPIRED",
    });
    const outcomes = await collect(batch.results(handle, ["row-1", "row-2", "row-3"]));
    assert.deepEqual(
      outcomes.map((o) => ("kind" in o ? [o.customId, o.kind] : [o.customId, "result"])),
      [
        ["row-1", "expired"],
        ["row-2", "expired"],
        ["row-3", "expired"],
      ],
    );
  });
});

describe("google batch API: a corrupt results file", () => {
  const t = useEmulator({
    provider: "gemini",
    schedule: { advance: "instant" },
    batches: [{ malformedLines: 2, blankLines: 1 }],
  });

  it("yields the good lines, skips blank ones, then throws naming the file and the bad lines", async () => {
    const { batch } = client(t.emu, { inlineMaxBytes: 0 });
    const handle = await batch.submit(items("one", "two", "three", "four"), label(1, "badjob"));
    assert.equal((await batch.status(handle)).state, "completed");
    const outcomes: BatchOutcome[] = [];
    await assert.rejects(async () => {
      for await (const o of batch.results(handle, ["row-1", "row-2", "row-3", "row-4"])) {
        outcomes.push(o);
      }
    }, (e: unknown) => {
      assert.ok(e instanceof LoomIncompleteResultsError, String(e));
      assert.match(
        e.message,
        /results file files\/batch-[a-z0-9]+ of batch batches\/\S+ has unreadable line\(s\): 4, 5$/,
      );
      return true;
    });
    assert.deepEqual(outcomes.map((o) => o.customId).sort(), ["row-1", "row-2", "row-3", "row-4"]);
  });
});

describe("google batch helpers", () => {
  it("maps Gemini's job states onto Loom's", () => {
    const states = [
      "PENDING",
      "QUEUED",
      "RUNNING",
      "CANCELLING",
      "SUCCEEDED",
      "PARTIALLY_SUCCEEDED",
      "FAILED",
      "CANCELLED",
      "EXPIRED",
      "UNSPECIFIED",
    ];
    assert.deepEqual(states.map((s) => batchState(`JOB_STATE_${s}`)), [
      "validating",
      "validating",
      "in_progress",
      "in_progress",
      "completed",
      "completed",
      "failed",
      "cancelled",
      "expired",
      "in_progress",
    ]);
    assert.equal(batchState("BATCH_STATE_SUCCEEDED"), "completed");
    assert.equal(batchState(undefined), "in_progress");
  });

  it("words per-request errors as code, status and message", () => {
    assert.equal(
      statusText({ code: 429, status: "RESOURCE_EXHAUSTED", message: "slow down" }),
      "429 RESOURCE_EXHAUSTED: slow down",
    );
    assert.equal(statusText({ code: 500, message: "boom" }), "500: boom");
    // A google.rpc.Status: the numeric google.rpc.Code by its name.
    assert.equal(statusText({ code: 3, message: "bad request" }), "INVALID_ARGUMENT: bad request");
    assert.equal(statusText({}), "unknown error");
  });

  it("parses answers like the sync path: truncation, refusals, and a blocked prompt as the row's own failure", () => {
    assert.deepEqual(
      answerResult({
        candidates: [{
          content: { parts: [{ text: "thinking", thought: true }, { text: "cut" }] },
          finishReason: "MAX_TOKENS",
        }],
      }),
      {
        text: "cut",
        finishReason: "MAX_TOKENS",
        truncated: true,
        usage: { inputTokens: undefined, outputTokens: undefined },
      },
    );
    assert.equal(
      answerResult({ candidates: [{ finishReason: "SAFETY" }] }).refusal,
      "blocked (SAFETY)",
    );
    assert.throws(
      () => answerResult({ promptFeedback: { blockReason: "PROHIBITED_CONTENT" } }),
      (e: unknown) =>
        e instanceof LoomProviderError && !e.fatal && !e.retryable &&
        /blocked \(PROHIBITED_CONTENT\)/.test(e.message),
    );
  });

  it("puts request-level config fields at the top of the wire form", () => {
    const wire = wireRequest({
      model: "m",
      messages: [{ role: "user", content: "u" }, { role: "assistant", content: "a" }],
      params: {
        safety_settings: [{ category: "HARM_CATEGORY_HATE_SPEECH", threshold: "BLOCK_NONE" }],
        cached_content: "abc",
        temperature: 1,
      },
    });
    assert.deepEqual(wire, {
      contents: [{ role: "user", parts: [{ text: "u" }] }, {
        role: "model",
        parts: [{ text: "a" }],
      }],
      safetySettings: [{ category: "HARM_CATEGORY_HATE_SPEECH", threshold: "BLOCK_NONE" }],
      cachedContent: "cachedContents/abc",
      generationConfig: { temperature: 1 },
    });
  });
});
