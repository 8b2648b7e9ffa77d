/**
 * `loom tokens` and `loom plan --count-tokens` when the provider's counting endpoint refuses a
 * row (a 400): that row is named with the provider's message and estimated locally, and the count
 * goes on; only the same refusal for many rows in a row stops it, saying so. Real CLI, OpenAI's
 * SDK against the emulator, a fault rule refusing the prompts that contain a marker.
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { type CliResult, runCli } from "../core/test-support/run-cli.ts";
import { tempDir } from "../core/test-support/temp.ts";
import { type Emulator, startEmulator } from "../emulator/mod.ts";

const COUNT = "POST /v1/responses/input_tokens";
const REFUSAL = "Invalid prompt: this prompt cannot be counted.";

/** Runs a command over `prompts` against an emulator that refuses every prompt holding "POISON". */
async function withRefusals(
  prompts: readonly string[],
  args: readonly string[],
): Promise<{ result: CliResult; emu: Emulator }> {
  const emu = await startEmulator({
    provider: "openai",
    faults: [{
      match: { promptContains: "POISON" },
      action: { kind: "status", status: 400, message: REFUSAL },
    }],
  });
  try {
    const dir = tempDir("loom-count-");
    writeFileSync(
      join(dir, "in.csv"),
      `id,prompt\n${prompts.map((p, i) => `${i},${p}`).join("\n")}\n`,
    );
    const result = await runCli(
      [...args, "-f", "in.csv", "-p", "openai", "-m", "gpt-4o-mini", "--base-url", emu.baseURL],
      { cwd: dir, env: { LOOM_HOME: join(dir, "home"), OPENAI_API_KEY: emu.apiKey } },
    );
    return { result, emu };
  } finally {
    await emu.stop();
  }
}

/** The emulator counts one token a word; Loom's local estimate is 4 characters a token. */
const words = (text: string) => text.split(/\s+/).filter(Boolean).length;
const local = (text: string) => Math.ceil(text.length / 4);

const PROMPTS = ["one two three", "a POISON pill for the counter here", "four five", "six"];

describe("token counting: a row the provider refuses", () => {
  it("tokens: names the row and the message, estimates it locally, counts the rest", async () => {
    const { result, emu } = await withRefusals(PROMPTS, ["tokens", "-w", "1"]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(emu.log.count(COUNT), PROMPTS.length, "every row was asked");
    assert.match(result.stderr, new RegExp(`^loom: row 2: openai: .*${REFUSAL}`, "m"));
    const counted = words(PROMPTS[0]) + words(PROMPTS[2]) + words(PROMPTS[3]);
    const estimated = local(PROMPTS[1]);
    assert.equal(
      result.stdout.trim().split("\n").at(-1),
      `Total input tokens: ${counted + estimated} across 4 prompts (provider=openai, ` +
        `model=gpt-4o-mini, errors=1; 1 prompt the provider did not count is estimated ` +
        `locally at ${estimated} tokens)`,
    );
    assert.doesNotMatch(result.stderr, /\n\s+at |Error: /);
  });

  it("tokens --json: the total says which part is estimated", async () => {
    const { result } = await withRefusals(PROMPTS, ["tokens", "--json"]);
    assert.equal(result.code, 0, result.stderr);
    const total = JSON.parse(result.stdout.trim().split("\n").at(-1)!);
    assert.equal(total.type, "total");
    assert.equal(total.estimated_prompts, 1);
    assert.equal(total.estimated_tokens, local(PROMPTS[1]));
    assert.equal(
      total.tokens,
      words(PROMPTS[0]) + words(PROMPTS[2]) + words(PROMPTS[3]) +
        local(PROMPTS[1]),
    );
    assert.equal(total.prompts, 4);
    assert.equal(total.errors, 1);
  });

  it("plan --count-tokens: names the row and goes on", async () => {
    const { result, emu } = await withRefusals(PROMPTS, ["plan", "--count-tokens", "--sync"]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(emu.log.count(COUNT), PROMPTS.length);
    assert.match(result.stderr, new RegExp(`^loom: row 2: openai: .*${REFUSAL}`, "m"));
    const counted = words(PROMPTS[0]) + words(PROMPTS[2]) + words(PROMPTS[3]);
    assert.match(
      result.stdout,
      new RegExp(
        `input tokens: ${counted + local(PROMPTS[1])} \\(counted by openai; 1 row could not be ` +
          "counted and is estimated",
      ),
    );
  });

  it("the same refusal for many rows in a row stops the count, saying so", async () => {
    const prompts = Array.from({ length: 30 }, (_, i) => `POISON number ${i}`);
    for (const command of [["tokens"], ["plan", "--count-tokens"]]) {
      const { result, emu } = await withRefusals(prompts, [...command, "-w", "1"]);
      assert.equal(result.code, 1, result.stderr);
      assert.equal(emu.log.count(COUNT), 20, "stopped after 20 refusals in a row");
      assert.match(
        result.stderr,
        /^loom: stopped: the provider refused 20 rows in a row with ".*Invalid prompt.*"; .*count/m,
      );
      assert.doesNotMatch(result.stderr, /\n\s+at |Error: /);
    }
  });

  it("refusals with other rows counted between them never stop the count", async () => {
    const prompts = Array.from({ length: 44 }, (_, i) => i % 2 ? `POISON ${i}` : `fine ${i}`);
    const { result, emu } = await withRefusals(prompts, ["tokens", "-w", "1"]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(emu.log.count(COUNT), 44);
    assert.match(result.stdout, /errors=22; 22 prompts the provider did not count/);
  });
});
