/**
 * `loom cache clear|stats|prune`: their logic on the memory store with a clock the test moves,
 * then end to end through the real CLI on the default (SQLite) store.
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { createMemoryStorage } from "../plugins/storage/memory/mod.ts";
import { LoomUsageError } from "../core/base/errors.ts";
import { runCli } from "../core/test-support/run-cli.ts";
import { tempDir } from "../core/test-support/temp.ts";
import {
  type CacheCommandIo,
  clearCache,
  formatBytes,
  pruneCache,
  showCacheStats,
} from "./commands/cache.ts";

const DAY = 86_400_000;
const T0 = Date.UTC(2026, 10, 1, 12, 0, 0); // 2026-11-01 12:00:00 UTC

/** A memory store whose clock the test sets, holding entries stored at `days` after T0. */
async function storeWith(days: number[]) {
  let clock = T0;
  const store = createMemoryStorage(() => clock);
  for (const [n, day] of days.entries()) {
    clock = T0 + day * DAY;
    await store.cache.set(n.toString(16).padStart(64, "0"), `{"text":"answer ${n}"}`);
  }
  return { store, setClock: (at: number) => (clock = at) };
}

/** An io that records what the command printed and asked, answering `answer`. */
function recordingIo(
  options: { yes?: boolean; interactive?: boolean; answer?: boolean; now?: number },
) {
  const io = {
    yes: options.yes,
    interactive: options.interactive ?? false,
    asked: [] as string[],
    out: [] as string[],
    notes: [] as string[],
    ask: (question: string) => {
      io.asked.push(question);
      return Promise.resolve(options.answer ?? false);
    },
    now: () => options.now ?? T0,
  };
  const facade: CacheCommandIo = {
    ...io,
    out: (line) => io.out.push(line),
    note: (line) => io.notes.push(line),
  };
  return { io, facade };
}

describe("cache commands on a store", () => {
  it("clear refuses without --yes when it cannot ask, asks on a terminal, and clears", async () => {
    const { store } = await storeWith([0, 1, 2]);
    const refused = recordingIo({});
    await assert.rejects(
      clearCache(store, refused.facade),
      (error: unknown) =>
        error instanceof LoomUsageError && /refusing to clear the cache without --yes/.test(
          error.message,
        ),
    );
    const no = recordingIo({ interactive: true, answer: false });
    await clearCache(store, no.facade);
    assert.deepEqual(no.io.asked, ["Remove every cached answer in memory?"]);
    assert.deepEqual(no.io.notes, ["cache left as it was"]);
    assert.equal((await store.cache.stats()).entries, 3);

    const yes = recordingIo({ yes: true });
    await clearCache(store, yes.facade);
    assert.deepEqual(yes.io.asked, []);
    assert.deepEqual(yes.io.out, ["removed 3 cached answers from memory"]);
    assert.equal((await store.cache.stats()).entries, 0);
  });

  it("prune removes the entries stored before now minus the duration, and says how many", async () => {
    const { store } = await storeWith([0, 1, 20, 40]);
    const now = T0 + 45 * DAY; // 30 days before: 2026-11-16 12:00:00 UTC
    const asked = recordingIo({ interactive: true, answer: true, now });
    await pruneCache(store, "30d", asked.facade);
    assert.deepEqual(asked.io.asked, [
      "Remove the cached answers stored before 2026-11-16 12:00:00 UTC from memory?",
    ]);
    assert.deepEqual(asked.io.out, [
      "removed 2 cached answers stored before 2026-11-16 12:00:00 UTC from memory",
    ]);
    const left = await store.cache.stats();
    assert.equal(left.entries, 2);
    assert.equal(left.oldest, T0 + 20 * DAY);

    const again = recordingIo({ yes: true, now });
    await pruneCache(store, "4w", again.facade); // before 2026-11-18: nothing more
    assert.deepEqual(again.io.out, [
      "removed 0 cached answers stored before 2026-11-18 12:00:00 UTC from memory",
    ]);
    const one = recordingIo({ yes: true, now });
    await pruneCache(store, "240h", one.facade); // ten days before now: 2026-12-06
    assert.deepEqual(one.io.out, [
      "removed 1 cached answer stored before 2026-12-06 12:00:00 UTC from memory",
    ]);
  });

  it("clear and prune print one JSON object with --json", async () => {
    const { store } = await storeWith([0, 1, 20]);
    const pruned = recordingIo({ yes: true, now: T0 + 10 * DAY });
    await pruneCache(store, "5d", pruned.facade, true);
    assert.deepEqual(pruned.io.out.map((line) => JSON.parse(line)), [
      { location: "memory", removed: 2, before: "2026-11-06T12:00:00.000Z" },
    ]);
    const cleared = recordingIo({ yes: true });
    await clearCache(store, cleared.facade, true);
    assert.deepEqual(cleared.io.out.map((line) => JSON.parse(line)), [
      { location: "memory", removed: 1 },
    ]);
    // Declined on a terminal: nothing on stdout, the note on stderr.
    const no = recordingIo({ interactive: true, answer: false });
    await clearCache(store, no.facade, true);
    assert.deepEqual([no.io.out, no.io.notes], [[], ["cache left as it was"]]);
  });

  it("prune refuses a bad duration before asking, and a missing --yes when it cannot ask", async () => {
    const { store } = await storeWith([0]);
    const bad = recordingIo({ interactive: true, answer: true, now: T0 + 99 * DAY });
    await assert.rejects(pruneCache(store, "30 days", bad.facade), /e\.g\. 30d, 12h, 90m/);
    assert.deepEqual(bad.io.asked, []);
    await assert.rejects(
      pruneCache(store, "30d", recordingIo({ now: T0 + 99 * DAY }).facade),
      /refusing to prune the cache without --yes/,
    );
    const no = recordingIo({ interactive: true, answer: false, now: T0 + 99 * DAY });
    await pruneCache(store, "30d", no.facade);
    assert.deepEqual(no.io.notes, ["cache left as it was"]);
    assert.equal((await store.cache.stats()).entries, 1);
  });

  it("stats tells entries, size, oldest and newest, and where; --json for scripts", async () => {
    const { store } = await storeWith([0, 3]);
    const text = recordingIo({});
    await showCacheStats(store, text.facade);
    const bytes = 2 * (64 + '{"text":"answer 0"}'.length);
    assert.deepEqual(text.io.out, [
      "cache of memory",
      "  entries  2",
      `  size     ${bytes} B (keys and answers)`,
      "  oldest   2026-11-01 12:00:00 UTC",
      "  newest   2026-11-04 12:00:00 UTC",
    ]);
    const json = recordingIo({});
    await showCacheStats(store, json.facade, true);
    assert.deepEqual(JSON.parse(json.io.out.join("")), {
      location: "memory",
      entries: 2,
      bytes,
      oldest: "2026-11-01T12:00:00.000Z",
      newest: "2026-11-04T12:00:00.000Z",
    });

    const empty = createMemoryStorage();
    const none = recordingIo({});
    await showCacheStats(empty, none.facade, true);
    assert.deepEqual(JSON.parse(none.io.out.join("")), {
      location: "memory",
      entries: 0,
      bytes: 0,
      oldest: null,
      newest: null,
    });
    const noneText = recordingIo({});
    await showCacheStats(empty, noneText.facade);
    assert.deepEqual(noneText.io.out, [
      "cache of memory",
      "  entries  0",
      "  size     0 B (keys and answers)",
    ]);
  });

  it("sizes are in binary units", () => {
    assert.equal(formatBytes(0), "0 B");
    assert.equal(formatBytes(1023), "1023 B");
    assert.equal(formatBytes(1024), "1.0 KiB");
    assert.equal(formatBytes(1536), "1.5 KiB");
    assert.equal(formatBytes(38.2 * 1024 * 1024), "38.2 MiB");
    assert.equal(formatBytes(3 * 1024 ** 3), "3.0 GiB");
  });
});

/** A folder with a two-row dataset and its own LOOM_HOME; `run()` caches both answers. */
function project() {
  const dir = tempDir();
  const home = join(dir, "home");
  writeFileSync(join(dir, "d.csv"), "prompt\nhello\nworld\n");
  const env = { LOOM_HOME: home };
  const cli = (args: string[], extra: Record<string, string> = {}) =>
    runCli(args, { cwd: dir, env: { ...env, ...extra } });
  const run = async () => {
    const result = await cli(["run", "-f", "d.csv", "-p", "echo", "-m", "m", "--sync", "--force"]);
    assert.equal(result.code, 0, result.stderr);
  };
  const stats = async (extra: Record<string, string> = {}) => {
    const result = await cli(["cache", "stats", "--json"], extra);
    assert.equal(result.code, 0, result.stderr);
    return JSON.parse(result.stdout) as {
      location: string;
      entries: number;
      bytes: number;
      oldest: string | null;
      newest: string | null;
    };
  };
  return { dir, home, cli, run, stats };
}

describe("loom cache (real CLI, default store)", () => {
  it("stats shows what a run cached, where, as text or JSON", async () => {
    const p = project();
    const empty = await p.stats();
    assert.deepEqual({ ...empty, location: undefined }, {
      location: undefined,
      entries: 0,
      bytes: 0,
      oldest: null,
      newest: null,
    });
    assert.ok(empty.location.includes(p.home), empty.location);
    await p.run();
    const full = await p.stats();
    assert.equal(full.entries, 2);
    assert.ok(full.bytes > 2 * 64, `${full.bytes}`);
    assert.ok(full.oldest && Date.now() - Date.parse(full.oldest) < 600_000, full.oldest!);
    const text = await p.cli(["cache", "stats"]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(
      text.stdout,
      /^cache of .+\n {2}entries {2}2\n {2}size {5}\d+ B \(keys and answers\)\n/,
    );
    assert.match(text.stdout, /oldest {3}\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC\n/);

    const elsewhere = join(p.dir, "team.db");
    const other = await p.stats({ LOOM_STATE: elsewhere });
    assert.equal(other.entries, 0, "LOOM_STATE chooses another store");
    assert.ok(other.location.includes(elsewhere), other.location);
  });

  it("prune removes only what is older than the duration, asking like clear does", async () => {
    const p = project();
    await p.run();
    const refused = await p.cli(["cache", "prune", "--older-than", "30d"]);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /^loom: refusing to prune the cache without --yes/);
    const bad = await p.cli(["cache", "prune", "--older-than", "1y", "--yes"]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /"1y" is not a duration.*e\.g\. 30d, 12h, 90m, 45s or 2w/);
    assert.equal((await p.cli(["cache", "prune", "--yes"])).code, 2, "--older-than is required");

    const young = await p.cli(["cache", "prune", "--older-than", "1d", "--yes"]);
    assert.equal(young.code, 0, young.stderr);
    assert.match(young.stdout, /^removed 0 cached answers stored before \d{4}-.* UTC from .+\n$/);
    assert.equal((await p.stats()).entries, 2);

    await sleep(1_100); // the answers are now more than a second old
    const old = await p.cli(["cache", "prune", "--older-than", "1s", "--yes"]);
    assert.equal(old.code, 0, old.stderr);
    assert.match(old.stdout, /^removed 2 cached answers stored before /);
    assert.equal((await p.stats()).entries, 0);
  });

  it("clear refuses without --yes when it cannot ask, and clears with it", async () => {
    const p = project();
    await p.run();
    const refused = await p.cli(["cache", "clear"]);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /--yes/);
    assert.equal((await p.stats()).entries, 2);
    const cleared = await p.cli(["cache", "clear", "--yes", "--json"]);
    assert.equal(cleared.code, 0, cleared.stderr);
    const { location } = await p.stats();
    assert.equal(cleared.stdout, `${JSON.stringify({ location, removed: 2 })}\n`);
    assert.equal((await p.stats()).entries, 0);
  });
});
