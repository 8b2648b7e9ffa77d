/**
 * Fetch hardening (issue 11): how a results reader's errors are told apart, the overwrite rule
 * of fetch, a clean-up that is cut off, and the lock while `--wait` polls. The provider is the
 * offline echo provider, wrapped as a plugin where a test needs it to misbehave.
 */
import assert from "node:assert/strict";
import {
  existsSync,
  linkSync,
  readFileSync,
  renameSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { parse } from "csv-parse/sync";
import {
  LoomError,
  LoomIncompleteResultsError,
  LoomProviderError,
  LoomUsageError,
} from "../base/errors.ts";
import { Registry } from "../plugins/registry.ts";
import { createEchoProvider } from "../../plugins/providers/echo/mod.ts";
import { loadJob } from "../job/load.ts";
import { runJob } from "../commands/run.ts";
import type { BatchApi } from "../spec/provider.ts";
import { runCli, spawnCli } from "../test-support/run-cli.ts";
import { tempDir } from "../test-support/temp.ts";
import { cancelJob, fetchJobs, jobStatus, listJobs, retryJob } from "./jobs.ts";
import { JobStore } from "./store.ts";
import type { StorageV2 } from "../spec/storage.ts";
import { jobIdsIn, openHomeStore, withHomeStore } from "../test-support/state.ts";

const ROWS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf"];

/** Replaces parts of echo's batch API; `batch` is echo's own. */
type Tweak = (batch: BatchApi) => Partial<BatchApi>;

/** A batch job over ROWS (3 requests a batch) with the plugin provider `tweaked`: echo with `tweak` applied. */
function setup(tweak: Tweak = () => ({}), providerOptions = "{}") {
  const dir = tempDir();
  const env = { LOOM_HOME: join(dir, "home") };
  const registry = new Registry();
  registry.register({
    apiVersion: 1,
    kind: "provider",
    name: "tweaked",
    create: (options, context) => {
      const echo = createEchoProvider(options as Record<string, unknown>, context.home);
      const batch = echo.batch!;
      const own: BatchApi = {
        limits: batch.limits,
        itemBytes: batch.itemBytes.bind(batch),
        submit: batch.submit.bind(batch),
        status: batch.status.bind(batch),
        results: batch.results.bind(batch),
        cancel: batch.cancel.bind(batch),
        find: batch.find!.bind(batch),
      };
      return { ...echo, name: "tweaked", batch: { ...own, ...tweak(own) } };
    },
  });
  writeFileSync(
    join(dir, "in.csv"),
    `id,text\n${ROWS.map((r, i) => `${i + 1},${r}`).join("\n")}\n`,
  );
  writeFileSync(
    join(dir, "job.yaml"),
    `dataset: { path: in.csv }\nprompt: { column: text }\nprovider: tweaked\nprovider_options: ${providerOptions}\nmodel: m\n` +
      `output: { path: out.csv }\nbatch: { max_requests: 3 }\n`,
  );
  const opts = {
    env,
    cwd: dir,
    registry,
    retry: { maxAttempts: 2, baseDelayMs: 1, maxDelayMs: 1, maxTotalWaitMs: 50 },
  };
  const submit = async (options: Parameters<typeof runJob>[1] = {}) =>
    runJob(await loadJob({ file: join(dir, "job.yaml"), cwd: dir }), { ...opts, ...options });
  const out = join(dir, "out.csv");
  const output = () => parse(readFileSync(out), { columns: true }) as Record<string, string>[];
  // The job's record as the store holds it now.
  const load = (id: string) => withHomeStore(env.LOOM_HOME, (s) => new JobStore(s, env).load(id));
  return { dir, env, out, submit, output, opts, store: { load } };
}

/** A reader that yields the first outcome of each batch, then throws `error()`. */
function breaksAfterOne(error: () => unknown): Tweak {
  return (batch) => ({
    async *results(handle, ids, options) {
      for await (const outcome of batch.results(handle, ids, options)) {
        yield outcome;
        throw error();
      }
    },
  });
}

describe("fetch: a results reader's errors", () => {
  it("a plain error (a plugin bug) fails the fetch: nothing merged, the shard is read again next time", async () => {
    let broken = true;
    const t = setup((batch) => ({
      async *results(handle, ids, options) {
        for await (const outcome of batch.results(handle, ids, options)) {
          yield outcome;
          if (broken) {
            throw new TypeError("cannot read properties of undefined (reading 'content')");
          }
        }
      },
    }));
    const { job } = await t.submit();
    await assert.rejects(fetchJobs([job!.id], t.opts), (e: unknown) => {
      assert.ok(LoomError.isInstance(e), String(e));
      assert.match(
        e.message,
        /results of batch 1 could not be read: cannot read properties of undefined/,
      );
      assert.match(e.message, new RegExp(`Nothing was merged.*loom fetch --id ${job!.id}`));
      return true;
    });
    assert.ok(!existsSync(t.out), "no partial output");
    const record = (await t.store.load(job!.id))!;
    assert.equal(record.status, "pending");
    assert.equal(record.shards[0].state, "unknown");
    assert.equal(record.shards[0].fetched, undefined, "the shard is not marked fetched");
    // The bug is fixed (a new plugin version): the next fetch reads the shard again, whole.
    broken = false;
    const [fetched] = await fetchJobs([job!.id], t.opts);
    assert.ok(
      !("error" in fetched) && fetched.summary?.ok === 7 && fetched.summary.errors === 0,
      JSON.stringify(fetched),
    );
    assert.deepEqual(t.output().map((r) => r.llm_response), ROWS);
  });

  it("LoomIncompleteResultsError merges what was read and names the reason on the other rows", async () => {
    const t = setup(
      breaksAfterOne(() =>
        new LoomIncompleteResultsError("tweaked: 2 result lines could not be read")
      ),
    );
    const { job } = await t.submit();
    const [fetched] = await fetchJobs([job!.id], t.opts);
    assert.ok(!("error" in fetched), JSON.stringify(fetched));
    assert.deepEqual(
      [fetched.summary?.ok, fetched.summary?.errors],
      [3, 4],
      "one answer read from each of the 3 batches",
    );
    const rows = t.output();
    assert.equal(rows[0].llm_response, "alpha");
    assert.match(
      rows[1].llm_error,
      /some results could not be read: tweaked: 2 result lines could not be read/,
    );
  });

  it("recognises the typed error from another copy of Loom (by its marker)", async () => {
    // What a plugin bundling its own copy of Loom throws: not this copy's class, but marked.
    const foreign = () =>
      Object.assign(new Error("tweaked: results archived"), {
        [Symbol.for("loom.error")]: true,
        [Symbol.for("loom.incomplete-results")]: true,
      });
    const t = setup(breaksAfterOne(foreign));
    const { job } = await t.submit();
    const [fetched] = await fetchJobs([job!.id], t.opts);
    assert.ok(!("error" in fetched) && fetched.summary?.ok === 3, JSON.stringify(fetched));
  });

  it("a retryable provider error that outlasts the retries fails the fetch too, the job intact", async () => {
    let calls = 0;
    const t = setup(
      breaksAfterOne(
        () => (calls++, new LoomProviderError("tweaked: connection reset", { retryable: true })),
      ),
    );
    const { job } = await t.submit();
    await assert.rejects(fetchJobs([job!.id], t.opts), /connection reset/);
    assert.equal(calls, 2, "downloaded again once (maxAttempts 2), then given up");
    assert.ok(!existsSync(t.out));
    assert.equal((await t.store.load(job!.id))!.shards[0].fetched, undefined);
  });
});

describe("an output that is the input through a link", () => {
  for (const mode of ["sync", "batch"] as const) {
    for (const kind of ["symbolic", "hard"] as const) {
      it(`${mode}: -o through a ${kind} link to the input is refused and the input kept`, async () => {
        const t = setup();
        const input = join(t.dir, "in.csv");
        const before = readFileSync(input, "utf8");
        (kind === "symbolic" ? symlinkSync : linkSync)(input, join(t.dir, "link.csv"));
        writeFileSync(
          join(t.dir, "job.yaml"),
          readFileSync(join(t.dir, "job.yaml"), "utf8").replace("out.csv", "link.csv") +
            `mode: ${mode}\n`,
        );
        await assert.rejects(t.submit({ force: true }), /overwrite the input/);
        assert.equal(readFileSync(input, "utf8"), before);
        assert.equal((await listJobs(t.opts)).records.length, 0, "nothing submitted");
      });
    }
  }

  it("fetch: an output made a link to the input after submission is refused, the job kept", async () => {
    const t = setup();
    const { job } = await t.submit();
    const input = join(t.dir, "in.csv");
    const before = readFileSync(input, "utf8");
    linkSync(input, t.out);
    // Said as such (not as an invalid job to edit), on one line, with the job kept.
    await assert.rejects(
      fetchJobs([job!.id], { ...t.opts, overwrite: true }),
      new RegExp(`out\\.csv is now the input \\(a link to it\\).*job ${job!.id} stays fetchable`),
    );
    assert.equal(readFileSync(input, "utf8"), before);
    assert.equal((await t.store.load(job!.id))?.status, "pending");
  });
});

describe("fetch: an existing output", () => {
  it("is refused without a terminal to ask on; the job stays fetchable; overwrite replaces it", async () => {
    const t = setup();
    const { job } = await t.submit();
    writeFileSync(t.out, "mine\n");
    await assert.rejects(fetchJobs([job!.id], t.opts), (e: unknown) => {
      assert.ok(e instanceof LoomUsageError && e.exitCode === 2, String(e));
      assert.match(
        e.message,
        new RegExp(
          `out\\.csv exists; pass --force to overwrite it \\(job ${job!.id} stays fetchable\\)`,
        ),
      );
      return true;
    });
    assert.equal(readFileSync(t.out, "utf8"), "mine\n");
    assert.equal((await t.store.load(job!.id))?.status, "pending");
    const [fetched] = await fetchJobs([job!.id], { ...t.opts, overwrite: true });
    assert.ok(!("error" in fetched) && fetched.summary?.ok === 7);
    assert.equal(t.output().length, 7);
  });

  it("asks when it can: no keeps the file, yes overwrites it", async () => {
    const t = setup();
    const { job } = await t.submit();
    writeFileSync(t.out, "mine\n");
    const asked: string[] = [];
    const answer = (yes: boolean) => (path: string) => (asked.push(path), Promise.resolve(yes));
    await assert.rejects(
      fetchJobs([job!.id], { ...t.opts, confirmOverwrite: answer(false) }),
      /was left as it was/,
    );
    assert.equal(readFileSync(t.out, "utf8"), "mine\n");
    const [fetched] = await fetchJobs([job!.id], { ...t.opts, confirmOverwrite: answer(true) });
    assert.ok(!("error" in fetched) && fetched.summary?.ok === 7);
    assert.deepEqual(asked, [t.out, t.out]);
  });

  it("the job's own output (merged before a retry) is replaced without asking", async () => {
    const t = setup(() => ({}), "{ fail_on: echo }");
    const { job } = await t.submit();
    await fetchJobs([job!.id], t.opts);
    assert.match(t.output()[4].llm_error, /fail_on/);
    await retryJob(job!.id, t.opts);
    const [again] = await fetchJobs([job!.id], t.opts);
    assert.ok(!("error" in again) && again.summary?.ok === 6, JSON.stringify(again));
  });

  it("`loom fetch` exits 2 and keeps the file; `--force` overwrites it", async () => {
    const t = setup();
    writeFileSync(
      join(t.dir, "job.yaml"),
      readFileSync(join(t.dir, "job.yaml"), "utf8").replace("provider: tweaked", "provider: echo"),
    );
    const run = await runCli(["run", "job.yaml"], { cwd: t.dir, env: t.env });
    assert.equal(run.code, 0, run.stderr);
    const id = /submitted job (\S+):/.exec(run.stdout)![1];
    writeFileSync(t.out, "mine\n");
    const refused = await runCli(["fetch", "--id", id], { cwd: t.dir, env: t.env });
    assert.equal(refused.code, 2, refused.stderr);
    assert.match(refused.stderr, /^loom: .*out\.csv exists; pass --force to overwrite it/m);
    assert.equal(readFileSync(t.out, "utf8"), "mine\n");
    const forced = await runCli(["fetch", "--id", id, "--force"], { cwd: t.dir, env: t.env });
    assert.equal(forced.code, 0, forced.stderr);
    assert.equal(t.output().length, 7);
  });
});

describe("fetch: clean-up cut off by a kill", () => {
  for (const point of ["fetch:cleanup", "fetch:removing"]) {
    it(`SIGKILL at ${point}: the output is whole, fetch and retry say the job is merged, nothing is stranded`, async () => {
      const t = setup();
      writeFileSync(
        join(t.dir, "job.yaml"),
        readFileSync(join(t.dir, "job.yaml"), "utf8").replace(
          "provider: tweaked",
          "provider: echo",
        ),
      );
      const cli = (args: string[], env: Record<string, string> = {}) =>
        runCli(args, { cwd: t.dir, env: { ...t.env, ...env } });
      const run = await cli(["run", "job.yaml"]);
      const id = /submitted job (\S+):/.exec(run.stdout)![1];
      const { done } = spawnCli(["fetch", "--id", id], {
        cwd: t.dir,
        env: { ...t.env, LOOM_FAILPOINT: point },
      });
      assert.equal((await done).signal, "SIGKILL");
      assert.equal(t.output().length, 7, "the output was written before the clean-up");
      // A plain `loom fetch` finishes the clean-up too.
      const plain = await cli(["fetch"]);
      assert.equal(plain.code, 0, plain.stderr);
      assert.deepEqual(await jobIdsIn(t.env.LOOM_HOME), [], "no job left after a plain fetch");
      for (const args of [["fetch", "--id", id], ["retry", id], ["list"], ["fetch"]]) {
        const said = await cli(args);
        assert.doesNotMatch(said.stderr, /\n\s+at /, `no stack trace from loom ${args.join(" ")}`);
        assert.ok(
          said.code === 0 || said.code === 2,
          `loom ${args.join(" ")}: ${said.code}\n${said.stderr}`,
        );
        if (args[0] === "fetch" && args[1] === "--id") {
          assert.match(said.stdout + said.stderr, /already merged|no batch job/);
        }
      }
      assert.deepEqual(await jobIdsIn(t.env.LOOM_HOME), [], "the job is gone");
    });
  }

  it("a job whose saved results vanished: retry says so in one line, no stack trace", async () => {
    const t = setup(() => ({}), "{ fail_on: echo }");
    const { job } = await t.submit();
    await fetchJobs([job!.id], t.opts);
    await withHomeStore(t.env.LOOM_HOME, async (real) => {
      // The store as it would be had the shard's results been deleted behind Loom's back.
      const vanished: StorageV2 = {
        specificationVersion: real.specificationVersion,
        name: real.name,
        location: real.location,
        jobs: real.jobs,
        results: {
          put: (job, shard, rows) => real.results.put(job, shard, rows),
          has: () => Promise.resolve(false),
          read: (job, shard) => real.results.read(job, shard),
        },
        attachments: real.attachments,
        leases: real.leases,
        cache: real.cache,
        close: () => Promise.resolve(),
      };
      await assert.rejects(retryJob(job!.id, { ...t.opts, store: vanished }), (e: unknown) => {
        assert.ok(LoomError.isInstance(e), `a Loom error, not ${String(e)}`);
        assert.match(e.message, /saved results of batch 1 are missing/);
        return true;
      });
    });
  });
});

describe("fetch --wait", () => {
  it("does not hold the job's lock while it waits: status and cancel work meanwhile", async () => {
    const t = setup(() => ({}), "{ batch_polls: 1000 }");
    const { job } = await t.submit();
    let polled!: () => void;
    const firstPoll = new Promise<void>((resolve) => (polled = resolve));
    const waiting = fetchJobs([job!.id], {
      ...t.opts,
      wait: true,
      pollMs: 200,
      onEvent: (e) => e.type === "poll" && polled(),
    });
    await firstPoll;
    // The lock is released right after the poll; a few tiny tries cover the step in between.
    let status;
    for (let i = 0; !status && i < 50; i++) {
      status = await jobStatus(job!.id, t.opts).catch(async (e) => {
        assert.match(String(e), /being worked on/);
        await new Promise((resolve) => setTimeout(resolve, 10));
        return undefined;
      });
    }
    assert.ok(status, "status answered while fetch --wait waits");
    const { failed } = await cancelJob(job!.id, t.opts);
    assert.deepEqual(failed, []);
    const [merged] = await waiting;
    assert.ok(
      !("error" in merged) && merged.summary?.errors === 7,
      "the waiting fetch merges the cancelled job",
    );
  });

  it("waits on while another Loom holds the lock for a moment (a status check), then merges", async () => {
    const t = setup();
    const { job } = await t.submit();
    const storage = await openHomeStore(t.env.LOOM_HOME);
    const store = new JobStore(storage, t.env);
    let release!: () => void;
    let taken!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const holding = store.withLockedJob(job!.id, () => (taken(), held));
    await new Promise<void>((resolve) => (taken = resolve));
    const waiting = fetchJobs([job!.id], { ...t.opts, wait: true, pollMs: 5 });
    await new Promise((resolve) => setTimeout(resolve, 30));
    release();
    await holding;
    await storage.close();
    const [merged] = await waiting;
    assert.ok(!("error" in merged) && merged.summary?.ok === 7, JSON.stringify(merged));
  });

  for (const transient of [false, true]) {
    it(`gives up on a ${transient ? "transient" : "permanent"} status error that never ends, saying the job is intact`, async () => {
      let checks = 0;
      const t = setup(() => ({
        status() {
          checks++;
          return Promise.reject(
            new LoomProviderError("tweaked: no such batch", {
              status: transient ? 503 : 404,
              retryable: transient,
            }),
          );
        },
      }));
      const { job } = await t.submit();
      const stop = AbortSignal.timeout(20_000); // the old behaviour waited forever
      await assert.rejects(
        fetchJobs([job!.id], { ...t.opts, wait: true, pollMs: 1, signal: stop }),
        (e: unknown) => {
          assert.ok(LoomError.isInstance(e), String(e));
          assert.match(
            e.message,
            new RegExp(
              `gave up waiting: the status of batch 1 could not be checked on ${
                transient ? 30 : 3
              } polls in a row \\(tweaked: no such batch\\)`,
            ),
          );
          assert.match(e.message, new RegExp(`job is intact.*loom fetch --id ${job!.id}`));
          return true;
        },
      );
      // Three shards a poll; a transient error is tried twice (maxAttempts 2) each time.
      assert.equal(checks, transient ? 30 * 3 * 2 : 3 * 3);
      assert.equal((await t.store.load(job!.id))?.status, "pending");
    });
  }
});

describe("fetch: an output the run agreed to overwrite", () => {
  it("is replaced by the merge without asking again; a file put there later is asked about", async () => {
    const t = setup();
    writeFileSync(t.out, "old results\n");
    const { job } = await t.submit({ force: true });
    const [fetched] = await fetchJobs([job!.id], t.opts);
    assert.ok(!("error" in fetched) && fetched.summary?.ok === 7, JSON.stringify(fetched));

    writeFileSync(t.out, "old results\n");
    const second = await t.submit({ force: true });
    // Made beside it and renamed over it, as an editor saves: another file at the same path.
    writeFileSync(join(t.dir, "new.csv"), "a new file, made after the run\n");
    renameSync(join(t.dir, "new.csv"), t.out);
    await assert.rejects(fetchJobs([second.job!.id], t.opts), /exists; pass --force/);
  });
});

describe("fetch: each batch's usage", () => {
  it("adds up the tokens and cost the provider reported for a batch's answers into its record", async () => {
    /** The usage each batch's answers reported, by the first row of the batch. */
    const seen = new Map<string, { input: number; output: number }>();
    let batchOf = "";
    const t = setup((batch) => ({
      async *results(handle, ids, options) {
        for await (const outcome of batch.results(handle, ids, options)) {
          if (!("result" in outcome)) {
            yield outcome;
            continue;
          }
          const { text, usage } = outcome.result;
          if (["alpha", "delta", "golf"].includes(text)) batchOf = text;
          if (text === "bravo") {
            yield { customId: outcome.customId, error: "tweaked: 500 boom", kind: "failed" };
            continue;
          }
          // The last batch's answers report no usage at all (a provider that reports none).
          if (batchOf === "golf") {
            yield { customId: outcome.customId, result: { text } };
            continue;
          }
          const sum = seen.get(batchOf) ?? { input: 0, output: 0 };
          seen.set(batchOf, {
            input: sum.input + usage!.inputTokens!,
            output: sum.output + usage!.outputTokens!,
          });
          yield { customId: outcome.customId, result: { text, usage: { ...usage, cost: 0.25 } } };
        }
      },
    }));
    const { job } = await t.submit();
    const [fetched] = await fetchJobs([job!.id], t.opts);
    assert.ok(!("error" in fetched), JSON.stringify(fetched));
    // A row failed: the job's record is kept after the merge.
    const record = (await t.store.load(job!.id))!;
    const usage = record.shards.map((s) => {
      const { ok, errors, cost, inputTokens, outputTokens } = s.fetched!;
      return { ok, errors, cost, inputTokens, outputTokens };
    });
    assert.ok(seen.get("alpha")!.input > 0 && seen.get("delta")!.output > 0);
    assert.deepEqual(usage, [
      {
        ok: 2,
        errors: 1,
        cost: 0.5,
        inputTokens: seen.get("alpha")!.input,
        outputTokens: seen.get("alpha")!.output,
      },
      {
        ok: 3,
        errors: 0,
        cost: 0.75,
        inputTokens: seen.get("delta")!.input,
        outputTokens: seen.get("delta")!.output,
      },
      { ok: 1, errors: 0, cost: undefined, inputTokens: undefined, outputTokens: undefined },
    ]);
    assert.ok(!("cost" in record.shards[2].fetched!), "nothing reported, nothing recorded");
  });
});
