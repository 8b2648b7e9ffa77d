/**
 * A batch run the provider refuses outright (a wrong key: 401, Gemini's 400) creates nothing, and
 * must leave nothing that a later command submits behind the user's back: found by the chaos
 * scenario `keys` (a wrong key, then the right one; the next `loom fetch` submitted the failed job
 * too and paid for its rows twice). The real `loom` CLI runs against the loopback emulator;
 * creates are counted in the emulator's log (refused ones made no batch and do not count).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, it } from "node:test";
import { type CliResult, runCli } from "../test-support/run-cli.ts";
import { tempDir } from "../test-support/temp.ts";
import {
  CREATE,
  KEY_ENV,
  startBatchEmulator,
  writeBatchJob,
} from "../test-support/batch-providers.ts";

const PROMPTS = ["name a colour", "count to three", "say hello in French"];

for (const provider of ["openai", "anthropic", "google", "openrouter"] as const) {
  describe(`batch run refused outright (${provider})`, () => {
    it("a wrong key leaves no job: a later fetch submits nothing, a rerun submits once", async () => {
      const dir = tempDir("loom-refused-");
      const emu = await startBatchEmulator(provider);
      try {
        writeBatchJob(dir, { provider, baseURL: emu.baseURL, prompts: PROMPTS, maxRequests: 2 });
        const env = (key: string) => ({ LOOM_HOME: join(dir, "home"), [KEY_ENV[provider]]: key });
        const loom = (args: string[], key = emu.apiKey): Promise<CliResult> =>
          runCli(args, { cwd: dir, env: env(key) });
        const created = () =>
          emu.log.find(CREATE[provider]).filter((e) => e.status > 0 && e.status < 400).length;

        const wrong = await loom(
          ["run", "job.yaml", "-o", "first.csv"],
          "sk-wrong-0123456789abcdef",
        );
        assert.equal(wrong.code, 1, wrong.stderr);
        assert.match(wrong.stderr, /check the API key/);
        assert.equal(created(), 0);

        const listed = await loom(["list", "--json"]);
        assert.equal(listed.stdout.trim(), "", "no job is left of the refused run");

        // The user fixes the key and runs the job (into another output), then fetches.
        assert.equal((await loom(["run", "job.yaml"])).code, 0);
        assert.equal(created(), 2);
        const fetched = await loom(["fetch"]);
        assert.equal(fetched.code, 0, fetched.stderr);
        assert.equal(created(), 2, `fetch created no batch:\n${fetched.stdout}${fetched.stderr}`);

        // The refused run, run again with the right key, is submitted once.
        assert.equal(
          (await loom(["run", "job.yaml", "-o", "first.csv", "--wait", "--poll", "0.2"])).code,
          0,
        );
        assert.equal(created(), 4);
      } finally {
        await emu.stop();
      }
    });
  });
}

describe("batch create refused after its file was uploaded (openai)", () => {
  it("the upload is deleted and no job is left: a later fetch submits nothing", async () => {
    const dir = tempDir("loom-refused-");
    const emu = await startBatchEmulator("openai", {
      faults: [{
        match: { method: "POST", path: /^\/v1\/batches$/, first: 1 },
        action: { kind: "status", status: 403, message: "This project may not create batches." },
      }],
    });
    try {
      writeBatchJob(dir, {
        provider: "openai",
        baseURL: emu.baseURL,
        prompts: ["name a colour", "count to three"],
      });
      const loom = (args: string[]) =>
        runCli(args, {
          cwd: dir,
          env: { LOOM_HOME: join(dir, "home"), OPENAI_API_KEY: emu.apiKey },
        });
      const refused = await loom(["run", "job.yaml"]);
      assert.equal(refused.code, 1, refused.stderr);
      assert.match(refused.stderr, /may not create batches/);
      assert.equal(emu.log.count(/^POST \/v1\/files$/), 1);
      assert.equal(emu.log.count(/^DELETE \/v1\/files\//), 1, "the upload is deleted");
      assert.equal((await loom(["list", "--json"])).stdout.trim(), "", "no job is left");
      const fetched = await loom(["fetch"]);
      assert.equal(
        emu.log.count(/^POST \/v1\/batches$/),
        1,
        `fetch sent no create:\n${fetched.stderr}`,
      );
    } finally {
      await emu.stop();
    }
  });
});
