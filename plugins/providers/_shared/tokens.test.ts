/**
 * Input-token counting (`countTokens`) through each provider's SDK against the emulator: the count
 * covers the system prompt and every message, the counting request carries what a sync call
 * sends (model, system prompt, messages, answer schema), a refused key stops the run, and a 429
 * is worth a retry. Providers without counting say why; echo counts offline.
 *
 * The emulator counts one token per whitespace-separated word of every input text (system prompt
 * and messages; not the schema), so the expected numbers are computed here from the texts alone.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { LoomProviderError } from "../../../core/base/errors.ts";
import type { PluginDefinition } from "../../../core/plugins/plugin.ts";
import type { GenerateRequest, ProviderV1 } from "../../../core/spec/provider.ts";
import type { Emulator } from "../../../emulator/mod.ts";
import anthropic from "../anthropic/mod.ts";
import echo, { createEchoProvider } from "../echo/mod.ts";
import google from "../google/mod.ts";
import openaiCompatible from "../openai-compatible/mod.ts";
import openai from "../openai/mod.ts";
import openrouter from "../openrouter/mod.ts";
import { useEmulator } from "./test-emulator.ts";

/** Words of a text: the emulator's documented count, computed independently of it. */
const words = (text: string) => text.split(/\s+/).filter(Boolean).length;

const SYSTEM = "You are a terse assistant. Answer in one sentence.";
const USER = "Summarize: the quick brown fox jumps over the lazy dog.";
const SCHEMA = {
  title: "Summary",
  type: "object",
  properties: { summary: { type: "string" } },
  required: ["summary"],
  additionalProperties: false,
};

type Body = Record<string, unknown>;

/** A provider under test: its plugin, emulator, model, endpoints, and how it sends the request. */
interface Case {
  readonly provider: string;
  readonly plugin: PluginDefinition<"provider">;
  readonly holder: { emu: Emulator };
  readonly model: string;
  /** The counting endpoint, as `RequestLog.find` takes it. */
  readonly countPath: string;
  /** The sync endpoint. */
  readonly generatePath: string;
  /**
   * Asserts that the counting body carries what the sync body sent: the same model, system prompt,
   * messages and answer schema, in the counting endpoint's own shape.
   */
  readonly sameRequest: (count: Body, sent: Body) => void;
}

const CASES: readonly Case[] = [
  {
    provider: "openai",
    plugin: openai,
    holder: useEmulator({ provider: "openai" }),
    model: "gpt-4o-mini",
    countPath: "POST /v1/responses/input_tokens",
    generatePath: "POST /v1/chat/completions",
    sameRequest(count, sent) {
      assert.equal(count.model, sent.model);
      // The system prompt is the first message of both, with the role Chat Completions gets.
      assert.deepEqual(count.input, sent.messages);
      assert.equal((count.input as Body[])[0].role, "system");
      const format = sent.response_format as { type: string; json_schema?: Body } | undefined;
      if (format) {
        assert.deepEqual((count.text as Body).format, { type: format.type, ...format.json_schema });
      } else assert.equal(count.text, undefined);
      for (
        const refused of ["max_completion_tokens", "max_output_tokens", "temperature", "messages"]
      ) {
        assert.equal(count[refused], undefined, `${refused} is not sent to input_tokens`);
      }
    },
  },
  {
    provider: "anthropic",
    plugin: anthropic,
    holder: useEmulator({ provider: "anthropic" }),
    model: "claude-sonnet-5-5",
    countPath: "POST /v1/messages/count_tokens",
    generatePath: "POST /v1/messages",
    sameRequest(count, sent) {
      const { max_tokens, stop_sequences, ...rest } = sent;
      assert.ok(max_tokens !== undefined, "the sync call sends max_tokens");
      assert.equal(stop_sequences, undefined);
      // Everything but max_tokens, the system prompt in `system` and the schema in `output_config`.
      assert.deepEqual(count, rest);
      assert.equal(count.system, SYSTEM);
    },
  },
  {
    provider: "google",
    plugin: google,
    holder: useEmulator({ provider: "gemini" }),
    model: "gemini-2.5-flash",
    countPath: ":countTokens",
    generatePath: ":generateContent",
    sameRequest(count, sent) {
      // The whole generate request, as `generateContentRequest`; no top-level contents beside it.
      assert.deepEqual(Object.keys(count), ["generateContentRequest"]);
      assert.deepEqual(count.generateContentRequest, { model: "models/gemini-2.5-flash", ...sent });
      assert.deepEqual((count.generateContentRequest as Body).systemInstruction, {
        parts: [{ text: SYSTEM }],
        role: "user",
      });
    },
  },
];

function request(c: Case, extra: Partial<GenerateRequest> = {}): GenerateRequest {
  return {
    model: c.model,
    system: SYSTEM,
    messages: [{ role: "user", content: USER }],
    params: { max_tokens: 64 },
    ...extra,
  };
}

function create(c: Case, apiKey = c.holder.emu.apiKey): Promise<ProviderV1> {
  return Promise.resolve(
    c.plugin.create({ apiKey, base_url: c.holder.emu.baseURL }, { env: {}, home: "/nonexistent" }),
  );
}

/** The body of the one call the emulator logged at `path`. */
function onlyBody(c: Case, path: string): Body {
  const calls = c.holder.emu.log.find(path);
  assert.equal(calls.length, 1, `one call to ${path}`);
  return calls[0].body as Body;
}

for (const c of CASES) {
  describe(`countTokens: ${c.provider}`, () => {
    it("advertises counting", async () => {
      const p = await create(c);
      assert.equal(p.capabilities.tokens, true);
      assert.equal(typeof p.countTokens, "function");
      assert.equal(p.noTokensReason, undefined);
    });

    it("counts the system prompt and the user message", async () => {
      const p = await create(c);
      assert.equal(await p.countTokens!(request(c)), words(SYSTEM) + words(USER));
      assert.equal(c.holder.emu.log.count(c.countPath), 1);
      assert.equal(c.holder.emu.log.count(c.generatePath), 0, "counting generates nothing");
    });

    it("counts every turn of a conversation, and a request without a system prompt", async () => {
      const p = await create(c);
      const messages = [
        { role: "user" as const, content: "First question here." },
        { role: "assistant" as const, content: "A two-part answer, given before." },
        { role: "user" as const, content: USER },
      ];
      const expected = messages.reduce((sum, m) => sum + words(m.content), 0);
      assert.equal(await p.countTokens!(request(c, { messages })), words(SYSTEM) + expected);
      assert.equal(await p.countTokens!(request(c, { messages, system: undefined })), expected);
    });

    it("sends what the sync call sends: model, system prompt, messages", async () => {
      const p = await create(c);
      const r = request(c);
      const counted = await p.countTokens!(r);
      const answered = await p.generate(r);
      assert.equal(
        counted,
        answered.usage?.inputTokens,
        "the count matches the usage of the call it stands for",
      );
      c.sameRequest(onlyBody(c, c.countPath), onlyBody(c, c.generatePath));
    });

    it("sends the answer schema where the sync call does", async () => {
      const p = await create(c);
      const r = request(c, { responseSchema: SCHEMA });
      // The emulator counts only the texts, not the schema.
      assert.equal(await p.countTokens!(r), words(SYSTEM) + words(USER));
      await p.generate(r);
      c.sameRequest(onlyBody(c, c.countPath), onlyBody(c, c.generatePath));
    });

    it("stops on a wrong key, without the key in the message", async () => {
      const key = "sk-wrong-0123456789abcdef";
      const p = await create(c, key);
      await assert.rejects(
        () => p.countTokens!(request(c)),
        (e: unknown) => {
          assert.ok(e instanceof LoomProviderError, String(e));
          assert.equal(e.fatal, true, e.message);
          assert.ok(e.message.startsWith(`${c.provider}: `), e.message);
          assert.ok(!e.message.includes(key), e.message);
          return true;
        },
      );
    });

    it("makes a 429 and a 503 retryable", async () => {
      const p = await create(c);
      for (const status of [429, 503]) {
        // Added one at a time: a rule counts every request it matches against its `first`.
        c.holder.emu.faults.add({
          match: { path: c.countPath.replace(/^POST /, ""), first: 1 },
          action: { kind: "status", status },
        });
        await assert.rejects(
          () => p.countTokens!(request(c)),
          (e: unknown) => {
            assert.ok(e instanceof LoomProviderError, String(e));
            assert.deepEqual([e.status, e.retryable, e.fatal], [status, true, false], e.message);
            return true;
          },
        );
      }
      // The SDK does not retry on its own: Loom does.
      assert.deepEqual(c.holder.emu.log.find(c.countPath).map((call) => call.status), [429, 503]);
      assert.equal(await p.countTokens!(request(c)), words(SYSTEM) + words(USER));
    });

    it("passes the abort signal to the SDK", async () => {
      const p = await create(c);
      const controller = new AbortController();
      controller.abort(new Error("interrupted"));
      await assert.rejects(() => p.countTokens!(request(c), { signal: controller.signal }));
      assert.equal(c.holder.emu.log.count(c.countPath), 0);
    });
  });
}

describe("countTokens: providers without counting", () => {
  for (
    const [name, plugin] of [["openrouter", openrouter], [
      "openai-compatible",
      openaiCompatible,
    ]] as const
  ) {
    it(`${name} has no countTokens and says why`, async () => {
      const p = await plugin.create({ apiKey: "k", base_url: "http://127.0.0.1:9/v1" }, {
        env: {},
        home: "/nonexistent",
      });
      assert.equal(p.capabilities.tokens, false);
      assert.equal(p.countTokens, undefined);
      assert.match(
        p.noTokensReason ?? "",
        /no (standard )?counting endpoint.*use a job with provider openai, anthropic or google/,
      );
    });
  }
});

describe("countTokens: echo", () => {
  const r: GenerateRequest = {
    model: "echo-1",
    system: SYSTEM,
    messages: [{ role: "user", content: "Hi." }, { role: "assistant", content: "Hello!" }, {
      role: "user",
      content: USER,
    }],
    params: {},
  };
  const expected = Math.ceil((SYSTEM + "Hi." + "Hello!" + USER).length / 4);

  it("counts offline, 4 characters a token over the system prompt and the messages", async () => {
    const p = createEchoProvider();
    assert.equal(p.capabilities.tokens, true);
    assert.equal(p.noTokensReason, undefined);
    assert.equal(await p.countTokens!(r), expected);
    assert.equal(
      await p.countTokens!({ ...r, system: undefined }),
      Math.ceil(("Hi." + "Hello!" + USER).length / 4),
    );
    assert.equal(
      (await p.generate(r)).usage?.inputTokens,
      expected,
      "the same estimate as the answer's usage",
    );
  });

  it("counts through the plugin too, whatever fail_on says (nothing is generated)", async () => {
    const p = await echo.create({ fail_on: "fox" }, { env: {}, home: "/nonexistent" });
    assert.equal(p.capabilities.tokens, true);
    assert.equal(await p.countTokens!(r), expected);
  });
});
