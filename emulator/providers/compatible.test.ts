import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import OpenAI from "openai";
import { type Emulator, startEmulator } from "../server.ts";

let emu: Emulator;
let client: OpenAI;
before(async () => {
  emu = await startEmulator({ provider: "compatible", models: ["llama3.1:8b"] });
  client = new OpenAI({ apiKey: "ollama", baseURL: emu.baseURL, maxRetries: 0 });
});
after(() => emu.stop());

const messages = [{ role: "user" as const, content: "one two three four five" }];

describe("compatible-server (Ollama-like) emulator through the openai SDK", () => {
  it("honours max_tokens and ignores max_completion_tokens and other fields it does not read", async () => {
    const capped = await client.chat.completions.create({
      model: "llama3.1:8b",
      messages,
      max_tokens: 2,
    });
    assert.deepEqual([capped.choices[0].message.content, capped.choices[0].finish_reason], [
      "[llama3.1:8b] one",
      "length",
    ]);
    assert.equal(capped.usage?.completion_tokens, 2);
    const ignored = await client.chat.completions.create({
      model: "llama3.1:8b",
      messages,
      max_completion_tokens: 2,
      n: 3,
      user: "u1",
    });
    assert.equal(ignored.choices.length, 1);
    assert.deepEqual([ignored.choices[0].message.content, ignored.choices[0].finish_reason], [
      "[llama3.1:8b] one two three four five",
      "stop",
    ]);
    assert.equal(ignored.system_fingerprint, "fp_ollama");
  });

  it("answers json_schema with a value of the schema, reading only json_schema.schema", async () => {
    const schema = { type: "object", properties: { gist: { type: "string" } }, required: ["gist"] };
    const completion = await client.chat.completions.create({
      model: "llama3.1:8b",
      messages,
      // No `name`, which OpenAI requires: such a server does not read it.
      response_format: {
        type: "json_schema",
        json_schema: { schema } as unknown as { name: string },
      },
    });
    assert.deepEqual(JSON.parse(completion.choices[0].message.content!), {
      gist: "[llama3.1:8b] one two three four five",
    });
  });

  it("refuses an unknown model (404), empty messages and a reasoning effort it does not know (400)", async () => {
    await assert.rejects(
      () => client.chat.completions.create({ model: "mistral", messages }),
      (e: unknown) => {
        assert.ok(e instanceof OpenAI.NotFoundError);
        assert.match(e.message, /model "mistral" not found/);
        return true;
      },
    );
    await assert.rejects(
      () => client.chat.completions.create({ model: "llama3.1:8b", messages: [] }),
      OpenAI.BadRequestError,
    );
    await assert.rejects(
      () =>
        client.chat.completions.create({
          model: "llama3.1:8b",
          messages,
          reasoning_effort: "minimal",
        }),
      (e: unknown) =>
        e instanceof OpenAI.BadRequestError && /invalid reasoning value/.test(e.message),
    );
  });
});
