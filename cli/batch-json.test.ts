/**
 * `--json` on the batch commands that change a job (cancel, retry, adopt, forget): one JSON object
 * on stdout that names the job and what happened, and nothing else there. Through the real CLI with
 * the offline `echo` provider in batch mode.
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { type CliResult, runCli, spawnCli } from "../core/test-support/run-cli.ts";
import { tempDir } from "../core/test-support/temp.ts";

/** A batch job over four rows in two batches whose batches stay in progress for 5 checks. */
function setup() {
  const dir = tempDir();
  writeFileSync(join(dir, "in.csv"), "id,text\n1,alpha\n2,bravo\n3,charlie\n4,delta\n");
  writeFileSync(
    join(dir, "job.yaml"),
    "dataset: { path: in.csv }\nprompt: { column: text }\nprovider: echo\n" +
      "provider_options: { batch_polls: 5 }\nmodel: m\noutput: { path: out.csv }\n" +
      "batch: { max_requests: 2 }\n",
  );
  const env = { LOOM_HOME: join(dir, "home") };
  const run = (args: string[]) => runCli(args, { cwd: dir, env });
  return { dir, env, run };
}

/** The one JSON object a command printed, after checking it exited with `code`. */
function jsonOf(result: CliResult, code = 0): Record<string, unknown> {
  assert.equal(result.code, code, result.stderr);
  const lines = result.stdout.trim().split("\n");
  assert.equal(lines.length, 1, `one line on stdout, got:\n${result.stdout}`);
  return JSON.parse(lines[0]);
}

describe("--json on cancel, retry, adopt and forget", () => {
  it("cancel, retry and forget each print one JSON object", async () => {
    const t = setup();
    const submitted = await t.run(["run", "job.yaml"]);
    assert.equal(submitted.code, 0, submitted.stderr);
    const id = /submitted job (\S+):/.exec(submitted.stdout)![1];

    const cancelled = jsonOf(await t.run(["cancel", id, "--json"]));
    assert.deepEqual(cancelled, { id, status: cancelled.status, failed: [] });
    assert.equal(typeof cancelled.status, "string");

    const fetched = await t.run(["fetch", "--id", id]);
    assert.equal(fetched.code, 1, "every row was cancelled: the fetch reports failure");

    // The cancelled rows are the ones a retry submits again.
    const retried = jsonOf(await t.run(["retry", id, "--json"]));
    assert.deepEqual(retried, { id, status: retried.status, rows: 4 });
    assert.match(String(retried.status), /cancelled/, "the job's first batches stay on record");
    // Forgotten while the retry's batches run: their uploads are left, and said so in the JSON.
    const forgot = await t.run(["forget", id, "--force", "--json"]);
    const forgotten = jsonOf(forgot);
    assert.deepEqual(Object.keys(forgotten), ["id", "forgotten", "uploadsLeft"]);
    assert.equal(forgotten.id, id);
    assert.equal(forgotten.forgotten, true);
    const left = forgotten.uploadsLeft as string[];
    assert.equal(left.length, 2);
    assert.match(left[0], /batch 3 .* is left/);
    assert.match(left[1], /batch 4 .* is left/);
    assert.equal(forgot.stderr, "", "with --json, the uploads left are in the JSON only");
    const listed = await t.run(["list", "--json"]);
    assert.equal(listed.stdout, "", "the job is gone");
  });

  it("run --json names the submitted job; fetch --json exits as fetch does when every row failed", async () => {
    const t = setup();
    const submitted = await t.run(["run", "job.yaml", "--json"]);
    assert.equal(submitted.code, 0, submitted.stderr);
    const events = submitted.stdout.trim().split("\n").map((line) => JSON.parse(line));
    const done = events.at(-1);
    assert.equal(done.type, "done", "the last event is the summary");
    assert.equal(done.summary.rows, 4);
    assert.equal(done.summary.job.shards, 2);
    const id = done.summary.job.id as string;
    assert.match(id, /^\d{8}-[0-9a-f]+$/);
    assert.equal(events.filter((e) => e.type === "shard").length, 2);

    jsonOf(await t.run(["cancel", id, "--json"]));
    const fetched = await t.run(["fetch", "--id", id, "--json"]);
    const outcome = jsonOf(fetched, 1);
    assert.equal(outcome.id, id);
    assert.deepEqual(
      [(outcome.summary as { ok: number }).ok, (outcome.summary as { errors: number }).errors],
      [0, 4],
    );
  });

  it("adopt --none prints one JSON object; errors stay one line on stderr", async () => {
    const t = setup();
    // Killed after the first create, before its batch id is recorded: that batch is in doubt.
    const { done } = spawnCli(["run", "job.yaml"], {
      cwd: t.dir,
      env: { ...t.env, LOOM_FAILPOINT: "submit:created" },
    });
    assert.equal((await done).signal, "SIGKILL");
    const listed = JSON.parse((await t.run(["list", "--json"])).stdout.trim().split("\n")[0]);
    const id = listed.id as string;

    // status --json: the shape of list --json, with each batch's phase as status shows it.
    const status = jsonOf(await t.run(["status", id, "--json"]));
    assert.deepEqual(Object.keys(status), Object.keys(listed));
    const shards = status.shards as { phase: string; batch: string | null }[];
    assert.deepEqual(shards.map((s) => [s.phase, s.batch]), [["in doubt", null], [
      "not sent",
      null,
    ]]);

    const refused = await t.run(["adopt", id, "--json"]);
    assert.equal(refused.code, 2);
    assert.equal(refused.stdout, "");
    assert.match(refused.stderr, /^loom: give the batch id, or --none/);

    const adopted = jsonOf(await t.run(["adopt", id, "--none", "--json"]));
    assert.deepEqual(adopted, { id, status: adopted.status, batch: null });
  });
});
