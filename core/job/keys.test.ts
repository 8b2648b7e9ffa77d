import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { LoomUsageError } from "../base/errors.ts";
import { readDotEnv, requireApiKey, resolveApiKey } from "./keys.ts";
import { tempDir } from "../test-support/temp.ts";

describe("API key resolution", () => {
  it("prefers --api-key, then the environment (in the listed order), then .env", () => {
    const dir = tempDir();
    writeFileSync(
      join(dir, ".env"),
      "# keys\nOPENAI_API_KEY=sk-from-dotenv\nexport GEMINI_API_KEY='g-from-dotenv'\n",
    );
    const lookup = { envVars: ["OPENAI_API_KEY"], cwd: dir };
    assert.deepEqual(
      resolveApiKey({ ...lookup, flag: "sk-flag", env: { OPENAI_API_KEY: "sk-env" } }),
      { key: "sk-flag", source: "--api-key" },
    );
    assert.deepEqual(resolveApiKey({ ...lookup, env: { OPENAI_API_KEY: "sk-env" } }), {
      key: "sk-env",
      source: "$OPENAI_API_KEY",
    });
    assert.deepEqual(resolveApiKey({ ...lookup, env: {} }), {
      key: "sk-from-dotenv",
      source: ".env (OPENAI_API_KEY)",
    });
    const gemini = { envVars: ["GOOGLE_API_KEY", "GEMINI_API_KEY"], cwd: dir };
    assert.deepEqual(resolveApiKey({ ...gemini, env: { GEMINI_API_KEY: "g-env" } }), {
      key: "g-env",
      source: "$GEMINI_API_KEY",
    });
    assert.deepEqual(
      resolveApiKey({ ...gemini, env: { GOOGLE_API_KEY: "go", GEMINI_API_KEY: "ge" } })?.source,
      "$GOOGLE_API_KEY",
    );
  });

  it("never lets .env override the environment, and ignores empty values", () => {
    const dir = tempDir();
    writeFileSync(join(dir, ".env"), "OPENAI_API_KEY=sk-dotenv\n");
    assert.equal(
      resolveApiKey({ envVars: ["OPENAI_API_KEY"], env: { OPENAI_API_KEY: "sk-env" }, cwd: dir })
        ?.key,
      "sk-env",
    );
    assert.equal(
      resolveApiKey({ envVars: ["OPENAI_API_KEY"], env: { OPENAI_API_KEY: "  " }, cwd: dir })?.key,
      "sk-dotenv",
    );
    assert.equal(
      resolveApiKey({ flag: "", envVars: ["OPENAI_API_KEY"], env: {}, cwd: dir })?.source,
      ".env (OPENAI_API_KEY)",
    );
  });

  it("names the variables to set when there is no key, and never prints a key", () => {
    const dir = tempDir();
    assert.deepEqual(readDotEnv(dir), {});
    assert.throws(
      () =>
        requireApiKey("google", {
          envVars: ["GOOGLE_API_KEY", "GEMINI_API_KEY"],
          env: { OTHER_API_KEY: "sk-unrelated" },
          cwd: dir,
        }),
      (e: unknown) => {
        assert.ok(e instanceof LoomUsageError);
        assert.match(
          e.message,
          /no API key for google: set GOOGLE_API_KEY or GEMINI_API_KEY .*\.env.*--api-key/,
        );
        assert.ok(!e.message.includes("sk-unrelated"));
        return true;
      },
    );
  });

  it("reads a .env saved with a byte-order mark (as some Windows editors do)", () => {
    const dir = tempDir();
    writeFileSync(join(dir, ".env"), "\uFEFFOPENAI_API_KEY=sk-bom-key\r\nOTHER=x\r\n");
    assert.equal(readDotEnv(dir).OPENAI_API_KEY, "sk-bom-key");
    assert.deepEqual(resolveApiKey({ envVars: ["OPENAI_API_KEY"], env: {}, cwd: dir }), {
      key: "sk-bom-key",
      source: ".env (OPENAI_API_KEY)",
    });
  });
});
