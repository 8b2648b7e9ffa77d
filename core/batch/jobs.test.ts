/** Batch jobs end to end with the offline echo provider, whose batches live under LOOM_HOME. */
import assert from "node:assert/strict";
import { appendFileSync, existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { parse } from "csv-parse/sync";
import { LoomInterruptedError, LoomProviderError, LoomUsageError } from "../base/errors.ts";
import { Registry } from "../plugins/registry.ts";
import { createEchoProvider } from "../../plugins/providers/echo/mod.ts";
import { loadJob } from "../job/load.ts";
import { runJob } from "../commands/run.ts";
import { tempDir } from "../test-support/temp.ts";
import { cancelJob, fetchJobs, jobStatus, listJobs, retryJob } from "./jobs.ts";

const ROWS = ["alpha", "bravo", "charlie", "delta", "echo BAD", "foxtrot", "golf"];

/** A batch job over ROWS with echo; `extra` adds job lines. */
function setup(providerOptions = "{}", extra = "") {
  const dir = tempDir();
  const env = { LOOM_HOME: join(dir, "home") };
  writeFileSync(
    join(dir, "in.csv"),
    `id,text\n${ROWS.map((r, i) => `${i + 1},${r}`).join("\n")}\n`,
  );
  writeFileSync(
    join(dir, "job.yaml"),
    `dataset: { path: in.csv }\nprompt: { column: text }\nprovider: echo\nprovider_options: ${providerOptions}\nmodel: m\n` +
      `output: { path: out.csv }\nbatch: { max_requests: 3 }\n${extra}`,
  );
  const submit = async (options: Parameters<typeof runJob>[1] = {}) =>
    runJob(await loadJob({ file: join(dir, "job.yaml"), cwd: dir }), { env, cwd: dir, ...options });
  const output = () =>
    parse(readFileSync(join(dir, "out.csv")), { columns: true }) as Record<string, string>[];
  return { dir, env, submit, output, opts: { env, cwd: dir } };
}

describe("batch jobs (echo)", () => {
  it("submits in shards within the limits, reports pending, then merges every row in place", async () => {
    const t = setup("{ batch_polls: 1 }");
    const submitted = await t.submit();
    assert.deepEqual(submitted.job?.shards, 3, "7 rows at 3 requests a batch");
    assert.equal(existsSync(join(t.dir, "out.csv")), false);
    const id = submitted.job!.id;
    const first = await fetchJobs([], t.opts);
    assert.equal(first.length, 1);
    assert.ok(
      !("error" in first[0]) && first[0].summary === undefined,
      "still running: nothing merged",
    );
    assert.deepEqual(first[0].record.shards.map((s) => s.state), [
      "in_progress",
      "in_progress",
      "in_progress",
    ]);
    const second = await fetchJobs([id], t.opts);
    const done = second[0] as { summary: { ok: number; errors: number }; removed: boolean };
    assert.deepEqual([done.summary.ok, done.summary.errors], [7, 0]);
    assert.deepEqual(
      t.output().map((r) => [r.id, r.llm_response, r.llm_error]),
      ROWS.map((r, i) => [String(i + 1), r, ""]),
    );
    assert.equal(done.removed, true, "a job whose every row has an answer is removed");
    assert.deepEqual((await listJobs(t.opts)).records, []);
  });

  it("deletes echo's batch inputs once their results are saved, keeping only its small batch records", async () => {
    const t = setup();
    /** Every file echo keeps under LOOM_HOME, with its text. */
    const echoFiles = () =>
      readdirSync(t.env.LOOM_HOME, { recursive: true, encoding: "utf8" })
        .filter((f) => f.startsWith("echo-") && /\.jsonl?$/.test(f))
        .map((f) => readFileSync(join(t.env.LOOM_HOME, f), "utf8"));
    const { job } = await t.submit();
    const prompts = ["alpha", "delta", "golf"]; // one of each batch
    const sent = echoFiles().join("\n");
    assert.ok(prompts.every((p) => sent.includes(p)), "echo keeps the requests until answered");
    const [fetched] = await fetchJobs([job!.id], t.opts);
    assert.ok(!("error" in fetched) && fetched.summary?.ok === 7);
    const left = echoFiles();
    assert.ok(!prompts.some((p) => left.join("\n").includes(p)), "no request is kept");
    assert.equal(left.length, 3, "the batches' records stay, as a provider's do");
    assert.ok(left.every((text) => text.length < 500), "each a few hundred bytes at most");
  });

  it("refuses to submit the same job twice while it is pending, unless asked", async () => {
    const t = setup("{ batch_polls: 5 }");
    const first = await t.submit();
    await assert.rejects(
      t.submit(),
      (e: unknown) =>
        e instanceof LoomUsageError && e.message.includes(first.job!.id) &&
        /--resubmit/.test(e.message),
    );
    const second = await t.submit({ resubmit: true });
    assert.notEqual(second.job!.id, first.job!.id);
    assert.equal((await listJobs(t.opts)).records.length, 2);
  });

  it("keeps a job with failed rows, and retry sends only those rows again", async () => {
    const t = setup("{ fail_on: BAD }");
    const { job } = await t.submit();
    const [fetched] = await fetchJobs([job!.id], t.opts);
    assert.ok(!("error" in fetched));
    assert.deepEqual([fetched.summary?.ok, fetched.summary?.errors, fetched.removed], [
      6,
      1,
      false,
    ]);
    assert.match(t.output()[4].llm_error, /fail_on/);
    const retried = await retryJob(job!.id, t.opts);
    assert.equal(retried.rows, 1);
    const extra = retried.record.shards.slice(3);
    assert.deepEqual(
      extra.map((s) => s.rows),
      [{ list: [4] }],
      "only the failed row, never a successful one",
    );
    assert.equal(retried.record.status, "pending");
    const [again] = await fetchJobs([job!.id], t.opts);
    assert.ok(
      !("error" in again) && again.summary?.errors === 1,
      "echo fails it again; the rest is kept",
    );
    assert.equal(t.output()[0].llm_response, "alpha");
  });

  it("merges what finished before a cancel, and gives the rest a reason", async () => {
    const t = setup("{ batch_polls: 3 }");
    const { job } = await t.submit();
    const { record: cancelled } = await cancelJob(job!.id, t.opts);
    assert.deepEqual(cancelled.shards.map((s) => s.state), ["cancelled", "cancelled", "cancelled"]);
    const [fetched] = await fetchJobs([job!.id], t.opts);
    assert.ok(!("error" in fetched) && fetched.summary?.errors === 7);
    assert.match(t.output()[0].llm_error, /cancelled/);
    const status = await jobStatus(job!.id, t.opts);
    assert.equal(status.status, "merged");
  });

  it("refuses to merge into a changed input unless forced", async () => {
    const t = setup();
    const { job } = await t.submit();
    appendFileSync(join(t.dir, "in.csv"), "8,hotel\n");
    await assert.rejects(
      fetchJobs([job!.id], t.opts),
      (e: unknown) =>
        e instanceof LoomUsageError &&
        /changed since job .* was submitted.*--input-changed/.test(e.message),
    );
    assert.equal(existsSync(join(t.dir, "out.csv")), false);
    const [forced] = await fetchJobs([job!.id], { ...t.opts, mergeAnyway: true });
    assert.ok(!("error" in forced) && forced.summary?.rows === 8);
    assert.match(t.output()[7].llm_error, /never submitted/);
  });

  it("refuses a changed input of the same size, found as the merge reads it, and writes nothing", async () => {
    const t = setup();
    const { job } = await t.submit();
    const input = join(t.dir, "in.csv");
    writeFileSync(input, readFileSync(input, "utf8").replace("alpha", "ALPHA"));
    await assert.rejects(
      fetchJobs([job!.id], t.opts),
      (e: unknown) =>
        e instanceof LoomUsageError && /changed since job .* --input-changed/.test(e.message),
    );
    assert.deepEqual(
      readdirSync(t.dir).filter((f) => f.startsWith("out")),
      [],
      "no output, no temp",
    );
    // A change that no longer parses is told as a change too (the parse error would mislead).
    writeFileSync(input, readFileSync(input, "utf8").replace("ALPHA", '"LPHA'));
    await assert.rejects(
      fetchJobs([job!.id], t.opts),
      (e: unknown) => e instanceof LoomUsageError && /changed since job/.test(e.message),
    );
    writeFileSync(input, readFileSync(input, "utf8").replace('"LPHA', "alpha"));
    const [merged] = await fetchJobs([job!.id], t.opts);
    assert.ok(!("error" in merged) && merged.summary?.ok === 7);
  });

  it("merges a job once when two fetches race for it", async () => {
    const t = setup();
    const { job } = await t.submit();
    const results = await Promise.allSettled([
      fetchJobs([job!.id], t.opts),
      fetchJobs([job!.id], t.opts),
    ]);
    const merged = results.flatMap((r) => (r.status === "fulfilled" ? r.value : [])).filter((o) =>
      !("error" in o) && o.summary
    );
    assert.equal(
      merged.length,
      1,
      JSON.stringify(results.map((r) => r.status === "rejected" ? String(r.reason) : "ok")),
    );
    for (const r of results) {
      if (r.status === "rejected") {
        assert.match(String(r.reason), /being worked on by another Loom/);
      } else if (!(r.value[0] as { summary?: unknown }).summary) {
        assert.equal((r.value[0] as { alreadyMerged?: boolean }).alreadyMerged, true);
      }
    }
    assert.equal(t.output().length, 7);
    assert.deepEqual(readdirSync(t.dir).filter((f) => f.includes("loom-tmp")), []);
  });

  it("waits for the batches and merges with --wait", async () => {
    const t = setup("{ batch_polls: 2 }");
    const summary = await t.submit({ wait: true, pollMs: 1 });
    assert.deepEqual([summary.ok, summary.errors, summary.job], [7, 0, undefined]);
    assert.equal(t.output().length, 7);
  });

  it("adopts a batch whose creation answer was lost, instead of creating a second one", async () => {
    const t = setup();
    let submits = 0;
    const registry = new Registry();
    registry.register({
      apiVersion: 1,
      kind: "provider",
      name: "lossy",
      create: (_options, context) => {
        const echo = createEchoProvider({}, context.home);
        const batch = echo.batch!;
        return {
          ...echo,
          name: "lossy",
          batch: {
            ...batch,
            find: batch.find!.bind(batch),
            // The first create succeeds at the provider, but its answer never arrives.
            async submit(items, label, options) {
              submits++;
              const handle = await batch.submit(items, label, options);
              if (submits === 1) {
                throw new LoomProviderError("lossy: connection reset", { retryable: true });
              }
              return handle;
            },
            // Echo streams its items: the streamed submit loses the same answer.
            async submitStream(source, label, options) {
              submits++;
              const handle = await batch.submitStream!(source, label, options);
              if (submits === 1) {
                throw new LoomProviderError("lossy: connection reset", { retryable: true });
              }
              return handle;
            },
          },
        };
      },
    });
    writeFileSync(
      join(t.dir, "job.yaml"),
      readFileSync(join(t.dir, "job.yaml"), "utf8").replace("provider: echo", "provider: lossy"),
    );
    const { job } = await t.submit({
      registry,
      retry: { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 1, maxTotalWaitMs: 100 },
    });
    assert.equal(
      submits,
      3,
      "shard 1 was adopted after the lost answer; shards 2 and 3 were created once each",
    );
    assert.equal(readdirSync(join(t.env.LOOM_HOME, "echo-batches")).length, 3);
    const [fetched] = await fetchJobs([job!.id], { ...t.opts, registry });
    assert.ok(!("error" in fetched) && fetched.summary?.ok === 7);
  });

  it("cancels a submission that was interrupted: the unsent batches are never sent", async () => {
    const t = setup("{ batch_polls: 5 }");
    const controller = new AbortController();
    await assert.rejects(
      t.submit({
        signal: controller.signal,
        onEvent: (e) => e.type === "shard" && controller.abort(),
      }),
      (e: unknown) => e instanceof LoomInterruptedError && /run the same job again/.test(e.message),
    );
    const [record] = (await listJobs(t.opts)).records;
    assert.deepEqual([record.status, record.shards.filter((s) => s.handle).length], [
      "submitting",
      1,
    ]);
    const { record: cancelled } = await cancelJob(record.id, t.opts);
    assert.deepEqual(cancelled.shards.map((s) => s.state), ["cancelled", "cancelled", "cancelled"]);
    const [fetched] = await fetchJobs([record.id], t.opts);
    assert.ok(!("error" in fetched) && fetched.summary?.errors === 7);
    assert.equal(
      readdirSync(join(t.env.LOOM_HOME, "echo-batches")).length,
      1,
      "the two unsent batches were never created",
    );
    assert.match(t.output()[6].llm_error, /cancelled/);
  });

  it("submits a job once when two runs of it start together", async () => {
    const t = setup("{ batch_polls: 5 }");
    const results = await Promise.allSettled([t.submit(), t.submit()]);
    const ok = results.filter((r) => r.status === "fulfilled");
    assert.equal(
      ok.length,
      1,
      results.map((r) => (r.status === "rejected" ? String(r.reason) : "ok")).join("; "),
    );
    const failed = results.find((r) => r.status === "rejected") as PromiseRejectedResult;
    // Which refusal the second run meets depends on how far the first got: the submission key's
    // lock, the job's own lock, or the finished record. Each says another Loom has the job.
    assert.match(
      String(failed.reason),
      /being submitted by another Loom|being worked on by another Loom|already submitted/,
    );
    assert.equal((await listJobs(t.opts)).records.length, 1);
  });

  it("retries nothing when the input changed since submission", async () => {
    const t = setup("{ fail_on: BAD }");
    const { job } = await t.submit();
    await fetchJobs([job!.id], t.opts);
    writeFileSync(
      join(t.dir, "in.csv"),
      `id,text\n0,inserted\n${ROWS.map((r, i) => `${i + 1},${r}`).join("\n")}\n`,
    );
    await assert.rejects(
      retryJob(job!.id, t.opts),
      /changed since job .* was submitted.*nothing was submitted again/,
    );
    assert.equal((await listJobs(t.opts)).records[0].shards.length, 3);
  });
});
