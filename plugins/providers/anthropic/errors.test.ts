/**
 * Anthropic API errors as Loom shows them, from the official SDK against the emulator: the API's
 * own message with the status and error type, never the SDK's raw JSON body.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import Anthropic from "@anthropic-ai/sdk";
import { LoomProviderError } from "../../../core/base/errors.ts";
import { useEmulator } from "../_shared/test-emulator.ts";
import { toProviderError } from "./errors.ts";

const t = useEmulator({ provider: "anthropic" });

/** The error one Messages call ends with, as Loom's provider reports it. */
async function failure(apiKey = t.emu.apiKey): Promise<LoomProviderError> {
  const client = new Anthropic({ apiKey, baseURL: t.emu.baseURL, maxRetries: 0 });
  try {
    await client.messages.create({
      model: "claude-sonnet-4-5",
      max_tokens: 10,
      messages: [{ role: "user", content: "hi" }],
    });
  } catch (error) {
    const converted = toProviderError(error, "anthropic");
    assert.ok(converted instanceof LoomProviderError, String(converted));
    return converted;
  }
  throw new Error("the call should have failed");
}

describe("anthropic error messages", () => {
  it("shows the API's message with the status and type, not the JSON body", async () => {
    t.emu.faults.add({
      action: { kind: "status", status: 400, message: "max_tokens: Field required" },
    });
    const error = await failure();
    assert.equal(error.message, "anthropic: 400 invalid_request_error: max_tokens: Field required");
    assert.equal(error.status, 400);
  });

  it("keeps the classification: a wrong key stops the run, overload is retried, a long prompt fails its row", async () => {
    const auth = await failure("wrong-key");
    assert.equal(
      auth.message,
      "anthropic: 401 authentication_error: invalid x-api-key (check the API key)",
    );
    assert.ok(auth.fatal);
    t.emu.faults.add({ match: { first: 1 }, action: { kind: "status", status: 529 } });
    const overloaded = await failure();
    assert.match(overloaded.message, /^anthropic: 529 overloaded_error: [^{}]+$/);
    assert.ok(overloaded.retryable);
    t.emu.faults.add({
      match: { first: 1 },
      action: {
        kind: "status",
        status: 400,
        message: "prompt is too long: 210000 tokens > 200000 maximum",
      },
    });
    const long = await failure();
    assert.equal(
      long.message,
      "anthropic: 400 invalid_request_error: prompt is too long: 210000 tokens > 200000 maximum",
    );
    assert.ok(!long.fatal && !long.retryable);
  });

  it("falls back to the SDK's message when the body is not the API's error shape", async () => {
    t.emu.faults.add({ action: { kind: "status", status: 502, html: "<html>Bad gateway</html>" } });
    const error = await failure();
    assert.match(error.message, /^anthropic: 502 /);
    assert.ok(error.retryable);
  });
});
