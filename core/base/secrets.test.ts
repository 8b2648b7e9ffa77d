import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { collectSecrets, createRedactor, redactError, urlPasswords } from "./secrets.ts";

describe("secrets", () => {
  it("collects the API key and secret-looking environment variables, not ordinary ones", () => {
    const secrets = collectSecrets(
      {
        OPENAI_API_KEY: "sk-openai-123456",
        GEMINI_APIKEY: "g-123456789",
        HOME: "/root/long-path",
        GITHUB_TOKEN: "short",
      },
      "sk-flag-abcdef",
    );
    assert.deepEqual(secrets.sort(), ["g-123456789", "sk-flag-abcdef", "sk-openai-123456"]);
  });

  it("scrubs every occurrence, in messages and causes", () => {
    const redact = createRedactor(["sk-secret-1234"]);
    assert.equal(
      redact("401: key sk-secret-1234 rejected (sk-secret-1234)"),
      "401: key [redacted] rejected ([redacted])",
    );
    const error = new Error("outer sk-secret-1234", { cause: new Error("inner sk-secret-1234") });
    redactError(error, redact);
    assert.equal(error.message, "outer [redacted]");
    assert.equal((error.cause as Error).message, "inner [redacted]");
    assert.ok(!error.stack?.includes("sk-secret-1234"));
  });

  it("redacts the key as it is sent: trimmed of the whitespace around it", () => {
    const secrets = collectSecrets(
      { OPENAI_API_KEY: "  sk-env-key-123456\n" },
      "sk-flag-abcdef\r\n",
    );
    const redact = createRedactor(secrets);
    assert.equal(
      redact("bad key sk-env-key-123456; also sk-flag-abcdef."),
      "bad key [redacted]; also [redacted].",
    );
  });

  it("redacts a short key that was sent, as a whole token only; short environment values stay out", () => {
    const redact = createRedactor(
      collectSecrets({ GITHUB_TOKEN: "1", OTHER_SECRET: "true" }, " k3y \n"),
    );
    assert.equal(
      redact("Incorrect API key provided: k3y. (key=k3y)"),
      "Incorrect API key provided: [redacted]. (key=[redacted])",
    );
    // Inside a longer word it is not the key: text around it is left alone.
    assert.equal(redact("k3yboard sk3y k3y_2 row 1 is true"), "k3yboard sk3y k3y_2 row 1 is true");
    const one = createRedactor(collectSecrets({}, "x"));
    assert.equal(one("key 'x' refused; x-ray max"), "key '[redacted]' refused; x-ray max");
  });

  it("redacts keys handed over separately (a key from a variable named by the job) at any length", () => {
    const redact = createRedactor(
      collectSecrets({ LOCAL_LLM: "ab12" }, undefined, "ab12 ", undefined),
    );
    assert.equal(redact("unknown key ab12"), "unknown key [redacted]");
    assert.deepEqual(collectSecrets({}, "   "), []);
  });
});

describe("the state store's password", () => {
  it("is a secret as written and decoded, however short", () => {
    assert.deepEqual(urlPasswords("postgres://loom:p%40ss@db/loom"), ["p%40ss", "p@ss"]);
    assert.deepEqual(urlPasswords("postgres://loom@db/loom"), []);
    assert.deepEqual(urlPasswords(undefined), []);
    const redact = createRedactor(
      collectSecrets({ LOOM_STATE: "postgres://loom:pw@db/loom" }),
    );
    assert.equal(redact("auth failed for pw at db"), "auth failed for [redacted] at db");
  });
});
