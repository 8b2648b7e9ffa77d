/** The openai-compatible provider against the loopback emulator (standing in for Ollama, vLLM, …). */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { LoomJobError } from "../../../core/errors.ts";
import { loadJob } from "../../../core/job/load.ts";
import { runJob } from "../../../core/run/job.ts";
import { tempDir } from "../../../core/test-support/temp.ts";
import { type Emulator, startEmulator } from "../../../scripts/emulator/mod.ts";

let emu: Emulator;
before(async () => (emu = await startEmulator({ provider: "openai", apiKey: "local-key-123456", models: "any" })));
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
    const summary = await runJob(loaded, { env: { LOOM_HOME: join(dir, "home"), LOCAL_LLM_KEY: "local-key-123456" }, cwd: dir });
    assert.equal(summary.ok, 1);
  });

  it("needs base_url, reported at provider_options in the job file", async () => {
    const { dir, loaded } = await job("{ timeout_ms: 1000 }");
    await assert.rejects(() => runJob(loaded, { env: { LOOM_HOME: join(dir, "home") }, cwd: dir }), (e: unknown) => {
      assert.ok(e instanceof LoomJobError);
      assert.match(e.message, /job\.yaml:3:\d+: provider_options: openai-compatible: base_url is required/);
      return true;
    });
  });
});
