import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { orderedBatchPool, orderedPool } from "./ordered-pool.ts";

/** A task whose completion the test controls, to make ordering deterministic. */
function deferred<T>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
}

describe("orderedPool", () => {
  it("yields results in input order whatever order tasks finish in", async () => {
    const gates = Array.from({ length: 6 }, () => deferred<void>());
    const out: number[] = [];
    const consumer = (async () => {
      for await (
        const v of orderedPool([0, 1, 2, 3, 4, 5], async (i) => (await gates[i].promise, i * 10), {
          concurrency: 6,
          window: 6,
        })
      ) out.push(v);
    })();
    for (const i of [5, 3, 1, 4, 0, 2]) {
      gates[i].resolve();
      await new Promise((r) => setImmediate(r));
    }
    await consumer;
    assert.deepEqual(out, [0, 10, 20, 30, 40, 50]);
  });

  it("never runs more than `concurrency` tasks and never reads more than `window` ahead", async () => {
    let running = 0;
    let peak = 0;
    let pulled = 0;
    let yielded = 0;
    let maxAhead = 0;
    function* items() {
      for (let i = 0; i < 200; i++) {
        pulled++;
        maxAhead = Math.max(maxAhead, pulled - yielded);
        yield i;
      }
    }
    const results: number[] = [];
    for await (
      const v of orderedPool(items(), async (i) => {
        running++;
        peak = Math.max(peak, running);
        await new Promise((r) => setTimeout(r, i % 7));
        running--;
        return i;
      }, { concurrency: 4, window: 16 })
    ) {
      yielded++;
      results.push(v);
    }
    assert.deepEqual(results, Array.from({ length: 200 }, (_, i) => i));
    assert.ok(peak <= 4, `peak concurrency ${peak}`);
    assert.ok(maxAhead <= 17, `read ${maxAhead} items ahead`);
  });

  it("throws a task's error in its turn, after the earlier results", async () => {
    const seen: number[] = [];
    await assert.rejects(async () => {
      for await (
        const v of orderedPool([1, 2, 3], async (i) => {
          if (i === 2) throw new Error("boom");
          return i;
        }, { concurrency: 2, window: 2 })
      ) seen.push(v);
    }, /boom/);
    assert.deepEqual(seen, [1]);
  });

  it("hands results on in batches, in order, and goes on when tasks end while a batch is held", async () => {
    const chunks = [[0, 1, 2, 3], [4, 5, 6, 7, 8, 9], [10, 11]];
    const batches: number[][] = [];
    for await (
      const batch of orderedBatchPool(chunks, async (i) => {
        await new Promise((r) => setImmediate(r));
        return i;
      }, { concurrency: 2, window: 4, ready: (i) => (i % 3 === 0 ? 100 + i : undefined) })
    ) {
      batches.push(batch);
      // The consumer holds the batch for a while: every running task ends meanwhile.
      for (let n = 0; n < 5; n++) await new Promise((r) => setImmediate(r));
    }
    assert.deepEqual(batches.flat(), [100, 1, 2, 103, 4, 5, 106, 7, 8, 109, 10, 11]);
    assert.ok(batches.length < 12, `${batches.length} batches for 12 results`);
  });

  it("throws an error in its turn, after a batch of the results before it", async () => {
    const batches: number[][] = [];
    await assert.rejects(async () => {
      for await (
        const batch of orderedBatchPool([[1, 2, 3, 4]], (i) => {
          if (i === 3) return Promise.reject(new Error("boom"));
          return Promise.resolve(i);
        }, { concurrency: 4, window: 4, ready: (i) => (i === 1 ? 1 : undefined) })
      ) batches.push(batch);
    }, /boom/);
    assert.deepEqual(batches.flat(), [1, 2]);
  });
});
