import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { LoomProviderError, LoomUsageError } from "../../../core/base/errors.ts";
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
