/**
 * A call that times out names where it was going and what to do, as a refused connection does:
 * the emulator answers too slowly (`slow`) for a small `provider_options.timeout_ms`. In sync
 * mode the rows' errors say it; a batch command (`loom status`) says it on stderr. Never a stack
 * trace, never the key. Through the real CLI, each provider's SDK against the emulator.
 */
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { parse } from "csv-parse/sync";
import { type CliResult, runCli } from "../core/test-support/run-cli.ts";
import { tempDir } from "../core/test-support/temp.ts";
import { EMULATED, KEY_ENV } from "../core/test-support/batch-providers.ts";
import { type Emulator, realClock, startEmulator } from "../emulator/mod.ts";

type Provider = keyof typeof EMULATED;
const PROVIDERS: readonly Provider[] = ["openai", "anthropic", "google"];
const MODEL: Record<Provider, string> = {
  openai: "gpt-4o-mini",
  anthropic: "claude-sonnet-4-5",
  google: "gemini-2.5-flash",
  openrouter: "openai/gpt-4o-mini",
};
/**
 * The client's timeout. A sync run needs no call to succeed; a batch job's submission must get
 * through first, on a loaded machine too (200 ms was once too little for it under a full suite).
 */
const TIMEOUT_MS = { sync: 200, batch: 2000 } as const;

/** A job over two rows against a fresh emulator of `provider`; `work` runs commands on it. */
async function withJob<T>(
  provider: Provider,
  mode: "sync" | "batch",
  work: (
    t: { emu: Emulator; dir: string; run: (args: string[]) => Promise<CliResult> },
  ) => Promise<T>,
): Promise<T> {
  const emu = await startEmulator({
    provider: EMULATED[provider],
    models: "any",
    clock: realClock,
    schedule: { advance: "instant" },
  });
  try {
    const dir = tempDir("loom-timeout-");
    writeFileSync(join(dir, "in.csv"), "id,prompt\n1,hello\n2,bye\n");
    writeFileSync(
      join(dir, "job.yaml"),
      `dataset: { path: in.csv }\nprovider: ${provider}\nmodel: ${
        MODEL[provider]
      }\nmode: ${mode}\n` +
        `provider_options: { base_url: "${emu.baseURL}", timeout_ms: ${TIMEOUT_MS[mode]} }\n` +
        "output: { path: out.csv }\n",
    );
    const env = { LOOM_HOME: join(dir, "home"), [KEY_ENV[provider]]: emu.apiKey };
    return await work({ emu, dir, run: (args) => runCli(args, { cwd: dir, env }) });
  } finally {
    await emu.stop();
  }
}

/** Every call from now on is answered well after the client's timeout. */
function slowDown(emu: Emulator, mode: "sync" | "batch"): void {
  emu.faults.add({ name: "slow", action: { kind: "slow", delayMs: TIMEOUT_MS[mode] * 3 } });
}

/** The timeout's message: the emulator's address, the timeout, and what to do. */
function timedOut(emu: Emulator, mode: "sync" | "batch"): RegExp {
  const host = new URL(emu.baseURL).host.replace(/\./g, "\\.");
  return new RegExp(
    `no answer from http://${host}\\S* within ${
      TIMEOUT_MS[mode]
    } ms .*provider_options\\.timeout_ms`,
  );
}

function assertClean(result: CliResult, emu: Emulator, what: string): void {
  assert.doesNotMatch(result.stderr, /\n\s+at |Error: |unexpected error/, `${what}: a stack trace`);
  for (const text of [result.stdout, result.stderr]) {
    assert.ok(!text.includes(emu.apiKey), `${what} shows the key`);
  }
}

describe("a call that times out names where it was going", () => {
  it("sync: each row's error names the endpoint and timeout_ms (openai, anthropic, google)", async () => {
    await Promise.all(
      PROVIDERS.map((provider) =>
        withJob(provider, "sync", async ({ emu, dir, run }) => {
          slowDown(emu, "sync");
          const result = await run(["run", "job.yaml"]);
          assertClean(result, emu, provider);
          assert.equal(result.code, 1, `${provider}: ${result.stderr}`);
          const rows = parse(readFileSync(join(dir, "out.csv")), { columns: true }) as Record<
            string,
            string
          >[];
          assert.equal(rows.length, 2);
          for (const row of rows) {
            assert.match(row.llm_error, new RegExp(`^${provider}: `), provider);
            assert.match(row.llm_error, timedOut(emu, "sync"), provider);
          }
        })
      ),
    );
  });

  it("loom status of a batch job says which endpoint timed out", async () => {
    await Promise.all(
      PROVIDERS.map((provider) =>
        withJob(provider, "batch", async ({ emu, run }) => {
          const submitted = await run(["run", "job.yaml"]);
          assert.equal(submitted.code, 0, `${provider}: ${submitted.stderr}`);
          const id = /submitted job (\S+):/.exec(submitted.stdout)?.[1];
          assert.ok(id, submitted.stdout);
          slowDown(emu, "batch");
          const status = await run(["status", id]);
          assertClean(status, emu, `${provider} status`);
          // The shard's state is unknown until a check gets through, and the line says why.
          assert.match(
            status.stdout,
            new RegExp(
              `^  batch 1 \\S+  unknown .*${provider}: .*${timedOut(emu, "batch").source}`,
              "m",
            ),
            `${provider}: ${status.stdout}${status.stderr}`,
          );
        })
      ),
    );
  });
});
