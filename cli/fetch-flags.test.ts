/**
 * `loom fetch`'s flags through the real CLI, with echo's local batches: `-i/--id`, `-a/--all`,
 * `--no-all`, `-k/--keep`, `--force` (overwrite the output) and `--input-changed` (merge although
 * the input changed).
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { runCli } from "../core/test-support/run-cli.ts";
import { tempDir } from "../core/test-support/temp.ts";

function setup() {
  const dir = tempDir();
  writeFileSync(join(dir, "a.csv"), "prompt\none\ntwo\n");
  writeFileSync(join(dir, "b.csv"), "prompt\nthree\n");
  return { dir, opts: { cwd: dir, env: { LOOM_HOME: join(dir, "home") } } };
}

/** Submits `input` as an echo batch job and returns its id. */
async function submit(t: ReturnType<typeof setup>, input: string, output: string): Promise<string> {
  const result = await runCli([
    "run",
    "-f",
    input,
    "-p",
    "echo",
    "-m",
    "m",
    "--batch",
    "-o",
    output,
  ], t.opts);
  assert.equal(result.code, 0, result.stderr);
  const id = /submitted job (\S+):/.exec(result.stdout)?.[1];
  assert.ok(id, result.stdout);
  return id;
}

/** The ids `loom list --json` shows, each `merged` or `pending`. */
async function listed(t: ReturnType<typeof setup>): Promise<Array<[string, string]>> {
  const result = await runCli(["list", "--json"], t.opts);
  assert.equal(result.code, 0, result.stderr);
  return result.stdout.trim().split("\n").filter(Boolean).map((l) => JSON.parse(l)).map((
    j,
  ) => [j.id, j.status === "merged" ? "merged" : "pending"]);
}

describe("loom fetch flags", () => {
  it("-i ID -k merges only that job and keeps its record; -a merges every other pending job", async () => {
    const t = setup();
    const a = await submit(t, "a.csv", "a.out.csv");
    const b = await submit(t, "b.csv", "b.out.csv");
    const one = await runCli(["fetch", "-i", a, "-k"], t.opts);
    assert.equal(one.code, 0, one.stderr);
    assert.ok(existsSync(join(t.dir, "a.out.csv")));
    assert.ok(!existsSync(join(t.dir, "b.out.csv")), "-i fetches only the job named");
    assert.deepEqual(
      await listed(t),
      [[a, "merged"], [b, "pending"]],
      "-k keeps the merged job's record",
    );
    const all = await runCli(["fetch", "-a"], t.opts);
    assert.equal(all.code, 0, all.stderr);
    assert.equal(
      readFileSync(join(t.dir, "b.out.csv"), "utf8"),
      "prompt,llm_response,llm_error\nthree,three,\n",
    );
    assert.deepEqual(
      await listed(t),
      [[a, "merged"]],
      "without -k the record goes once every row has an answer",
    );
  });

  it("--no-all fetches only the most recent pending job; --all with --id is a usage error", async () => {
    const t = setup();
    const a = await submit(t, "a.csv", "a.out.csv");
    await submit(t, "b.csv", "b.out.csv");
    const latest = await runCli(["fetch", "--no-all"], t.opts);
    assert.equal(latest.code, 0, latest.stderr);
    assert.ok(existsSync(join(t.dir, "b.out.csv")));
    assert.ok(!existsSync(join(t.dir, "a.out.csv")), "the older job is left pending");
    assert.deepEqual(await listed(t), [[a, "pending"]]);
    const both = await runCli(["fetch", "--all", "--id", a], t.opts);
    assert.equal(both.code, 2);
    assert.match(both.stderr, /^loom: .*--id.*--all/m);
    const none = await runCli(["fetch", "--no-all"], {
      ...t.opts,
      env: { LOOM_HOME: join(t.dir, "empty-home") },
    });
    assert.equal(none.code, 0, none.stderr);
    assert.match(none.stdout, /no pending batch jobs/);
  });

  it("--force no longer merges a changed input; --input-changed does", async () => {
    const t = setup();
    const a = await submit(t, "a.csv", "a.out.csv");
    writeFileSync(join(t.dir, "a.csv"), "prompt\nONE\nTWO\n");
    const forced = await runCli(["fetch", "--id", a, "--force"], t.opts);
    assert.equal(forced.code, 2, "--force means overwrite the output, not merge a changed input");
    assert.match(forced.stderr, /^loom: .*changed since job .* --input-changed/m);
    assert.ok(!existsSync(join(t.dir, "a.out.csv")));
    const merged = await runCli(["fetch", "--id", a, "--input-changed"], t.opts);
    assert.equal(merged.code, 0, merged.stderr);
    assert.equal(
      readFileSync(join(t.dir, "a.out.csv"), "utf8"),
      "prompt,llm_response,llm_error\nONE,one,\nTWO,two,\n",
    );
  });

  it("--force overwrites an existing output", async () => {
    const t = setup();
    const a = await submit(t, "a.csv", "a.out.csv");
    writeFileSync(join(t.dir, "a.out.csv"), "old\n");
    const result = await runCli(["fetch", "--id", a, "--force"], t.opts);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(
      readFileSync(join(t.dir, "a.out.csv"), "utf8"),
      "prompt,llm_response,llm_error\none,one,\ntwo,two,\n",
    );
  });

  it("fetch --help names every flag", async () => {
    const help = await runCli(["fetch", "--help"]);
    assert.equal(help.code, 0);
    for (
      const flag of [
        "-i, --id",
        "-a, --all",
        "--no-all",
        "-k, --keep",
        "--force",
        "--input-changed",
        "--wait",
      ]
    ) {
      assert.ok(help.stdout.includes(flag), flag);
    }
  });
});
