/**
 * Sync run records in the state store: a run's counts, tokens, cost and answers per minute, a
 * record kept up to date while it runs, an interrupted and a failed run's; and a batch job's
 * estimate and merged tokens. Offline: echo, with a cost in its usage where one is needed.
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { createMemoryStorage } from "../../plugins/storage/memory/mod.ts";
import { LoomInterruptedError, LoomProviderError } from "../base/errors.ts";
import { runJob } from "../commands/run.ts";
import { JobStore } from "../batch/store.ts";
import { loadJob } from "../job/load.ts";
import type { Registry } from "../plugins/registry.ts";
import type { StorageV2 } from "../spec/storage.ts";
import { pricedRegistry } from "../test-support/priced-echo.ts";
import { tempDir } from "../test-support/temp.ts";
import { listRuns, type RunRecord, RunRecorder } from "./record.ts";

/** A sync job over `prompts`; `options` go into provider_options, `more` are lines of the job. */
function setup(prompts: readonly string[], options = "", more = "") {
  const dir = tempDir();
  writeFileSync(join(dir, "in.csv"), `text\n${prompts.join("\n")}\n`);
  writeFileSync(
    join(dir, "job.yaml"),
    "dataset: { path: in.csv }\nprompt: { column: text }\nprovider: priced\nmodel: m\n" +
      `provider_options: { fail_on: BAD${options} }\nmode: sync\noutput: { path: out.csv }\n` +
      more,
  );
  const store = createMemoryStorage();
  const run = async (
    options: {
      signal?: AbortSignal;
      registry?: Registry;
      env?: Record<string, string>;
      onRow?: () => void;
    } = {},
  ) =>
    runJob(await loadJob({ file: join(dir, "job.yaml"), cwd: dir }), {
      env: { LOOM_HOME: join(dir, "home"), LOOM_HOST_ID: "test-host", ...options.env },
      cwd: dir,
      store,
      force: true,
      registry: options.registry ?? pricedRegistry(),
      signal: options.signal,
      onEvent: (e) => e.type === "row" && options.onRow?.(),
    });
  return { dir, store, run };
}

const runs = (store: StorageV2) => listRuns(store.runs!);
const sum = (list: readonly number[]) => list.reduce((a, b) => a + b, 0);
const tokens = (text: string) => Math.ceil(text.length / 4);

describe("sync run records", () => {
  it("record the rows, tokens, cost and answers per minute of a run, and of its cached rerun", async () => {
    const prompts = ["a short one", "a somewhat longer prompt to answer", "this one is BAD"];
    const t = setup(prompts);
    const summary = await t.run();
    const [record] = await runs(t.store);
    assert.equal(record.status, "finished");
    assert.match(record.id, /^run-\d{8}-[0-9a-f]{6}$/);
    assert.deepEqual(
      [record.rows, record.answered, record.failed, record.cached],
      [3, 2, 1, 0],
    );
    assert.equal(record.provider, "priced");
    assert.equal(record.model, "m");
    assert.equal(record.host, "test-host");
    assert.equal(record.input, join(t.dir, "in.csv"));
    assert.equal(record.output, join(t.dir, "out.csv"));
    assert.equal(record.jobFile, join(t.dir, "job.yaml"));
    assert.equal(record.inputTokens, tokens(prompts[0]) + tokens(prompts[1]));
    assert.equal(record.outputTokens, tokens(prompts[0]) + tokens(prompts[1]));
    assert.equal(record.cost, summary.cost);
    assert.ok(record.cost! > 0);
    assert.equal(sum(record.perMinute), record.answered, "answers per minute add up");
    assert.ok(record.endedAt && record.endedAt >= record.startedAt);
    assert.equal(record.estimate, undefined, "no spend cap: the sync run made no estimate");
    assert.equal(record.error, undefined);

    await t.run();
    const [again, first] = await runs(t.store);
    assert.deepEqual(first, record, "the first run's record is left as it was");
    assert.notEqual(again.id, record.id);
    assert.deepEqual([again.answered, again.failed, again.cached], [2, 1, 2]);
    assert.deepEqual([again.inputTokens, again.outputTokens, again.cost], [0, 0, undefined]);
    assert.equal(sum(again.perMinute), 2);
  });

  it("keep the record up to date while the run goes on, and record its estimate under a spend cap", async () => {
    const prompts = Array.from({ length: 12 }, (_, i) => `prompt ${i}`);
    const t = setup(
      prompts,
      ", latency_ms: 40",
      "sync: { workers: 1 }\ncost: { max_usd: 5, prices: { input: 1, output: 2 } }\n",
    );
    const seen: RunRecord[] = [];
    let reading: Promise<void> = Promise.resolve();
    const done = await t.run({
      env: { LOOM_RUN_RECORD_SECONDS: "0.05" },
      onRow: () => {
        reading = reading.then(async () => {
          seen.push(...await runs(t.store));
        });
      },
    });
    await reading;
    const running = seen.filter((r) => r.status === "running");
    assert.ok(
      running.some((r) => r.answered > 0 && r.answered < 12),
      "a running record with some rows answered was written before the end",
    );
    const [record] = await runs(t.store);
    assert.equal(record.status, "finished");
    assert.equal(record.answered, done.ok);
    assert.ok(record.estimate, "the spend cap's estimate is recorded");
    assert.equal(record.estimate.price, "job");
    assert.equal(record.estimate.inputTokens, sum(prompts.map(tokens)));
    assert.ok(record.estimate.cost > 0 && record.estimate.cost < 5);
  });

  it("record an interrupted run as interrupted, with the rows it got to", async () => {
    const t = setup(Array.from({ length: 40 }, (_, i) => `prompt ${i}`), ", latency_ms: 20");
    const stop = new AbortController();
    let rows = 0;
    await assert.rejects(
      t.run({ signal: stop.signal, onRow: () => ++rows === 5 && stop.abort() }),
      LoomInterruptedError,
    );
    const [record] = await runs(t.store);
    assert.equal(record.status, "interrupted");
    assert.ok(record.answered >= 5 && record.answered < 40, `answered ${record.answered}`);
    assert.equal(sum(record.perMinute), record.answered);
    assert.match(record.error!, /^interrupted after \d+ of 40 rows/);
    assert.ok(record.endedAt);
  });

  it("record a failed run as failed, with its error and no prompt text", async () => {
    const t = setup(["one", "two FATAL", "three"], ", latency_ms: 5");
    await assert.rejects(
      t.run({ registry: pricedRegistry({ fatalOn: "FATAL" }) }),
      LoomProviderError,
    );
    const [record] = await runs(t.store);
    assert.equal(record.status, "failed");
    assert.match(record.error!, /refused/);
    assert.ok(!JSON.stringify(record).includes("two FATAL"), "no prompt text in the record");
  });
});

describe("RunRecorder", () => {
  it("counts the minutes without an answer as zeros, up to the end", async () => {
    const store = createMemoryStorage();
    const started = Date.now() - 150_000; // two and a half minutes ago
    const warnings: string[] = [];
    const recorder = new RunRecorder(store.runs!, {
      provider: "p",
      model: "m",
      input: "/in.csv",
      output: "/out.csv",
      format: "csv",
      host: "h",
      rows: 3,
    }, { warn: (w) => warnings.push(w), now: started });
    await recorder.start(60_000);
    recorder.row("ok", started + 1_000);
    recorder.row("cached", started + 2_000);
    recorder.row("error", started + 70_000);
    await recorder.end();
    const [record] = await runs(store);
    assert.deepEqual(record.perMinute, [2, 0, 0]);
    assert.deepEqual([record.answered, record.cached, record.failed], [2, 1, 1]);
    assert.deepEqual(warnings, []);
  });

  it("warns once when the store refuses the record, and the run goes on", async () => {
    const warnings: string[] = [];
    const table = {
      get: () => Promise.resolve(undefined),
      list: () => Promise.resolve([]),
      put: () => Promise.reject(new Error("disk full")),
      remove: () => Promise.resolve(),
    };
    const recorder = new RunRecorder(table, {
      provider: "p",
      model: "m",
      input: "/in.csv",
      output: "/out.csv",
      format: "csv",
      host: "h",
      rows: 1,
    }, { warn: (w) => warnings.push(w) });
    await recorder.start(60_000);
    recorder.row("ok");
    await recorder.end();
    assert.deepEqual(warnings, ["cannot record the run in the state store: disk full"]);
  });
});

describe("batch job records", () => {
  it("keep the estimate made at submission and the merged answers' tokens and cost", async () => {
    const dir = tempDir();
    writeFileSync(join(dir, "in.csv"), "text\nhello there\nthis is BAD\n");
    writeFileSync(
      join(dir, "job.yaml"),
      "dataset: { path: in.csv }\nprompt: { column: text }\nprovider: echo\nmodel: m\n" +
        "provider_options: { fail_on: BAD }\nmode: batch\noutput: { path: out.csv }\n" +
        "cost: { prices: { input: 1, output: 2 } }\n",
    );
    const store = createMemoryStorage();
    await runJob(await loadJob({ file: join(dir, "job.yaml"), cwd: dir }), {
      env: { LOOM_HOME: join(dir, "home") },
      cwd: dir,
      store,
      wait: true,
      pollMs: 1,
    });
    // A row failed, so the merged job stays in the store.
    const { records: [job] } = await new JobStore(store, {}, dir).list();
    assert.ok(job.estimate);
    assert.equal(job.estimate.price, "job");
    assert.equal(job.estimate.inputTokens, tokens("hello there") + tokens("this is BAD"));
    assert.ok(job.estimate.cost > 0);
    assert.deepEqual(
      [job.merged?.ok, job.merged?.inputTokens, job.merged?.outputTokens],
      [1, tokens("hello there"), tokens("hello there")],
    );
  });
});
