/**
 * `output: { path: "-" }` in a job file writes to standard output as `-o -` does: the rows on
 * stdout, progress and messages on stderr, no file named `-`. Through the real CLI.
 */
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { runCli } from "../core/test-support/run-cli.ts";
import { tempDir } from "../core/test-support/temp.ts";

/** A job file in `jobs/` (so a file named `-` would land beside it) over a 2-row dataset. */
function setup(mode: "sync" | "batch" = "sync") {
  const dir = tempDir("loom-stdout-job-");
  mkdirSync(join(dir, "jobs"));
  writeFileSync(join(dir, "jobs", "in.csv"), "id,text\n1,hello there\n2,good morning\n");
  writeFileSync(
    join(dir, "jobs", "job.yaml"),
    "dataset: { path: in.csv }\nprompt: { column: text }\nprovider: echo\nmodel: m\n" +
      `mode: ${mode}\noutput: { path: "-" }\n`,
  );
  return { dir, opts: { cwd: dir, env: { LOOM_HOME: join(dir, "home") } } };
}

/** No file named `-` anywhere Loom could have put one. */
function assertNoDashFile(dir: string): void {
  assert.ok(!existsSync(join(dir, "-")), "no file - in the working directory");
  assert.deepEqual(readdirSync(join(dir, "jobs")).sort(), ["in.csv", "job.yaml"]);
}

describe('output: { path: "-" } in a job file', () => {
  it("sync: the rows go to stdout, the summary to stderr, and no file is made", async () => {
    const t = setup();
    const result = await runCli(["run", "jobs/job.yaml"], t.opts);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(
      result.stdout,
      "id,text,llm_response,llm_error\n1,hello there,hello there,\n2,good morning,good morning,\n",
    );
    assert.match(result.stderr, /^loom: wrote standard output: 2 rows/m);
    assertNoDashFile(t.dir);
  });

  it("-o FILE overrides it", async () => {
    const t = setup();
    const result = await runCli(["run", "jobs/job.yaml", "-o", "out.csv"], t.opts);
    assert.equal(result.code, 0, result.stderr);
    assert.match(readFileSync(join(t.dir, "out.csv"), "utf8"), /^id,text,llm_response/);
    assertNoDashFile(t.dir);
  });

  it("plan shows the output as -", async () => {
    const t = setup();
    const result = await runCli(["plan", "jobs/job.yaml"], t.opts);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^plan: 2 rows from .*in\.csv → - \(echo m, sync mode\)/m);
    assertNoDashFile(t.dir);
  });

  it("batch mode and --json refuse it, naming output.path", async () => {
    const batch = setup("batch");
    for (const args of [["run"], ["plan"]]) {
      const result = await runCli([...args, "jobs/job.yaml"], batch.opts);
      assert.equal(result.code, 2, result.stderr);
      assert.match(result.stderr, /^loom: output\.path "-" \(standard output\) .*sync mode only/m);
    }
    assertNoDashFile(batch.dir);
    const sync = setup();
    const json = await runCli(["run", "jobs/job.yaml", "--json"], sync.opts);
    assert.equal(json.code, 2, json.stderr);
    assert.match(json.stderr, /^loom: output\.path "-" and --json both write to standard output/m);
    assertNoDashFile(sync.dir);
  });
});
