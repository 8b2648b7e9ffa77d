import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, it } from "node:test";
import { createMemoryStorage } from "../../plugins/storage/memory/mod.ts";
import { cacheKey, CommitPacing, ResponseCache } from "./cache.ts";
import { canonicalJson } from "../base/canonical-json.ts";
import type { GenerateRequest } from "../spec/provider.ts";

const base: GenerateRequest = {
  model: "m",
  system: "be brief",
  messages: [{ role: "user", content: "hello" }],
  params: { temperature: 0, max_tokens: 10 },
};

describe("cache key", () => {
  it("is a stable SHA-256 hex digest, independent of key order", () => {
    const key = cacheKey("echo", base);
    assert.match(key, /^[0-9a-f]{64}$/);
    assert.equal(key, cacheKey("echo", { ...base, params: { max_tokens: 10, temperature: 0 } }));
  });

  it("is the SHA-256 of the request's canonical JSON, as it always was (older entries still hit)", () => {
    const material = canonicalJson({
      v: 1,
      provider: "echo",
      identity: {},
      model: base.model,
      system: base.system,
      messages: base.messages,
      params: base.params,
    });
    const expected = createHash("sha256").update(material).digest("hex");
    assert.equal(cacheKey("echo", base), expected);
    const unicode = { ...base, messages: [{ role: "user" as const, content: "Zoë — 東京 🚀" }] };
    assert.equal(
      cacheKey("echo", unicode),
      createHash("sha256").update(canonicalJson({
        v: 1,
        provider: "echo",
        identity: {},
        model: "m",
        system: base.system,
        messages: unicode.messages,
        params: base.params,
      })).digest("hex"),
      "UTF-8 of the text, as createHash hashed it",
    );
  });

  it("keeps the keys computed before it was written straight (existing caches still hit)", () => {
    // Computed with the sorted-copy canonical JSON that keyed every cache before.
    const pinned: Array<[string, GenerateRequest, Record<string, string>?]> = [
      ["echo", { model: "m", messages: [{ role: "user", content: "hello" }], params: {} }],
      ["echo", {
        model: "m",
        system: "be brief",
        messages: [{ role: "user", content: 'Zoë — 東京 🚀 "q" \\ \n\u0001\ud800' }],
        params: { temperature: 0, max_tokens: 10 },
      }, { reply: "prompt" }],
      ["openai", {
        model: "gpt-4o-mini",
        messages: [
          { role: "user", content: "a" },
          { role: "assistant", content: "b" },
          { role: "user", content: "c" },
        ],
        params: {
          top_p: 0.5,
          stop: ["x", "y"],
          nested: { b: 1, a: [null, true, { d: -0, c: 1e21 }] },
          extra: undefined,
        },
        responseSchema: {
          type: "object",
          properties: { z: { type: "string" }, a: { type: "number" } },
          required: ["z", "a"],
        },
      }, { baseURL: "http://127.0.0.1:1", api: "chat" }],
    ];
    assert.deepEqual(
      pinned.map(([provider, request, identity]) => cacheKey(provider, request, identity)),
      [
        "bb7b6cd789751ba89deb0627737e54add26c2ac189ed4040f2f27d6224cfb5be",
        "e531059b42796fc8186979c53ba1f9c5d5ba36bee2b5751f6c21e572dc6a4f1c",
        "b0de67e01931eabb2597fc94274c513ad72cfe0f73ee9d7381fdd7f541e29b49",
      ],
    );
  });

  it("is the SHA-256 of the sorted-copy canonical JSON for requests of odd shapes too", () => {
    const sortedCopy = (v: unknown): unknown => {
      if (Array.isArray(v)) return v.map((x) => (x === undefined ? null : sortedCopy(x)));
      if (v === null || typeof v !== "object") return v;
      const out: Record<string, unknown> = {};
      for (const k of Object.keys(v).sort()) {
        const x = (v as Record<string, unknown>)[k];
        if (x !== undefined) out[k] = sortedCopy(x);
      }
      return out;
    };
    const reference = (request: GenerateRequest, identity: Record<string, string> = {}) =>
      createHash("sha256").update(JSON.stringify(sortedCopy({
        v: 1,
        provider: "p",
        identity,
        model: request.model,
        system: request.system,
        messages: request.messages,
        params: request.params,
        ...(request.responseSchema ? { responseSchema: request.responseSchema } : {}),
      }))).digest("hex");
    class Message {
      role = "user";
      content = "x";
    }
    const odd = [
      { role: "user", content: "x", name: "extra" },
      { content: "x" },
      { role: "user", content: 5 },
      Object.assign(Object.create({ inherited: 1 }), { role: "user", content: "x" }),
      new Message(),
      { role: "system", content: "x", tool: undefined },
      null,
    ];
    for (const message of odd) {
      const request = { ...base, messages: [base.messages[0], message] } as GenerateRequest;
      assert.equal(cacheKey("p", request), reference(request), JSON.stringify(message));
    }
    const noMessages = { ...base, messages: undefined } as unknown as GenerateRequest;
    assert.equal(cacheKey("p", noMessages), reference(noMessages));
    const identity = { b: "2", a: "1" };
    assert.equal(cacheKey("p", base, identity), reference(base, identity));
    assert.equal(cacheKey("p", base, identity), reference(base, identity), "written once, kept");
  });

  it("changes with everything that is sent, and with the provider and endpoint", () => {
    const key = cacheKey("echo", base);
    const variants: Array<[string, string]> = [
      ["provider", cacheKey("openai", base)],
      ["model", cacheKey("echo", { ...base, model: "m2" })],
      ["system", cacheKey("echo", { ...base, system: "be long" })],
      ["no system", cacheKey("echo", { ...base, system: undefined })],
      ["prompt", cacheKey("echo", { ...base, messages: [{ role: "user", content: "hello!" }] })],
      ["param", cacheKey("echo", { ...base, params: { temperature: 0.5, max_tokens: 10 } })],
      ["identity", cacheKey("echo", base, { baseURL: "http://127.0.0.1:1" })],
    ];
    for (const [what, other] of variants) assert.notEqual(other, key, what);
    assert.equal(new Set(variants.map(([, k]) => k)).size, variants.length);
  });
});

describe("ResponseCache", () => {
  it("round-trips answers and treats corrupt entries as misses", async () => {
    const storage = createMemoryStorage();
    const cache = new ResponseCache(storage.cache);
    const key = cacheKey("echo", base);
    assert.equal(await cache.get(key), undefined);
    await cache.set(key, {
      text: "hi",
      finishReason: "stop",
      usage: { inputTokens: 1, outputTokens: 1 },
    });
    assert.deepEqual(await cache.get(key), {
      text: "hi",
      finishReason: "stop",
      usage: { inputTokens: 1, outputTokens: 1 },
    });
    assert.equal((await storage.cache.stats()).entries, 1);
    await storage.cache.set(key, "{not json");
    assert.equal(await cache.get(key), undefined);
    await storage.cache.set(key, '{"text": 5}');
    assert.equal(await cache.get(key), undefined);
  });
});

describe("CommitPacing", () => {
  it("waits for commits at up to its rate, bursts included, and not beyond", () => {
    let now = 0;
    const pacing = new CommitPacing({ perSecond: 100, burst: 5, now: () => now });
    const waits = (n: number) =>
      Array.from({ length: n }, () => pacing.wait()).filter(Boolean).length;
    assert.equal(waits(5), 5, "a burst of 5 at once");
    now += 50; // 5 more earned in 50 ms
    assert.equal(waits(5), 5);
    assert.equal(waits(5), 0, "none beyond the burst");
    now += 1_000; // a quiet second: back to a full burst, not more
    assert.equal(waits(10), 5);
    now += 1_000;
    for (let i = 0; i < 20; i++) {
      now += 10; // one answer every 10 ms: exactly the rate, every one waited for
      assert.equal(pacing.wait(), true);
    }
  });

  it("waits for none while answers keep coming faster than its rate", () => {
    // At echo's or a local server's pace no row should wait: a row held for its commit holds the
    // ordered output, and makes the store commit in small groups.
    let now = 0;
    const pacing = new CommitPacing({ perSecond: 100, burst: 5, now: () => now });
    let waited = 0;
    for (let i = 0; i < 2_000; i++) {
      now += 1; // 1,000 answers a second, ten times the rate
      if (pacing.wait()) waited++;
    }
    assert.ok(waited <= 5, `only the first burst waited (${waited} did)`);
    now += 2_000; // quiet long enough to pay back the debt: a full burst again
    assert.equal(Array.from({ length: 10 }, () => pacing.wait()).filter(Boolean).length, 5);
  });
});
