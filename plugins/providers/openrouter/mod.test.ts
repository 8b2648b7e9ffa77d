/** The openrouter provider through the openai SDK against the loopback emulator. */
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { LoomProviderError, LoomUsageError } from "../../../core/errors.ts";
import { loadJob } from "../../../core/job/load.ts";
import { runJob } from "../../../core/run/job.ts";
import { tempDir } from "../../../core/test-support/temp.ts";
import { FAST_RETRY, useEmulator } from "../_shared/test-emulator.ts";

const t = useEmulator({ provider: "openrouter" });


async function job(mode = "sync") {
  const dir = tempDir();
  writeFileSync(join(dir, "in.csv"), "id,prompt\n1,hello\n2,there\n");
  writeFileSync(
    join(dir, "job.yaml"),
    `dataset: { path: in.csv }\nprovider: openrouter\nprovider_options: { base_url: "${t.emu.baseURL}" }\n` +
      `model: openai/gpt-4o-mini\nmode: ${mode}\noutput: { path: out.csv }\nsync: { cache: false }\n`,
  );
  const env = { LOOM_HOME: join(dir, "home"), OPENROUTER_API_KEY: t.emu.apiKey };
  return { dir, env, loaded: await loadJob({ file: join(dir, "job.yaml"), cwd: dir }) };
}

describe("openrouter provider against the emulator", () => {
  it("answers rows, and retries an error that arrives inside an HTTP 200", async () => {
    t.emu.faults.add({ match: { promptContains: "hello", first: 1 }, action: { kind: "error-in-200", code: 502 } });
    const { dir, env, loaded } = await job();
    const summary = await runJob(loaded, { env, cwd: dir, retry: FAST_RETRY });
    assert.deepEqual([summary.ok, summary.errors], [2, 0]);
    assert.match(readFileSync(join(dir, "out.csv"), "utf8"), /\[openai\/gpt-4o-mini\] hello/);
    assert.equal(t.emu.log.count("POST /api/v1/chat/completions"), 3);
  });

  it("says there is no batch API (a usage error, exit code 2)", async () => {
    const { dir, env, loaded } = await job("batch");
    await assert.rejects(() => runJob(loaded, { env, cwd: dir }), (e: unknown) => {
      assert.ok(e instanceof LoomUsageError);
      assert.equal(e.exitCode, 2);
      assert.equal(e.message, "OpenRouter has no batch API; re-run with --sync");
      return true;
    });
  });

  it("stops the run when credits run out (402)", async () => {
    t.emu.faults.add({ action: { kind: "status", status: 402, message: "Insufficient credits" } });
    const { dir, env, loaded } = await job();
    await assert.rejects(() => runJob(loaded, { env, cwd: dir, retry: FAST_RETRY }), (e: unknown) => e instanceof LoomProviderError && e.fatal && e.status === 402);
  });
});
