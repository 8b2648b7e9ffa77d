/**
 * Crash tests of batch mode with real child processes: `LOOM_FAILPOINT` makes the `loom` child
 * kill itself with SIGKILL at an exact step of a submit or a fetch; the test then runs it again
 * and checks that nothing was lost (every row answered, in input order) and nothing was paid
 * twice (the provider saw exactly one batch creation per shard). The job has 7 rows cut into 3
 * shards (`batch: { max_requests: 3 }`). OpenAI, Anthropic, Gemini and OpenRouter are the loopback emulator
 * (batches end at once: the `instant` schedule); echo keeps its batches under
 * `LOOM_HOME/echo-batches`. The state store is the default SQLite file, and for OpenAI's matrix
 * also a real PostgreSQL server (started by this file, a fresh database per test).
 */
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { parse } from "csv-parse/sync";
import { type CliResult, runCli, spawnCli } from "../test-support/run-cli.ts";
import { tempDir } from "../test-support/temp.ts";
import { jobIdsIn } from "../test-support/state.ts";
import { type PostgresServer, startPostgres } from "../test-support/postgres.ts";
import { type Emulator, realClock, startEmulator } from "../../emulator/mod.ts";
import { CREATE, CREATE_PATH, EMULATED, KEY_ENV } from "../test-support/batch-providers.ts";

type Provider = "openai" | "anthropic" | "google" | "openrouter" | "echo";

const MODEL: Record<Provider, string> = {
  openai: "gpt-4o-mini",
  anthropic: "claude-sonnet-4-5",
  google: "gemini-2.5-flash",
  openrouter: "openai/gpt-4o-mini",
  echo: "echo-1",
};

const PROMPTS = [
  "name a colour",
  "count to three",
  "spell the word loom",
  "describe a quiet river",
  "list two prime numbers",
  "say hello in French",
  "what comes after Tuesday",
];
const SHARDS = 3;

/** The answer each provider gives a prompt: the emulator's `[<model>] <prompt>`, echo's prompt. */
function answerOf(provider: Provider, prompt: string): string {
  return provider === "echo" ? prompt : `[${MODEL[provider]}] ${prompt}`;
}

/** One job in a fresh directory, with its emulator (none for echo). */
interface Setup {
  readonly provider: Provider;
  readonly dir: string;
  readonly home: string;
  readonly output: string;
  readonly emu?: Emulator;
  /** `LOOM_STATE` (undefined: the default SQLite file under `home`). */
  readonly state?: string;
  /** Runs the CLI to completion (no failpoint). */
  run(args: string[]): Promise<CliResult>;
  /** Runs the CLI with `LOOM_FAILPOINT=point`; asserts it died by SIGKILL. */
  crash(args: string[], point: string): Promise<CliResult & { pid: number }>;
  /** Batches created remotely so far (echo: batch files). */
  creations(): number;
  /** The job records `loom list --json` prints. */
  jobs(): Promise<ListedJob[]>;
}

interface ListedJob {
  id: string;
  status: string;
  shards: Array<{ batch: string | null; state: string | null; requests: number }>;
}

/** The store the crash tests run on: the default SQLite file, or a PostgreSQL database. */
type Backend = "sqlite" | "postgres";

let postgres: PostgresServer | undefined;

after(() => postgres?.stop());

/** `LOOM_STATE` for a fresh store of `backend` (undefined: the default SQLite file). */
async function stateFor(backend: Backend): Promise<string | undefined> {
  if (backend === "sqlite") return undefined;
  postgres ??= await startPostgres();
  return await postgres.createDatabase();
}

async function withSetup(
  provider: Provider,
  work: (s: Setup) => Promise<void>,
  backend: Backend = "sqlite",
): Promise<void> {
  const state = await stateFor(backend);
  const dir = tempDir("loom-crash-");
  const home = join(dir, "home");
  const emu = provider === "echo" ? undefined : await startEmulator({
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
        ...(emu ? [`provider_options: { base_url: "${emu.baseURL}" }`] : []),
        `model: ${MODEL[provider]}`,
        "mode: batch",
        `batch: { max_requests: ${SHARDS} }`,
        "output: { path: out.csv }",
        "",
      ].join("\n"),
    );
    // A tiny settle window: a batch created just before a kill is listed at once here.
    const env: Record<string, string> = {
      LOOM_HOME: home,
      ...(state ? { LOOM_STATE: state } : {}),
      LOOM_SETTLE_SECONDS: "0.2",
      ...(emu ? { [KEY_ENV[provider as keyof typeof KEY_ENV]]: emu.apiKey } : {}),
    };
    const setup: Setup = {
      provider,
      state,
      dir,
      home,
      output: join(dir, "out.csv"),
      emu,
      run: (args) => runCli(args, { cwd: dir, env }),
      async crash(args, point) {
        const { child, done } = spawnCli(args, {
          cwd: dir,
          env: { ...env, LOOM_FAILPOINT: point },
        });
        const result = await done;
        assert.equal(
          result.signal,
          "SIGKILL",
          `${point}: the child should die by SIGKILL (code ${result.code})\n${result.stderr}`,
        );
        assert.equal(result.code, null);
        return { ...result, pid: child.pid! };
      },
      creations() {
        if (!emu) {
          const batches = join(home, "echo-batches");
          return existsSync(batches)
            ? readdirSync(batches).filter((f) => /^echobatch-[0-9a-f]+\.json$/.test(f)).length
            : 0;
        }
        return emu.log.count(CREATE[provider as keyof typeof CREATE]);
      },
      async jobs() {
        const listed = await runCli(["list", "--json"], { cwd: dir, env });
        assert.equal(listed.code, 0, listed.stderr);
        return listed.stdout.split("\n").filter(Boolean).map((line) =>
          JSON.parse(line) as ListedJob
        );
      },
    };
    await work(setup);
  } finally {
    await emu?.stop();
  }
}

/** The only job in LOOM_HOME, by `loom list --json`. */
async function onlyJob(s: Setup): Promise<ListedJob> {
  const jobs = await s.jobs();
  assert.equal(jobs.length, 1, `one job recorded: ${JSON.stringify(jobs)}`);
  return jobs[0];
}

/** The job is fully submitted: 3 shards, each with its own batch. */
function assertSubmitted(job: ListedJob): void {
  assert.notEqual(job.status, "submitting", JSON.stringify(job));
  assert.equal(job.shards.length, SHARDS);
  assert.deepEqual(job.shards.map((sh) => sh.requests), [3, 3, 1]);
  const ids = job.shards.map((sh) => sh.batch);
  assert.ok(
    ids.every((id) => typeof id === "string" && id),
    `every shard has a batch: ${JSON.stringify(ids)}`,
  );
  assert.equal(new Set(ids).size, SHARDS, `three different batches: ${JSON.stringify(ids)}`);
}

/** The complete output: every row answered, in input order, with its own columns kept. */
function expectedRows(provider: Provider): Record<string, string>[] {
  return PROMPTS.map((p, i) => ({
    id: String(i + 1),
    prompt: p,
    llm_response: answerOf(provider, p),
    llm_error: "",
  }));
}

function assertComplete(s: Setup): void {
  assert.ok(existsSync(s.output), "the output was written");
  const rows = parse(readFileSync(s.output), { columns: true }) as Record<string, string>[];
  assert.deepEqual(rows, expectedRows(s.provider));
}

/** The jobs recorded in LOOM_HOME's store (read directly; `loom list` would cost a process). */
function records(s: Setup): Promise<string[]> {
  return jobIdsIn(s.home, s.state);
}

/** Files in the job's folder besides the input, the job file and LOOM_HOME. */
function extraFiles(s: Setup): string[] {
  return readdirSync(s.dir).filter((f) => !["in.csv", "job.yaml", "home"].includes(f)).sort();
}

/** Batches a run killed at each submit point has created. */
const CREATED_BEFORE_KILL: Record<string, number> = {
  "submit:planned": 0,
  "submit:uploaded": 0,
  "submit:created@2": 2,
  "submit:recorded@1": 1,
};

/**
 * Submit crash: `loom run` dies at `point`, a rerun finishes the submission, a fetch merges.
 * Exactly one batch is created per shard; the record owns every batch the provider has.
 */
async function submitCrash(provider: Provider, point: string, backend?: Backend): Promise<void> {
  await withSetup(provider, async (s) => {
    await s.crash(["run", "job.yaml"], point);
    assert.ok(!existsSync(s.output));
    assert.equal(
      s.creations(),
      CREATED_BEFORE_KILL[point],
      `batches created before the kill at ${point}`,
    );

    const rerun = await s.run(["run", "job.yaml"]);
    assert.equal(rerun.code, 0, rerun.stderr);
    const job = await onlyJob(s);
    assertSubmitted(job);
    assert.match(rerun.stdout, new RegExp(`submitted job ${job.id}: 7 rows in 3 batches`));
    assert.equal(s.creations(), SHARDS, "one batch created per shard, the killed run's included");
    if (point.startsWith("submit:created")) {
      assert.ok(
        rerun.stderr.includes(`batch 2 adopted as ${job.shards[1].batch} `),
        `the lost batch is adopted:\n${rerun.stderr}`,
      );
    }

    const fetched = await s.run(["fetch", "--id", job.id]);
    assert.equal(fetched.code, 0, fetched.stderr);
    assertComplete(s);
    assert.deepEqual(extraFiles(s), ["out.csv"]);
    assert.equal(s.creations(), SHARDS, "fetching creates no batch");
    assert.deepEqual(await records(s), [], "a fully answered job's record is removed");
  }, backend);
}

/**
 * Fetch crash: after a clean submit, `loom fetch` dies at `point`; the output is absent or
 * complete (never partial), with at most the killed run's own temporary file beside it; a second
 * fetch writes the complete output and sweeps that file. No batch is created again.
 */
async function fetchCrash(provider: Provider, point: string, backend?: Backend): Promise<void> {
  await withSetup(provider, async (s) => {
    const submitted = await s.run(["run", "job.yaml"]);
    assert.equal(submitted.code, 0, submitted.stderr);
    const job = await onlyJob(s);
    assertSubmitted(job);
    assert.equal(s.creations(), SHARDS);

    const killed = await s.crash(["fetch", "--id", job.id], point);
    // Loom's own temporary file: `.out.csv.<pid>.loom-tmp`, or `.out.csv.<pid>.<n>.loom-tmp`.
    const ownTemp = new RegExp(`^\\.out\\.csv\\.${killed.pid}(\\.\\d+)?\\.loom-tmp$`);
    const extra = extraFiles(s);
    if (point === "fetch:merged") {
      assert.deepEqual(
        extra,
        ["out.csv"],
        "the output is in place when the process dies after writing it",
      );
      assertComplete(s);
    } else {
      assert.ok(!extra.includes("out.csv"), "no output before the merge has finished");
      assert.ok(
        extra.every((f) => ownTemp.test(f)),
        `only Loom's own temporary file is left: ${JSON.stringify(extra)}`,
      );
    }
    assert.deepEqual(await records(s), [job.id], "the job's record survives the kill");

    const again = await s.run(["fetch", "--id", job.id]);
    assert.equal(again.code, 0, again.stderr);
    assertComplete(s);
    assert.deepEqual(extraFiles(s), ["out.csv"], "the killed run's temporary file is swept");
    assert.equal(s.creations(), SHARDS, "no batch is created again");
    assert.deepEqual(await records(s), [], "a fully answered job's record is removed");
  }, backend);
}

/**
 * Killed right after creating a batch on every run: each rerun adopts the batch the last run
 * lost, creates the next one and dies; the fourth run adopts the last. Still one batch per shard.
 */
async function crashEveryRun(provider: Provider): Promise<void> {
  await withSetup(provider, async (s) => {
    for (let killed = 1; killed <= SHARDS; killed++) {
      await s.crash(["run", "job.yaml"], "submit:created@1");
      assert.equal(s.creations(), killed, `after kill ${killed}`);
    }
    const rerun = await s.run(["run", "job.yaml"]);
    assert.equal(rerun.code, 0, rerun.stderr);
    const job = await onlyJob(s);
    assertSubmitted(job);
    assert.ok(rerun.stderr.includes(`batch 3 adopted as ${job.shards[2].batch} `), rerun.stderr);
    assert.equal(s.creations(), SHARDS);
    const fetched = await s.run(["fetch", "--id", job.id]);
    assert.equal(fetched.code, 0, fetched.stderr);
    assertComplete(s);
    assert.equal(s.creations(), SHARDS);
  });
}

/** A submit killed after creating batch 2 is finished by `loom fetch --id` too, which then merges. */
async function fetchFinishesSubmit(provider: Provider): Promise<void> {
  await withSetup(provider, async (s) => {
    await s.crash(["run", "job.yaml"], "submit:created@2");
    const job = await onlyJob(s);
    assert.equal(job.status, "submitting");
    const fetched = await s.run(["fetch", "--id", job.id]);
    assert.equal(fetched.code, 0, fetched.stderr);
    assert.match(fetched.stderr, /batch 2 adopted as /);
    assertComplete(s);
    assert.deepEqual(extraFiles(s), ["out.csv"]);
    assert.equal(s.creations(), SHARDS);
    assert.deepEqual(await records(s), [], "a fully answered job's record is removed");
  });
}

const SUBMIT_POINTS = [
  "submit:planned",
  "submit:uploaded",
  "submit:created@2",
  "submit:recorded@1",
];
const FETCH_POINTS = ["fetch:saving@2", "fetch:saved@1", "fetch:merging@4", "fetch:merged"];

/** Providers whose batches carry no label, and how their batch ids look. */
const UNLABELLED: Partial<Record<Provider, RegExp>> = {
  anthropic: /could be it: (msgbatch_\w+)/,
  openrouter: /could be it: (batch_\w+)/,
};

/**
 * SIGKILL while the create of batch 2 waits for an answer that never comes (the emulator made the
 * batch, and lists it only after two list calls): the rerun looks for it over the settle window
 * and never creates it blindly. Labelled batches (OpenAI, Gemini) are adopted; an unlabelled one
 * (Anthropic, OpenRouter) is named, and `loom adopt` settles it.
 */
async function killedDuringCreate(provider: keyof typeof CREATE_PATH): Promise<void> {
  await withSetup(provider, async (s) => {
    s.emu!.faults.add({
      name: "unanswered",
      match: { method: "POST", path: CREATE_PATH[provider], every: 2, first: 2 },
      action: { kind: "lost", answer: "never", listedAfter: 2 },
    });
    const { child, done } = spawnCli(["run", "job.yaml"], {
      cwd: s.dir,
      env: { LOOM_HOME: s.home, LOOM_SETTLE_SECONDS: "0.3", [KEY_ENV[provider]]: s.emu!.apiKey },
    });
    while (s.creations() < 2) await new Promise((resolve) => setTimeout(resolve, 20));
    child.kill("SIGKILL");
    assert.equal((await done).signal, "SIGKILL");
    const job = await onlyJob(s);
    assert.equal(job.status, "submitting");
    let rerun = await s.run(["run", "job.yaml"]);
    const unlabelled = UNLABELLED[provider];
    if (unlabelled) {
      assert.equal(rerun.code, 2, rerun.stderr);
      assert.equal(s.creations(), 2, "the rerun creates nothing while batch 2 is in doubt");
      const lost = unlabelled.exec(rerun.stderr)?.[1];
      assert.ok(lost, rerun.stderr);
      assert.equal((await s.run(["adopt", job.id, lost])).code, 0);
      rerun = await s.run(["run", "job.yaml"]);
    }
    assert.equal(rerun.code, 0, rerun.stderr);
    assertSubmitted(await onlyJob(s));
    assert.equal(
      s.creations(),
      SHARDS,
      "one batch per shard: the unanswered create was not sent again",
    );
    const fetched = await s.run(["fetch", "--id", job.id]);
    assert.equal(fetched.code, 0, fetched.stderr);
    assertComplete(s);
  });
}

for (const provider of ["openai", "google", "anthropic", "openrouter"] as const) {
  describe(`batch crash while a create is unanswered: ${provider} (emulator)`, () => {
    it("SIGKILL while batch 2's create waits; the rerun looks for it first, one batch per shard", () =>
      killedDuringCreate(provider));
  });
}

describe("batch crash and rerun: echo", () => {
  for (const point of SUBMIT_POINTS.filter((p) => p !== "submit:uploaded")) {
    it(`SIGKILL at ${point}; a rerun submits the rest, one batch per shard, complete output`, () =>
      submitCrash("echo", point));
  }
  for (const point of FETCH_POINTS) {
    it(`SIGKILL at ${point}; no partial output, a second fetch writes it whole`, () =>
      fetchCrash("echo", point));
  }
  it("SIGKILL after creating a batch on three runs in a row; the fourth adopts the last, one batch per shard", () =>
    crashEveryRun("echo"));
  it("SIGKILL at submit:created@2; `loom fetch --id` adopts the lost batch, submits the rest and merges", () =>
    fetchFinishesSubmit("echo"));
  it(
    "SIGKILL at submit:created@2; a plain `loom fetch` does not pass over the interrupted job",
    async () => {
      await withSetup("echo", async (s) => {
        await s.crash(["run", "job.yaml"], "submit:created@2");
        const job = await onlyJob(s);
        const fetched = await s.run(["fetch"]);
        const said = `${fetched.stdout}${fetched.stderr}`;
        assert.ok(said.includes(job.id), `loom fetch mentions job ${job.id}:\n${said}`);
      });
    },
  );
});

describe("batch crash and rerun: openai (emulator)", () => {
  for (const point of SUBMIT_POINTS) {
    it(`SIGKILL at ${point}; a rerun submits the rest (adopting by metadata), one batch per shard`, () =>
      submitCrash("openai", point));
  }
  for (const point of FETCH_POINTS) {
    it(`SIGKILL at ${point}; no partial output, a second fetch writes it whole`, () =>
      fetchCrash("openai", point));
  }
  it("SIGKILL after creating a batch on three runs in a row; the fourth adopts the last, one batch per shard", () =>
    crashEveryRun("openai"));
  it("SIGKILL at submit:created@2; `loom fetch --id` adopts the lost batch, submits the rest and merges", () =>
    fetchFinishesSubmit("openai"));
});

describe("batch crash and rerun: openai (emulator), PostgreSQL store", () => {
  for (const point of SUBMIT_POINTS) {
    it(`SIGKILL at ${point}; a rerun submits the rest, one batch per shard`, () =>
      submitCrash("openai", point, "postgres"));
  }
  for (const point of FETCH_POINTS) {
    it(`SIGKILL at ${point}; no partial output, a second fetch writes it whole`, () =>
      fetchCrash("openai", point, "postgres"));
  }
});

describe("batch crash and rerun: google (emulator)", () => {
  // Small batches are sent inline (no upload), so `submit:uploaded` is never reached here.
  for (const point of ["submit:planned", "submit:created@2", "submit:recorded@1"]) {
    it(`SIGKILL at ${point}; a rerun submits the rest (adopting by display name), one batch per shard`, () =>
      submitCrash("google", point));
  }
  it("SIGKILL at fetch:merging@4; no partial output, a second fetch writes it whole", () =>
    fetchCrash("google", "fetch:merging@4"));
});

/** The batch ids an unlabelled provider lists, newest first, straight from the emulator. */
async function listedBatches(
  provider: "anthropic" | "openrouter",
  emu: Emulator,
): Promise<string[]> {
  const response = provider === "anthropic"
    ? await fetch(`${emu.url}/v1/messages/batches?limit=100`, {
      headers: { "x-api-key": emu.apiKey, "anthropic-version": "2023-06-01" },
    })
    : await fetch(`${emu.url}/api/v1/batches?limit=100`, {
      headers: { authorization: `Bearer ${emu.apiKey}` },
    });
  assert.equal(response.status, 200);
  return ((await response.json()) as { data: Array<{ id: string }> }).data.map((b) => b.id);
}

/**
 * A job of a provider without labels killed at `submit:created@2`: batch 1 is recorded, batch 2
 * exists remotely but the record does not know it. Runs `check` with the job, the lost batch and
 * batch 1.
 */
async function unlabelledLostBatch(
  provider: "anthropic" | "openrouter",
  check: (s: Setup, job: ListedJob, lost: string, owned: string) => Promise<void>,
): Promise<void> {
  await withSetup(provider, async (s) => {
    await s.crash(["run", "job.yaml"], "submit:created@2");
    assert.equal(s.creations(), 2);
    const job = await onlyJob(s);
    assert.equal(job.status, "submitting");
    const owned = job.shards.map((sh) => sh.batch).filter((id): id is string => id !== null);
    assert.equal(owned.length, 1, "the record knows batch 1 only");
    const lost = (await listedBatches(provider, s.emu!)).filter((id) => !owned.includes(id));
    assert.equal(lost.length, 1, "the killed run created one batch the record does not know");
    await check(s, job, lost[0], owned[0]);
  });
}

for (const provider of ["anthropic", "openrouter"] as const) {
  describe(`batch crash and rerun: ${provider} (emulator)`, () => {
    for (const point of ["submit:planned", "submit:recorded@1"]) {
      it(`SIGKILL at ${point}; a rerun submits the rest, one batch per shard`, () =>
        submitCrash(provider, point));
    }
    // Every fetch point for OpenRouter, whose results come inline in the batch's own GET.
    for (const point of provider === "openrouter" ? FETCH_POINTS : ["fetch:saved@1"]) {
      it(`SIGKILL at ${point}; no partial output, a second fetch writes it whole`, () =>
        fetchCrash(provider, point));
    }

    it("SIGKILL at submit:created@2: batches carry no label, so the rerun creates none and names the lost batch", async () => {
      await unlabelledLostBatch(provider, async (s, job, lost) => {
        for (const args of [["run", "job.yaml"], ["fetch", "--id", job.id]]) {
          const refused = await s.run(args);
          assert.equal(
            refused.code,
            2,
            `loom ${args[0]} stops\n${refused.stdout}${refused.stderr}`,
          );
          assert.ok(
            refused.stderr.includes(lost),
            `loom ${args[0]} names the lost batch ${lost}:\n${refused.stderr}`,
          );
          assert.match(refused.stderr, new RegExp(`loom adopt ${job.id} <batch-id>`));
          assert.equal(s.creations(), 2, `loom ${args[0]} creates no batch`);
        }
        assert.ok(!existsSync(s.output));
        assert.equal((await onlyJob(s)).status, "submitting");
        // The user settles it: that batch is the lost one. The rerun then submits only batch 3.
        const adopted = await s.run(["adopt", job.id, lost]);
        assert.equal(adopted.code, 0, adopted.stderr);
        const rerun = await s.run(["run", "job.yaml"]);
        assert.equal(rerun.code, 0, rerun.stderr);
        assert.equal(s.creations(), SHARDS, "one batch per shard, the adopted one included");
        const fetched = await s.run(["fetch", "--id", job.id]);
        assert.equal(fetched.code, 0, fetched.stderr);
        assertComplete(s);
      });
    });

    it(
      "SIGKILL at submit:created@2: the message names only batches the job does not own already",
      async () => {
        await unlabelledLostBatch(provider, async (s, _job, lost, owned) => {
          const refused = await s.run(["run", "job.yaml"]);
          assert.equal(refused.code, 2, refused.stderr);
          assert.ok(refused.stderr.includes(lost), refused.stderr);
          assert.ok(
            !refused.stderr.includes(owned),
            `batch 1 (${owned}) is the job's own, not a candidate for batch 2:\n${refused.stderr}`,
          );
        });
      },
    );
  });
}
