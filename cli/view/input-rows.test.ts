/**
 * `GET /api/jobs/:id/input`: the rows of a job not merged yet, each with where it stands, for a
 * job still running and for one reopened by a retry; a search; a changed or missing input.
 */
import assert from "node:assert/strict";
import { appendFileSync, renameSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { startViewer, type Viewer } from "../commands/view.ts";
import { runCli } from "../../core/test-support/run-cli.ts";
import {
  client,
  VIEW_SECRETS,
  viewerOn,
  type ViewFixture,
  viewFixture,
} from "../../core/test-support/view.ts";

describe("loom view: the input rows of a job not merged yet", () => {
  let fixture: ViewFixture;
  let viewer: Viewer;
  let c: ReturnType<typeof client>;
  before(async () => {
    fixture = await viewFixture();
    viewer = await viewerOn(fixture);
    c = client(viewer);
  });
  after(() => viewer?.stop());

  // deno-lint-ignore no-explicit-any
  const input = async (id: string, query = ""): Promise<{ status: number; body: any }> =>
    await c.json(`/api/jobs/${id}/input${query}`);
  const states = (rows: { state: string; detail: string }[]) =>
    rows.map((r) => `${r.state} (${r.detail})`);

  it("a running job: every row pending in its batch, with the provider's state", async () => {
    const { status, body } = await input(fixture.pending);
    assert.equal(status, 200, JSON.stringify(body));
    assert.equal(body.title, `job ${fixture.pending}: input in.csv`);
    assert.deepEqual(body.job, {
      id: fixture.pending,
      status: "3 validating",
      output: "later.csv",
    });
    assert.equal(body.inputChanged, false);
    assert.deepEqual(body.columns, ["id", "text"]);
    assert.deepEqual(body.rows.map((r: { fields: { text: string } }) => r.fields.text), [
      "alpha",
      "boom bravo",
      "charlie",
      "delta",
      "boom echo",
      "foxtrot",
    ]);
    assert.deepEqual(states(body.rows), [
      "pending (batch 1: validating)",
      "pending (batch 1: validating)",
      "pending (batch 2: validating)",
      "pending (batch 2: validating)",
      "pending (batch 3: validating)",
      "pending (batch 3: validating)",
    ]);
    assert.deepEqual([body.matched, body.indexed], [6, 6]);
  });

  it("a search and a page of them", async () => {
    const found = await input(fixture.pending, "?q=boom");
    assert.deepEqual(found.body.rows.map((r: { n: number }) => r.n), [1, 4]);
    assert.equal(found.body.matched, 2);
    const paged = await input(fixture.pending, "?offset=4&limit=5");
    assert.deepEqual(paged.body.rows.map((r: { n: number }) => r.n), [4, 5]);
    assert.equal((await input(fixture.pending, "?limit=x")).status, 400);
  });

  it("a job reopened by a retry: its answered rows fetched, not merged; the failed ones pending again", async () => {
    const retried = await runCli(["retry", fixture.merged, "--api-key", VIEW_SECRETS.flag], {
      cwd: fixture.dir,
      env: fixture.env,
    });
    assert.equal(retried.code, 0, retried.stderr);
    const { body } = await input(fixture.merged);
    assert.deepEqual(states(body.rows), [
      "answered (batch 1: fetched, not merged)",
      "pending (batch 2: validating)",
      "answered (batch 1: fetched, not merged)",
      "answered (batch 1: fetched, not merged)",
      "pending (batch 2: validating)",
      "answered (batch 1: fetched, not merged)",
    ]);
  });

  it("a job id no job has: 404", async () => {
    const { status, body } = await input("nosuchjob");
    assert.equal(status, 404);
    assert.match(body.error, /no batch job "nosuchjob"/);
  });

  it("an input that changed since submission is flagged; one that is gone is refused with 409", async () => {
    appendFileSync(join(fixture.dir, "in.csv"), "7,golf\n");
    const changed = await input(fixture.pending);
    assert.equal(changed.body.inputChanged, true);
    renameSync(join(fixture.dir, "in.csv"), join(fixture.dir, "moved.csv"));
    const gone = await input(fixture.pending);
    assert.equal(gone.status, 409);
    assert.match(gone.body.error, /the input of job \S+ \(in\.csv\) is gone/);
  });

  it("loom view JOB_ID of a job not merged yet opens on its input rows", async () => {
    const only = await startViewer({
      targets: [fixture.pending],
      env: fixture.env,
      cwd: fixture.dir,
    });
    try {
      assert.match(only.url, new RegExp(`#/jobs/${fixture.pending}/input$`));
    } finally {
      await only.stop();
    }
  });
});
