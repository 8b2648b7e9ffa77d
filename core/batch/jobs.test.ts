/** Batch jobs end to end with the offline echo provider, whose batches live under LOOM_HOME. */
import assert from "node:assert/strict";
import { appendFileSync, existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { parse } from "csv-parse/sync";
import { LoomUsageError } from "../errors.ts";
import { loadJob } from "../job/load.ts";
import { runJob } from "../run/job.ts";
import { tempDir } from "../test-support/temp.ts";
import { cancelJob, fetchJobs, jobStatus, listJobs, retryJob } from "./jobs.ts";

const ROWS = ["alpha", "bravo", "charlie", "delta", "echo BAD", "foxtrot", "golf"];

/** A batch job over ROWS with echo; `extra` adds job lines. */
function setup(providerOptions = "{}", extra = "") {
  const dir = tempDir();
  const env = { LOOM_HOME: join(dir, "home") };
  writeFileSync(join(dir, "in.csv"), `id,text\n${ROWS.map((r, i) => `${i + 1},${r}`).join("\n")}\n`);
  writeFileSync(
    join(dir, "job.yaml"),
    `dataset: { path: in.csv }\nprompt: { column: text }\nprovider: echo\nprovider_options: ${providerOptions}\nmodel: m\n` +
      `output: { path: out.csv }\nbatch: { max_requests: 3 }\n${extra}`,
  );
  const submit = async (options: Parameters<typeof runJob>[1] = {}) =>
    runJob(await loadJob({ file: join(dir, "job.yaml"), cwd: dir }), { env, cwd: dir, ...options });
  const output = () => parse(readFileSync(join(dir, "out.csv")), { columns: true }) as Record<string, string>[];
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
    assert.ok(!("error" in first[0]) && first[0].summary === undefined, "still running: nothing merged");
    assert.deepEqual(first[0].record.shards.map((s) => s.state), ["in_progress", "in_progress", "in_progress"]);
    const second = await fetchJobs([id], t.opts);
    const done = second[0] as { summary: { ok: number; errors: number }; removed: boolean };
    assert.deepEqual([done.summary.ok, done.summary.errors], [7, 0]);
    assert.deepEqual(t.output().map((r) => [r.id, r.llm_response, r.llm_error]), ROWS.map((r, i) => [String(i + 1), r, ""]));
    assert.equal(done.removed, true, "a job whose every row has an answer is removed");
    assert.deepEqual((await listJobs(t.opts)).records, []);
  });

  it("refuses to submit the same job twice while it is pending, unless asked", async () => {
    const t = setup("{ batch_polls: 5 }");
    const first = await t.submit();
    await assert.rejects(t.submit(), (e: unknown) => e instanceof LoomUsageError && e.message.includes(first.job!.id) && /--resubmit/.test(e.message));
    const second = await t.submit({ resubmit: true });
    assert.notEqual(second.job!.id, first.job!.id);
    assert.equal((await listJobs(t.opts)).records.length, 2);
  });

  it("keeps a job with failed rows, and retry sends only those rows again", async () => {
    const t = setup("{ fail_on: BAD }");
    const { job } = await t.submit();
    const [fetched] = await fetchJobs([job!.id], t.opts);
    assert.ok(!("error" in fetched));
    assert.deepEqual([fetched.summary?.ok, fetched.summary?.errors, fetched.removed], [6, 1, false]);
    assert.match(t.output()[4].llm_error, /fail_on/);
    const retried = await retryJob(job!.id, t.opts);
    assert.equal(retried.rows, 1);
    const extra = retried.record.shards.slice(3);
    assert.deepEqual(extra.map((s) => s.rows), [{ list: [4] }], "only the failed row, never a successful one");
    assert.equal(retried.record.status, "pending");
    const [again] = await fetchJobs([job!.id], t.opts);
    assert.ok(!("error" in again) && again.summary?.errors === 1, "echo fails it again; the rest is kept");
    assert.equal(t.output()[0].llm_response, "alpha");
  });

  it("merges what finished before a cancel, and gives the rest a reason", async () => {
    const t = setup("{ batch_polls: 3 }");
    const { job } = await t.submit();
    const cancelled = await cancelJob(job!.id, t.opts);
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
    await assert.rejects(fetchJobs([job!.id], t.opts), (e: unknown) => e instanceof LoomUsageError && /changed since job .* was submitted.*--force/.test(e.message));
    assert.equal(existsSync(join(t.dir, "out.csv")), false);
    const [forced] = await fetchJobs([job!.id], { ...t.opts, force: true });
    assert.ok(!("error" in forced) && forced.summary?.rows === 8);
    assert.match(t.output()[7].llm_error, /never submitted/);
  });

  it("merges a job once when two fetches race for it", async () => {
    const t = setup();
    const { job } = await t.submit();
    const results = await Promise.allSettled([fetchJobs([job!.id], t.opts), fetchJobs([job!.id], t.opts)]);
    const merged = results.flatMap((r) => (r.status === "fulfilled" ? r.value : [])).filter((o) => !("error" in o) && o.summary);
    assert.equal(merged.length, 1, JSON.stringify(results.map((r) => r.status === "rejected" ? String(r.reason) : "ok")));
    for (const r of results) {
      if (r.status === "rejected") assert.match(String(r.reason), /being worked on by another Loom/);
      else if (!(r.value[0] as { summary?: unknown }).summary) assert.equal((r.value[0] as { alreadyMerged?: boolean }).alreadyMerged, true);
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
});
