/**
 * Keys through the real CLI: a key given with whitespace around it (a trailing newline from
 * `$(cat key.txt)`, say) is sent trimmed, and that trimmed key never appears in anything Loom
 * writes or prints, even when the provider quotes it back in an error, whatever its length.
 */
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { runCli } from "../core/test-support/run-cli.ts";
import { tempDir } from "../core/test-support/temp.ts";
import { startEmulator } from "../emulator/mod.ts";

/** Runs a 3-row sync job whose second row the emulator refuses, quoting the key back. */
async function runWithEchoedKey(key: string, spaced: string, via: "env" | "flag" | "dotenv") {
  const emu = await startEmulator({
    provider: "openai",
    apiKey: key,
    faults: [{
      match: { promptContains: "poisoned" },
      action: {
        kind: "status",
        status: 400,
        code: "invalid_prompt",
        message: `prompt refused for key ${key}.`,
      },
    }],
  });
  try {
    const dir = tempDir("loom-keys-");
    writeFileSync(join(dir, "d.csv"), "id,prompt\n1,hello\n2,poisoned row\n3,bye\n");
    const env: Record<string, string> = { LOOM_HOME: join(dir, "home") };
    const args = [
      "run",
      "-f",
      "d.csv",
      "-p",
      "openai",
      "-m",
      "gpt-4o-mini",
      "--sync",
      "--json",
      "-o",
      "out.csv",
      "--base-url",
      emu.baseURL,
    ];
    if (via === "env") env.OPENAI_API_KEY = spaced;
    if (via === "flag") args.push("--api-key", spaced);
    if (via === "dotenv") writeFileSync(join(dir, ".env"), `OPENAI_API_KEY="${spaced}"\n`);
    const result = await runCli(args, { cwd: dir, env });
    const output = readFileSync(join(dir, "out.csv"), "utf8");
    return { result, output, statuses: emu.log.entries.map((e) => e.status).sort() };
  } finally {
    await emu.stop();
  }
}

describe("keys with whitespace, echoed back by the provider", () => {
  for (
    const [label, key, via] of [
      ["a long key with a trailing newline, from the environment", "sk-test-key-0123456789", "env"],
      ["a long key with spaces, from --api-key", "sk-flag-key-0123456789", "flag"],
      ["a short key with a trailing newline, from .env", "k3y9", "dotenv"],
      ["a short key with spaces, from --api-key", "ab1", "flag"],
    ] as const
  ) {
    it(`${label}: sent trimmed, redacted in llm_error and --json events`, async () => {
      // A .env value is quoted, so its whitespace survives parsing as a newline would from a variable.
      const spaced = via === "dotenv" ? ` ${key} ` : `  ${key}\n`;
      const { result, output, statuses } = await runWithEchoedKey(key, spaced, via);
      // The emulator accepts only the exact key: the trimmed key was sent (200s), the poisoned row refused (400).
      assert.deepEqual(statuses, [200, 200, 400], result.stderr);
      assert.match(output, /prompt refused for key \[redacted\]\./, output);
      for (
        const [where, text] of [["output", output], ["stdout", result.stdout], [
          "stderr",
          result.stderr,
        ]]
      ) {
        assert.ok(
          !new RegExp(`(^|[^A-Za-z0-9_-])${key}([^A-Za-z0-9_-]|$)`).test(text),
          `${where} shows the key:\n${text}`,
        );
      }
      assert.match(result.stdout, /\[redacted\]/, "the --json events carry the redacted row error");
    });
  }
});
