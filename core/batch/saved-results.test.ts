/**
 * Saved outcomes packed into runs (saved-results.ts): whatever order a provider's results come in,
 * a shard reads back one outcome a row, in row order, with the answer-over-error rule; results in
 * order take a store row a run; the one-outcome rows older versions saved read back as before.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { createMemoryStorage } from "../../plugins/storage/memory/mod.ts";
import type { ResultRow } from "../spec/storage.ts";
import { encodeOutcome } from "./saved-results.ts";
import { JOB_RECORD_VERSION, JobStore, type SavedOutcome } from "./store.ts";

const JOB = "20261205-cccccc";

async function* streamOf(list: readonly SavedOutcome[]): AsyncGenerator<SavedOutcome> {
  yield* list;
}

async function readBack(store: JobStore, shard = 0): Promise<SavedOutcome[]> {
  const out: SavedOutcome[] = [];
  for await (const o of store.readResults(JOB, shard)) out.push(o);
  return out;
}

async function storedRows(store: JobStore, shard = 0): Promise<ResultRow[]> {
  const rows: ResultRow[] = [];
  for await (const row of store.storage.results.read(JOB, shard)) rows.push(row);
  return rows;
}

/** What a shard must read back: by row, the first answer, else the last error. */
function expected(came: readonly SavedOutcome[]): SavedOutcome[] {
  const best = new Map<number, SavedOutcome>();
  for (const o of came) {
    const now = best.get(o.i);
    if (now && "r" in now) continue;
    best.set(o.i, o);
  }
  return [...best.values()].sort((a, b) => a.i - b.i);
}

const answer = (i: number, text = `answer ${i}`): SavedOutcome => ({ i, r: { text } });

describe("saved results in runs", () => {
  it("saves results that came in order as runs, a few store rows for many outcomes", async () => {
    const store = new JobStore(createMemoryStorage(), {});
    // Rows 0..999 with a few gaps (rows whose prompt could not be built are never sent).
    const came = Array.from({ length: 1000 }, (_, i) => i).filter((i) => i % 97 !== 5).map((i) =>
      answer(i)
    );
    await store.saveResults(JOB, 0, streamOf(came));
    const rows = await storedRows(store);
    assert.ok(rows.length <= 40, `${rows.length} store rows for ${came.length} outcomes`);
    assert.ok(rows.every((r) => r.value.startsWith("[")), "each a run");
    assert.deepEqual(await readBack(store), came);
  });

  it("starts a new run at a jump of rows; a lone answer is a run of one, a lone error an object", async () => {
    const store = new JobStore(createMemoryStorage(), {});
    const error: SavedOutcome = { i: 900, e: "expired", k: "expired" };
    await store.saveResults(
      JOB,
      0,
      streamOf([answer(0), answer(1), answer(500), answer(2), error]),
    );
    const rows = await storedRows(store);
    assert.deepEqual(rows.map((r) => r.row), [0, 2, 500, 900]);
    assert.deepEqual(JSON.parse(rows[0].value), [[0, "answer 0"], [1, "answer 1"]]);
    assert.deepEqual(JSON.parse(rows[2].value), [[500, "answer 500"]]);
    assert.deepEqual(JSON.parse(rows[3].value), error);
    assert.deepEqual((await readBack(store)).map((o) => o.i), [0, 1, 2, 500, 900]);
  });

  it("stores an answer of the usual shape as a tuple, a third the size of its object", () => {
    const o: SavedOutcome = {
      i: 123456,
      r: {
        text: 'Summarize item 123456: a short text, with a comma and "quotes" in it.',
        finishReason: "stop",
        usage: { inputTokens: 17, outputTokens: 17 },
      },
    };
    const stored = encodeOutcome(o);
    assert.equal(stored.startsWith("[123456,"), true, stored);
    assert.ok(stored.length < 0.65 * JSON.stringify(o).length, stored);
  });

  it("gives every answer back as JSON would, tuple or object", async () => {
    const absent = fc.constant(undefined);
    const count = fc.oneof(fc.nat(), absent, fc.constantFrom(Number.NaN, -0, 1.5, null));
    // A cost is a small fraction of a dollar: JSON writes some of them with an exponent.
    const cost = fc.oneof(
      fc.double({ min: 0, max: 10, noNaN: true }),
      fc.constantFrom(0.0000123, 1.5e-7, 0, Number.POSITIVE_INFINITY),
      absent,
    );
    const usage = fc.oneof(
      absent,
      fc.record(
        { inputTokens: count, outputTokens: count, reasoningTokens: count, cost },
        { requiredKeys: [] },
      ),
      fc.constant({ outputTokens: 3, inputTokens: 2 }), // another order
      fc.constant({ inputTokens: 2, cachedTokens: 1 }), // another field
    );
    const text = fc.oneof(fc.string({ maxLength: 4 }), fc.constant("\u2028\ud800"));
    const result = fc.record({
      text,
      finishReason: fc.oneof(fc.string({ maxLength: 4 }), absent, fc.constant(null)),
      truncated: fc.oneof(fc.boolean(), absent, fc.constant(1)),
      refusal: fc.oneof(fc.string({ maxLength: 4 }), absent),
      usage,
      model: fc.oneof(fc.string({ maxLength: 4 }), absent),
      extra: fc.oneof(absent, fc.constant({ a: 1 })),
    }, { requiredKeys: ["text"] });
    const shuffled = fc.tuple(result, fc.boolean()).map(([r, reverse]) =>
      reverse ? Object.fromEntries(Object.entries(r).reverse()) : r
    );
    await fc.assert(
      fc.asyncProperty(fc.array(shuffled, { maxLength: 40 }), async (results) => {
        const came = results.map((r, i) => ({ i, r }) as unknown as SavedOutcome);
        const store = new JobStore(createMemoryStorage(), {});
        await store.saveResults(JOB, 0, streamOf(came));
        const back = await readBack(store);
        assert.deepEqual(back, JSON.parse(JSON.stringify(came)));
        // Same keys in the same order, not only equal values.
        assert.equal(JSON.stringify(back), JSON.stringify(came));
      }),
      { numRuns: 500 },
    );
  });

  it("keeps a reported cost in the tuple, and reads tuples saved before costs were kept", async () => {
    const priced: SavedOutcome = {
      i: 4,
      r: { text: "a", usage: { inputTokens: 10, outputTokens: 2, cost: 1.5e-7 } },
    };
    assert.equal(encodeOutcome(priced), '[4,"a",null,[10,2,null,1.5e-7]]');
    const storage = createMemoryStorage();
    const store = new JobStore(storage, {});
    // As an earlier version wrote them: usage as [input, output, reasoning].
    await storage.results.put(JOB, 0, [{
      row: 1,
      value: '[[1,"x","stop",[5,7,3]],[2,"y",null,[5]]]',
    }]);
    assert.deepEqual(await readBack(store), [
      {
        i: 1,
        r: {
          text: "x",
          finishReason: "stop",
          usage: { inputTokens: 5, outputTokens: 7, reasoningTokens: 3 },
        },
      },
      { i: 2, r: { text: "y", usage: { inputTokens: 5 } } },
    ]);
    await store.saveResults(JOB, 1, streamOf([priced]));
    assert.deepEqual(await readBack(store, 1), [priced]);
  });

  it("reads the one-outcome rows that Loom saved before runs", async () => {
    const storage = createMemoryStorage();
    const store = new JobStore(storage, {});
    const old = [answer(3), { i: 7, e: "expired", k: "expired" as const }, answer(9)];
    await storage.results.put(
      JOB,
      0,
      old.map((o) => ({ row: o.i, value: JSON.stringify(o) })),
    );
    assert.deepEqual(await readBack(store), old);
  });

  it("reads back one outcome a row, in row order, whatever order they came in", async () => {
    const outcome = fc.oneof(
      fc.record({ i: fc.nat(400), text: fc.string({ maxLength: 3 }) }).map((o) =>
        answer(o.i, o.text)
      ),
      fc.record({
        i: fc.nat(400),
        e: fc.string({ maxLength: 3 }),
        k: fc.constantFrom("failed" as const, "expired" as const),
      }).map(({ i, e, k }): SavedOutcome => ({ i, e, k })),
    );
    // Mostly in order, as providers return them, with some shuffled: both kinds of run layout.
    const arrivals = fc.oneof(
      fc.array(outcome, { maxLength: 600 }),
      fc.array(outcome, { maxLength: 600 }).map((l) => l.toSorted((a, b) => a.i - b.i)),
      fc.tuple(fc.array(outcome, { maxLength: 600 }), fc.nat(50)).map(([l, swaps]) => {
        const sorted = l.toSorted((a, b) => a.i - b.i);
        for (let s = 0; s < swaps && sorted.length > 1; s++) {
          const a = (s * 7919) % sorted.length;
          const b = (a + 1 + (s % 5)) % sorted.length;
          [sorted[a], sorted[b]] = [sorted[b], sorted[a]];
        }
        return sorted;
      }),
    );
    await fc.assert(
      fc.asyncProperty(arrivals, async (came) => {
        const store = new JobStore(createMemoryStorage(), {});
        await store.saveResults(JOB, 0, streamOf(came));
        assert.deepEqual(await readBack(store), expected(came));
        const rows = await storedRows(store);
        assert.ok(rows.length <= Math.max(1, new Set(came.map((o) => o.i)).size));
      }),
      { numRuns: 300 },
    );
  });

  it("reads a version 1 record (saved as version 2) and refuses a newer one", async () => {
    const storage = createMemoryStorage();
    const store = new JobStore(storage, {});
    const record = (version: number, id: string) =>
      JSON.stringify({
        version,
        id,
        key: "k",
        createdAt: "2026-12-04T00:00:00.000Z",
        updatedAt: "2026-12-04T00:00:00.000Z",
        status: "pending",
        spec: { dataset: { path: "/in.csv" }, provider: "echo", model: "m" },
        input: { path: "/in.csv", size: 1, sha256: "x" },
        output: "/out.csv",
        rows: 1,
        shards: [],
      });
    await storage.jobs.put("20261205-aaaaa1", record(1, "20261205-aaaaa1"), 0);
    const loaded = await store.load("20261205-aaaaa1");
    assert.equal(loaded?.version, JOB_RECORD_VERSION);
    await store.save(loaded!);
    assert.equal(
      JSON.parse((await storage.jobs.get("20261205-aaaaa1"))!.record).version,
      JOB_RECORD_VERSION,
    );
    await storage.jobs.put("20261205-aaaaa3", record(3, "20261205-aaaaa3"), 0);
    await assert.rejects(
      store.load("20261205-aaaaa3"),
      /written by another version of Loom \(record version 3\)/,
    );
  });
});
