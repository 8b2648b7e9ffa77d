/**
 * A merge walks each shard's saved results once, in row order; a shard's reader is closed as
 * soon as the merge has gone past the shard's rows, so a job of many shards never holds a reader
 * (a database connection, a snapshot) per shard at once.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createMemoryStorage } from "../../plugins/storage/memory/mod.ts";
import type { ResultRow } from "../spec/storage.ts";
import { savedOutcomes } from "./fetch.ts";
import { JOB_RECORD_VERSION, type JobRecord, JobStore, type SavedOutcome } from "./store.ts";

describe("a merge's readers of saved results", () => {
  it("closes each shard's reader once the merge is past its rows", async () => {
    const storage = createMemoryStorage();
    const open = new Set<number>();
    let most = 0;
    const read = storage.results.read.bind(storage.results);
    storage.results.read = async function* (job: string, shard: number) {
      open.add(shard);
      most = Math.max(most, open.size);
      try {
        yield* read(job, shard) as AsyncIterable<ResultRow>;
      } finally {
        open.delete(shard);
      }
    };
    const store = new JobStore(storage, {});
    const shards = 20;
    const record: JobRecord = {
      version: JOB_RECORD_VERSION,
      id: "20261204-aaaaaa",
      key: "k",
      createdAt: "2026-12-04T00:00:00.000Z",
      updatedAt: "2026-12-04T00:00:00.000Z",
      status: "pending",
      spec: { dataset: { path: "/in.csv" }, provider: "echo", model: "m" } as JobRecord["spec"],
      input: { path: "/in.csv", size: 1, sha256: "x" },
      output: "/out.csv",
      rows: shards * 3,
      shards: Array.from({ length: shards }, (_, i) => ({
        index: i,
        rows: { start: i * 3, end: i * 3 + 3 },
        requests: 3,
        bytes: 1,
        handle: { id: `b${i}` },
        state: "completed" as const,
        fetched: { ok: 3, errors: 0, at: "2026-12-04T00:00:00.000Z" },
      })),
    };
    for (let i = 0; i < shards; i++) {
      await store.saveResults(
        record.id,
        i,
        (async function* () {
          for (let r = i * 3; r < i * 3 + 3; r++) yield { i: r, r: { text: `answer ${r}` } };
        })(),
      );
    }
    const saved = savedOutcomes(store, record);
    for (let row = 0; row < shards * 3; row++) {
      const { outcome } = await saved.at(row);
      assert.ok(outcome && "r" in outcome && outcome.r.text === `answer ${row}`, `row ${row}`);
    }
    await saved.close();
    assert.equal(open.size, 0, "every reader is closed at the end");
    assert.ok(most <= 2, `at most two shards' readers open at once, not ${most}`);
  });

  it("saves one outcome a row, in row order, an answer over any error, whatever order they came in", async () => {
    const storage = createMemoryStorage();
    const store = new JobStore(storage, {});
    const job = "20261204-bbbbbb";
    const came: SavedOutcome[] = [
      { i: 5, e: "first try failed", k: "failed" },
      { i: 2, r: { text: "two" } },
      { i: 9, e: "expired", k: "expired" },
      { i: 2, e: "late error", k: "failed" },
      { i: 5, r: { text: "five" } },
      { i: 0, r: { text: "zero" } },
      { i: 9, e: "cancelled", k: "cancelled" },
      { i: 0, r: { text: "zero again" } },
    ];
    const outcomes = (list: SavedOutcome[]) =>
      (async function* () {
        yield* list;
      })();
    const saved = async (shard: number) => {
      const rows: [number, SavedOutcome][] = [];
      for await (const o of store.readResults(job, shard)) rows.push([o.i, o]);
      return rows;
    };
    await store.saveResults(job, 0, outcomes(came));
    assert.deepEqual(await saved(0), [
      // Answers are saved as they come: the first answer of a row is kept.
      [0, { i: 0, r: { text: "zero" } }],
      [2, { i: 2, r: { text: "two" } }],
      [5, { i: 5, r: { text: "five" } }],
      [9, { i: 9, e: "cancelled", k: "cancelled" }],
    ]);
    const inOrder = came.toSorted((a, b) => a.i - b.i);
    await store.saveResults(job, 1, outcomes(inOrder));
    assert.deepEqual(await saved(1), await saved(0), "sorted or not, the same rows");
  });
});
