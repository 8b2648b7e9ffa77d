/**
 * State for a team: two "machines" (two working directories with the same checkout, two
 * `LOOM_HOME`s, two host ids) sharing one real PostgreSQL server, with real `loom` child
 * processes and the OpenAI emulator on loopback. Machine A submits; machine B lists, fetches and
 * merges; two fetches at once merge once; a holder killed mid-merge leaves a lease the other takes
 * over once it expires; a cached answer one machine paid for is a hit for the other.
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { parse } from "csv-parse/sync";
import type { Emulator } from "../../emulator/mod.ts";
import {
  BATCH_MODEL,
  CREATE,
  startBatchEmulator,
  writeBatchJob,
} from "../test-support/batch-providers.ts";
import { type PostgresServer, startPostgres } from "../test-support/postgres.ts";
import { type CliResult, runCli, spawnCli } from "../test-support/run-cli.ts";
import { tempDir } from "../test-support/temp.ts";
import { createPostgresStorage } from "../../plugins/storage/postgres/mod.ts";
import { listRuns } from "../run/record.ts";

const PROMPTS = ["name a colour", "count to three", "spell loom", "say hello", "a prime"];

let server: PostgresServer;
let emu: Emulator;

before(async () => {
  server = await startPostgres();
  emu = await startBatchEmulator("openai");
});

after(async () => {
  await emu?.stop();
  await server?.stop();
});

/** One machine: its own checkout (same files), `LOOM_HOME` and host id, on the shared store. */
interface Machine {
  readonly dir: string;
  loom(args: string[], env?: Record<string, string>): Promise<CliResult>;
  output(): Record<string, string>[];
}

function machine(name: string, state: string, extra: Record<string, string> = {}): Machine {
  const dir = tempDir(`loom-team-${name}-`);
  writeBatchJob(dir, {
    provider: "openai",
    baseURL: emu.baseURL,
    prompts: PROMPTS,
    maxRequests: 2,
  });
  const env = {
    LOOM_HOME: join(dir, ".loom"),
    LOOM_STATE: state,
    LOOM_HOST_ID: `machine-${name}`,
    OPENAI_API_KEY: emu.apiKey,
    LOOM_SETTLE_SECONDS: "0.2",
    ...extra,
  };
  return {
    dir,
    loom: (args, more = {}) => runCli(args, { cwd: dir, env: { ...env, ...more } }),
    output: () =>
      parse(readFileSync(join(dir, "out.csv")), { columns: true }) as Record<string, string>[],
  };
}

function submittedId(result: CliResult): string {
  assert.equal(result.code, 0, result.stderr);
  return /submitted job (\S+):/.exec(result.stdout)![1];
}

function assertAnswered(rows: Record<string, string>[]): void {
  assert.deepEqual(
    rows.map((r) => r.llm_response),
    PROMPTS.map((p) => `[${BATCH_MODEL.openai}] ${p}`),
  );
}

describe("a team sharing one PostgreSQL store", () => {
  it("machine A submits; machine B lists, fetches and merges into its own checkout", async () => {
    const state = await server.createDatabase();
    const a = machine("a", state);
    const b = machine("b", state);
    const created = emu.log.count(CREATE.openai);
    const id = submittedId(await a.loom(["run", "job.yaml"]));
    assert.equal(emu.log.count(CREATE.openai) - created, 3, "three shards, three batches");

    const listed = await b.loom(["list", "--json"]);
    assert.equal(listed.code, 0, listed.stderr);
    assert.deepEqual(
      listed.stdout.split("\n").filter(Boolean).map((l) => JSON.parse(l).id),
      [id],
    );
    const fetched = await b.loom(["fetch"]);
    assert.equal(fetched.code, 0, fetched.stderr);
    assertAnswered(b.output());
    assert.ok(!existsSync(join(a.dir, "out.csv")), "A's checkout is not written by B");
    const after = await a.loom(["list", "--json"]);
    assert.equal(after.stdout.trim(), "", "merged with every row answered: the job is gone");
    assert.equal(emu.log.count(CREATE.openai) - created, 3, "nothing was submitted again");
  });

  it("machine B refuses to merge when its input is missing or differs, naming the file", async () => {
    const state = await server.createDatabase();
    const a = machine("a", state);
    const b = machine("b", state);
    const id = submittedId(await a.loom(["run", "job.yaml"]));
    writeFileSync(join(b.dir, "in.csv"), "id,prompt\n1,something else\n");
    const differs = await b.loom(["fetch", "--id", id]);
    assert.equal(differs.code, 2, differs.stderr);
    assert.match(differs.stderr, /in\.csv changed since job/);
    assert.ok(!existsSync(join(b.dir, "out.csv")));
    // Nowhere to be found: not in B's checkout, not where A had it.
    rmSync(join(b.dir, "in.csv"));
    renameSync(join(a.dir, "in.csv"), join(a.dir, "in.csv.aside"));
    const missing = await b.loom(["fetch", "--id", id]);
    renameSync(join(a.dir, "in.csv.aside"), join(a.dir, "in.csv"));
    assert.equal(missing.code, 2, missing.stderr);
    assert.match(missing.stderr, /^loom: [^\n]*in\.csv/m);
    assert.ok(!existsSync(join(b.dir, "out.csv")));
    // The job is intact: A merges it.
    const merged = await a.loom(["fetch", "--id", id]);
    assert.equal(merged.code, 0, merged.stderr);
    assertAnswered(a.output());
  });

  it("two machines fetching at once merge the job once", async () => {
    const state = await server.createDatabase();
    const a = machine("a", state);
    const b = machine("b", state);
    const id = submittedId(await a.loom(["run", "job.yaml"]));
    const [ra, rb] = await Promise.all([
      a.loom(["fetch", "--id", id]),
      b.loom(["fetch", "--id", id]),
    ]);
    const merged = [ra, rb].filter((r) => r.code === 0 && /wrote /.test(r.stdout));
    assert.equal(
      merged.length,
      1,
      `one merge:\nA: ${ra.stdout}${ra.stderr}\nB: ${rb.stdout}${rb.stderr}`,
    );
    const other = merged[0] === ra ? rb : ra;
    assert.match(
      other.stdout + other.stderr,
      /being worked on by another Loom \(pid \d+ on machine-[ab]\)|already merged|no batch job/,
    );
    const wrote = [a, b].filter((m) => existsSync(join(m.dir, "out.csv")));
    assert.equal(wrote.length, 1, "one output written");
    assertAnswered(wrote[0].output());
  });

  it("a holder killed mid-merge leaves a lease the other machine takes over once it expires", async () => {
    const state = await server.createDatabase();
    // A's lease lasts 3 s: B, on another host, cannot tell that A is gone before it expires.
    const a = machine("a", state, { LOOM_LEASE_SECONDS: "3" });
    const b = machine("b", state);
    const id = submittedId(await a.loom(["run", "job.yaml"]));
    const killed = await spawnCli(["fetch", "--id", id], {
      cwd: a.dir,
      env: {
        LOOM_HOME: join(a.dir, ".loom"),
        LOOM_STATE: state,
        LOOM_HOST_ID: "machine-a",
        LOOM_LEASE_SECONDS: "3",
        OPENAI_API_KEY: emu.apiKey,
        LOOM_FAILPOINT: "fetch:saved@2",
      },
    }).done;
    assert.equal(killed.signal, "SIGKILL", killed.stderr);
    const busy = await b.loom(["fetch", "--id", id]);
    assert.equal(busy.code, 2, busy.stderr);
    assert.match(busy.stderr, /being worked on by another Loom \(pid \d+ on machine-a\)/);
    const waited = await b.loom(["fetch", "--id", id, "--wait", "--poll", "0.5"]);
    assert.equal(waited.code, 0, waited.stderr);
    assertAnswered(b.output());
    assert.ok(!existsSync(join(a.dir, "out.csv")), "the killed merge wrote nothing");
  });

  it("shares the response cache: an answer one machine paid for is a hit for the other", async () => {
    const state = await server.createDatabase();
    const a = machine("a", state);
    const b = machine("b", state);
    const sync = ["run", "job.yaml", "--sync", "--force"];
    const first = await a.loom(sync);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, new RegExp(`${PROMPTS.length} answered, 0 from cache`));
    const second = await b.loom(sync);
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stdout, new RegExp(`0 answered, ${PROMPTS.length} from cache`));
    assertAnswered(b.output());
    // Both runs are recorded in the shared store, each with its machine and its own figures.
    const store = await createPostgresStorage({ url: state });
    try {
      const runs = (await listRuns(store.runs!)).reverse();
      assert.deepEqual(
        runs.map((r) => [r.host, r.status, r.rows, r.answered, r.cached, r.failed]),
        [
          ["machine-a", "finished", PROMPTS.length, PROMPTS.length, 0, 0],
          ["machine-b", "finished", PROMPTS.length, PROMPTS.length, PROMPTS.length, 0],
        ],
      );
      assert.ok(runs[0].outputTokens > 0, "the first run's calls reported tokens");
      assert.equal(runs[1].outputTokens, 0, "the second paid for nothing");
    } finally {
      await store.close();
    }
  });
});
