/**
 * A batch create goes out once per submit, even when the connection it went out on is reset after
 * the provider carried it out. Deno's fetch resends a request whose reused keep-alive connection
 * closes before the answer (found by the chaos harness: a second, billed batch under Deno only);
 * each provider sends its create on a connection of its own, so nothing can resend it.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { BatchItem, ProviderV1 } from "../../../core/spec/provider.ts";
import { tempDir } from "../../../core/test-support/temp.ts";
import { type ProviderName, startEmulator } from "../../../emulator/mod.ts";
import anthropicPlugin from "../anthropic/mod.ts";
import googlePlugin from "../google/mod.ts";
import openaiPlugin from "../openai/mod.ts";

const CASES = [
  { plugin: openaiPlugin, emulator: "openai", model: "gpt-4o-mini", create: /^\/v1\/batches$/ },
  {
    plugin: anthropicPlugin,
    emulator: "anthropic",
    model: "claude-sonnet-4-5",
    create: /^\/v1\/messages\/batches$/,
  },
  {
    plugin: googlePlugin,
    emulator: "gemini",
    model: "gemini-2.5-flash",
    create: /:batchGenerateContent$/,
  },
] as const;

for (const c of CASES) {
  describe(`${c.plugin.name}: a batch create whose connection is reset`, () => {
    it("is sent once per submit, never again by the HTTP layer", async () => {
      const emu = await startEmulator({
        provider: c.emulator as ProviderName,
        models: "any",
        faults: [{
          match: { method: "POST", path: c.create },
          action: { kind: "lost", answer: "reset" },
        }],
      });
      try {
        const provider: ProviderV1 = await c.plugin.create(
          { apiKey: emu.apiKey, base_url: emu.baseURL, timeout_ms: 5000 },
          { env: {}, home: tempDir() },
        );
        const items: BatchItem[] = [{
          customId: "r1",
          request: { model: c.model, messages: [{ role: "user", content: "hello" }], params: {} },
        }];
        for (let submit = 1; submit <= 3; submit++) {
          // Other calls first, so that the create may go out on a reused keep-alive connection.
          await provider.batch!.find?.(
            { job: "j", shard: 0, name: "loom-j-0" },
            { after: new Date(0).toISOString(), requests: 1 },
          );
          await assert.rejects(
            provider.batch!.submit(items, { job: "j", shard: submit, name: `loom-j-${submit}` }),
          );
          assert.equal(
            emu.log.entries.filter((e) => e.method === "POST" && c.create.test(e.path)).length,
            submit,
            `creates sent after ${submit} submits`,
          );
        }
      } finally {
        await emu.stop();
      }
    });
  });
}
