/**
 * A batch submit reads its input once before it sends: the planning pass counts and checks the
 * rows, fingerprints the file and cuts the shards; the submission reads it once more to send it.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { gzipSync } from "node:zlib";
import { createEchoProvider } from "../../plugins/providers/echo/mod.ts";
import { LoomUsageError } from "../base/errors.ts";
import { runJob } from "../commands/run.ts";
import { loadJob } from "../job/load.ts";
import { Registry } from "../plugins/registry.ts";
import { bytesReadByProcess, countedCsv } from "../test-support/readings.ts";
import { tempDir } from "../test-support/temp.ts";
import { listJobs } from "./jobs.ts";
import { fingerprintInput, SubmissionPlanner } from "./submit.ts";

/** A batch job over `rows` rows (`max_requests` a shard) read through the counted CSV format. */
function setup(rows: number, { gzip = false, maxRequests = 1000 } = {}) {
  const dir = tempDir();
  const env = { LOOM_HOME: join(dir, "home") };
  const text = "id,text\n" +
    Array.from({ length: rows }, (_, i) => `${i},"row ${i}: ${"lorem ipsum ".repeat(8)}"`)
      .join("\n") +
    "\n";
  const file = gzip ? "in.csv.gz" : "in.csv";
  const input = join(dir, file);
  writeFileSync(input, gzip ? gzipSync(text) : text);
  writeFileSync(
    join(dir, "job.yaml"),
    `dataset: { path: ${file}, format: counted }\nprompt: { column: text }\nprovider: echo\n` +
      `model: m\noutput: { path: out.csv }\nbatch: { max_requests: ${maxRequests} }\n`,
  );
  const { counts, format } = countedCsv();
  const registry = new Registry();
  registry.register({ apiVersion: 1, kind: "format", name: "counted", create: () => format });
  const opts = { env, cwd: dir };
  const submit = async () =>
    runJob(await loadJob({ file: join(dir, "job.yaml"), cwd: dir }), { ...opts, registry });
  return { dir, input, text, counts, submit, opts };
}

describe("batch submit", () => {
  it("reads the input once to plan, fingerprint and cut it, and once more to send it", async () => {
    const rows = 30_000;
    const t = setup(rows);
    const size = Buffer.byteLength(t.text);
    const readBefore = bytesReadByProcess();
    const summary = await t.submit();
    const read = bytesReadByProcess();
    assert.equal(summary.job?.shards, 30);
    assert.equal(t.counts.opens, 2, "one planning pass, one sending pass");
    assert.equal(t.counts.bytes, 2 * size);
    // The fingerprint is not a reading of its own either: the whole process read about two inputs
    // (four before the planning pass did it all).
    if (readBefore !== undefined && read !== undefined) {
      assert.ok(
        read - readBefore < 2.5 * size,
        `read ${read - readBefore} bytes for a ${size}-byte input`,
      );
    }
    const [record] = (await listJobs(t.opts)).records;
    // The shards as cut while planning: contiguous ranges over every row, 1000 requests each.
    assert.deepEqual(
      record.shards.map((s) => s.rows),
      Array.from({ length: 30 }, (_, i) => ({ start: i * 1000, end: (i + 1) * 1000 })),
    );
    assert.ok(record.shards.every((s) => s.requests === 1000 && s.bytes > 0));
  });

  for (const gzip of [false, true]) {
    it(`records the fingerprint fingerprintInput takes${gzip ? ", of the compressed bytes" : ""}`, async () => {
      const t = setup(500, { gzip, maxRequests: 200 });
      await t.submit();
      const [record] = (await listJobs(t.opts)).records;
      assert.deepEqual(record.input, await fingerprintInput(t.input));
      const plain = createHash("sha256").update(t.text).digest("hex");
      assert.equal(record.input.sha256 === plain, !gzip, "a .gz is fingerprinted as stored");
      // The key holds the fingerprint: the same job is refused until it is fetched.
      await assert.rejects(
        t.submit(),
        (e) => e instanceof LoomUsageError && /already submitted/.test(e.message),
      );
      assert.equal((await listJobs(t.opts)).records.length, 1);
    });
  }

  it("still refuses a row too big for a batch, before anything is recorded or sent", async () => {
    const t = setup(50, { maxRequests: 10 });
    const job = join(t.dir, "job.yaml");
    writeFileSync(job, readFileSync(job, "utf8").replace("max_requests: 10", "max_bytes: 100"));
    await assert.rejects(
      t.submit(),
      /row 1 alone is \d+ bytes, more than a echo batch may hold \(100\)/,
    );
    assert.deepEqual((await listJobs(t.opts)).records, []);
    assert.equal(existsSync(join(t.dir, "home", "echo-uploads")), false, "nothing was uploaded");
  });

  it("gives no planned submission when the planning pass did not see the whole file", async () => {
    const dir = tempDir();
    const input = join(dir, "in.csv");
    writeFileSync(input, "text\nalpha\nbravo\n");
    writeFileSync(join(dir, "job.yaml"), "dataset: { path: in.csv }\nprovider: echo\nmodel: m\n");
    const planner = new SubmissionPlanner({
      job: await loadJob({ file: join(dir, "job.yaml"), cwd: dir }),
      batch: createEchoProvider({}, join(dir, "home")).batch!,
      provider: "echo",
    });
    planner.tap(new TextEncoder().encode("text\nalpha\n"));
    assert.equal(await planner.finish({ input }), undefined, "submitting reads it itself");
  });
});
