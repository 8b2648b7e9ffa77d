/**
 * A batch run the provider refuses outright (a wrong key: 401, Gemini's 400) creates nothing, and
 * must leave nothing that a later command submits behind the user's back: found by the chaos
 * scenario `keys` (a wrong key, then the right one; the next `loom fetch` submitted the failed job
 * too and paid for its rows twice). The real `loom` CLI runs against the loopback emulator;
 * creates are counted in the emulator's log (refused ones made no batch and do not count).
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { type CliResult, runCli } from "../test-support/run-cli.ts";
import { tempDir } from "../test-support/temp.ts";
import { realClock, startEmulator } from "../../scripts/emulator/mod.ts";
import { CREATE, EMULATED, KEY_ENV } from "../test-support/batch-providers.ts";

type Provider = "openai" | "anthropic" | "google";

const MODEL: Record<Provider, string> = {
  openai: "gpt-4o-mini",
  anthropic: "claude-sonnet-4-5",
  google: "gemini-2.5-flash",
};
const PROMPTS = ["name a colour", "count to three", "say hello in French"];

for (const provider of ["openai", "anthropic", "google"] as const) {
  describe(`batch run refused outright (${provider})`, () => {
    it("a wrong key leaves no job: a later fetch submits nothing, a rerun submits once", async () => {
      const dir = tempDir("loom-refused-");
      const emu = await startEmulator({
        provider: EMULATED[provider],
        schedule: { advance: "instant" },
        clock: realClock,
        models: "any",
      });
      try {
        writeFileSync(
          join(dir, "in.csv"),
          `id,prompt\n${PROMPTS.map((p, i) => `${i + 1},${p}`).join("\n")}\n`,
        );
        writeFileSync(
          join(dir, "job.yaml"),
          [
            "dataset: { path: in.csv }",
            `provider: ${provider}`,
            `provider_options: { base_url: "${emu.baseURL}" }`,
            `model: ${MODEL[provider]}`,
            "mode: batch",
            "batch: { max_requests: 2 }",
            "output: { path: out.csv }",
            "",
          ].join("\n"),
        );
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
    const emu = await startEmulator({
      provider: "openai",
      schedule: { advance: "instant" },
      clock: realClock,
      models: "any",
      faults: [{
        match: { method: "POST", path: /^\/v1\/batches$/, first: 1 },
        action: { kind: "status", status: 403, message: "This project may not create batches." },
      }],
    });
    try {
      writeFileSync(join(dir, "in.csv"), `id,prompt\n1,name a colour\n2,count to three\n`);
      writeFileSync(
        join(dir, "job.yaml"),
        `dataset: { path: in.csv }\nprovider: openai\nprovider_options: { base_url: "${emu.baseURL}" }\n` +
          `model: gpt-4o-mini\nmode: batch\noutput: { path: out.csv }\n`,
      );
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
