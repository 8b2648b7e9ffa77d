/**
 * How often the batch paths that follow a submit read the input: a fetch that finishes an
 * interrupted submission checks the input's fingerprint and reads it once more to send it; a
 * retry reads it once to pick the failed rows (checking the fingerprint as it goes) and once to
 * send them. Each refuses a changed input before anything is sent.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { gzipSync } from "node:zlib";
import { LoomInterruptedError } from "../base/errors.ts";
import { runJob } from "../commands/run.ts";
import { loadJob } from "../job/load.ts";
import { Registry } from "../plugins/registry.ts";
import { bytesReadByProcess, countedCsv } from "../test-support/readings.ts";
import { tempDir } from "../test-support/temp.ts";
import { fetchJobs, listJobs, retryJob } from "./jobs.ts";

const ROWS = 3000;
/** Every 97th row fails with echo's `fail_on`. */
const failing = (i: number) => i % 97 === 0;

/**
 * A batch job over ROWS rows of about a kilobyte each, read through the counted CSV format, 200
 * requests a shard. The prompts are short (a column of their own), so the job's saved results,
 * which a retry reads too, are small beside the input.
 */
function setup(providerOptions: string, { gzip = false } = {}) {
  const dir = tempDir();
  const env = { LOOM_HOME: join(dir, "home") };
  const text = "id,text,pad\n" +
    Array.from(
      { length: ROWS },
      (_, i) => `${i},row ${i}${failing(i) ? " BAD" : ""},${"x".repeat(1000)}`,
    ).join("\n") + "\n";
  const input = join(dir, gzip ? "in.csv.gz" : "in.csv");
  writeFileSync(input, gzip ? gzipSync(text) : text);
  writeFileSync(
    join(dir, "job.yaml"),
    `dataset: { path: ${
      gzip ? "in.csv.gz" : "in.csv"
    }, format: counted }\nprompt: { column: text }\nprovider: echo\n` +
      `provider_options: ${providerOptions}\nmodel: m\noutput: { path: out.csv }\n` +
      `batch: { max_requests: 200 }\n`,
  );
  const { counts, format } = countedCsv();
  const registry = new Registry();
  registry.register({ apiVersion: 1, kind: "format", name: "counted", create: () => format });
  const opts = { env, cwd: dir, registry };
  const submit = async (options: Parameters<typeof runJob>[1] = {}) =>
    runJob(await loadJob({ file: join(dir, "job.yaml"), cwd: dir }), { ...opts, ...options });
  /** Counts what `work` reads: format openings and bytes, and bytes the process read (Linux). */
  const measure = async <T>(work: () => Promise<T>) => {
    counts.opens = counts.bytes = 0;
    const before = bytesReadByProcess();
    const result = await work();
    const after = bytesReadByProcess();
    const read = before === undefined || after === undefined ? undefined : after - before;
    return { result, opens: counts.opens, bytes: counts.bytes, read };
  };
  const batches = () => readdirSync(join(env.LOOM_HOME, "echo-batches")).length;
  return { dir, input, size: Buffer.byteLength(text), opts, submit, measure, batches };
}

/** Submits the job, interrupted once its first batch is created: the record stays `submitting`. */
async function interruptedSubmit(t: ReturnType<typeof setup>) {
  const controller = new AbortController();
  await assert.rejects(
    t.submit({
      signal: controller.signal,
      onEvent: (e) => e.type === "shard" && controller.abort(),
    }),
    LoomInterruptedError,
  );
  const [record] = (await listJobs(t.opts)).records;
  assert.equal(record.status, "submitting");
  assert.equal(record.shards.filter((s) => s.handle).length, 1);
  return record;
}

/** Rewrites row `row`'s prompt in place: the same size, another fingerprint. */
function changeRow(t: ReturnType<typeof setup>, row: number, to: string) {
  const text = readFileSync(t.input, "utf8");
  const from = `\n${row},row ${row},`;
  assert.equal(to.length, from.length);
  writeFileSync(t.input, text.replace(from, to));
}

describe("the readings of a batch job's input", () => {
  it("a fetch finishing an interrupted submit checks the fingerprint, then reads it once to send", async () => {
    const t = setup("{ batch_polls: 5 }");
    const interrupted = await interruptedSubmit(t);
    const m = await t.measure(() => fetchJobs([interrupted.id], t.opts));
    const [outcome] = m.result;
    assert.ok(!("error" in outcome), String((outcome as { error?: unknown }).error));
    assert.equal(outcome.record.status, "pending");
    assert.ok(outcome.record.shards.every((s) => s.handle), "every batch is created");
    assert.equal(t.batches(), 15, "each once");
    // The sending pass, and at most the header where the plan learns the layout: no planning
    // pass of its own (the rows are the record's, the fingerprint proves the input the same).
    assert.ok(m.opens <= 2, `${m.opens} openings`);
    assert.ok(m.bytes < t.size + 256 * 1024, `${m.bytes} bytes through the format of ${t.size}`);
    // Then the fingerprint's reading of the raw file: two readings in all, not three.
    if (m.read !== undefined) {
      assert.ok(m.read < 2.5 * t.size, `read ${m.read} bytes for a ${t.size}-byte input`);
    }
  });

  it("a run finishing an interrupted submit reads it once to plan and check, once to send", async () => {
    const t = setup("{ batch_polls: 5 }");
    await interruptedSubmit(t);
    const m = await t.measure(() => t.submit());
    assert.equal(m.result.job?.shards, 15);
    assert.equal(t.batches(), 15, "each batch created once");
    assert.equal(m.opens, 2, "the planning pass (which fingerprints), the sending pass");
    assert.equal(m.bytes, 2 * t.size);
    if (m.read !== undefined) {
      assert.ok(m.read < 2.5 * t.size, `read ${m.read} bytes for a ${t.size}-byte input`);
    }
  });

  it("a fetch finishing an interrupted submit sends nothing more when the input changed", async () => {
    const t = setup("{ batch_polls: 5 }");
    const interrupted = await interruptedSubmit(t);
    changeRow(t, 2500, "\n2500,row 2501,");
    await assert.rejects(
      fetchJobs([interrupted.id], t.opts),
      /in\.csv changed since job .* was submitted.*nothing more was submitted/,
    );
    assert.equal(t.batches(), 1, "no batch was created after the first");
    const [record] = (await listJobs(t.opts)).records;
    assert.equal(record.shards.filter((s) => s.handle || s.submittingSince).length, 1);
  });

  it("a fetch finishing an interrupted submit of a missing input says it is missing", async () => {
    const t = setup("{ batch_polls: 5 }");
    const interrupted = await interruptedSubmit(t);
    rmSync(t.input);
    await assert.rejects(fetchJobs([interrupted.id], t.opts), /dataset not found: .*in\.csv/);
    assert.equal(t.batches(), 1);
  });

  it("a retry reads the input once to pick the failed rows and check it, and once to send them", async () => {
    const t = setup("{ fail_on: BAD }");
    const { job } = await t.submit();
    const [fetched] = await fetchJobs([job!.id], t.opts);
    const failed = Array.from({ length: ROWS }, (_, i) => i).filter(failing);
    assert.ok(!("error" in fetched) && fetched.summary?.errors === failed.length);
    const m = await t.measure(() => retryJob(job!.id, t.opts));
    assert.equal(m.result.rows, failed.length);
    assert.deepEqual(m.result.record.shards.slice(15).map((s) => s.rows), [{ list: failed }]);
    assert.equal(m.result.record.status, "pending");
    assert.equal(m.opens, 2, "one pass to pick the rows, one to send them");
    assert.ok(m.bytes <= 2 * t.size, `${m.bytes} bytes through the format of ${t.size}`);
    // No reading of its own for the fingerprint, nor for a plan: about two inputs in all (four
    // before), the job's saved results being small beside it.
    if (m.read !== undefined) {
      assert.ok(m.read < 2.5 * t.size, `read ${m.read} bytes for a ${t.size}-byte input`);
    }
    // The retried rows merge as before: they fail again, every other row keeps its answer.
    const [again] = await fetchJobs([job!.id], t.opts);
    assert.ok(!("error" in again) && again.summary?.errors === failed.length);
    assert.equal(again.summary?.ok, ROWS - failed.length);
  });

  it("a retry of a compressed input checks the fingerprint of its compressed bytes", async () => {
    const t = setup("{ fail_on: BAD }", { gzip: true });
    const { job } = await t.submit();
    await fetchJobs([job!.id], t.opts);
    const m = await t.measure(() => retryJob(job!.id, t.opts));
    assert.equal(m.result.rows, Array.from({ length: ROWS }, (_, i) => i).filter(failing).length);
    assert.equal(m.opens, 2);
  });

  it("a retry of a missing input says it is missing", async () => {
    const t = setup("{ fail_on: BAD }");
    const { job } = await t.submit();
    await fetchJobs([job!.id], t.opts);
    rmSync(t.input);
    await assert.rejects(retryJob(job!.id, t.opts), /dataset not found: .*in\.csv/);
    assert.equal((await listJobs(t.opts)).records[0].shards.length, 15);
  });

  for (
    const [what, row, to] of [
      ["an edited row", 1000, "\n1000,row 1001,"],
      ["a row that no longer parses", 2999, '\n2999,"ow 2999,'],
    ] as const
  ) {
    it(`a retry of a changed input (${what}, the same size) sends nothing`, async () => {
      const t = setup("{ fail_on: BAD }");
      const { job } = await t.submit();
      await fetchJobs([job!.id], t.opts);
      changeRow(t, row, to);
      const before = t.batches();
      await assert.rejects(
        retryJob(job!.id, t.opts),
        /in\.csv changed since job .* was submitted.*nothing was submitted again/,
      );
      assert.equal(t.batches(), before);
      const [record] = (await listJobs(t.opts)).records;
      assert.equal(record.shards.length, 15, "no shard was added");
      assert.equal(record.status, "merged");
    });
  }
});
