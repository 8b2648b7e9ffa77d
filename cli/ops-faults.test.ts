/**
 * Operational faults through the real CLI: a cache cleared while a run writes to it, and a
 * LOOM_HOME that cannot be written. Each ends with a clear one-line message (or succeeds), never
 * a stack trace.
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { Buffer } from "node:buffer";
import { join } from "node:path";
import process from "node:process";
import { describe, it } from "node:test";
import { cliCommand } from "../core/base/runtime.ts";
import { type CliResult, runCli, spawnCli } from "../core/test-support/run-cli.ts";
import { tempDir } from "../core/test-support/temp.ts";
import { withHomeStore } from "../core/test-support/state.ts";

/** No stack trace, no "unexpected error": every line Loom printed on stderr is a message. */
function assertNoStack(result: CliResult, what: string): void {
  assert.doesNotMatch(
    result.stderr,
    /unexpected error|\n\s+at |Error: /,
    `${what} printed a stack trace:\n${result.stderr}`,
  );
}

describe("cache clear during a run", () => {
  it("neither the run nor the clears crash; the run answers every row", async () => {
    const dir = tempDir("loom-clear-");
    const home = join(dir, "home");
    const rows = 1500;
    writeFileSync(
      join(dir, "d.csv"),
      `id,prompt\n${
        Array.from({ length: rows }, (_, i) => `${i},prompt number ${i}`).join("\n")
      }\n`,
    );
    const env = { LOOM_HOME: home };
    const run = spawnCli([
      "run",
      "-f",
      "d.csv",
      "-p",
      "echo",
      "-m",
      "m",
      "--sync",
      "-w",
      "16",
      "-o",
      "out.csv",
      "-q",
    ], { cwd: dir, env });
    let finished = false;
    const runResult = run.done.finally(() => (finished = true));
    // Clears back to back while the run writes entries, starting once the cache exists.
    const clears: CliResult[] = [];
    while (!finished) {
      if (!existsSync(join(home, "state.db"))) {
        await new Promise((resolve) => setTimeout(resolve, 5));
        continue;
      }
      clears.push(await runCli(["cache", "clear", "--yes"], { env }));
    }
    const result = await runResult;
    assertNoStack(result, "the run");
    assert.equal(result.code, 0, result.stderr);
    const out = readFileSync(join(dir, "out.csv"), "utf8").trim().split("\n");
    assert.equal(out.length, rows + 1, "every row is in the output");
    assert.ok(clears.length > 0, "at least one clear ran during the run");
    for (const clear of clears) {
      assertNoStack(clear, "cache clear");
      // One store shared by both: a clear waits for the run's write, never fails because of it.
      assert.equal(clear.code, 0, clear.stderr);
      assert.match(clear.stdout, /^removed [\d,]+ cached answers? from /);
    }
  });
});

describe("cache clear on a store that cannot be written", () => {
  it("says so in one line naming the store, exit code 1, and keeps every entry", async (t) => {
    const dir = tempDir("loom-stuck-");
    const home = join(dir, "home");
    writeFileSync(join(dir, "d.csv"), "id,prompt\n1,a\n2,b\n3,c\n");
    const run = await runCli([
      "run",
      "-f",
      "d.csv",
      "-p",
      "echo",
      "-m",
      "m",
      "--sync",
      "-o",
      "o.csv",
    ], { cwd: dir, env: { LOOM_HOME: home } });
    assert.equal(run.code, 0, run.stderr);
    const entries = () => withHomeStore(home, async (s) => (await s.cache.stats()).entries);
    assert.equal(await entries(), 3);
    const db = join(home, "state.db");
    // An immutable file cannot be written, even by root.
    if (spawnSync("chattr", ["+i", db]).status !== 0) {
      return t.skip("chattr +i is not available here");
    }
    try {
      const clear = await runCli(["cache", "clear", "--yes"], { env: { LOOM_HOME: home } });
      assertNoStack(clear, "cache clear");
      assert.equal(clear.code, 1, clear.stderr);
      assert.match(clear.stderr, new RegExp(`^loom: [^\n]*${db.replace(/[.]/g, "\\.")}[^\n]*\n$`));
    } finally {
      spawnSync("chattr", ["-i", db]);
    }
    assert.equal(await entries(), 3, "nothing was removed");
  });
});

describe("a LOOM_HOME that cannot be written", () => {
  // chmod does not stop root, so the home is a path under a regular file: every write is ENOTDIR.
  function setup() {
    const dir = tempDir("loom-home-");
    writeFileSync(join(dir, "file"), "not a folder\n");
    writeFileSync(join(dir, "d.csv"), "id,prompt\n1,a\n2,b\n");
    return { dir, home: join(dir, "file", "home") };
  }

  for (
    const args of [["list"], ["fetch"], ["cache", "clear", "--yes"], [
      "run",
      "-f",
      "d.csv",
      "-p",
      "echo",
      "-m",
      "m",
      "--batch",
      "-o",
      "o.csv",
    ]]
  ) {
    it(`loom ${args.join(" ")}: one line naming the path and LOOM_HOME, exit code 1`, async () => {
      const { dir, home } = setup();
      const result = await runCli(args, { cwd: dir, env: { LOOM_HOME: home } });
      assertNoStack(result, args.join(" "));
      assert.equal(result.code, 1, result.stderr);
      const last = result.stderr.trim().split("\n").at(-1)!;
      assert.match(
        last,
        /^loom: (the state database \S+: )?cannot [a-z ]+ \S*\/file\/home\S*: a part of the path is a file, not a folder \[ENOTDIR\]; /,
      );
      assert.ok(last.includes(`set LOOM_HOME (now ${home}) to another folder`), last);
      assert.ok(!existsSync(join(dir, "o.csv")), "nothing was written");
    });
  }

  it("a sync run still answers every row; the cache is only a warning", async () => {
    const { dir, home } = setup();
    const result = await runCli([
      "run",
      "-f",
      "d.csv",
      "-p",
      "echo",
      "-m",
      "m",
      "--sync",
      "-o",
      "o.csv",
    ], { cwd: dir, env: { LOOM_HOME: home } });
    assertNoStack(result, "the sync run");
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, /warning: cannot write the cache/);
    assert.equal(readFileSync(join(dir, "o.csv"), "utf8").trim().split("\n").length, 3);
  });
});

describe("a standard output that cannot be written", () => {
  // /dev/full answers every write with ENOSPC, as a full disk does to `loom … --json > events.jsonl`.
  it("ends with one line and exit code 1", { skip: !existsSync("/dev/full") }, async () => {
    const dir = tempDir("loom-full-");
    writeFileSync(join(dir, "d.csv"), "id,prompt\n1,a\n2,b\n");
    const full = openSync("/dev/full", "w");
    const { command, args } = cliCommand();
    const child = spawn(command, [
      ...args,
      "run",
      "-f",
      "d.csv",
      "-p",
      "echo",
      "-m",
      "m",
      "--sync",
      "--json",
      "-o",
      "o.csv",
    ], {
      cwd: dir,
      env: {
        PATH: process.env.PATH ?? "",
        HOME: process.env.HOME ?? dir,
        LOOM_HOME: join(dir, "home"),
        NO_COLOR: "1",
      },
      stdio: ["ignore", full, "pipe"],
    });
    closeSync(full);
    let stderr = "";
    child.stderr!.setEncoding("utf8").on("data", (d) => (stderr += d));
    const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
    assertNoStack({ code, signal: null, stdout: "", stderr }, "the run");
    assert.equal(code, 1, stderr);
    assert.match(
      stderr.trim().split("\n").at(-1)!,
      /^loom: .*the disk is full \[ENOSPC\]; free some space and run the command again$/,
    );
  });
});

describe("a LOOM_HOME made read-only after a batch job was submitted", () => {
  it("loom fetch: one line naming the path, what is wrong and LOOM_HOME; the job is intact", async (t) => {
    const dir = tempDir("loom-rohome-");
    const home = join(dir, "home");
    writeFileSync(join(dir, "d.csv"), "id,prompt\n1,a\n2,b\n");
    const env = { LOOM_HOME: home };
    const run = ["run", "-f", "d.csv", "-p", "echo", "-m", "m", "--batch", "-o", "o.csv"];
    assert.equal((await runCli(run, { cwd: dir, env })).code, 0);
    // Root ignores permission bits: a read-only bind mount of the home over itself.
    const bound = spawnSync("mount", ["--bind", home, home]).status === 0;
    if (!bound) return t.skip("cannot bind-mount here");
    try {
      if (spawnSync("mount", ["-o", "remount,bind,ro", home]).status !== 0) {
        return t.skip("cannot remount read-only here");
      }
      const fetch = await runCli(["fetch"], { cwd: dir, env });
      assertNoStack(fetch, "fetch");
      assert.equal(fetch.code, 1, fetch.stderr);
      assert.match(
        fetch.stderr.trim().split("\n").at(-1)!,
        /^loom: .*\/home\/state\.db\b.*: the filesystem is read-only \[(EROFS|SQLITE_READONLY)\]; fix it, or set LOOM_HOME \(now .+\)( or LOOM_STATE)? to another (folder|place)$/,
      );
      assert.ok(!existsSync(join(dir, "o.csv")), "nothing was written");
    } finally {
      spawnSync("umount", [home]);
    }
    const again = await runCli(["fetch"], { cwd: dir, env });
    assert.equal(again.code, 0, again.stderr);
    assert.equal(readFileSync(join(dir, "o.csv"), "utf8").trim().split("\n").length, 3);
  });
});

describe("a full LOOM_HOME", () => {
  it("loom run --batch: one line naming the folder, that the disk is full and what to do", async (t) => {
    const dir = tempDir("loom-fullhome-");
    const home = join(dir, "home");
    writeFileSync(join(dir, "d.csv"), "id,prompt\n1,a\n2,b\n");
    mkdirSync(home, { mode: 0o700 });
    const size = 64 * 1024;
    if (spawnSync("mount", ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", home]).status !== 0) {
      return t.skip("cannot mount a tmpfs here");
    }
    try {
      writeFileSync(join(home, "filler"), Buffer.alloc(size));
    } catch { /* full: as intended */ }
    try {
      const run = await runCli(
        ["run", "-f", "d.csv", "-p", "echo", "-m", "m", "--batch", "-o", "o.csv"],
        { cwd: dir, env: { LOOM_HOME: home } },
      );
      assertNoStack(run, "run");
      assert.equal(run.code, 1, run.stderr);
      assert.match(
        run.stderr.trim().split("\n").at(-1)!,
        /^loom: cannot write (the state database )?\S+\/home\/\S*: the disk is full \[(ENOSPC|SQLITE_FULL)\]; free some space and run the command again/,
      );
    } finally {
      spawnSync("umount", [home]);
    }
  });
});
