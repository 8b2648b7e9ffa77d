import assert from "node:assert/strict";
import { describe, it } from "node:test";
import OpenAI from "openai";
import { startEmulator } from "./server.ts";

describe("emulator server", () => {
  it("logs in arrival order, records an answer the client never got as status 0, and stops pending delays", async () => {
    const emu = await startEmulator({ provider: "openai" });
    emu.faults.add({ match: { first: 1 }, action: { kind: "slow", delayMs: 60_000 } });
    const client = new OpenAI({
      apiKey: emu.apiKey,
      baseURL: emu.baseURL,
      maxRetries: 0,
      timeout: 200,
    });
    const ask = () =>
      client.chat.completions.create({
        model: "gpt-4o-mini",
        messages: [{ role: "user", content: "hi" }],
      });
    await assert.rejects(ask(), OpenAI.APIConnectionTimeoutError);
    await ask();
    assert.deepEqual(emu.log.entries.map((e) => e.seq), [1, 2]);
    assert.equal(emu.log.entries[1].status, 200);
    // The first request still waits on its 60 s delay; stopping must end it, not wait for it.
    const started = Date.now();
    await emu.stop();
    assert.ok(Date.now() - started < 30_000, "stop() does not wait for pending delays");
    assert.equal(emu.log.entries[0].status, 0);
    assert.equal(emu.log.entries[0].fault, "slow");
  });

  it("answers an unknown route and a wrong method with the provider's 404", async () => {
    const emu = await startEmulator({ provider: "openai" });
    try {
      const client = new OpenAI({ apiKey: emu.apiKey, baseURL: emu.baseURL, maxRetries: 0 });
      await assert.rejects(
        client.get("/no/such/route"),
        (e: unknown) => e instanceof OpenAI.NotFoundError,
      );
      await assert.rejects(
        client.delete("/chat/completions"),
        (e: unknown) => e instanceof OpenAI.NotFoundError,
      );
    } finally {
      await emu.stop();
    }
  });
});
