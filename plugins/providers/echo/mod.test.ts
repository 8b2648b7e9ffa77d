import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { LoomProviderError, LoomUsageError } from "../../../core/base/errors.ts";
import type { BatchUpload } from "../../../core/spec/provider.ts";
import { tempDir } from "../../../core/test-support/temp.ts";
import echo, { createEchoProvider } from "./mod.ts";

const request = {
  model: "echo-1",
  system: "be brief",
  messages: [{ role: "user" as const, content: "Summarize: it rains." }],
  params: { temperature: 0 },
};
const context = { env: {}, home: "/nonexistent" };

describe("echo provider", () => {
  it("answers with the rendered prompt, deterministically, with usage", async () => {
    const p = createEchoProvider();
    const a = await p.generate(request);
    const b = await p.generate(request);
    assert.equal(a.text, "Summarize: it rains.");
    assert.deepEqual(a, b);
    assert.equal(a.finishReason, "stop");
    assert.ok((a.usage?.inputTokens ?? 0) > 0 && (a.usage?.outputTokens ?? 0) > 0);
  });

  it("can answer with the whole request as canonical JSON", async () => {
    const p = createEchoProvider({ reply: "request" });
    const { text } = await p.generate(request);
    assert.deepEqual(JSON.parse(text), request);
    assert.equal(text, JSON.stringify(JSON.parse(text)));
  });

  it("fails rows whose prompt contains fail_on, as a non-retryable provider error", async () => {
    const p = createEchoProvider({ fail_on: "rains" });
    await assert.rejects(
      () => p.generate(request),
      (e: unknown) => e instanceof LoomProviderError && !e.retryable && !e.fatal,
    );
  });

  it("honours abort during its latency", async () => {
    const p = createEchoProvider({ latency_ms: 10_000 });
    const controller = new AbortController();
    const pending = p.generate(request, { signal: controller.signal });
    controller.abort(new Error("stop"));
    await assert.rejects(pending);
  });

  it("rejects unknown or malformed options when created", async () => {
    assert.throws(() => echo.create({ replay: "prompt" }, context), LoomUsageError);
    assert.throws(() => echo.create({ reply: "shout" }, context), LoomUsageError);
    assert.throws(() => echo.create({ latency_ms: -1 }, context), LoomUsageError);
    const p = await echo.create({ apiKey: "ignored" }, context);
    assert.equal(p.specificationVersion, "loom.provider.v1");
  });
});

describe("echo cache identity", () => {
  it("changes with the options that change the answer", () => {
    const ids = [
      createEchoProvider(),
      createEchoProvider({ reply: "request" }),
      createEchoProvider({ fail_on: "x" }),
    ]
      .map((p) => JSON.stringify(p.cacheIdentity));
    assert.equal(new Set(ids).size, 3);
    assert.equal(
      JSON.stringify(createEchoProvider({ latency_ms: 5 }).cacheIdentity),
      ids[0],
      "latency does not",
    );
  });
});

describe("echo batches", () => {
  const items = ["one", "two", "three"].map((content, i) => ({
    customId: `row-${i}`,
    request: { ...request, messages: [{ role: "user" as const, content }] },
  }));
  const label = { job: "20261204-aaaaaa", shard: 0, name: "loom-20261204-aaaaaa-0" };

  it("keeps the requests as an upload, answers them from it, and deletes it when asked", async () => {
    const home = tempDir();
    const batch = createEchoProvider({}, home).batch!;
    const uploads: BatchUpload[] = [];
    const handle = await batch.submit(items, label, {
      onUploaded: async (upload) => void uploads.push(upload),
    });
    assert.equal(uploads.length, 1);
    assert.deepEqual((await batch.status(handle)).counts, { total: 3, succeeded: 3 });
    const answers = [];
    for await (const o of batch.results(handle, [])) answers.push("result" in o && o.result.text);
    assert.deepEqual(answers, ["one", "two", "three"]);

    // A second attempt given the upload sends the same file again, uploading nothing.
    const again = await batch.submit(items, label, {
      upload: uploads[0],
      onUploaded: async (upload) => void uploads.push(upload),
    });
    assert.equal(uploads.length, 1);
    assert.notEqual(again.id, handle.id);

    await batch.deleteUpload!(uploads[0]);
    await batch.deleteUpload!(uploads[0]); // gone already is success
    assert.deepEqual(readdirSync(join(home, "echo-uploads")), []);
    await assert.rejects(
      async () => {
        for await (const _ of batch.results(handle, [])) { /* reads the deleted upload */ }
      },
      (e: unknown) => e instanceof LoomProviderError && e.fatal && /deleted/.test(e.message),
    );
    assert.equal((await batch.find!(label, { after: "", requests: 3 }))?.length, 2);
  });

  it("answers each line of its upload, and refuses a damaged line by its own error", async () => {
    const home = tempDir();
    const batch = createEchoProvider({}, home).batch!;
    const many = Array.from({ length: 1000 }, (_, i) => ({
      customId: `row-${i}`,
      request: { ...request, messages: [{ role: "user" as const, content: `q ${i}, "é"` }] },
    }));
    const handle = await batch.submit(many, label);
    const texts = async () => {
      const got: string[] = [];
      for await (const o of batch.results(handle, [])) got.push("result" in o ? o.result.text : "");
      return got;
    };
    assert.deepEqual(await texts(), many.map((item) => item.request.messages[0].content));
    // Two lines cut so that, joined by a comma, they still make two JSON values: `1,[2` and `3]`.
    const folder = join(home, "echo-uploads");
    const file = join(folder, readdirSync(folder)[0]);
    const lines = readFileSync(file, "utf8").split("\n");
    lines.splice(500, 2, "1,[2", "3]");
    writeFileSync(file, lines.join("\n"));
    await assert.rejects(texts(), (e: unknown) => e instanceof SyntaxError);
  });
});
