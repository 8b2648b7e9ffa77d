/**
 * The conformance suite every storage plugin passes, built-in or third-party:
 *
 * ```ts
 * storageConformance({ name: "fs", create: () => createFsStorage(tmpDir) });
 * ```
 * Written with `node:test` only, so it runs under `deno test` and `node --test` alike.
 * @module
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { StorageV1 } from "../spec/storage.ts";

/** Options of {@link storageConformance}. */
export interface StorageConformanceOptions {
  name: string;
  /** Returns a fresh, empty storage for each test. */
  create: () => StorageV1 | Promise<StorageV1>;
  /** Returns a second instance over the same data, for backends that persist. */
  reopen?: (first: StorageV1) => StorageV1 | Promise<StorageV1>;
}

async function collect(keys: AsyncIterable<string>): Promise<string[]> {
  const out: string[] = [];
  for await (const key of keys) out.push(key);
  return out.sort();
}

/** Registers the storage conformance tests for one plugin. */
export function storageConformance(options: StorageConformanceOptions): void {
  describe(`storage conformance: ${options.name}`, () => {
    it("declares the v1 contract", async () => {
      const s = await options.create();
      assert.equal(s.specificationVersion, "loom.storage.v1");
      assert.equal(typeof s.location, "string");
    });

    it("returns undefined for a missing key and round-trips values", async () => {
      const s = await options.create();
      assert.equal(await s.get("cache/none"), undefined);
      const value = JSON.stringify({ text: 'Zoë — 東京 🚀\n"quoted"', n: 1 });
      await s.set("cache/ab/one", value);
      assert.equal(await s.get("cache/ab/one"), value);
      await s.set("cache/ab/one", "second");
      assert.equal(await s.get("cache/ab/one"), "second");
    });

    it("lists keys under a prefix and clears them", async () => {
      const s = await options.create();
      await Promise.all([
        s.set("cache/aa/1", "a"),
        s.set("cache/bb/2", "b"),
        s.set("jobs/x", "c"),
      ]);
      assert.deepEqual(await collect(s.keys("cache/")), ["cache/aa/1", "cache/bb/2"]);
      assert.deepEqual(await collect(s.keys("")), ["cache/aa/1", "cache/bb/2", "jobs/x"]);
      assert.equal(await s.clear("cache"), 2);
      assert.deepEqual(await collect(s.keys("")), ["jobs/x"]);
      assert.equal(await s.clear("nothing-here"), 0);
    });

    it("deletes keys, absent ones included", async () => {
      const s = await options.create();
      await s.set("jobs/a", "1");
      await s.delete("jobs/a");
      await s.delete("jobs/never");
      assert.equal(await s.get("jobs/a"), undefined);
    });

    it("survives many parallel writes to different and equal keys", async () => {
      const s = await options.create();
      await Promise.all(
        Array.from({ length: 200 }, (_, i) => s.set(`cache/p/${i % 50}`, `v${i % 50}`)),
      );
      const keys = await collect(s.keys("cache/p"));
      assert.equal(keys.length, 50);
      for (let i = 0; i < 50; i++) assert.equal(await s.get(`cache/p/${i}`), `v${i}`);
    });

    it("rejects unsafe keys", async () => {
      const s = await options.create();
      await assert.rejects(() => s.set("../escape", "x"), TypeError);
      await assert.rejects(() => s.get("a//b"), TypeError);
      await assert.rejects(() => s.set("a/../../b", "x"), TypeError);
    });

    if (options.reopen) {
      const reopen = options.reopen;
      it("keeps data for a new instance", async () => {
        const s = await options.create();
        await s.set("jobs/persist", "yes");
        const again = await reopen(s);
        assert.equal(await again.get("jobs/persist"), "yes");
      });
    }
  });
}
