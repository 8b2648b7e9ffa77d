/**
 * `loom view` over HTTP, for sync runs and costs: `/api/jobs` lists the recorded runs with their
 * numbers and the batch jobs with their tokens and costs, `/api/runs/:id` one run with its answers
 * per minute, and `/api/runs/:id/rows` its output's rows. Only the named fields go out.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { startViewer, type Viewer } from "../commands/view.ts";
import { client } from "../../core/test-support/view.ts";
import { type RunsFixture, runsFixture, viewerOnRuns } from "../../core/test-support/runs-view.ts";
import { TOKENS_A_DOLLAR } from "../../core/test-support/priced-echo.ts";
import { LOST_AFTER_MS, showRun } from "./runs.ts";

/** echo's tokens of a text: 4 characters a token. */
const tokens = (text: string) => Math.ceil(text.length / 4);
const ANSWERED = ["alpha", "charlie", "delta", "foxtrot"];
const sum = (list: readonly number[]) => list.reduce((a, b) => a + b, 0);

describe("loom view: sync runs and costs over HTTP", () => {
  let fixture: RunsFixture;
  let viewer: Viewer;
  let c: ReturnType<typeof client>;
  before(async () => {
    fixture = await runsFixture();
    viewer = await viewerOnRuns(fixture);
    c = client(viewer);
  });
  after(() => viewer?.stop());

  it("/api/jobs lists each recorded sync run, newest first, with its numbers and only the named fields", async () => {
    const { status, body } = await c.json("/api/jobs");
    assert.equal(status, 200);
    assert.deepEqual(
      body.runs.map((r: { id: string; status: string; active: boolean }) => [
        r.id,
        r.status,
        r.active,
      ]),
      [
        [fixture.run.id, "finished", false],
        [fixture.running, "running", true],
        [fixture.lost, "lost", false],
      ],
    );
    const run = body.runs[0];
    const out = sum(ANSWERED.map(tokens));
    assert.deepEqual(run, {
      id: fixture.run.id,
      provider: "priced",
      model: "echo-1",
      input: "in.csv",
      output: "sync.csv",
      outputReady: true,
      status: "finished",
      active: false,
      rows: 6,
      answered: 4,
      failed: 2,
      cached: 0,
      inputTokens: out,
      outputTokens: out,
      cost: out / TOKENS_A_DOLLAR,
      estimate: {
        cost: run.estimate.cost,
        inputTokens: sum(
          ["alpha", "boom bravo", "charlie", "delta", "boom echo", "foxtrot"].map(tokens),
        ),
        outputTokens: run.estimate.outputTokens,
        price: "job",
      },
      host: "fixture-host",
      startedAt: fixture.run.startedAt,
      updatedAt: fixture.run.updatedAt,
      endedAt: fixture.run.endedAt,
      error: null,
    });
    assert.ok(run.estimate.cost > 0);
    assert.ok(!("perMinute" in run), "the list leaves the answers per minute to /api/runs/:id");
  });

  it("/api/jobs shows a batch job's merged tokens, its reported cost and its estimate", async () => {
    const { body } = await c.json("/api/jobs");
    const job = body.jobs.find((j: { id: string }) => j.id === fixture.job);
    const out = sum(ANSWERED.map(tokens));
    assert.deepEqual([job.answered, job.failed], [4, 2]);
    assert.deepEqual([job.inputTokens, job.outputTokens], [out, out]);
    assert.equal(job.cost, out / TOKENS_A_DOLLAR);
    assert.equal(job.estimate.price, "job");
    assert.ok(job.estimate.cost > 0);
  });

  it("/api/runs/:id: one run with its answers per minute; an unknown run is a 404", async () => {
    const { status, body } = await c.json(`/api/runs/${fixture.run.id}`);
    assert.equal(status, 200);
    assert.equal(body.id, fixture.run.id);
    assert.equal(sum(body.perMinute), body.answered);
    assert.deepEqual((await c.json(`/api/runs/${fixture.running}`)).body.perMinute, [1, 1]);
    const missing = await c.json("/api/runs/run-20200101-000000");
    assert.equal(missing.status, 404);
    assert.match(missing.body.error, /no sync run "run-20200101-000000" in .*state\.db/);
  });

  it("/api/runs/:id/rows: the run's output rows; a run without an output says why", async () => {
    const { status, body } = await c.json(`/api/runs/${fixture.run.id}/rows`);
    assert.equal(status, 200);
    assert.equal(body.title, `run ${fixture.run.id}: sync.csv`);
    assert.deepEqual([body.counts.ok, body.counts.error], [4, 2]);
    const row = await c.json(`/api/runs/${fixture.run.id}/rows/1`);
    assert.match(row.body.row.fields.llm_error, /boom/);
    const none = await c.json(`/api/runs/${fixture.running}/rows`);
    assert.equal(none.status, 409);
    assert.match(
      none.body.error,
      /has no output yet \(running\.csv\): it is written when the run ends/,
    );
  });

  it("/api/compare takes a run as a side: the sync run against the batch job of the same rows", async () => {
    const { status, body } = await c.json(
      `/api/compare/runs/${fixture.run.id}/jobs/${fixture.job}/rows`,
    );
    assert.equal(status, 200, JSON.stringify(body));
    assert.equal(body.a.title, `run ${fixture.run.id}: sync.csv`);
    assert.equal(body.b.title, `job ${fixture.job}: batch.csv`);
    assert.deepEqual(body.summary, {
      compared: 6,
      identical: 4,
      differ: 0,
      failedAOnly: 0,
      failedBOnly: 0,
      failedBoth: 2,
      inputDiffers: 0,
      firstInputDiffers: null,
    });
    const running = await c.json(`/api/compare/runs/${fixture.running}/jobs/${fixture.job}/rows`);
    assert.equal(running.status, 409);
    assert.match(running.body.error, /has no output yet/);
    const other = await c.json(`/api/compare/tasks/1/jobs/${fixture.job}/rows`);
    assert.equal(other.status, 404);
    assert.match(other.body.error, /files\/N, jobs\/ID or runs\/ID on each side/);
  });

  it("loom view RUN_ID opens on the run's rows (a unique beginning of the id will do), a run with no output on its page", async () => {
    const open = async (target: string) => {
      const v = await startViewer({ targets: [target], env: fixture.env, cwd: fixture.dir });
      await v.stop();
      return new URL(v.url).hash;
    };
    assert.equal(await open(fixture.run.id), `#/runs/${fixture.run.id}`);
    assert.equal(await open(fixture.run.id.slice(0, -1)), `#/runs/${fixture.run.id}`);
    assert.equal(await open(fixture.running), `#/runs/${fixture.running}/about`);
    await assert.rejects(
      open("run-20200101"),
      /no sync run "run-20200101" \(see loom list --runs\)/,
    );
    await assert.rejects(open("run-2026120"), /"run-2026120" matches several sync runs/);
  });

  it("a running record that stopped being written is shown as lost", () => {
    const now = Date.parse(fixture.run.updatedAt);
    const running = { ...fixture.run, status: "running" as const };
    assert.equal(showRun(running, fixture.dir, now + 1000).status, "running");
    const lost = showRun(running, fixture.dir, now + LOST_AFTER_MS + 1);
    assert.deepEqual([lost.status, lost.active], ["lost", false]);
  });
});
