/**
 * A batch create whose answer is lost (a late answer past the client's timeout, a reset
 * connection, no answer ever) must never be paid twice. The emulator carries the create out (the
 * batch exists, listed only after a few list calls) and loses the answer; the real `loom` CLI runs
 * the job against it. Creates are counted in the emulator's log: never more than the job's shards,
 * unless the user says `--resubmit`. The settle window is shrunk with `LOOM_SETTLE_SECONDS`.
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { parse } from "csv-parse/sync";
import { type CliResult, runCli } from "../test-support/run-cli.ts";
import { tempDir } from "../test-support/temp.ts";
import type { Emulator, FaultAction } from "../../emulator/mod.ts";
import {
  BATCH_MODEL as MODEL,
  type BatchProvider as Provider,
  CREATE,
  CREATE_PATH,
  KEY_ENV,
  startBatchEmulator,
  writeBatchJob,
} from "../test-support/batch-providers.ts";
const PROMPTS = ["name a colour", "count to three", "spell the word loom", "say hello in French"];
const SHARDS = 2;
/** The client's timeout: a `late` answer comes well after it. */
const TIMEOUT_MS = 3000;

interface Setup {
  readonly provider: Provider;
  readonly emu: Emulator;
  readonly output: string;
  run(args: string[]): Promise<CliResult>;
  creations(): number;
  jobId(): Promise<string>;
}

async function withSetup(provider: Provider, work: (s: Setup) => Promise<void>): Promise<void> {
  const dir = tempDir("loom-lost-");
  const emu = await startBatchEmulator(provider);
  try {
    writeBatchJob(dir, {
      provider,
      baseURL: emu.baseURL,
      prompts: PROMPTS,
      maxRequests: PROMPTS.length / SHARDS,
      providerOptions: [`timeout_ms: ${TIMEOUT_MS}`],
    });
    const env = {
      LOOM_HOME: join(dir, "home"),
      LOOM_SETTLE_SECONDS: "0.3",
      [KEY_ENV[provider]]: emu.apiKey,
    };
    await work({
      provider,
      emu,
      output: join(dir, "out.csv"),
      run: (args) => runCli(args, { cwd: dir, env }),
      creations: () => emu.log.count(CREATE[provider]),
      async jobId() {
        const listed = await runCli(["list", "--json"], { cwd: dir, env });
        const jobs = listed.stdout.split("\n").filter(Boolean).map((line) =>
          JSON.parse(line) as { id: string }
        );
        assert.equal(jobs.length, 1, listed.stdout);
        return jobs[0].id;
      },
    });
  } finally {
    await emu.stop();
  }
}

/** The first create is carried out and its answer lost; its batch is listed after `listedAfter` list calls. */
function loseFirstCreate(s: Setup, answer: "late" | "reset" | "never", listedAfter: number): void {
  const action: FaultAction = { kind: "lost", answer, delayMs: TIMEOUT_MS * 3, listedAfter };
  s.emu.faults.add({
    name: `lost-${answer}`,
    match: { method: "POST", path: CREATE_PATH[s.provider], first: 1 },
    action,
  });
}

function assertComplete(s: Setup): void {
  assert.ok(existsSync(s.output), "the output was written");
  const rows = parse(readFileSync(s.output), { columns: true }) as Record<string, string>[];
  assert.deepEqual(
    rows.map((r) => r.llm_response),
    PROMPTS.map((p) => `[${MODEL[s.provider]}] ${p}`),
  );
}

/** Fetches the job (instant schedule: its batches have ended) and checks the output. */
async function fetchAll(s: Setup): Promise<void> {
  const fetched = await s.run(["fetch", "--id", await s.jobId()]);
  assert.equal(fetched.code, 0, fetched.stderr);
  assertComplete(s);
}

/** The run stopped (exit 2) without creating anything more, saying what to run. */
function assertStopped(result: CliResult, id: string): void {
  assert.equal(result.code, 2, `the run stops with exit 2\n${result.stdout}${result.stderr}`);
  assert.ok(result.stderr.includes(`loom adopt ${id} <batch-id>`), result.stderr);
  assert.match(result.stderr, /loom run \S*job\.yaml --resubmit/);
}

for (const provider of ["openai", "google"] as const) {
  describe(`lost batch create: ${provider} (labelled batches)`, () => {
    for (const answer of ["reset", "late", "never"] as const) {
      it(`answer ${answer}, listed late: the batch is found over the settle window and adopted; one create per shard`, async () => {
        await withSetup(provider, async (s) => {
          loseFirstCreate(s, answer, 2);
          const run = await s.run(["run", "job.yaml"]);
          assert.equal(run.code, 0, `${run.stdout}${run.stderr}`);
          assert.equal(
            s.creations(),
            SHARDS,
            "one create per shard: the lost one was adopted, not sent again",
          );
          await fetchAll(s);
        });
      });
    }

    it("listed only after the window: the run stops saying what to run; a rerun looks first and adopts it", async () => {
      await withSetup(provider, async (s) => {
        loseFirstCreate(s, "reset", 8); // the first run looks 6 times
        const stopped = await s.run(["run", "job.yaml"]);
        const id = await s.jobId();
        assertStopped(stopped, id);
        assert.equal(s.creations(), 1, "nothing more was created");
        const status = await s.run(["status", id]);
        assert.match(
          status.stdout,
          /batch 1 -\s+in doubt\s+its create was sent at /,
          status.stdout,
        );
        // The batches after it were never sent: said so, not "could not check".
        assert.match(status.stdout, /batch 2 -\s+not sent\s+Loom has not sent this batch yet/);
        assert.doesNotMatch(status.stdout, /unknown/);
        const rerun = await s.run(["run", "job.yaml"]);
        assert.equal(rerun.code, 0, rerun.stderr);
        assert.equal(
          s.creations(),
          SHARDS,
          "the rerun adopted the lost batch instead of creating it again",
        );
        await fetchAll(s);
      });
    });
  });
}

describe("lost batch create: openai --resubmit", () => {
  it("never listed: `--resubmit` pays again, knowingly", async () => {
    await withSetup("openai", async (s) => {
      loseFirstCreate(s, "reset", 1000);
      const stopped = await s.run(["run", "job.yaml"]);
      assertStopped(stopped, await s.jobId());
      const again = await s.run(["run", "job.yaml", "--resubmit"]);
      assert.equal(again.code, 0, again.stderr);
      assert.equal(
        s.creations(),
        SHARDS + 1,
        "the lost batch, then the shard again, then the other shard",
      );
      await fetchAll(s);
    });
  });
});

/** Unlabelled providers, and how their batch ids look in the message naming the candidates. */
const CANDIDATE = {
  anthropic: /could be it: (msgbatch_\w+)/,
  openrouter: /could be it: (batch_\w+)/,
} as const;

for (const provider of ["anthropic", "openrouter"] as const) {
  describe(`lost batch create: ${provider} (unlabelled batches)`, () => {
    for (const answer of ["reset", "late", "never"] as const) {
      it(`answer ${answer}: the run stops naming the batch that could be it; adopting it finishes the job, one create per shard`, async () => {
        await withSetup(provider, async (s) => {
          loseFirstCreate(s, answer, 2);
          const stopped = await s.run(["run", "job.yaml"]);
          const id = await s.jobId();
          assertStopped(stopped, id);
          assert.equal(s.creations(), 1, "nothing more was created");
          const lost = CANDIDATE[provider].exec(stopped.stderr)?.[1];
          assert.ok(lost, `the message names the candidate:\n${stopped.stderr}`);
          const adopted = await s.run(["adopt", id, lost]);
          assert.equal(adopted.code, 0, adopted.stderr);
          const rerun = await s.run(["run", "job.yaml"]);
          assert.equal(rerun.code, 0, rerun.stderr);
          assert.equal(s.creations(), SHARDS);
          await fetchAll(s);
        });
      });
    }
  });
}

/** OpenAI's batch input files at the emulator that are still there (`purpose: batch`). */
async function liveInputFiles(emu: Emulator): Promise<string[]> {
  const response = await fetch(`${emu.baseURL}/files?purpose=batch`, {
    headers: { authorization: `Bearer ${emu.apiKey}` },
  });
  assert.equal(response.status, 200);
  return ((await response.json()) as { data: Array<{ id: string }> }).data.map((f) => f.id);
}

describe("batch uploads: openai", () => {
  const UPLOAD = /^POST \/v1\/files$/;

  it("a create refused twice (429) is retried with the same upload; the uploads are deleted once the results are saved", async () => {
    await withSetup("openai", async (s) => {
      s.emu.faults.add({
        name: "busy",
        match: { method: "POST", path: CREATE_PATH.openai, first: 2 },
        action: { kind: "status", status: 429, retryAfterMs: 20 },
      });
      const run = await s.run(["run", "job.yaml"]);
      assert.equal(run.code, 0, run.stderr);
      assert.equal(s.creations(), SHARDS + 2, "two refused creates, then one per shard");
      assert.equal(s.emu.log.count(UPLOAD), SHARDS, "one upload per shard, reused by the retries");
      assert.equal((await liveInputFiles(s.emu)).length, SHARDS);
      await fetchAll(s);
      assert.deepEqual(await liveInputFiles(s.emu), [], "the input files are gone after the fetch");
      assert.equal(s.emu.log.count(/^DELETE \/v1\/files\//), SHARDS);
    });
  });

  it("`--resubmit` after a lost create reuses the shard's upload", async () => {
    await withSetup("openai", async (s) => {
      loseFirstCreate(s, "reset", 1000);
      assert.equal((await s.run(["run", "job.yaml"])).code, 2);
      const again = await s.run(["run", "job.yaml", "--resubmit"]);
      assert.equal(again.code, 0, again.stderr);
      assert.equal(s.emu.log.count(UPLOAD), SHARDS, "no second upload for the resubmitted shard");
      await fetchAll(s);
      assert.deepEqual(await liveInputFiles(s.emu), []);
    });
  });

  it("a failed delete is a warning: the output is written all the same", async () => {
    await withSetup("openai", async (s) => {
      const run = await s.run(["run", "job.yaml"]);
      assert.equal(run.code, 0, run.stderr);
      const id = await s.jobId();
      s.emu.faults.add({
        name: "no-delete",
        match: { method: "DELETE", path: "/v1/files/" },
        action: { kind: "status", status: 400, message: "cannot delete now" },
      });
      const fetched = await s.run(["fetch", "--id", id]);
      assert.equal(fetched.code, 0, fetched.stderr);
      assertComplete(s);
      assert.match(fetched.stderr, /could not be deleted/);
      assert.equal((await liveInputFiles(s.emu)).length, SHARDS);
    });
  });
});
