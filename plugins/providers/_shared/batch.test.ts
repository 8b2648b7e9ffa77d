/**
 * Batch jobs through each provider's official SDK against the emulator, end to end through the
 * core: several shards, a request failing inside a batch, a batch expiring with part of its
 * results, and `retry` sending only the rows without an answer.
 */
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { filesUnder } from "../../../core/test-support/files.ts";
import { join } from "node:path";
import { describe, it } from "node:test";
import { parse } from "csv-parse/sync";
import { fetchJobs, retryJob } from "../../../core/batch/jobs.ts";
import { loadJob } from "../../../core/job/load.ts";
import { runJob } from "../../../core/commands/run.ts";
import { tempDir } from "../../../core/test-support/temp.ts";
import { type EmulatorOptions, startEmulator } from "../../../emulator/mod.ts";
import { FAST_RETRY } from "./test-emulator.ts";

interface Case {
  provider: string;
  emulator: EmulatorOptions["provider"];
  model: string;
  keyEnv: string;
  /** How the emulator's log names a batch creation. */
  create: string;
  /** Answers an expired batch keeps (Gemini's keep none). */
  keptOnExpiry: number;
}

const CASES: Case[] = [
  {
    provider: "openai",
    emulator: "openai",
    model: "gpt-4o-mini",
    keyEnv: "OPENAI_API_KEY",
    create: "POST /v1/batches",
    keptOnExpiry: 1,
  },
  {
    provider: "anthropic",
    emulator: "anthropic",
    model: "claude-sonnet-5-5",
    keyEnv: "ANTHROPIC_API_KEY",
    create: "POST /v1/messages/batches",
    keptOnExpiry: 1,
  },
  {
    provider: "google",
    emulator: "gemini",
    model: "gemini-2.5-flash",
    keyEnv: "GOOGLE_API_KEY",
    create: ":batchGenerateContent",
    keptOnExpiry: 0,
  },
  {
    provider: "openrouter",
    emulator: "openrouter",
    model: "openai/gpt-4o-mini",
    keyEnv: "OPENROUTER_API_KEY",
    create: "POST /api/v1/batches",
    keptOnExpiry: 1,
  },
];

const ROWS = ["one", "two BAD", "three", "four", "five", "six", "seven"];

/** Starts an emulator with `batches` scenarios and writes a 3-requests-a-batch job against it. */
async function setup(c: Case, batches: EmulatorOptions["batches"], apiKey?: string) {
  const emu = await startEmulator({ provider: c.emulator, batches, ...(apiKey ? { apiKey } : {}) });
  const dir = tempDir();
  writeFileSync(
    join(dir, "in.csv"),
    `id,text\n${ROWS.map((r, i) => `${i + 1},${r}`).join("\n")}\n`,
  );
  writeFileSync(
    join(dir, "job.yaml"),
    `dataset: { path: in.csv }\nprompt: { column: text }\nprovider: ${c.provider}\nprovider_options: { base_url: "${emu.baseURL}" }\n` +
      `model: ${c.model}\nparams: { max_tokens: 50 }\noutput: { path: out.csv }\nbatch: { max_requests: 3 }\n`,
  );
  const opts = { env: { LOOM_HOME: join(dir, "home"), [c.keyEnv]: emu.apiKey }, cwd: dir };
  const submit = async () =>
    (await runJob(await loadJob({ file: join(dir, "job.yaml"), cwd: dir }), opts)).job!;
  const fetch = async (id: string) => {
    const [outcome] = await fetchJobs([id], { ...opts, wait: true, pollMs: 1 });
    assert.ok(!("error" in outcome));
    return outcome;
  };
  const output = () =>
    parse(readFileSync(join(dir, "out.csv")), { columns: true }) as Record<string, string>[];
  return { emu, dir, opts, submit, fetch, output };
}

for (const c of CASES) {
  describe(`batch mode: ${c.provider}`, () => {
    it("merges several shards in input order, keeps a failed request's error, and retries only that row", async () => {
      const t = await setup(c, [{ failPromptContains: "BAD" }]);
      try {
        const job = await t.submit();
        assert.equal(job.shards, 3);
        const fetched = await t.fetch(job.id);
        assert.deepEqual([fetched.summary?.ok, fetched.summary?.errors, fetched.removed], [
          6,
          1,
          false,
        ]);
        const rows = t.output();
        assert.deepEqual(rows.map((r) => r.id), ["1", "2", "3", "4", "5", "6", "7"]);
        for (const [i, row] of rows.entries()) {
          if (i === 1) {
            assert.equal(row.llm_response, "");
            assert.notEqual(row.llm_error, "");
          } else {assert.deepEqual([row.llm_response, row.llm_error], [
              `[${c.model}] ${ROWS[i]}`,
              "",
            ]);}
        }
        const retried = await retryJob(job.id, t.opts);
        assert.equal(retried.rows, 1);
        assert.deepEqual(retried.record.shards.at(-1)?.rows, { list: [1] });
        await t.fetch(job.id);
        assert.equal(
          t.emu.log.count(c.create),
          4,
          "three shards and one retry: nothing paid twice",
        );
        assert.equal(t.output()[0].llm_response, `[${c.model}] one`);
      } finally {
        await t.emu.stop();
      }
    });

    it("keeps the answers of a batch that expired, and retry completes the rest", async () => {
      const t = await setup(c, [{ nth: 1, end: "expire", processed: 1 }]);
      try {
        const job = await t.submit();
        const fetched = await t.fetch(job.id);
        assert.equal(
          fetched.summary?.errors,
          3 - c.keptOnExpiry,
          "the first shard's unfinished rows",
        );
        assert.deepEqual(fetched.record.shards.map((s) => s.state), [
          "expired",
          "completed",
          "completed",
        ]);
        const expired = t.output().slice(0, 3).filter((r) => r.llm_error !== "");
        assert.ok(expired.every((r) => /expired/i.test(r.llm_error)), JSON.stringify(expired));
        const retried = await retryJob(job.id, t.opts);
        assert.equal(retried.rows, 3 - c.keptOnExpiry);
        const done = await t.fetch(job.id);
        assert.deepEqual([done.summary?.ok, done.summary?.errors, done.removed], [7, 0, true]);
        assert.deepEqual(
          t.output().map((r) => r.llm_response),
          ROWS.map((r) => `[${c.model}] ${r}`),
        );
      } finally {
        await t.emu.stop();
      }
    });
  });
}

describe("batch mode: whole-batch failures and failed checks (openai)", () => {
  const c = CASES[0];

  it("gives every row of a batch the provider rejected its reason, and retry sends them again", async () => {
    const t = await setup(c, [{ nth: 2, end: "fail" }]);
    try {
      const job = await t.submit();
      const fetched = await t.fetch(job.id);
      assert.deepEqual(fetched.record.shards.map((s) => s.state), [
        "completed",
        "failed",
        "completed",
      ]);
      const rows = t.output();
      assert.deepEqual(rows.map((r) => r.llm_error === ""), [
        true,
        true,
        true,
        false,
        false,
        false,
        true,
      ]);
      assert.match(rows[3].llm_error, /^the batch failed/);
      const retried = await retryJob(job.id, t.opts);
      assert.deepEqual(retried.record.shards.at(-1)?.rows, { list: [3, 4, 5] });
    } finally {
      await t.emu.stop();
    }
  });

  it("reports a batch it could not check as unknown, and the next fetch carries on", async () => {
    const t = await setup(c, []);
    try {
      const job = await t.submit();
      t.emu.faults.add({
        match: { method: "GET", path: "/v1/batches/" },
        action: { kind: "status", status: 503 },
      });
      const [first] = await fetchJobs([job.id], { ...t.opts, retry: FAST_RETRY });
      assert.ok(!("error" in first) && first.summary === undefined);
      assert.deepEqual(first.record.shards.map((s) => s.state), ["unknown", "unknown", "unknown"]);
      assert.match(first.record.shards[0].message ?? "", /503/);
      t.emu.faults.clear();
      const done = await t.fetch(job.id);
      assert.equal(done.summary?.ok, 7);
    } finally {
      await t.emu.stop();
    }
  });
});

describe("batch mode: secrets", () => {
  it("writes the API key into no file: not the job's record, its results, the output or the cache", async () => {
    const key = "sk-batch-secret-0123456789";
    const t = await setup(CASES[0], [{ failPromptContains: "BAD" }], key);
    try {
      const job = await t.submit();
      await t.fetch(job.id);
      const files = filesUnder(t.dir);
      const state = files.filter((f) => /state\.db(-wal)?$/.test(f));
      assert.ok(state.length, "the state store (record and results) was written");
      // The record is in it, so scanning it for the key can fail.
      assert.match(state.map((f) => readFileSync(f, "latin1")).join(""), /"shards"/);
      for (const file of files) assert.ok(!readFileSync(file, "utf8").includes(key), file);
    } finally {
      await t.emu.stop();
    }
  });
});
