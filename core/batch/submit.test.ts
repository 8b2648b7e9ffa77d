/**
 * A batch submit reads its input once: the planning pass counts and checks the rows, fingerprints
 * the file, cuts the shards and spools the items it built; the submission sends the spool.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { describe, it } from "node:test";
import { gzipSync } from "node:zlib";
import { parse } from "csv-parse/sync";
import { createEchoProvider } from "../../plugins/providers/echo/mod.ts";
import { LoomUsageError } from "../base/errors.ts";
import { runJob } from "../commands/run.ts";
import { loadJob } from "../job/load.ts";
import { Registry } from "../plugins/registry.ts";
import type { BatchApi } from "../spec/provider.ts";
import { countedCsv } from "../test-support/readings.ts";
import { tempDir } from "../test-support/temp.ts";
import { fetchJobs, listJobs } from "./jobs.ts";
import { fingerprintInput, SubmissionPlanner } from "./submit.ts";

/**
 * A batch job over `rows` rows (`max_requests` a shard) read through the counted CSV format; every
 * third prompt holds characters outside ASCII (their lines are sized in UTF-8 bytes).
 */
function setup(
  rows: number,
  { gzip = false, maxRequests = 1000, provider = "echo", empty = (_: number): boolean => false } =
    {},
) {
  const dir = tempDir();
  const env = { LOOM_HOME: join(dir, "home") };
  const text = "id,text\n" +
    Array.from(
      { length: rows },
      (_, i) =>
        `${i},"${
          empty(i) ? "" : `row ${i}: ${i % 3 ? "" : "Zoë 🚀 "}${"lorem ipsum ".repeat(8)}`
        }"`,
    )
      .join("\n") +
    "\n";
  const file = gzip ? "in.csv.gz" : "in.csv";
  const input = join(dir, file);
  writeFileSync(input, gzip ? gzipSync(text) : text);
  writeFileSync(
    join(dir, "job.yaml"),
    `dataset: { path: ${file}, format: counted }\nprompt: { column: text }\nprovider: ${provider}\n` +
      `model: m\noutput: { path: out.csv }\nbatch: { max_requests: ${maxRequests} }\n`,
  );
  const { counts, format } = countedCsv();
  const registry = new Registry();
  registry.register({ apiVersion: 1, kind: "format", name: "counted", create: () => format });
  registerEchoes(registry);
  const opts = { env, cwd: dir };
  const submit = async () =>
    runJob(await loadJob({ file: join(dir, "job.yaml"), cwd: dir }), { ...opts, registry });
  return { dir, input, text, counts, submit, opts, registry };
}

/**
 * Echo as two other providers would be: `items-echo` does not encode its items (the spool holds
 * Loom's JSON of them), `asks-items` encodes them but reads a shard's items, not its lines.
 */
function registerEchoes(registry: Registry) {
  const variant = (name: string, change: (batch: BatchApi) => BatchApi) =>
    registry.register({
      apiVersion: 1,
      kind: "provider",
      name,
      create: (_options, context) => {
        const echo = createEchoProvider({}, context.home);
        return { ...echo, name, batch: change(echo.batch!) };
      },
    });
  variant("items-echo", (batch) => ({ ...batch, encodeItem: undefined }));
  variant("asks-items", (batch) => ({
    ...batch,
    submitStream: (source, label, options) =>
      batch.submitStream!({ count: source.count, items: () => source.items() }, label, options),
  }));
}

/** The rows of every echo upload's items, in the order of the uploads' shards. */
function uploadedRows(dir: string): number[] {
  return uploads(dir).flatMap((text) =>
    text.trimEnd().split("\n").map((line) => {
      const item = JSON.parse(line);
      assert.match(item.request.messages[0].content, new RegExp(`^row ${item.customId.slice(4)}:`));
      return Number(item.customId.slice("row-".length));
    })
  );
}

/** The echo uploads' sizes in bytes, in the order of their shards. */
function uploadSizes(dir: string): number[] {
  return uploads(dir).map((text) => Buffer.byteLength(text));
}

/** The echo uploads' texts, in the order of their shards (by their first row). */
function uploads(dir: string): string[] {
  const folder = join(dir, "home", "echo-uploads");
  const texts = readdirSync(folder).map((name) => readFileSync(join(folder, name), "utf8"));
  const first = (text: string) => Number(/"row-(\d+)"/.exec(text)![1]);
  return texts.sort((a, b) => first(a) - first(b));
}

describe("batch submit", () => {
  it("reads the input once: plans, fingerprints, cuts and spools it in one pass, and sends the spool", async () => {
    const rows = 30_000;
    const t = setup(rows);
    const summary = await t.submit();
    assert.equal(summary.job?.shards, 30);
    assert.equal(t.counts.opens, 1, "one planning pass, and the items are sent from its spool");
    assert.equal(t.counts.bytes, Buffer.byteLength(t.text));
    const [record] = (await listJobs(t.opts)).records;
    // The shards as cut while planning: contiguous ranges over every row, 1000 requests each.
    assert.deepEqual(
      record.shards.map((s) => s.rows),
      Array.from({ length: 30 }, (_, i) => ({ start: i * 1000, end: (i + 1) * 1000 })),
    );
    assert.ok(record.shards.every((s) => s.requests === 1000 && s.bytes > 0));
    // Each upload holds its shard's items as echo encodes them, and is as big as planned.
    assert.deepEqual(uploadedRows(t.dir), Array.from({ length: rows }, (_, i) => i));
    assert.deepEqual(uploadSizes(t.dir), record.shards.map((s) => s.bytes));
    assert.deepEqual(readdirSync(join(t.dir, "home", "spool")), [], "the spool is removed");
  });

  for (const provider of ["echo", "items-echo"]) {
    it(`sends the items of the spool, rows that cannot be sent left out (${provider})`, async () => {
      // Every 7th prompt is empty: never sent, so left out of the spool and of the custom ids.
      const t = setup(2000, { maxRequests: 300, provider, empty: (i) => i % 7 === 3 });
      const summary = await t.submit();
      assert.equal(t.counts.opens, 1);
      const sent = Array.from({ length: 2000 }, (_, i) => i).filter((i) => i % 7 !== 3);
      assert.deepEqual(uploadedRows(t.dir), sent);
      const [record] = (await listJobs(t.opts)).records;
      assert.equal(summary.job?.shards, record.shards.length);
      assert.deepEqual(uploadSizes(t.dir), record.shards.map((s) => s.bytes));
      // Fetched and merged: every answer in its row, the empty prompts with their error.
      await fetchJobs([], { ...t.opts, registry: t.registry });
      const out: Record<string, string>[] = parse(readFileSync(join(t.dir, "out.csv")), {
        columns: true,
      });
      assert.equal(out.length, 2000);
      out.forEach((row, i) => {
        if (i % 7 === 3) assert.match(row.llm_error, /empty prompt/);
        else assert.equal(row.llm_response, row.text, `row ${i}`);
      });
    });
  }

  it("removes the spool once the batches are sent, before a --wait", async () => {
    const t = setup(300, { maxRequests: 100 });
    const spool = join(t.dir, "home", "spool");
    const seen: string[][] = [];
    const job = await loadJob({ file: join(t.dir, "job.yaml"), cwd: t.dir });
    await runJob(job, {
      ...t.opts,
      registry: t.registry,
      wait: true,
      pollMs: 1,
      // The first look at the batches comes after the submission.
      onEvent: (e) => void (e.type === "poll" && seen.push(readdirSync(spool))),
    });
    assert.ok(seen.length > 0, "the wait looked at the batches");
    assert.deepEqual(seen[0], [], "no spool while the job is waited for");
  });

  it("reads the dataset again for a provider that asks an encoded spool for its items", async () => {
    const t = setup(900, { maxRequests: 300, provider: "asks-items" });
    await t.submit();
    assert.equal(t.counts.opens, 1 + 3, "the planning pass, then one reading a shard");
    assert.deepEqual(uploadedRows(t.dir), Array.from({ length: 900 }, (_, i) => i));
  });

  it("removes the spools of processes that are gone, and keeps the others", async () => {
    const t = setup(100);
    const dir = join(t.dir, "home", "spool");
    mkdirSync(dir, { recursive: true });
    // Linux pids stay below 2^22: this one runs nothing.
    writeFileSync(join(dir, "999999999.0a0b.jsonl"), "{}\n");
    writeFileSync(join(dir, `${process.ppid}.0c0d.jsonl`), "{}\n");
    await t.submit();
    assert.deepEqual(readdirSync(dir), [`${process.ppid}.0c0d.jsonl`]);
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
    assert.deepEqual(readdirSync(join(t.dir, "home", "spool")), [], "the spool is removed");
  });

  it("removes the spool when the planning pass fails", async () => {
    const t = setup(500);
    // Row 300 has a field too many: the planning pass stops there, after spooling 299 items.
    const lines = t.text.split("\n");
    lines[300] += ",extra";
    writeFileSync(t.input, lines.join("\n"));
    await assert.rejects(t.submit(), /in\.csv:301: row has 3 fields but the header has 2/);
    assert.deepEqual(readdirSync(join(t.dir, "home", "spool")), []);
    assert.deepEqual((await listJobs(t.opts)).records, []);
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
