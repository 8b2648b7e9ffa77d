/** The sync executor's cache path: bulk lookups, answers that never wait on a commit, and no row paid twice. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createEchoProvider } from "../../plugins/providers/echo/mod.ts";
import { createMemoryStorage } from "../../plugins/storage/memory/mod.ts";
import { CommitPacing, ResponseCache } from "../state/cache.ts";
import type { RunEvent } from "../base/events.ts";
import { buildRequest } from "../data/request.ts";
import type { DatasetRow } from "../spec/format.ts";
import type { GenerateRequest, ProviderV1 } from "../spec/provider.ts";
import type { CacheTableV2 } from "../spec/storage.ts";
import { executeSync, type RowResult } from "./sync.ts";

const JOB = { model: "m", prompt: { column: "prompt" } };

async function* rowsOf(prompts: readonly string[]): AsyncGenerator<DatasetRow> {
  for (const [index, prompt] of prompts.entries()) {
    yield { index, line: index + 2, fields: { prompt } };
  }
}

/** Echo, counting the calls it answers. */
function countingEcho(): ProviderV1 & { calls: string[] } {
  const echo = createEchoProvider();
  const calls: string[] = [];
  return {
    ...echo,
    calls,
    generate(request: GenerateRequest, options) {
      calls.push(request.messages[0].content);
      return echo.generate(request, options);
    },
  };
}

/** A cache table over memory that counts its calls; `commit` decides when a set resolves. */
function countingTable(commit: (done: () => void) => void = (done) => done()) {
  const inner = createMemoryStorage().cache;
  const counts = { get: 0, getMany: 0, set: 0, committed: 0 };
  const table: CacheTableV2 = {
    ...inner,
    get: (key) => (counts.get++, inner.get(key)),
    getMany: (keys) => (counts.getMany++, inner.getMany!(keys)),
    set: (key, value) =>
      new Promise<void>((resolve, reject) => {
        counts.set++;
        commit(() =>
          inner.set(key, value).then(() => void counts.committed++).then(resolve, reject)
        );
      }),
  };
  return { table, counts, inner };
}

async function run(
  prompts: readonly string[],
  provider: ProviderV1,
  table: CacheTableV2 | undefined,
  workers = 4,
): Promise<{ results: RowResult[]; events: RunEvent[] }> {
  const events: RunEvent[] = [];
  const results: RowResult[] = [];
  for await (
    const result of executeSync(rowsOf(prompts), {
      provider,
      buildRequest: (row) => buildRequest(JOB, row.fields),
      cache: table && new ResponseCache(table),
      workers,
      onEvent: (event) => events.push(event),
    })
  ) results.push(result);
  return { results, events };
}

const prompts = (n: number, tag = "q") => Array.from({ length: n }, (_, i) => `${tag} ${i}`);

describe("executeSync with the cache", () => {
  it("looks a warm rerun's rows up many at a time, not row by row", async () => {
    const { table, counts } = countingTable();
    const echo = countingEcho();
    const input = prompts(2_500);
    await run(input, echo, table);
    assert.equal(echo.calls.length, 2_500);
    const before = { ...counts };
    const again = await run(input, echo, table);
    assert.equal(echo.calls.length, 2_500, "the rerun calls nothing");
    assert.ok(again.results.every((r) => r.outcome === "cached"));
    assert.deepEqual(
      again.results.map((r) => r.row.index),
      input.map((_, i) => i),
      "in input order",
    );
    assert.equal(counts.get - before.get, 0, "no lookup one key at a time");
    // Chunks of hundreds of rows: 2,500 rows take a handful of lookups, not thousands.
    assert.ok(counts.getMany - before.getMany <= 25, `${counts.getMany - before.getMany} lookups`);
    const rows = again.events.filter((e) => e.type === "row");
    assert.equal(rows.length, 2_500);
    assert.ok(rows.every((e) => e.type === "row" && e.outcome === "cached"));
  });

  it("falls back to get for a store without getMany", async () => {
    const { table, counts } = countingTable();
    const { getMany: _, ...plain } = table;
    const echo = countingEcho();
    await run(prompts(30), echo, plain);
    const again = await run(prompts(30), echo, plain);
    assert.equal(echo.calls.length, 30);
    assert.ok(again.results.every((r) => r.outcome === "cached"));
    assert.equal(counts.getMany, 0);
    assert.ok(counts.get >= 30);
  });

  it("does not hold a row until its answer is committed, and commits every answer before it ends", async () => {
    // The store commits only when told: rows must flow anyway, and the run must wait at its end.
    const waiting: (() => void)[] = [];
    const { table, counts } = countingTable((done) => waiting.push(done));
    const echo = countingEcho();
    const results: RowResult[] = [];
    let ended = false;
    const consumer = (async () => {
      for await (
        const r of executeSync(rowsOf(prompts(50)), {
          provider: echo,
          buildRequest: (row) => buildRequest(JOB, row.fields),
          cache: new ResponseCache(table),
          workers: 2,
          pacing: new CommitPacing({ perSecond: 0, burst: 0 }), // as at echo's pace
        })
      ) results.push(r);
      ended = true;
    })();
    try {
      for (let turn = 0; results.length < 50 && turn < 1_000; turn++) {
        await new Promise((r) => setImmediate(r));
      }
      assert.equal(results.length, 50, "every row came out with no commit yet");
      assert.equal(counts.committed, 0);
      assert.equal(ended, false, "the run has not ended: its answers are not committed");
    } finally {
      // Commits from now on go through at once, so the run can end whatever happened above.
      const release = () => {
        for (const done of waiting.splice(0)) done();
        if (!ended) setImmediate(release);
      };
      release();
      await consumer;
    }
    assert.equal(counts.committed, 50);
  });

  it("at a network provider's pace, commits each answer before the next call is sent", async () => {
    const { table, counts } = countingTable((done) => setImmediate(done));
    const echo = countingEcho();
    const committedAtCall: number[] = [];
    const slow: ProviderV1 = {
      ...echo,
      async generate(request, options) {
        committedAtCall.push(counts.committed);
        await new Promise((r) => setTimeout(r, 2));
        return echo.generate(request, options);
      },
    };
    await run(prompts(12), slow, table, 1);
    assert.deepEqual(committedAtCall, Array.from({ length: 12 }, (_, i) => i));
  });

  it("pays once for a prompt repeated in the input, even after the first answer is committed", async () => {
    const { table } = countingTable();
    const echo = countingEcho();
    // The same prompt at rows 0, 1 (same chunk) and 1,500 (a later chunk), one worker: each
    // later row starts after the first answer was committed.
    const input = prompts(1_600);
    input[1] = input[0];
    input[1_500] = input[0];
    const { results } = await run(input, echo, table, 1);
    assert.equal(echo.calls.filter((c) => c === input[0]).length, 1);
    assert.equal(echo.calls.length, 1_598);
    assert.deepEqual([results[1].outcome, results[1_500].outcome], ["cached", "cached"]);
    assert.equal(results[1_500].result?.text, input[0]);
  });

  it("still answers every row, with one warning, when the cache cannot be written", async () => {
    const { table } = countingTable();
    const failing: CacheTableV2 = {
      ...table,
      set: () => Promise.reject(new Error("disk full")),
    };
    const echo = countingEcho();
    const { results, events } = await run(prompts(20), echo, failing);
    assert.ok(results.every((r) => r.outcome === "ok"));
    const warnings = events.filter((e) => e.type === "warning");
    assert.equal(warnings.length, 1);
    assert.match(JSON.stringify(warnings), /cannot write the cache.*disk full/);
  });

  it("with the cache off, joins identical calls in flight only", async () => {
    const echo = countingEcho();
    const { results } = await run(["a", "b", "a"], echo, undefined, 1);
    assert.deepEqual(results.map((r) => r.outcome), ["ok", "ok", "ok"]);
    assert.equal(echo.calls.length, 3, "one worker: the calls never overlap, each is sent");
  });
});
