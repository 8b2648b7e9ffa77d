import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { collectSecrets, createRedactor, redactError } from "./secrets.ts";

describe("secrets", () => {
  it("collects the API key and secret-looking environment variables, not ordinary ones", () => {
    const secrets = collectSecrets(
      { OPENAI_API_KEY: "sk-openai-123456", GEMINI_APIKEY: "g-123456789", HOME: "/root/long-path", GITHUB_TOKEN: "short" },
      "sk-flag-abcdef",
    );
    assert.deepEqual(secrets.sort(), ["g-123456789", "sk-flag-abcdef", "sk-openai-123456"]);
  });

  it("scrubs every occurrence, in messages and causes", () => {
    const redact = createRedactor(["sk-secret-1234"]);
    assert.equal(redact("401: key sk-secret-1234 rejected (sk-secret-1234)"), "401: key [redacted] rejected ([redacted])");
    const error = new Error("outer sk-secret-1234", { cause: new Error("inner sk-secret-1234") });
    redactError(error, redact);
    assert.equal(error.message, "outer [redacted]");
    assert.equal((error.cause as Error).message, "inner [redacted]");
    assert.ok(!error.stack?.includes("sk-secret-1234"));
  });
});
