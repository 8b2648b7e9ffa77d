/**
 * The conformance suite every storage plugin passes, built-in or third-party (contract
 * `loom.storage.v2`, see `core/spec/storage.ts`):
 *
 * ```ts
 * import { storageConformance } from "loom-batch/testing";
 * storageConformance({
 *   name: "acme",
 *   create: () => openAcme(freshDatabase()),
 *   reopen: (first) => openAcme(first.location), // a second instance over the same data
 * });
 * ```
 * Written with `node:test` only, so it runs under `deno test` and `node --test` alike. Every store
 * a test opens is closed when the test ends, passed or failed, so a connection pool never keeps
 * the test process alive.
 * @module
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { describe, it } from "node:test";
import type { LeaseInfo, ResultRow, StorageV2 } from "../spec/storage.ts";

/** Options of {@link storageConformance}. */
export interface StorageConformanceOptions {
  name: string;
  /** Returns a fresh, empty storage for each test. */
  create: () => StorageV2 | Promise<StorageV2>;
  /**
   * Returns a second instance over the same data as `first`, standing for another process or
   * machine (backends that persist). Enables the cross-instance tests.
   */
  reopen?: (first: StorageV2) => StorageV2 | Promise<StorageV2>;
}

/** Opens stores for one test; closes them all when it ends. */
interface Stores {
  create(): Promise<StorageV2>;
  reopen(first: StorageV2): Promise<StorageV2>;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** A cache key as the core makes them (64 hex characters). */
const key = (text: string) => createHash("sha256").update(text).digest("hex");

/** Values that trip up quoting, line splitting and byte counting. */
const AWKWARD = [
  "",
  "plain",
  "with \"double\" and 'single' quotes, a back\\slash",
  "two\nlines\r\nand a tab\t",
  "Zoë — 東京 🚀 ünïcödé",
  JSON.stringify({ text: "a,b;c", n: [1, 2, 3] }),
  "%_ LIKE wildcards %",
];

/** The value of row `row` in a generated set (awkward ones included, deterministically). */
const valueOf = (row: number, tag = "") => `${tag}${AWKWARD[row % AWKWARD.length]}#${row}`;

function* rowsOf(count: number, tag = ""): Generator<ResultRow> {
  for (let row = 0; row < count; row++) yield { row, value: valueOf(row, tag) };
}

async function* slowly(rows: Iterable<ResultRow>, every = 100): AsyncGenerator<ResultRow> {
  let n = 0;
  for (const row of rows) {
    if (++n % every === 0) await sleep(0);
    yield row;
  }
}

async function readAll(s: StorageV2, job: string, shard: number): Promise<ResultRow[]> {
  const out: ResultRow[] = [];
  for await (const row of s.results.read(job, shard)) out.push({ row: row.row, value: row.value });
  return out;
}

/** Registers the storage conformance tests for one plugin. */
export function storageConformance(options: StorageConformanceOptions): void {
  /** A test with stores that are closed at its end, whatever happened. */
  const test = (name: string, body: (stores: Stores) => Promise<void>) =>
    it(name, async () => {
      const opened: StorageV2[] = [];
      const track = async (store: StorageV2 | Promise<StorageV2>) => {
        const s = await store;
        opened.push(s);
        return s;
      };
      try {
        await body({
          create: () => track(options.create()),
          reopen: (first) => track(options.reopen!(first)),
        });
      } finally {
        for (const s of opened.reverse()) await s.close();
      }
    });
  const persistent = options.reopen !== undefined;

  describe(`storage conformance: ${options.name}`, () => {
    test("declares the v2 contract, its name and where it keeps the data", async ({ create }) => {
      const s = await create();
      assert.equal(s.specificationVersion, "loom.storage.v2");
      assert.equal(typeof s.name, "string");
      assert.ok(s.name.length > 0);
      assert.equal(typeof s.location, "string");
      assert.ok(s.location.length > 0);
    });

    describe("jobs", () => {
      test("put with 0 creates once; then only the current revision writes", async ({ create }) => {
        const s = await create();
        assert.equal(await s.jobs.get("job-1"), undefined);
        assert.equal(await s.jobs.put("job-1", '{"v":1}', 0), 1);
        assert.deepEqual(await s.jobs.get("job-1"), {
          id: "job-1",
          revision: 1,
          record: '{"v":1}',
        });
        assert.equal(await s.jobs.put("job-1", '{"v":"again"}', 0), undefined, "exists already");
        assert.equal(await s.jobs.put("job-1", '{"v":2}', 1), 2);
        assert.equal(await s.jobs.put("job-1", '{"v":"stale"}', 1), undefined, "stale revision");
        assert.equal(await s.jobs.put("job-1", '{"v":"ahead"}', 7), undefined, "future revision");
        assert.deepEqual(await s.jobs.get("job-1"), {
          id: "job-1",
          revision: 2,
          record: '{"v":2}',
        });
        assert.equal(await s.jobs.put("job-2", "{}", 3), undefined, "a missing job is revision 0");
        assert.equal(await s.jobs.get("job-2"), undefined, "a refused put writes nothing");
      });

      test("records keep every character", async ({ create }) => {
        const s = await create();
        const record = JSON.stringify({ text: AWKWARD.join("|"), nested: { a: [null, true] } });
        assert.equal(await s.jobs.put("A_b-9", record, 0), 1);
        assert.equal((await s.jobs.get("A_b-9"))?.record, record);
      });

      test("of many parallel puts with the same revision exactly one wins", async ({ create }) => {
        const s = await create();
        const created = await Promise.all(
          Array.from({ length: 16 }, (_, i) => s.jobs.put("race", `{"creator":${i}}`, 0)),
        );
        assert.equal(created.filter((r) => r === 1).length, 1, `creates: ${created}`);
        assert.equal(created.filter((r) => r === undefined).length, 15);
        const updated = await Promise.all(
          Array.from({ length: 16 }, (_, i) => s.jobs.put("race", `{"writer":${i}}`, 1)),
        );
        const winner = updated.findIndex((r) => r === 2);
        assert.equal(updated.filter((r) => r === 2).length, 1, `updates: ${updated}`);
        assert.equal(updated.filter((r) => r === undefined).length, 15);
        assert.deepEqual(await s.jobs.get("race"), {
          id: "race",
          revision: 2,
          record: `{"writer":${winner}}`,
        });
      });

      if (persistent) {
        test("two instances racing on one revision: exactly one wins", async (stores) => {
          const a = await stores.create();
          const b = await stores.reopen(a);
          assert.equal(await a.jobs.put("shared", "{}", 0), 1);
          assert.equal((await b.jobs.get("shared"))?.revision, 1, "b sees a's write");
          const answers = await Promise.all(
            Array.from(
              { length: 12 },
              (_, i) => (i % 2 ? a : b).jobs.put("shared", `{"by":${i}}`, 1),
            ),
          );
          assert.equal(answers.filter((r) => r === 2).length, 1, `answers: ${answers}`);
          const winner = answers.indexOf(2);
          for (const s of [a, b]) {
            assert.deepEqual(await s.jobs.get("shared"), {
              id: "shared",
              revision: 2,
              record: `{"by":${winner}}`,
            });
          }
          const created = await Promise.all([a, b, a, b].map((s) => s.jobs.put("new", "{}", 0)));
          assert.equal(created.filter((r) => r === 1).length, 1, `creates: ${created}`);
        });
      }

      test("list answers every job with its revision", async ({ create }) => {
        const s = await create();
        assert.deepEqual(await s.jobs.list(), []);
        await s.jobs.put("a", "ra", 0);
        await s.jobs.put("b", "rb1", 0);
        await s.jobs.put("b", "rb2", 1);
        const listed = (await s.jobs.list()).map(({ id, revision, record }) => ({
          id,
          revision,
          record,
        }));
        assert.deepEqual(listed.sort((x, y) => x.id.localeCompare(y.id)), [
          { id: "a", revision: 1, record: "ra" },
          { id: "b", revision: 2, record: "rb2" },
        ]);
      });

      test("remove takes results, attachments and the job's lease, nothing else", async ({ create }) => {
        const s = await create();
        // "a" is a prefix of "a-b" and "a_": removal must not match by prefix or pattern.
        for (const id of ["a", "a-b", "a_"]) {
          assert.equal(await s.jobs.put(id, `{"id":"${id}"}`, 0), 1);
          await s.results.put(id, 0, rowsOf(3, id));
          await s.results.put(id, 1, []);
          await s.attachments.put(id, "custom-ids", `ids of ${id}`);
        }
        const lease = await s.leases.acquire("job:a", "holder a", 60_000);
        const other = await s.leases.acquire("job:a-b", "holder a-b", 60_000);
        assert.ok(lease.ok && other.ok);

        await s.jobs.remove("a");
        assert.equal(await s.jobs.get("a"), undefined);
        assert.equal(await s.results.has("a", 0), false);
        assert.equal(await s.results.has("a", 1), false);
        assert.deepEqual(await readAll(s, "a", 0), []);
        assert.equal(await s.attachments.get("a", "custom-ids"), undefined);
        const taken = await s.leases.acquire("job:a", "someone else", 60_000);
        assert.ok(taken.ok, "the removed job's lease is free");

        for (const id of ["a-b", "a_"]) {
          assert.equal((await s.jobs.get(id))?.record, `{"id":"${id}"}`);
          assert.deepEqual(await readAll(s, id, 0), [...rowsOf(3, id)]);
          assert.equal(await s.results.has(id, 1), true);
          assert.equal(await s.attachments.get(id, "custom-ids"), `ids of ${id}`);
        }
        const busy = await s.leases.acquire("job:a-b", "someone else", 60_000);
        assert.ok(!busy.ok, "another job's lease is kept");
        assert.deepEqual(
          (await s.jobs.list()).map((j) => j.id).sort(),
          ["a-b", "a_"],
        );

        await s.jobs.remove("a");
        await s.jobs.remove("never-existed");
        assert.equal(await s.jobs.put("a", "{}", 0), 1, "a removed job can be created again");
      });

      test("invalid job ids are refused with a rejected promise", async ({ create }) => {
        const s = await create();
        const bad = ["", "a b", "../x", "a/b", "é", "x".repeat(65), "a\0b"];
        for (const id of bad) {
          // Calling must not throw synchronously: callers chain on the promise.
          const calls = [
            () => s.jobs.get(id),
            () => s.jobs.put(id, "{}", 0),
            () => s.jobs.remove(id),
            () => s.results.put(id, 0, []),
            () => s.attachments.put(id, "n", "v"),
          ];
          for (const call of calls) {
            let promise: Promise<unknown> | undefined;
            assert.doesNotThrow(() => {
              promise = call();
            }, `${JSON.stringify(id)}: throws instead of rejecting`);
            await assert.rejects(promise!, `${JSON.stringify(id)} was accepted`);
          }
        }
        assert.deepEqual(await s.jobs.list(), []);
        assert.equal(await s.jobs.put("x".repeat(64), "{}", 0), 1, "64 characters are fine");
      });
    });

    describe("results", () => {
      test("put replaces a shard's whole set; shards and jobs are separate", async ({ create }) => {
        const s = await create();
        await s.results.put("j", 0, rowsOf(5, "first "));
        await s.results.put("j", 1, [{ row: 9, value: "shard one" }]);
        await s.results.put("k", 0, [{ row: 0, value: "job k" }]);
        await s.results.put("j", 0, [{ row: 3, value: "second" }, { row: 7, value: "" }]);
        assert.deepEqual(await readAll(s, "j", 0), [
          { row: 3, value: "second" },
          { row: 7, value: "" },
        ]);
        assert.deepEqual(await readAll(s, "j", 1), [{ row: 9, value: "shard one" }]);
        assert.deepEqual(await readAll(s, "k", 0), [{ row: 0, value: "job k" }]);
      });

      test("read is in ascending row order whatever the order of the put", async ({ create }) => {
        const s = await create();
        const rows = [...rowsOf(500)];
        // A deterministic shuffle.
        const shuffled = rows.map((r, i) => ({ r, k: (i * 7919) % 501 })).sort((x, y) => x.k - y.k)
          .map((x) => x.r);
        assert.notDeepEqual(shuffled, rows);
        await s.results.put("j", 2, shuffled);
        assert.deepEqual(await readAll(s, "j", 2), rows);
      });

      test("has tells a saved empty set from none", async ({ create }) => {
        const s = await create();
        assert.equal(await s.results.has("j", 0), false);
        assert.deepEqual(await readAll(s, "j", 0), []);
        await s.results.put("j", 0, []);
        assert.equal(await s.results.has("j", 0), true);
        assert.equal(await s.results.has("j", 1), false);
        assert.deepEqual(await readAll(s, "j", 0), []);
      });

      test("100,000 rows round-trip, streamed in and out", async ({ create }) => {
        const s = await create();
        const count = 100_000;
        await s.results.put("big", 3, slowly(rowsOf(count, "v"), 5_000));
        assert.equal(await s.results.has("big", 3), true);
        let expected = 0;
        for await (const { row, value } of s.results.read("big", 3)) {
          if (row !== expected || value !== valueOf(expected, "v")) {
            assert.fail(`row ${expected}: got ${row} ${JSON.stringify(value)}`);
          }
          expected++;
        }
        assert.equal(expected, count);
      });

      test("a reader in the middle of a stream lets the store work meanwhile", async ({ create }) => {
        const s = await create();
        await s.results.put("j", 0, rowsOf(5_000, "r"));
        let seen = 0;
        for await (const { row } of s.results.read("j", 0)) {
          assert.equal(row, seen);
          if (seen === 10) {
            // Writes between two rows of a read must neither fail nor wait for the read.
            await s.cache.set(key("during read"), "cached");
            assert.equal(await s.jobs.put("other", "{}", 0), 1);
            await s.results.put("j", 1, rowsOf(3_000, "other shard "));
            await s.attachments.put("other", "n", "v");
          }
          seen++;
        }
        assert.equal(seen, 5_000);
        assert.equal(await s.cache.get(key("during read")), "cached");
        assert.deepEqual(await readAll(s, "j", 1), [...rowsOf(3_000, "other shard ")]);
      });

      test("a reader sees the set it started on, not a mix, when it is replaced", async ({ create }) => {
        const s = await create();
        await s.results.put("j", 0, rowsOf(5_000, "old "));
        const reader = s.results.read("j", 0)[Symbol.asyncIterator]();
        const first = await reader.next();
        assert.deepEqual(first.value, { row: 0, value: valueOf(0, "old ") });
        await s.results.put("j", 0, rowsOf(5_000, "new "));
        const tags = new Set<string>();
        let count = 1;
        for (let next = await reader.next(); !next.done; next = await reader.next()) {
          tags.add(next.value.value.slice(0, 4));
          count++;
        }
        assert.deepEqual([...tags], ["old "]);
        assert.equal(count, 5_000);
        assert.deepEqual(await readAll(s, "j", 0), [...rowsOf(5_000, "new ")]);
      });

      test("a put whose rows fail half-way leaves the previous set", async ({ create }) => {
        const s = await create();
        await s.results.put("j", 0, rowsOf(50, "kept "));
        async function* failing(): AsyncGenerator<ResultRow> {
          yield* slowly(rowsOf(3_000, "lost "), 500);
          throw new Error("the download broke");
        }
        await assert.rejects(s.results.put("j", 0, failing()), /the download broke/);
        assert.equal(await s.results.has("j", 0), true);
        assert.deepEqual(await readAll(s, "j", 0), [...rowsOf(50, "kept ")]);

        // A shard with no set before has none after.
        await assert.rejects(s.results.put("j", 5, failing()), /the download broke/);
        assert.equal(await s.results.has("j", 5), false);
        assert.deepEqual(await readAll(s, "j", 5), []);

        // A synchronous iterable that throws, too.
        function* syncFailing(): Generator<ResultRow> {
          yield { row: 0, value: "x" };
          throw new Error("bad row");
        }
        await assert.rejects(s.results.put("j", 0, syncFailing()), /bad row/);
        assert.deepEqual(await readAll(s, "j", 0), [...rowsOf(50, "kept ")]);
      });

      test("puts to several shards at once keep each set whole", async ({ create }) => {
        const s = await create();
        await Promise.all(
          [0, 1, 2, 3].map((shard) =>
            s.results.put("j", shard, slowly(rowsOf(2_000 + shard, `s${shard} `), 50))
          ),
        );
        for (const shard of [0, 1, 2, 3]) {
          assert.deepEqual(await readAll(s, "j", shard), [...rowsOf(2_000 + shard, `s${shard} `)]);
        }
      });

      if (persistent) {
        test("another instance reads what one saved", async (stores) => {
          const a = await stores.create();
          await a.results.put("j", 0, rowsOf(1_000, "a "));
          await a.results.put("j", 1, []);
          const b = await stores.reopen(a);
          assert.deepEqual(await readAll(b, "j", 0), [...rowsOf(1_000, "a ")]);
          assert.equal(await b.results.has("j", 1), true);
          await b.results.put("j", 0, [{ row: 1, value: "from b" }]);
          assert.deepEqual(await readAll(a, "j", 0), [{ row: 1, value: "from b" }]);
        });
      }
    });

    describe("attachments", () => {
      test("put, get and replace, per job and name", async ({ create }) => {
        const s = await create();
        assert.equal(await s.attachments.get("j", "ids"), undefined);
        await s.attachments.put("j", "ids", AWKWARD.join("\n"));
        await s.attachments.put("j", "other", "");
        await s.attachments.put("k", "ids", "k's");
        assert.equal(await s.attachments.get("j", "ids"), AWKWARD.join("\n"));
        assert.equal(await s.attachments.get("j", "other"), "");
        assert.equal(await s.attachments.get("k", "ids"), "k's");
        await s.attachments.put("j", "ids", "replaced");
        assert.equal(await s.attachments.get("j", "ids"), "replaced");
      });
    });

    describe("runs (optional)", () => {
      test("put, get, replace, list and remove, where the store has it", async ({ create }) => {
        const s = await create();
        if (!s.runs) return; // optional: the core then records no sync runs
        assert.equal(await s.runs.get("run-1"), undefined);
        assert.deepEqual(await s.runs.list(), []);
        for (const [i, value] of AWKWARD.entries()) await s.runs.put(`run-${i}`, value);
        for (const [i, value] of AWKWARD.entries()) {
          assert.equal(await s.runs.get(`run-${i}`), value);
        }
        await s.runs.put("run-1", '{"status":"finished"}');
        assert.equal(await s.runs.get("run-1"), '{"status":"finished"}');
        const listed = (await s.runs.list()).sort((a, b) => a.id.localeCompare(b.id));
        assert.equal(listed.length, AWKWARD.length, "a replaced record counts once");
        assert.deepEqual(listed.find((r) => r.id === "run-1"), {
          id: "run-1",
          record: '{"status":"finished"}',
        });
        await s.runs.remove("run-1");
        await s.runs.remove("run-1"); // gone already: no error
        assert.equal(await s.runs.get("run-1"), undefined);
        assert.equal((await s.runs.list()).length, AWKWARD.length - 1);
        await assert.rejects(s.runs.put("bad id/..", "{}"), TypeError, "ids are checked");
      });

      test("records are apart from jobs: removing a job keeps a run of the same id", async ({ create }) => {
        const s = await create();
        if (!s.runs) return;
        await s.jobs.put("same", "{}", 0);
        await s.runs.put("same", '{"run":true}');
        await s.jobs.remove("same");
        assert.equal(await s.runs.get("same"), '{"run":true}');
      });

      if (persistent) {
        test("instances share the run records", async (stores) => {
          const a = await stores.create();
          if (!a.runs) return;
          const b = await stores.reopen(a);
          await a.runs.put("shared", '{"n":1}');
          assert.equal(await b.runs!.get("shared"), '{"n":1}');
          await b.runs!.put("shared", '{"n":2}');
          assert.equal(await a.runs.get("shared"), '{"n":2}');
        });
      }
    });

    describe("leases", () => {
      const near = (lease: LeaseInfo, ttlMs: number, before: number, after: number) => {
        // The store's clock (a database server's) may differ a little from this process's.
        const slack = 60_000;
        assert.ok(
          lease.expiresAt >= before + ttlMs - slack && lease.expiresAt <= after + ttlMs + slack,
          `expiresAt ${lease.expiresAt} is not about now + ${ttlMs}`,
        );
      };

      test("a free lease is taken; a held one is busy and says who holds it", async ({ create }) => {
        const s = await create();
        const before = Date.now();
        const a = await s.leases.acquire("job:x", "pid 1 on a", 60_000);
        const after = Date.now();
        assert.ok(a.ok);
        assert.equal(a.lease.holder, "pid 1 on a");
        assert.equal(typeof a.lease.token, "string");
        assert.ok(a.lease.token.length > 0);
        near(a.lease, 60_000, before, after);
        const b = await s.leases.acquire("job:x", "pid 2 on b", 60_000);
        assert.ok(!b.ok);
        assert.deepEqual(b.current, a.lease);
        const other = await s.leases.acquire("job:y", "pid 2 on b", 60_000);
        assert.ok(other.ok, "leases are separate by name");
        assert.notEqual(other.lease.token, a.lease.token);
      });

      test("an expired lease is taken over; the old holder can no longer renew", async ({ create }) => {
        const s = await create();
        const a = await s.leases.acquire("job:x", "a", 20);
        assert.ok(a.ok);
        await sleep(250); // long past the 20 ms: only waits in the safe direction
        const b = await s.leases.acquire("job:x", "b", 60_000);
        assert.ok(b.ok, "the expired lease was not taken over");
        assert.notEqual(b.lease.token, a.lease.token);
        assert.equal(await s.leases.renew("job:x", a.lease.token, 60_000), false);
        await s.leases.release("job:x", a.lease.token);
        const c = await s.leases.acquire("job:x", "c", 60_000);
        assert.ok(!c.ok, "a stale token released the new holder's lease");
        assert.equal(c.current.token, b.lease.token);
        assert.equal(c.current.holder, "b");
      });

      test("a holder found gone is replaced by naming its token", async ({ create }) => {
        const s = await create();
        const a = await s.leases.acquire("job:x", "a", 60_000);
        assert.ok(a.ok);
        const wrong = await s.leases.acquire("job:x", "b", 60_000, "not-the-token");
        assert.ok(!wrong.ok);
        const b = await s.leases.acquire("job:x", "b", 60_000, a.lease.token);
        assert.ok(b.ok);
        assert.equal(b.lease.holder, "b");
        assert.equal(await s.leases.renew("job:x", a.lease.token, 60_000), false);
        const again = await s.leases.acquire("job:x", "c", 60_000, a.lease.token);
        assert.ok(!again.ok, "the replaced token no longer opens the lease");
      });

      test("renew keeps a lease held, also once it has expired", async ({ create }) => {
        const s = await create();
        const a = await s.leases.acquire("job:x", "a", 20);
        assert.ok(a.ok);
        await sleep(100);
        assert.equal(await s.leases.renew("job:x", a.lease.token, 60_000), true);
        await sleep(100);
        const b = await s.leases.acquire("job:x", "b", 60_000);
        assert.ok(!b.ok, "renew did not extend the lease");
        assert.equal(b.current.token, a.lease.token);
        assert.ok(b.current.expiresAt > a.lease.expiresAt);
        assert.equal(await s.leases.renew("job:none", a.lease.token, 1_000), false);
      });

      test("release frees the lease; a stale or absent release does nothing", async ({ create }) => {
        const s = await create();
        await s.leases.release("job:none", "whatever");
        const a = await s.leases.acquire("job:x", "a", 60_000);
        assert.ok(a.ok);
        await s.leases.release("job:x", "someone else's token");
        assert.ok(!(await s.leases.acquire("job:x", "b", 60_000)).ok);
        await s.leases.release("job:x", a.lease.token);
        assert.equal(await s.leases.renew("job:x", a.lease.token, 60_000), false);
        const b = await s.leases.acquire("job:x", "b", 60_000);
        assert.ok(b.ok);
      });

      test("of many concurrent acquires exactly one wins", async (stores) => {
        const a = await stores.create();
        const instances = persistent ? [a, await stores.reopen(a)] : [a];
        const attempts = await Promise.all(
          Array.from(
            { length: 16 },
            (_, i) => instances[i % instances.length].leases.acquire("job:x", `h${i}`, 60_000),
          ),
        );
        const winners = attempts.filter((t) => t.ok);
        assert.equal(winners.length, 1, `${winners.length} holders at once`);
        const lease = winners[0].ok ? winners[0].lease : undefined;
        for (const t of attempts) if (!t.ok) assert.equal(t.current.token, lease?.token);
      });
    });

    describe("cache", () => {
      test("get, set and replace", async ({ create }) => {
        const s = await create();
        assert.equal(await s.cache.get(key("none")), undefined);
        for (const [i, value] of AWKWARD.entries()) await s.cache.set(key(`k${i}`), value);
        for (const [i, value] of AWKWARD.entries()) {
          assert.equal(await s.cache.get(key(`k${i}`)), value);
        }
        await s.cache.set(key("k1"), "replaced");
        assert.equal(await s.cache.get(key("k1")), "replaced");
        assert.equal((await s.cache.stats()).entries, AWKWARD.length);
      });

      test("getMany, where the store has it, answers the stored keys among many", async ({ create }) => {
        const s = await create();
        if (!s.cache.getMany) return; // optional: the core then asks key by key
        assert.deepEqual(await s.cache.getMany([]), new Map());
        for (let i = 0; i < 300; i += 3) await s.cache.set(key(`m${i}`), valueOf(i));
        const asked = Array.from({ length: 300 }, (_, i) => key(`m${i}`));
        asked.push(key("m0"), key("m1")); // a key given twice counts once
        const found = await s.cache.getMany(asked);
        assert.equal(found.size, 100, "only the stored keys");
        for (let i = 0; i < 300; i += 3) assert.equal(found.get(key(`m${i}`)), valueOf(i));
        await s.cache.set(key("m0"), "replaced");
        assert.equal((await s.cache.getMany([key("m0")])).get(key("m0")), "replaced");
      });

      test("parallel sets of equal and different keys", async ({ create }) => {
        const s = await create();
        await Promise.all(
          Array.from({ length: 200 }, (_, i) => s.cache.set(key(`p${i % 50}`), `v${i % 50}`)),
        );
        assert.equal((await s.cache.stats()).entries, 50);
        for (let i = 0; i < 50; i++) assert.equal(await s.cache.get(key(`p${i}`)), `v${i}`);
      });

      test("stats count entries and the bytes of keys and values", async ({ create }) => {
        const s = await create();
        const empty = await s.cache.stats();
        assert.deepEqual(
          [empty.entries, empty.bytes, empty.oldest, empty.newest],
          [0, 0, undefined, undefined],
          "an empty cache: no entries, no bytes, no times",
        );
        const before = Date.now();
        const values = ["Zoë 🚀", "", "plain", "東京"];
        for (const [i, value] of values.entries()) await s.cache.set(key(`s${i}`), value);
        await s.cache.set(key("s0"), "ö"); // a replaced entry counts once, with its new value
        const after = Date.now();
        const stats = await s.cache.stats();
        assert.equal(stats.entries, 4);
        const bytes = 4 * 64 + ["ö", "", "plain", "東京"].reduce(
          (sum, v) => sum + Buffer.byteLength(v),
          0,
        );
        assert.equal(stats.bytes, bytes, "bytes are UTF-8 bytes of keys and values");
        assert.ok(stats.oldest !== undefined && stats.newest !== undefined);
        assert.ok(stats.oldest <= stats.newest);
        const slack = 60_000; // the store's clock may be a server's
        assert.ok(stats.oldest >= before - slack && stats.newest <= after + slack);
      });

      test("clear removes every entry and says how many", async ({ create }) => {
        const s = await create();
        assert.equal(await s.cache.clear(), 0);
        for (let i = 0; i < 5; i++) await s.cache.set(key(`c${i}`), `v${i}`);
        assert.equal(await s.cache.clear(), 5);
        assert.equal(await s.cache.get(key("c0")), undefined);
        assert.equal((await s.cache.stats()).entries, 0);
        await s.cache.set(key("after"), "v");
        assert.equal(await s.cache.get(key("after")), "v");
      });

      test("prune removes what was stored before a time, and only that", async ({ create }) => {
        const s = await create();
        await s.cache.set(key("old1"), "o1");
        await s.cache.set(key("old2"), "o2");
        const old = await s.cache.stats();
        await sleep(30);
        await s.cache.set(key("new"), "n");
        const both = await s.cache.stats();
        assert.ok(both.newest! > old.newest!, "the later entry has a later time");
        assert.equal(both.oldest, old.oldest);
        assert.equal(await s.cache.prune(0), 0);
        assert.equal(await s.cache.prune(old.oldest!), 0, "stored at the time itself: kept");
        assert.equal(await s.cache.prune(old.newest! + 1), 2);
        assert.equal(await s.cache.get(key("old1")), undefined);
        assert.equal(await s.cache.get(key("old2")), undefined);
        assert.equal(await s.cache.get(key("new")), "n");
        const left = await s.cache.stats();
        assert.equal(left.entries, 1);
        assert.equal(left.oldest, both.newest);
      });

      test("a replaced entry takes the time of its replacement", async ({ create }) => {
        const s = await create();
        await s.cache.set(key("a"), "1");
        await s.cache.set(key("b"), "1");
        const first = await s.cache.stats();
        await sleep(30);
        await s.cache.set(key("a"), "2");
        assert.equal(await s.cache.prune(first.newest! + 1), 1, "only b is old");
        assert.equal(await s.cache.get(key("a")), "2");
      });

      if (persistent) {
        test("instances share the cache", async (stores) => {
          const a = await stores.create();
          const b = await stores.reopen(a);
          await a.cache.set(key("shared"), "from a");
          assert.equal(await b.cache.get(key("shared")), "from a");
          assert.equal((await b.cache.stats()).entries, 1);
          assert.equal(await b.cache.clear(), 1);
          assert.equal(await a.cache.get(key("shared")), undefined);
        });
      }
    });
  });
}
