/**
 * Fetch hardening (issue 11): how a results reader's errors are told apart, the overwrite rule
 * of fetch, a clean-up that is cut off, and the lock while `--wait` polls. The provider is the
 * offline echo provider, wrapped as a plugin where a test needs it to misbehave.
 */
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { parse } from "csv-parse/sync";
import { LoomError, LoomIncompleteResultsError, LoomProviderError, LoomUsageError } from "../errors.ts";
import { Registry } from "../registry.ts";
import { createEchoProvider } from "../../plugins/providers/echo/mod.ts";
import { loadJob } from "../job/load.ts";
import { runJob } from "../run/job.ts";
import type { BatchApi } from "../spec/provider.ts";
import { tempDir } from "../test-support/temp.ts";
import { cancelJob, fetchJobs, jobStatus, listJobs, retryJob } from "./jobs.ts";
import { JobStore } from "./store.ts";

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
  writeFileSync(join(dir, "in.csv"), `id,text\n${ROWS.map((r, i) => `${i + 1},${r}`).join("\n")}\n`);
  writeFileSync(
    join(dir, "job.yaml"),
    `dataset: { path: in.csv }\nprompt: { column: text }\nprovider: tweaked\nprovider_options: ${providerOptions}\nmodel: m\n` +
      `output: { path: out.csv }\nbatch: { max_requests: 3 }\n`,
  );
  const opts = { env, cwd: dir, registry, retry: { maxAttempts: 2, baseDelayMs: 1, maxDelayMs: 1, maxTotalWaitMs: 50 } };
  const submit = async (options: Parameters<typeof runJob>[1] = {}) =>
    runJob(await loadJob({ file: join(dir, "job.yaml"), cwd: dir }), { ...opts, ...options });
  const out = join(dir, "out.csv");
  const output = () => parse(readFileSync(out), { columns: true }) as Record<string, string>[];
  const store = new JobStore(env.LOOM_HOME);
  return { dir, env, out, submit, output, opts, store };
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
          if (broken) throw new TypeError("cannot read properties of undefined (reading 'content')");
        }
      },
    }));
    const { job } = await t.submit();
    await assert.rejects(fetchJobs([job!.id], t.opts), (e: unknown) => {
      assert.ok(LoomError.isInstance(e), String(e));
      assert.match(e.message, /results of batch 1 could not be read: cannot read properties of undefined/);
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
    assert.ok(!("error" in fetched) && fetched.summary?.ok === 7 && fetched.summary.errors === 0, JSON.stringify(fetched));
    assert.deepEqual(t.output().map((r) => r.llm_response), ROWS);
  });

  it("LoomIncompleteResultsError merges what was read and names the reason on the other rows", async () => {
    const t = setup(breaksAfterOne(() => new LoomIncompleteResultsError("tweaked: 2 result lines could not be read")));
    const { job } = await t.submit();
    const [fetched] = await fetchJobs([job!.id], t.opts);
    assert.ok(!("error" in fetched), JSON.stringify(fetched));
    assert.deepEqual([fetched.summary?.ok, fetched.summary?.errors], [3, 4], "one answer read from each of the 3 batches");
    const rows = t.output();
    assert.equal(rows[0].llm_response, "alpha");
    assert.match(rows[1].llm_error, /some results could not be read: tweaked: 2 result lines could not be read/);
  });

  it("recognises the typed error from another copy of Loom (by its marker)", async () => {
    // What a plugin bundling its own copy of Loom throws: not this copy's class, but marked.
    const foreign = () => Object.assign(new Error("tweaked: results archived"), { [Symbol.for("loom.error")]: true, [Symbol.for("loom.incomplete-results")]: true });
    const t = setup(breaksAfterOne(foreign));
    const { job } = await t.submit();
    const [fetched] = await fetchJobs([job!.id], t.opts);
    assert.ok(!("error" in fetched) && fetched.summary?.ok === 3, JSON.stringify(fetched));
  });

  it("a retryable provider error that outlasts the retries fails the fetch too, the job intact", async () => {
    let calls = 0;
    const t = setup(breaksAfterOne(() => (calls++, new LoomProviderError("tweaked: connection reset", { retryable: true }))));
    const { job } = await t.submit();
    await assert.rejects(fetchJobs([job!.id], t.opts), /connection reset/);
    assert.equal(calls, 2, "downloaded again once (maxAttempts 2), then given up");
    assert.ok(!existsSync(t.out));
    assert.equal((await t.store.load(job!.id))!.shards[0].fetched, undefined);
  });
});
