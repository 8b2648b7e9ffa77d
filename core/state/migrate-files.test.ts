/**
 * Moving the file state of an older Loom into a store: fixtures are written by hand in the old
 * layout (as `core/batch/store.ts`, `core/data/output.ts` and the `fs` storage plugin wrote it), into
 * real temporary folders, and imported into the memory store.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { hostname } from "node:os";
import { join, relative } from "node:path";
import process from "node:process";
import { describe, it } from "node:test";
import { createMemoryStorage } from "../../plugins/storage/memory/mod.ts";
import { cacheKey, ResponseCache } from "./cache.ts";
import type { GenerateRequest } from "../spec/provider.ts";
import type { ResultRow, StorageV2 } from "../spec/storage.ts";
import { filesUnder } from "../test-support/files.ts";
import { tempDir } from "../test-support/temp.ts";
import { MIGRATE_LEASE, migrateFileState } from "./migrate-files.ts";

/** A job record as the file layout saved it (`JSON.stringify(record) + "\n"`). */
function recordText(id: string, shards: number, extra: Record<string, unknown> = {}): string {
  const record = {
    version: 1,
    id,
    key: createHash("sha256").update(id).digest("hex"),
    createdAt: "2026-11-27T10:00:00.000Z",
    updatedAt: "2026-11-27T10:05:00.000Z",
    status: "pending",
    spec: { provider: "echo", model: "echo-1" },
    input: { path: "/data/in.csv", size: 120, sha256: "ab".repeat(32) },
    output: "/data/out.csv",
    rows: shards * 3,
    shards: Array.from({ length: shards }, (_, n) => ({
      index: n,
      rows: { start: n * 3, end: n * 3 + 3 },
      requests: 3,
      bytes: 300,
      handle: { id: `batch_${n}` },
      fetched: { ok: 2, errors: 1, at: "2026-11-27T10:04:00.000Z" },
    })),
    ...extra,
  };
  return JSON.stringify(record) + "\n";
}

/** The saved outcomes of a shard, one JSON line per row, sorted (answers and an error). */
function shardLines(shard: number): string[] {
  return [0, 1, 2].map((k) => {
    const i = shard * 3 + k;
    return JSON.stringify(
      k === 2
        ? { i, e: "rate limited", k: "failed" }
        : { i, r: { text: `answer ${i}`, finishReason: "stop", model: "echo-1" } },
    );
  });
}

interface OldJob {
  id: string;
  record: string;
  shards: string[][];
  ids: string[][];
}

/** Writes a job folder as the file layout did, with a temporary file of a killed write beside it. */
function writeJob(home: string, id: string, shards: number): OldJob {
  const dir = join(home, "jobs", id);
  mkdirSync(dir, { recursive: true });
  const job: OldJob = { id, record: recordText(id, shards), shards: [], ids: [] };
  writeFileSync(join(dir, "job.json"), job.record);
  for (let n = 0; n < shards; n++) {
    const lines = shardLines(n);
    writeFileSync(join(dir, `shard-${n}.jsonl`), lines.map((l) => l + "\n").join(""));
    const ids = [0, 1, 2].map((k) => `row-${n * 3 + k}`);
    writeFileSync(join(dir, `shard-${n}.ids`), ids.map((c) => c + "\n").join(""));
    job.shards.push(lines);
    job.ids.push(ids);
  }
  writeFileSync(join(dir, ".job.json.4242.3.loom-tmp"), '{"version":1,"id":"half');
  return job;
}

/** Writes a cache entry as the `fs` storage plugin did: `cache/v1/<2 hex>/<key>`. */
function writeCacheEntry(home: string, seed: string): { key: string; value: string } {
  const key = createHash("sha256").update(seed).digest("hex");
  const value = JSON.stringify({ text: `cached ${seed}`, finishReason: "stop", model: "m" });
  mkdirSync(join(home, "cache", "v1", key.slice(0, 2)), { recursive: true });
  writeFileSync(join(home, "cache", "v1", key.slice(0, 2), key), value);
  return { key, value };
}

/** A home with three jobs, five cache entries, and what the old code left around them. */
function oldHome() {
  const home = tempDir();
  const jobs = [
    writeJob(home, "20261127-3fa9c2", 2),
    writeJob(home, "20261128-0b11aa", 1),
    writeJob(home, "20261129-77e0d1", 0),
  ];
  writeFileSync(join(home, "jobs", `.submit-${"c".repeat(32)}.lock`), `999999@${hostname()}`);
  mkdirSync(join(home, "jobs", ".removing-20261101-aaaaaa.1a2b3c4d"));
  writeFileSync(
    join(home, "jobs", ".removing-20261101-aaaaaa.1a2b3c4d", "job.json"),
    recordText("20261101-aaaaaa", 0),
  );
  const cache = ["a", "b", "c", "d", "e"].map((seed) => writeCacheEntry(home, seed));
  const fan = join(home, "cache", "v1", cache[0].key.slice(0, 2));
  writeFileSync(join(fan, `${cache[0].key}.4242.0badf00d.loom-tmp`), '{"text":"half');
  writeFileSync(join(fan, "notes.txt"), "not a key");
  mkdirSync(join(home, "cache", "v1", "zz"));
  writeFileSync(join(home, "cache", "v1", "zz", cache[1].key), cache[1].value);
  return { home, jobs, cache, files: relativeFiles(home) };
}

function relativeFiles(dir: string): string[] {
  return filesUnder(dir).map((f) => relative(dir, f)).sort();
}

async function rowsOf(store: StorageV2, job: string, shard: number): Promise<ResultRow[]> {
  const rows: ResultRow[] = [];
  for await (const row of store.results.read(job, shard)) rows.push(row);
  return rows;
}

/** Everything the store holds of the fixtures, to compare two migrations. */
async function dump(store: StorageV2, fixtures: ReturnType<typeof oldHome>) {
  const jobs = (await store.jobs.list()).sort((a, b) => a.id.localeCompare(b.id));
  const shards = [];
  for (const job of fixtures.jobs) {
    for (let n = 0; n < 3; n++) {
      shards.push({
        job: job.id,
        n,
        has: await store.results.has(job.id, n),
        rows: await rowsOf(store, job.id, n),
        ids: await store.attachments.get(job.id, `ids-${n}`),
      });
    }
  }
  const cache = await Promise.all(fixtures.cache.map(({ key }) => store.cache.get(key)));
  const { entries, bytes } = await store.cache.stats();
  return { jobs, shards, cache, entries, bytes };
}

function oldStateFolders(home: string): string[] {
  return readdirSync(home).filter((name) => name.startsWith("old-state-")).sort();
}

/** A pid that belonged to a process of this machine that has exited. */
function deadPid(): number {
  const child = spawnSync(process.execPath, ["--version"]);
  assert.ok(child.pid, "a child process ran");
  return child.pid;
}

describe("migrateFileState", () => {
  it("imports jobs, results, custom ids and cached answers as they were, then moves the old folders aside", async () => {
    const fixtures = oldHome();
    const { home } = fixtures;
    const store = createMemoryStorage();
    const notes: string[] = [];
    const report = await migrateFileState(home, store, { onNote: (line) => notes.push(line) });

    for (const job of fixtures.jobs) {
      assert.deepEqual(await store.jobs.get(job.id), {
        id: job.id,
        revision: 1,
        record: job.record,
      });
      for (const [n, lines] of job.shards.entries()) {
        assert.deepEqual(
          await rowsOf(store, job.id, n),
          lines.map((value, k) => ({ row: n * 3 + k, value })),
        );
        assert.equal(
          await store.attachments.get(job.id, `ids-${n}`),
          job.ids[n].map((c) => c + "\n").join(""),
        );
      }
      assert.equal(await store.results.has(job.id, job.shards.length), false);
    }
    assert.equal((await store.jobs.list()).length, 3, "no job from .removing-* or locks");
    for (const { key, value } of fixtures.cache) assert.equal(await store.cache.get(key), value);
    assert.equal((await store.cache.stats()).entries, 5);

    assert.ok(report);
    assert.deepEqual(
      { ...report, keptIn: undefined },
      {
        jobs: 3,
        jobsPresent: 0,
        notImported: [],
        deferred: [],
        cached: 5,
        cacheTemps: 1,
        cacheMalformed: 2,
        cacheUnreadable: 0,
        keptIn: undefined,
      },
    );
    const [aside] = oldStateFolders(home);
    assert.equal(report.keptIn, join(home, aside));
    assert.match(aside, /^old-state-\d{8}T\d{6}Z$/);
    assert.equal(existsSync(join(home, "jobs")), false);
    assert.equal(existsSync(join(home, "cache")), false);
    assert.deepEqual(relativeFiles(report.keptIn), fixtures.files, "every old file is kept");

    assert.equal(notes.length, 1);
    assert.match(
      notes[0],
      /^moved the state of an older Loom into memory: 3 batch jobs, 5 cached answers/,
    );
    assert.match(notes[0], /skipped 3 cache files \(1 temporary, 2 not named as a cache entry\)/);
    assert.ok(notes[0].endsWith(`the old files are kept in ${report.keptIn}`), notes[0]);

    const before = await dump(store, fixtures);
    assert.equal(await migrateFileState(home, store, { onNote: (l) => notes.push(l) }), undefined);
    assert.deepEqual(await dump(store, fixtures), before, "a second start changes nothing");
    assert.equal(notes.length, 1);
    assert.deepEqual(oldStateFolders(home), [aside]);
  });

  it("keeps a job it cannot import in the old folder and says which and why", async () => {
    const fixtures = oldHome();
    const { home } = fixtures;
    const jobs = join(home, "jobs");
    mkdirSync(join(jobs, "20261130-corrupt"));
    writeFileSync(join(jobs, "20261130-corrupt", "job.json"), '{"version":1,"id":"2026');
    mkdirSync(join(jobs, "20261130-newer"));
    writeFileSync(
      join(jobs, "20261130-newer", "job.json"),
      recordText("20261130-newer", 0, {
        version: 2,
      }),
    );
    mkdirSync(join(jobs, "20261130-norecord"));
    writeFileSync(join(jobs, "20261130-norecord", "shard-0.jsonl"), shardLines(0).join("\n"));
    writeJob(home, "20261130-badline", 2);
    writeFileSync(
      join(jobs, "20261130-badline", "shard-1.jsonl"),
      `${shardLines(1)[0]}\nnot json\n`,
    );
    writeJob(home, "20261130-taken", 1);
    const store = createMemoryStorage();
    const other = recordText("20261130-taken", 0, { createdAt: "2026-12-01T00:00:00.000Z" });
    assert.equal(await store.jobs.put("20261130-taken", other, 0), 1);
    const notes: string[] = [];

    const report = await migrateFileState(home, store, { onNote: (l) => notes.push(l) });

    assert.ok(report);
    assert.equal(report.jobs, 3);
    assert.deepEqual(report.notImported.map((j) => j.id), [
      "20261130-badline",
      "20261130-corrupt",
      "20261130-newer",
      "20261130-norecord",
      "20261130-taken",
    ]);
    const reasons = Object.fromEntries(report.notImported.map((j) => [j.id, j.reason]));
    assert.match(reasons["20261130-corrupt"], /record \(job\.json\) is not JSON/);
    assert.match(reasons["20261130-newer"], /another version of Loom \(record version 2\)/);
    assert.match(reasons["20261130-norecord"], /no job\.json/);
    assert.match(reasons["20261130-badline"], /shard-1\.jsonl line 2 is not a saved outcome/);
    assert.match(reasons["20261130-taken"], /another job with this id is in the store/);
    for (const { id, reason } of report.notImported) {
      assert.ok(notes[0].includes(`job ${id} (${reason})`), notes[0]);
    }
    assert.deepEqual(await store.jobs.get("20261130-taken"), {
      id: "20261130-taken",
      revision: 1,
      record: other,
    });
    assert.equal(await store.results.has("20261130-taken", 0), false);
    assert.equal(await store.results.has("20261130-badline", 0), false, "no half job remains");
    assert.equal(await store.attachments.get("20261130-badline", "ids-0"), undefined);
    assert.equal((await store.jobs.list()).length, 4);
    for (const id of Object.keys(reasons)) {
      assert.ok(existsSync(join(report.keptIn!, "jobs", id)), `${id} is kept`);
    }
    assert.equal(
      readFileSync(join(report.keptIn!, "jobs", "20261130-corrupt", "job.json"), "utf8"),
      '{"version":1,"id":"2026',
    );
  });

  it("leaves a job locked by a live process for a later start, and imports it then", async () => {
    const fixtures = oldHome();
    const { home } = fixtures;
    const [mine, remote, dead] = fixtures.jobs.map((j) => j.id);
    writeFileSync(join(home, "jobs", mine, "lock"), `${process.pid}@${hostname()}`);
    writeFileSync(join(home, "jobs", remote, "lock"), "4242@build-7");
    writeFileSync(join(home, "jobs", dead, "lock"), `${deadPid()}@${hostname()}`);
    const store = createMemoryStorage();
    const notes: string[] = [];

    const first = await migrateFileState(home, store, { onNote: (l) => notes.push(l) });

    assert.ok(first);
    assert.equal(first.jobs, 1, "a lock whose process is gone does not hold the job back");
    assert.ok(await store.jobs.get(dead));
    assert.deepEqual(first.deferred, [
      { id: mine, reason: `in use by process ${process.pid}@${hostname()}` },
      { id: remote, reason: "in use by process 4242@build-7" },
    ]);
    assert.equal(await store.jobs.get(mine), undefined);
    assert.match(notes[0], new RegExp(`left for a later start: job ${mine} \\(in use by process`));
    assert.deepEqual(readdirSync(join(home, "jobs")).sort(), [
      `.removing-20261101-aaaaaa.1a2b3c4d`,
      `.submit-${"c".repeat(32)}.lock`,
      mine,
      remote,
    ]);
    assert.ok(existsSync(join(first.keptIn!, "jobs", dead, "job.json")));
    assert.equal(existsSync(join(home, "cache")), false, "the cache went aside all the same");

    rmSync(join(home, "jobs", mine, "lock"));
    rmSync(join(home, "jobs", remote, "lock"));
    const second = await migrateFileState(home, store, { onNote: (l) => notes.push(l) });
    assert.ok(second);
    assert.equal(second.jobs, 2);
    assert.deepEqual(second.deferred, []);
    assert.equal(existsSync(join(home, "jobs")), false);
    assert.notEqual(second.keptIn, first.keptIn);
    for (const job of fixtures.jobs) {
      assert.equal((await store.jobs.get(job.id))?.record, job.record);
    }
    const kept = [...relativeFiles(first.keptIn!), ...relativeFiles(second.keptIn!)].sort();
    assert.deepEqual(kept, [...fixtures.files, `jobs/${dead}/lock`].sort());
  });

  it("leaves out only the job whose rows are bad when the store wraps the rows' error", async () => {
    const fixtures = oldHome();
    const bad = writeJob(fixtures.home, "20261130-badline", 1);
    writeFileSync(join(fixtures.home, "jobs", bad.id, "shard-0.jsonl"), '{"i":0}\n{"i":0}\n');
    const store = createMemoryStorage();
    const wrapping: StorageV2 = {
      ...store,
      results: {
        ...store.results,
        put: (job, shard, rows) =>
          store.results.put(job, shard, rows).catch((error) => {
            throw new Error(`store ${store.location}: the write failed`, { cause: error });
          }),
      },
    };
    const report = await migrateFileState(fixtures.home, wrapping);
    assert.ok(report);
    assert.equal(report.jobs, 3);
    assert.deepEqual(report.notImported, [{
      id: bad.id,
      reason: "shard-0.jsonl line 2 is not a saved outcome of the next row",
    }]);
    assert.equal(await store.jobs.get(bad.id), undefined);
    assert.equal(await store.attachments.get(bad.id, "ids-0"), undefined);
  });

  it("counts a cache file it cannot read, keeps it, and imports the rest", async () => {
    const fixtures = oldHome();
    const lost = createHash("sha256").update("lost").digest("hex");
    mkdirSync(join(fixtures.home, "cache", "v1", lost.slice(0, 2)), { recursive: true });
    symlinkSync(
      join(fixtures.home, "nowhere"),
      join(fixtures.home, "cache", "v1", lost.slice(0, 2), lost),
    );
    const store = createMemoryStorage();
    const notes: string[] = [];
    const report = await migrateFileState(fixtures.home, store, { onNote: (l) => notes.push(l) });
    assert.ok(report);
    assert.equal(report.cached, 5);
    assert.equal(report.cacheUnreadable, 1);
    assert.match(
      notes[0],
      /skipped 4 cache files \(1 temporary, 2 not named as a cache entry, 1 unreadable\)/,
    );
    assert.equal(await store.cache.get(lost), undefined);
    assert.ok(
      lstatSync(join(report.keptIn!, "cache", "v1", lost.slice(0, 2), lost)).isSymbolicLink(),
    );
  });

  it("moves cached answers so that the response cache finds them under the same key", async () => {
    const home = tempDir();
    const request: GenerateRequest = {
      model: "echo-1",
      system: "Be brief.",
      messages: [{ role: "user", content: "hello" }],
      params: { temperature: 0 },
    };
    const key = cacheKey("echo", request);
    const answer = {
      text: "hello back",
      finishReason: "stop",
      usage: { inputTokens: 3 },
      model: "echo-1",
    };
    // As the file cache stored it: cache/v1/<2 hex>/<key>, the JSON of text, finishReason, usage, model.
    mkdirSync(join(home, "cache", "v1", key.slice(0, 2)), { recursive: true });
    writeFileSync(join(home, "cache", "v1", key.slice(0, 2), key), JSON.stringify(answer));
    const store = createMemoryStorage();
    await migrateFileState(home, store);
    assert.deepEqual(await new ResponseCache(store.cache).get(key), answer);
  });

  it("finishes the import at the next start after a crash at any step, as if never cut off", async () => {
    const clean = oldHome();
    const cleanStore = createMemoryStorage();
    await migrateFileState(clean.home, cleanStore);
    const expected = await dump(cleanStore, clean);

    const crashes: Array<[string, (store: StorageV2) => StorageV2]> = [
      ["the first results write, midway", (s) => crashing(s, "results", 1, true)],
      ["the second results write, midway", (s) => crashing(s, "results", 2, true)],
      ["the first custom ids", (s) => crashing(s, "attachments", 1)],
      ["the second job record", (s) => crashing(s, "jobs", 2)],
      ["the third job record", (s) => crashing(s, "jobs", 3)],
      ["the first cache entry", (s) => crashing(s, "cache", 1)],
      ["the last cache entry", (s) => crashing(s, "cache", 5)],
    ];
    for (const [step, crash] of crashes) {
      const fixtures = oldHome();
      const store = createMemoryStorage();
      await assert.rejects(migrateFileState(fixtures.home, crash(store)), /killed/, step);
      assert.deepEqual(relativeFiles(fixtures.home), fixtures.files, `${step}: files in place`);
      assert.deepEqual(oldStateFolders(fixtures.home), [], step);
      const probe = await store.leases.acquire(MIGRATE_LEASE, "test", 60_000);
      assert.ok(probe.ok, `${step}: the lease was released`);
      await store.leases.release(MIGRATE_LEASE, probe.lease.token);

      const report = await migrateFileState(fixtures.home, store);
      assert.ok(report, step);
      assert.equal(report.jobs + report.jobsPresent, 3, step);
      assert.deepEqual(report.notImported, [], step);
      assert.deepEqual(await dump(store, fixtures), expected, step);
      assert.deepEqual(relativeFiles(report.keptIn!), fixtures.files, step);
    }
  });

  it("imports once when two processes start at once", async () => {
    const fixtures = oldHome();
    const store = createMemoryStorage();
    const calls = { jobs: 0, cache: 0 };
    const counted: StorageV2 = {
      ...store,
      jobs: {
        ...store.jobs,
        put: (...args) => (calls.jobs++, store.jobs.put(...args)),
      },
      cache: { ...store.cache, set: (...args) => (calls.cache++, store.cache.set(...args)) },
    };
    const notes: string[] = [];
    const reports = await Promise.all(
      [1, 2].map(() =>
        migrateFileState(fixtures.home, counted, { pollMs: 5, onNote: (l) => notes.push(l) })
      ),
    );
    assert.equal(reports.filter((r) => r !== undefined).length, 1, "one of them imported");
    assert.deepEqual(calls, { jobs: 3, cache: 5 });
    assert.equal(oldStateFolders(fixtures.home).length, 1);
    assert.match(
      notes[0],
      new RegExp(
        `^waiting: old files are being moved into memory by another Loom \\(pid ${process.pid} on [^)]+\\)$`,
      ),
    );
    assert.match(notes[1], /^moved the state of an older Loom/);
    assert.equal(notes.length, 2);
  });

  it("takes over the lease of a dead holder at once, and waits out one held elsewhere", async () => {
    let clock = 1_000_000;
    const store = createMemoryStorage(() => clock);
    const dead = oldHome();
    assert.ok(
      (await store.leases.acquire(MIGRATE_LEASE, `pid ${deadPid()} on ${hostname()}`, 3_600_000))
        .ok,
    );
    const notes: string[] = [];
    assert.ok(await migrateFileState(dead.home, store, { onNote: (l) => notes.push(l) }));
    assert.equal(notes.length, 1, "no wait");

    const elsewhere = oldHome();
    assert.ok((await store.leases.acquire(MIGRATE_LEASE, "pid 4242 on build-7", 60_000)).ok);
    const report = await migrateFileState(elsewhere.home, store, {
      pollMs: 1,
      onNote: (line) => {
        notes.push(line);
        clock += 60_000; // the other machine's holder stopped renewing: its lease expires
      },
    });
    assert.ok(report);
    assert.match(
      notes[1],
      /^waiting: old files are being moved into memory by another Loom \(pid 4242 on build-7\)$/,
    );
  });

  it("stops, moving nothing, when its lease was taken over meanwhile", async () => {
    const fixtures = oldHome();
    const store = createMemoryStorage();
    let renewed: () => void = () => {};
    const renewal = new Promise<void>((resolve) => (renewed = resolve));
    const overtaken: StorageV2 = {
      ...store,
      leases: {
        ...store.leases,
        renew: () => {
          renewed();
          return Promise.resolve(false); // another process holds it now
        },
      },
      results: {
        ...store.results,
        // The first import waits for the first renewal (a second with a 3 s lease).
        put: (job, shard, rows) => renewal.then(() => store.results.put(job, shard, rows)),
      },
    };
    // The renewal timer does not keep the process alive (unref): this one does, meanwhile.
    const alive = setInterval(() => {}, 50);
    await assert.rejects(
      migrateFileState(fixtures.home, overtaken, { env: { LOOM_LEASE_SECONDS: "3" } }),
      /lost the "migrate-files" lease of memory .*the next start of Loom finishes the import/,
    ).finally(() => clearInterval(alive));
    assert.deepEqual(relativeFiles(fixtures.home), fixtures.files);
  });

  it("does nothing, and takes no lease, when there are no old folders", async () => {
    const home = tempDir();
    const store = createMemoryStorage();
    const taken: StorageV2 = {
      ...store,
      leases: {
        ...store.leases,
        acquire: () => Promise.reject(new Error("no lease is needed")),
      },
    };
    assert.equal(await migrateFileState(home, taken), undefined);
    assert.deepEqual(readdirSync(home), []);
  });
});

/**
 * `store` whose `table`'s writing method throws on its `nth` call, as a process killed there
 * would stop; `midway` lets a results write read its first row before.
 */
function crashing(
  store: StorageV2,
  table: "jobs" | "results" | "attachments" | "cache",
  nth: number,
  midway = false,
): StorageV2 {
  let calls = 0;
  const killed = () => new Error(`killed at ${table} call ${nth}`);
  const hit = () => ++calls === nth;
  switch (table) {
    case "jobs":
      return {
        ...store,
        jobs: {
          ...store.jobs,
          put: (...args) => hit() ? Promise.reject(killed()) : store.jobs.put(...args),
        },
      };
    case "attachments":
      return {
        ...store,
        attachments: {
          ...store.attachments,
          put: (...args) => hit() ? Promise.reject(killed()) : store.attachments.put(...args),
        },
      };
    case "cache":
      return {
        ...store,
        cache: {
          ...store.cache,
          set: (...args) => hit() ? Promise.reject(killed()) : store.cache.set(...args),
        },
      };
    case "results":
      return {
        ...store,
        results: {
          ...store.results,
          put: async (job, shard, rows) => {
            if (!hit()) return store.results.put(job, shard, rows);
            if (midway) { for await (const _ of rows) break; }
            throw killed();
          },
        },
      };
  }
}
