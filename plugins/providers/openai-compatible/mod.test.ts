/** The openai-compatible provider against the loopback emulator (standing in for Ollama, vLLM, …). */
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { LoomJobError } from "../../../core/base/errors.ts";
import { loadJob } from "../../../core/job/load.ts";
import { runJob } from "../../../core/commands/run.ts";
import { runCli } from "../../../core/test-support/run-cli.ts";
import { tempDir } from "../../../core/test-support/temp.ts";
import { type Emulator, startEmulator } from "../../../emulator/mod.ts";
import { filesUnder } from "../../../core/test-support/files.ts";

let emu: Emulator;
before(
  async () => (emu = await startEmulator({
    provider: "openai",
    apiKey: "local-key-123456",
    models: "any",
  })),
);
after(() => emu.stop());

async function job(options: string) {
  const dir = tempDir();
  writeFileSync(join(dir, "in.csv"), "prompt\nhello\n");
  writeFileSync(
    join(dir, "job.yaml"),
    `dataset: { path: in.csv }\nprovider: openai-compatible\nprovider_options: ${options}\n` +
      `model: llama3.1:8b\nmode: sync\noutput: { path: out.csv }\nsync: { cache: false }\n`,
  );
  return { dir, loaded: await loadJob({ file: join(dir, "job.yaml"), cwd: dir }) };
}

describe("openai-compatible provider", () => {
  it("calls the given endpoint with the key from the variable api_key_env names", async () => {
    const { dir, loaded } = await job(`{ base_url: "${emu.baseURL}", api_key_env: LOCAL_LLM_KEY }`);
    const summary = await runJob(loaded, {
      env: { LOOM_HOME: join(dir, "home"), LOCAL_LLM_KEY: "local-key-123456" },
      cwd: dir,
    });
    assert.equal(summary.ok, 1);
  });

  it("needs base_url, reported at provider_options in the job file", async () => {
    const { dir, loaded } = await job("{ timeout_ms: 1000 }");
    await assert.rejects(
      () => runJob(loaded, { env: { LOOM_HOME: join(dir, "home") }, cwd: dir }),
      (e: unknown) => {
        assert.ok(e instanceof LoomJobError);
        assert.match(
          e.message,
          /job\.yaml:3:\d+: provider_options: openai-compatible: base_url is required/,
        );
        return true;
      },
    );
  });
});

describe("openai-compatible from the command line", () => {
  it("takes --base-url and --api-key, adds usage columns, and writes the key into no file", async () => {
    const dir = tempDir();
    writeFileSync(join(dir, "in.csv"), "prompt\nhello world\n");
    const key = "local-key-123456";
    const result = await runCli(
      [
        "run",
        "-f",
        "in.csv",
        "-p",
        "openai-compatible",
        "--base-url",
        emu.baseURL,
        "-m",
        "llama3.1:8b",
        "--sync",
        "--with-usage",
        "--api-key",
        key,
      ],
      { cwd: dir, env: { LOOM_HOME: join(dir, "home") } },
    );
    assert.equal(result.code, 0, result.stderr);
    const out = readFileSync(join(dir, "in_results_openai-compatible_llama3.1_8b.csv"), "utf8");
    assert.equal(
      out,
      "prompt,llm_response,llm_error,llm_finish_reason,llm_input_tokens,llm_output_tokens,llm_reasoning_tokens,llm_cost\nhello world,[llama3.1:8b] hello world,,stop,2,3,0,\n",
      "the emulator reports 0 reasoning tokens, as OpenAI does for a model that does not reason, and no cost",
    );
    const written = filesUnder(dir);
    assert.ok(written.some((f) => f.endsWith(join("home", "state.db"))), "the cache was written");
    for (const file of written) {
      assert.ok(!readFileSync(file, "utf8").includes(key), `${file} holds the key`);
    }
    assert.ok(!result.stdout.includes(key) && !result.stderr.includes(key));
  });
});

describe("openai-compatible against a server that reads only max_tokens (Ollama-like)", () => {
  let local: Emulator;
  before(async () => (local = await startEmulator({ provider: "compatible" })));
  after(() => local.stop());

  async function capped(options = "") {
    const dir = tempDir();
    writeFileSync(join(dir, "in.csv"), "prompt\none two three four five six seven\n");
    writeFileSync(
      join(dir, "job.yaml"),
      `dataset: { path: in.csv }\nprovider: openai-compatible\nprovider_options: { base_url: "${local.baseURL}"${options} }\n` +
        `model: llama3.1:8b\nmode: sync\nparams: { max_tokens: 3 }\noutput: { path: out.csv, with_usage: true }\n`,
    );
    const loaded = await loadJob({ file: join(dir, "job.yaml"), cwd: dir });
    return { dir, loaded };
  }

  it("caps the answer at max_tokens: finish length and the cut answer", async () => {
    local.log.clear();
    const { dir, loaded } = await capped();
    const summary = await runJob(loaded, { env: { LOOM_HOME: join(dir, "home") }, cwd: dir });
    assert.equal(summary.ok, 1);
    const out = readFileSync(join(dir, "out.csv"), "utf8");
    assert.match(out, /^one two three four five six seven,\[llama3\.1:8b\] one two,,length,7,3,/m);
    const body = local.log.entries[0].body as Record<string, unknown>;
    assert.deepEqual([body.max_tokens, body.max_completion_tokens], [3, undefined]);
  });

  it("sends max_completion_tokens when max_tokens_field says so (which such a server ignores)", async () => {
    local.log.clear();
    const { dir, loaded } = await capped(", max_tokens_field: max_completion_tokens");
    await runJob(loaded, { env: { LOOM_HOME: join(dir, "home") }, cwd: dir });
    const body = local.log.entries[0].body as Record<string, unknown>;
    assert.deepEqual([body.max_tokens, body.max_completion_tokens], [undefined, 3]);
    assert.match(
      readFileSync(join(dir, "out.csv"), "utf8"),
      /seven,\[llama3\.1:8b\] one two three four five six seven,,stop,/,
    );
  });

  it("refuses another max_tokens_field, at provider_options in the job file", async () => {
    local.log.clear();
    const { dir, loaded } = await capped(", max_tokens_field: max_output_tokens");
    await assert.rejects(
      () => runJob(loaded, { env: { LOOM_HOME: join(dir, "home") }, cwd: dir }),
      (e: unknown) => {
        assert.ok(e instanceof LoomJobError);
        assert.match(
          e.message,
          /job\.yaml:3:\d+: provider_options: openai-compatible: max_tokens_field must be max_tokens or max_completion_tokens/,
        );
        return true;
      },
    );
    assert.equal(local.log.entries.length, 0);
  });
});
