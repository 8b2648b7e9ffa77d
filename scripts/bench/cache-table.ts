/**
 * Benchmark: the SQLite store's cache table alone — `set` then `get` of N entries (answers of
 * about 300 bytes under 64-hex keys, as the response cache stores them), one call at a time and
 * 16 at a time (a sync run's workers), `getMany` 250 keys a call (a sync run's chunks), sets
 * made 250 a turn of the event loop without waiting for each (a cold run at echo pace: the store
 * groups them into large commits), into an empty cache and into one of N entries, then `stats`
 * and the file's size against the data's.
 *
 *   node scripts/bench/cache-table.ts [entries]        (default 100,000)
 *   deno run -A scripts/bench/cache-table.ts [entries]
 */
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { setImmediate } from "node:timers";
import { runtimeName } from "../../core/base/runtime.ts";
import type { StorageV2 } from "../../core/spec/storage.ts";
import { openSqliteStorage } from "../../plugins/storage/sqlite/mod.ts";

const entries = Number(process.argv[2] ?? 100_000);
const key = (i: number) => createHash("sha256").update(`request ${i}`).digest("hex");
const value = (i: number) =>
  JSON.stringify({ text: `The answer to request ${i}. `.repeat(8), finishReason: "stop" });

/** Runs `call(i)` for every i, `parallel` at a time; answers the seconds it took. */
async function timed(parallel: number, call: (i: number) => Promise<unknown>): Promise<number> {
  const start = performance.now();
  let next = 0;
  await Promise.all(Array.from({ length: parallel }, async () => {
    while (next < entries) await call(next++);
  }));
  return (performance.now() - start) / 1000;
}

/**
 * Sets entries `from`…`from + entries - 1` 250 a turn of the event loop, waiting for none until
 * the end (a cold sync run at echo pace); answers the seconds it took.
 */
async function turns(store: StorageV2, from: number): Promise<number> {
  const start = performance.now();
  const writes: Promise<void>[] = [];
  for (let i = from; i < from + entries; i++) {
    writes.push(store.cache.set(key(i), value(i)));
    if (i % 250 === 249) await new Promise((resolve) => setImmediate(resolve));
  }
  await Promise.all(writes);
  return (performance.now() - start) / 1000;
}

const dir = mkdtempSync(join(tmpdir(), "loom-bench-cache-"));
try {
  const store = await openSqliteStorage({ file: join(dir, "state.db") });
  const rate = (s: number) => `${Math.round(entries / s).toLocaleString("en")}/s`;
  const line = (what: string, s: number) =>
    console.log(`${what.padEnd(22)} ${s.toFixed(2).padStart(6)} s  ${rate(s)}`);
  console.log(`${runtimeName()}: ${entries.toLocaleString("en")} cache entries`);
  line("set, one at a time", await timed(1, (i) => store.cache.set(key(i), value(i))));
  line("get, one at a time", await timed(1, (i) => store.cache.get(key(i))));
  await store.cache.clear();
  line("set, 16 at a time", await timed(16, (i) => store.cache.set(key(i), value(i))));
  line("get, 16 at a time", await timed(16, (i) => store.cache.get(key(i))));
  const start250 = performance.now();
  for (let i = 0; i < entries; i += 250) {
    await store.cache.getMany!(
      Array.from({ length: Math.min(250, entries - i) }, (_, j) => key(i + j)),
    );
  }
  line("getMany, 250 a call", (performance.now() - start250) / 1000);
  await store.cache.clear();
  line("set, 250 a turn", await turns(store, 0));
  line("  into N entries", await turns(store, entries));
  const start = performance.now();
  const stats = await store.cache.stats();
  console.log(`stats                  ${((performance.now() - start) / 1000).toFixed(3)} s`);
  await store.close();
  const file = statSync(join(dir, "state.db")).size;
  console.log(
    `data ${(stats.bytes / 2 ** 20).toFixed(1)} MiB, file ${(file / 2 ** 20).toFixed(1)} MiB ` +
      `(${(file / stats.bytes).toFixed(2)}×)`,
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
