/** `loom tokens`, `loom plan` and `--dry-run` as a real child process. */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { runCli } from "../core/test-support/run-cli.ts";
import { tempDir } from "../core/test-support/temp.ts";
import { jobIdsIn } from "../core/test-support/state.ts";

function setup() {
  const dir = tempDir();
  writeFileSync(
    join(dir, "in.csv"),
    `id,text\n${Array.from({ length: 6 }, (_, i) => `${i},${"y".repeat(19)}${i}`).join("\n")}\n`,
  );
  return { dir, opts: { cwd: dir, env: { LOOM_HOME: join(dir, "home") } } };
}

describe("loom tokens and loom plan", () => {
  it("tokens: counts every prompt and ends with the total line", async () => {
    const t = setup();
    const result = await runCli([
      "tokens",
      "-f",
      "in.csv",
      "-p",
      "echo",
      "-m",
      "e1",
      "-c",
      "text",
      "-w",
      "2",
    ], t.opts);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(
      result.stdout.trim().split("\n").at(-1),
      "Total input tokens: 30 across 6 prompts (provider=echo, model=e1, errors=0)",
    );
  });

  it("tokens --json: progress carries done, total, est_total, errors, elapsed and ETA", async () => {
    const t = setup();
    writeFileSync(join(t.dir, "in.csv"), "id,text\n1,aaaa bbbb\n2,\n3,cccc dddd\n");
    const result = await runCli([
      "tokens",
      "-f",
      "in.csv",
      "-p",
      "echo",
      "-m",
      "e1",
      "-c",
      "text",
      "--json",
    ], t.opts);
    const lines = result.stdout.trim().split("\n").map((l) => JSON.parse(l));
    const last = lines.filter((l) => l.type === "tokens").at(-1);
    assert.deepEqual(
      [last.done, last.total, last.errors, last.est_total],
      [3, 3, 1, 9],
      "3 tokens a counted prompt, times 3 rows",
    );
    assert.equal(typeof last.elapsed, "number");
    assert.deepEqual(lines.at(-1), {
      type: "total",
      tokens: 6,
      prompts: 2,
      provider: "echo",
      model: "e1",
      errors: 1,
      estimated_prompts: 0,
      estimated_tokens: 0,
    });
  });

  it("tokens: a provider that cannot count says so and exits 2", async () => {
    const t = setup();
    const result = await runCli([
      "tokens",
      "-f",
      "in.csv",
      "-p",
      "openrouter",
      "-m",
      "a/b",
      "-c",
      "text",
      "--api-key",
      "sk-or-x",
    ], t.opts);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /^loom: Token counting not available: /m);
  });

  it("plan and run --dry-run show the estimate and send nothing", async () => {
    const t = setup();
    writeFileSync(
      join(t.dir, "job.yaml"),
      "dataset: { path: in.csv }\nprompt: { column: text }\nprovider: echo\nmodel: e1\nparams: { max_tokens: 10 }\n" +
        "batch: { max_requests: 4 }\ncost: { max_usd: 0.0001, prices: { input: 1, output: 10 } }\noutput: { path: out.csv }\n",
    );
    const plan = await runCli(["plan", "job.yaml"], t.opts);
    assert.equal(plan.code, 0, plan.stderr);
    assert.match(plan.stdout, /batches: 2\n\s+batch 1: rows 1–4, 4 requests/);
    assert.match(plan.stdout, /input tokens: 30 \(estimated/);
    assert.match(plan.stdout, /output tokens: at most 60 \(10 a row, params\.max_tokens\)/);
    assert.match(plan.stdout, /cost in batch mode: up to \$0\.000315/);
    assert.match(plan.stdout, /spend cap: \$0\.000100 \(cost\.max_usd\): EXCEEDED/);
    const dry = await runCli(["run", "job.yaml", "--dry-run", "--json"], t.opts);
    assert.equal(JSON.parse(dry.stdout).requests, 6);
    const refused = await runCli(["run", "job.yaml"], t.opts);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /exceeds the spend cap.*--over-cap/);
    assert.deepEqual(await jobIdsIn(join(t.dir, "home")), [], "nothing was submitted");
    const forced = await runCli(["run", "job.yaml", "--over-cap"], t.opts);
    assert.equal(forced.code, 0, forced.stderr);
    assert.match(forced.stdout, /submitted job/);
  });
});
