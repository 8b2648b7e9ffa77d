/**
 * `loom view`'s compare over HTTP: two outputs of one dataset made by the real CLI (echo provider,
 * two prompts, two `fail_on`), lined up row by row: the summary, the filters, paging, the word
 * diff, a dataset that is not the same, one row whole, and the refusals.
 */
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { startViewer, type Viewer } from "../commands/view.ts";
import { type CompareFixture, compareFixture } from "../../core/test-support/compare.ts";
import { client } from "../../core/test-support/view.ts";
import { diffSegments, type Segment } from "./compare.ts";

/** A's text and B's text put back together from a diff. */
const sides = (diff: Segment[]) => [
  diff.filter((s) => !s.added).map((s) => s.text).join(""),
  diff.filter((s) => !s.removed).map((s) => s.text).join(""),
];

describe("loom view compare over HTTP", () => {
  let fixture: CompareFixture;
  let viewer: Viewer;
  let c: ReturnType<typeof client>;
  const AB = "/api/compare/files/0/files/1/rows";
  const rowsOf = async (query: string) => {
    const { status, body } = await c.json(`${AB}${query}`);
    assert.equal(status, 200, JSON.stringify(body));
    return body.rows.map((r: { n: number }) => r.n);
  };
  before(async () => {
    fixture = await compareFixture();
    // Not the same dataset: two rows fewer, and row 3's input changed.
    writeFileSync(
      join(fixture.dir, "other.csv"),
      "id,text,hint,llm_response,llm_error\n1,alpha,,alpha,\n2,boom bravo,,x,\n" +
        "3,charly,,charly,\n4,delta,,delta,\n5,echo bang,,y,\n6,boom bang,,z,\n",
    );
    // a.csv with its fourth row's line broken (a stray quote): a corrupt row.
    const lines = readFileSync(join(fixture.dir, "a.csv"), "utf8").split("\n");
    lines[4] = '4,"delta"x,,delta,,stop,2,2,,';
    writeFileSync(join(fixture.dir, "corrupt.csv"), lines.join("\n"));
    viewer = await startViewer({
      targets: ["a.csv", "b.csv", "other.csv", "corrupt.csv"],
      env: fixture.env,
      cwd: fixture.dir,
    });
    c = client(viewer);
  });
  after(() => viewer?.stop());

  it("the summary: rows compared, answers identical and different, failures on each side", async () => {
    const { body } = await c.json(AB);
    assert.equal(body.a.title, "a.csv");
    assert.equal(body.b.title, "b.csv");
    assert.equal(body.indexing, false);
    assert.deepEqual(body.summary, {
      compared: 8,
      identical: 3,
      differ: 4,
      failedAOnly: 1,
      failedBOnly: 1,
      failedBoth: 1,
      inputDiffers: 0,
      firstInputDiffers: null,
    });
    assert.deepEqual(body.columns, ["id", "text", "hint"]);
    assert.equal(body.matched, 8);
    assert.deepEqual(
      body.rows.map((r: { differ: boolean }) => r.differ),
      [false, true, true, false, true, false, true, false],
    );
    const [a, b] = [body.rows[1].a, body.rows[1].b];
    assert.deepEqual([a.status, b.status], ["error", "ok"]);
    assert.match(a.fields.llm_error, /prompt contains "boom"/);
    assert.equal(b.fields.llm_response, "boom bravo");
  });

  it("a page's word diff: segments of both answers, what only B says marked added", async () => {
    const { body } = await c.json(AB);
    const row = body.rows[6];
    assert.deepEqual(sides(row.diff), ["foxtrot", "foxtrot and more words"]);
    assert.ok(row.diff.some((s: Segment) => s.added && s.text.includes("more words")), row.diff);
    assert.ok(!row.diff.some((s: Segment) => s.removed));
    assert.equal(body.rows[0].diff, null, "identical answers carry no diff");
    // The same pair the other way round: A's extra words are the removed ones.
    const back = (await c.json("/api/compare/files/1/files/0/rows")).body.rows[6];
    assert.ok(back.diff.some((s: Segment) => s.removed && s.text.includes("more words")));
  });

  it("diffSegments: words changed in the middle, both texts kept whole", () => {
    const diff = diffSegments("the cat sat on the mat", "the dog sat on a mat", 1000)!;
    assert.deepEqual(sides(diff), ["the cat sat on the mat", "the dog sat on a mat"]);
    assert.deepEqual(diff.filter((s) => s.removed).map((s) => s.text.trim()), ["cat", "the"]);
    assert.deepEqual(diff.filter((s) => s.added).map((s) => s.text.trim()), ["dog", "a"]);
  });

  it("filters: answers that differ, failed on either side, on one, on both; with paging", async () => {
    assert.deepEqual(await rowsOf("?differ=1"), [1, 2, 4, 6]);
    assert.deepEqual(await rowsOf("?failed=any"), [1, 4, 5]);
    assert.deepEqual(await rowsOf("?failed=a"), [1]);
    assert.deepEqual(await rowsOf("?failed=b"), [4]);
    assert.deepEqual(await rowsOf("?failed=both"), [5]);
    assert.deepEqual(await rowsOf("?differ=1&failed=any"), [1, 4]);
    const page = (await c.json(`${AB}?differ=1&limit=2&offset=2`)).body;
    assert.deepEqual([page.matched, page.rows.map((r: { n: number }) => r.n)], [4, [4, 6]]);
    assert.deepEqual(await rowsOf("?limit=3&offset=6"), [6, 7]);
  });

  it("text search over both sides, alone and with a filter", async () => {
    assert.deepEqual(await rowsOf("?q=CHARLIE"), [2]);
    // "more words" is in B's answer and in both hints.
    assert.deepEqual(await rowsOf("?q=more%20words"), [6]);
    assert.deepEqual(await rowsOf("?q=bravo&failed=a"), [1]);
    assert.deepEqual(await rowsOf("?q=golf&differ=1"), []);
  });

  it("a file against a job: each side named as it was given", async () => {
    const { status, body } = await c.json(`/api/compare/jobs/${fixture.job}/files/1/rows?differ=1`);
    assert.equal(status, 200);
    assert.equal(body.a.title, `job ${fixture.job}: a.csv`);
    assert.equal(body.b.title, "b.csv");
    assert.deepEqual(body.rows.map((r: { n: number }) => r.n), [1, 2, 4, 6]);
  });

  it("not the same dataset: rows fewer and a row whose input differs, the rest still compared", async () => {
    const { body } = await c.json("/api/compare/files/0/files/2/rows");
    assert.deepEqual([body.a.rows, body.b.rows], [8, 6]);
    assert.equal(body.summary.compared, 6);
    assert.equal(body.summary.inputDiffers, 1);
    assert.equal(body.summary.firstInputDiffers, 2);
    assert.equal(body.matched, 8);
    const [third, seventh] = [body.rows[2], body.rows[6]];
    assert.equal(third.inputDiffers, true);
    assert.equal(body.rows[0].inputDiffers, false);
    assert.deepEqual([seventh.a.fields.text, seventh.b, seventh.differ], ["foxtrot", null, null]);
    // Rows only one side has are not among the ones whose answers differ.
    assert.ok(
      !(await c.json("/api/compare/files/0/files/2/rows?differ=1")).body.rows.some(
        (r: { n: number }) => r.n >= 6,
      ),
    );
  });

  it("a corrupt row: failed on its side, its input not taken for another dataset's", async () => {
    const { body } = await c.json("/api/compare/files/0/files/3/rows?failed=b");
    assert.deepEqual(body.rows.map((r: { n: number }) => r.n), [3]);
    assert.equal(body.rows[0].b.status, "corrupt");
    assert.equal(body.rows[0].inputDiffers, false);
    assert.deepEqual([body.summary.failedBOnly, body.summary.inputDiffers], [1, 0]);
  });

  it("one row: both rows whole, the diff of the full answers", async () => {
    const { status, body } = await c.json("/api/compare/files/0/files/1/rows/2");
    assert.equal(status, 200);
    assert.equal(body.row.n, 2);
    assert.equal(body.row.a.fields.llm_response, "charlie");
    assert.equal(body.row.b.fields.llm_response, "charlie quickly");
    assert.deepEqual(sides(body.row.diff), ["charlie", "charlie quickly"]);
    const only = (await c.json("/api/compare/files/0/files/2/rows/7")).body.row;
    assert.deepEqual([only.a.fields.text, only.b], ["golf", null]);
  });

  it("a file or job not given, a row that is not there, a bad filter: JSON errors", async () => {
    for (
      const [path, status, error] of [
        ["/api/compare/files/0/files/9/rows", 404, /no output file 9 was given/],
        ["/api/compare/files/x/files/1/rows", 404, /no output file x was given/],
        ["/api/compare/jobs/nope/files/1/rows", 404, /nope/],
        ["/api/compare/paths/etc/files/1/rows", 404, /files\/N, jobs\/ID or runs\/ID on each side/],
        ["/api/compare/files/0/files/1/rows/99", 404, /no row 99 in a\.csv nor in b\.csv/],
        ["/api/compare/files/0/files/1/rows/x", 404, /no row x/],
        ["/api/compare/files/0/files/1/rows?failed=maybe", 400, /failed must be one of any/],
        ["/api/compare/files/0/files/1/rows?limit=9999", 400, /limit must be/],
      ] as const
    ) {
      const { status: got, body } = await c.json(path);
      assert.equal(got, status, path);
      assert.match(body.error, error, path);
    }
  });

  it("the guard applies: no token, a foreign Origin, a method that would change something", async () => {
    assert.equal((await fetch(`${c.base}${AB}`)).status, 401);
    const foreign = await c.get(AB, { origin: "http://evil.example" });
    assert.equal(foreign.status, 403);
    const post = await fetch(`${c.base}${AB}`, {
      method: "POST",
      headers: { "x-loom-token": c.token },
    });
    assert.equal(post.status, 405);
    await Promise.all([foreign.body?.cancel(), post.body?.cancel()]);
  });
});
