/**
 * `loom view` over HTTP: a real server on 127.0.0.1 and fetch, for every route and every refusal
 * (a foreign Host, a foreign Origin, no token or a wrong one, a method that would change
 * something), and no key in any answer.
 */
import assert from "node:assert/strict";
import { request } from "node:http";
import { after, before, describe, it } from "node:test";
import type { Viewer } from "../commands/view.ts";
import {
  client,
  VIEW_SECRETS,
  viewerOn,
  type ViewFixture,
  viewFixture,
} from "../../core/test-support/view.ts";

/** A GET with a Host header of our choosing (fetch does not let one set it). */
function getWithHost(port: number, path: string, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path, headers: { host } }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode!));
    });
    req.on("error", reject);
    req.end();
  });
}

describe("loom view over HTTP", () => {
  let fixture: ViewFixture;
  let viewer: Viewer;
  let c: ReturnType<typeof client>;
  before(async () => {
    fixture = await viewFixture();
    viewer = await viewerOn(fixture, ["out.csv"]);
    c = client(viewer);
  });
  after(() => viewer?.stop());

  it("listens on 127.0.0.1 and prints a URL with a token opening the given file's rows", () => {
    assert.match(viewer.url, /^http:\/\/127\.0\.0\.1:\d+\/\?token=[\w-]{22}#\/files\/0$/);
  });

  it("/api/jobs: each job with its batches, progress, rows answered and failed", async () => {
    const { status, body } = await c.json("/api/jobs");
    assert.equal(status, 200);
    assert.match(body.store, /state\.db$/);
    assert.deepEqual(body.files.map((f: { path: string; format: string }) => [f.path, f.format]), [[
      "out.csv",
      "csv",
    ]]);
    const byId = new Map(body.jobs.map((j: { id: string }) => [j.id, j]));
    const merged = byId.get(fixture.merged) as Record<string, unknown>;
    assert.equal(merged.status, "merged");
    assert.equal(merged.active, false);
    assert.equal(merged.outputReady, true);
    assert.deepEqual([merged.answered, merged.failed, merged.rows], [4, 2, 6]);
    const pending = byId.get(fixture.pending) as {
      active: boolean;
      outputReady: boolean;
      shards: { n: number; phase: string; state: string; requests: number }[];
    };
    assert.equal(pending.active, true);
    assert.equal(pending.outputReady, false);
    assert.deepEqual(
      pending.shards.map((s) => [s.n, s.phase, s.state, s.requests]),
      [[1, "submitted", "validating", 2], [2, "submitted", "validating", 2], [
        3,
        "submitted",
        "validating",
        2,
      ]],
    );
  });

  it("/ and /assets: the page, its script and style; nothing else is served from there", async () => {
    const page = await c.get("/");
    assert.equal(page.status, 200);
    assert.match(page.headers.get("content-type")!, /^text\/html/);
    assert.match(await page.text(), /<script type="module" src="\/assets\/app.js">/);
    for (const [name, type] of [["app.js", /^text\/javascript/], ["app.css", /^text\/css/]]) {
      const asset = await c.get(`/assets/${name}`);
      assert.equal(asset.status, 200);
      assert.match(asset.headers.get("content-type")!, type as RegExp);
      assert.ok((await asset.text()).length > 500);
    }
    for (const path of ["/assets/view.ts", "/assets/..%2fapp.ts", "/nothing"]) {
      assert.equal((await c.get(path)).status, 404, path);
    }
  });

  it("/api/files/N/rows: a page, with counts, columns and finish reasons", async () => {
    // A page reaching past the end waits for the whole file.
    const { status, body } = await c.json("/api/files/0/rows");
    assert.equal(status, 200);
    assert.equal(body.indexing, false);
    assert.deepEqual([body.indexed, body.matched, body.rows.length], [6, 6, 6]);
    assert.deepEqual(body.counts, { ok: 4, error: 2, corrupt: 0 });
    assert.deepEqual(body.columns.slice(0, 4), ["id", "text", "llm_response", "llm_error"]);
    assert.deepEqual(body.finishReasons, ["stop"]);
    assert.deepEqual(body.rows.map((r: { n: number; status: string }) => [r.n, r.status]), [
      [0, "ok"],
      [1, "error"],
      [2, "ok"],
      [3, "ok"],
      [4, "error"],
      [5, "ok"],
    ]);
    assert.match(body.rows[1].fields.llm_error, /boom/);
    const first = await c.json("/api/files/0/rows?limit=4");
    assert.deepEqual(first.body.rows.map((r: { n: number }) => r.n), [0, 1, 2, 3]);
    const next = await c.json("/api/files/0/rows?limit=4&offset=4");
    assert.deepEqual(next.body.rows.map((r: { n: number }) => r.n), [4, 5]);
  });

  it("filters: failed only, text, finish reason; sorts either way", async () => {
    const rows = async (query: string) =>
      (await c.json(`/api/files/0/rows?${query}`)).body.rows.map((r: { n: number }) => r.n);
    assert.deepEqual(await rows("failed=1"), [1, 4]);
    assert.deepEqual(await rows("q=CHARLIE"), [2]);
    assert.deepEqual(await rows("q=boom&failed=1"), [1, 4]);
    assert.deepEqual(await rows("finish=stop"), [0, 2, 3, 5]);
    assert.deepEqual(await rows("finish="), [1, 4], "the rows with no finish reason");
    assert.deepEqual(await rows("order=desc&limit=2"), [5, 4]);
    assert.deepEqual(await rows("sort=status&limit=3"), [0, 2, 3]);
    assert.deepEqual(await rows("sort=status&order=desc&limit=2"), [4, 1]);
    const sorted = (await c.json("/api/files/0/rows?sort=output_tokens&order=desc")).body.rows;
    const tokens = sorted.map((r: { fields: Record<string, string> }) =>
      Number(r.fields.llm_output_tokens || -1)
    );
    assert.deepEqual(tokens, [...tokens].sort((a, b) => b - a));
    const failed = (await c.json("/api/files/0/rows?failed=1")).body;
    assert.equal(failed.matched, 2);
  });

  it("/api/files/N/rows/K: the whole row; a row or file that does not exist is a 404", async () => {
    const { status, body } = await c.json("/api/files/0/rows/4");
    assert.equal(status, 200);
    assert.equal(body.row.status, "error");
    assert.equal(body.row.fields.text, "boom echo");
    for (const path of ["/api/files/0/rows/6", "/api/files/0/rows/x", "/api/files/1/rows"]) {
      const missing = await c.json(path);
      assert.equal(missing.status, 404, path);
      assert.match(missing.body.error, /^no /);
    }
  });

  it("/api/jobs/ID/rows: a job's output; one not merged yet is a 409, an unknown job a 404", async () => {
    const { status, body } = await c.json(`/api/jobs/${fixture.merged}/rows?failed=1`);
    assert.equal(status, 200);
    assert.equal(body.title, `job ${fixture.merged}: out.csv`);
    assert.equal(body.matched, 2);
    const row = await c.json(`/api/jobs/${fixture.merged}/rows/0`);
    assert.equal(row.body.row.fields.text, "alpha");
    const pending = await c.json(`/api/jobs/${fixture.pending}/rows`);
    assert.equal(pending.status, 409);
    // Each row carries the request the job built for it: the page and the row's detail.
    assert.deepEqual(body.rows.map((r: { request: { prompt: string } }) => r.request.prompt), [
      "boom bravo",
      "boom echo",
    ]);
    assert.deepEqual(row.body.row.request, {
      model: "echo-1",
      prompt: "alpha",
      params: {},
      schema: false,
    });
    const file = await c.json("/api/files/0/rows");
    assert.ok(file.body.rows.every((r: object) => !("request" in r)), "a file has no job");
    assert.match(pending.body.error, /has no output yet \(later\.csv\): loom fetch writes it/);
    const unknown = await c.json("/api/jobs/20200101-000000/rows");
    assert.equal(unknown.status, 404);
    assert.match(unknown.body.error, /no batch job "20200101-000000"/);
  });

  it("a bad query is a 400 naming the parameter", async () => {
    for (
      const [query, pattern] of [
        ["sort=price", /sort by one of row, status/],
        ["offset=-1", /offset must be a whole number/],
        ["limit=5000", /limit must be a whole number from 0 to 500/],
      ] as const
    ) {
      const { status, body } = await c.json(`/api/files/0/rows?${query}`);
      assert.equal(status, 400, query);
      assert.match(body.error, pattern);
    }
  });

  it("refuses a request without the token, or with another one", async () => {
    for (const headers of [{}, { "x-loom-token": "not-the-token" }] as Record<string, string>[]) {
      const response = await fetch(`${c.base}/api/jobs`, { headers });
      assert.equal(response.status, 401);
      assert.match(await response.text(), /open the URL loom view printed/);
    }
    const wrong = await fetch(`${c.base}/?token=${c.token.slice(1)}x`);
    assert.equal(wrong.status, 401);
  });

  it("the token in the URL sets a cookie that lets the page's own requests in", async () => {
    const page = await fetch(`${c.base}/?token=${c.token}`);
    assert.equal(page.status, 200);
    const cookie = page.headers.get("set-cookie")!;
    assert.match(cookie, new RegExp(`^loom_view_${viewer.port}=${c.token};`));
    assert.match(cookie, /HttpOnly/);
    assert.match(cookie, /SameSite=Strict/);
    const api = await fetch(`${c.base}/api/jobs`, {
      headers: { cookie: cookie.split(";")[0] },
    });
    assert.equal(api.status, 200);
  });

  it("refuses a Host that is not its own (DNS rebinding); 127.0.0.1 and localhost pass", async () => {
    const path = `/api/jobs?token=${c.token}`;
    assert.equal(await getWithHost(viewer.port, path, "attacker.example"), 403);
    assert.equal(await getWithHost(viewer.port, path, `attacker.example:${viewer.port}`), 403);
    assert.equal(await getWithHost(viewer.port, path, `127.0.0.1:${viewer.port + 1}`), 403);
    assert.equal(await getWithHost(viewer.port, path, `127.0.0.1:${viewer.port}`), 200);
    assert.equal(await getWithHost(viewer.port, path, `localhost:${viewer.port}`), 200);
  });

  it("refuses a foreign Origin; its own passes", async () => {
    for (
      const origin of ["http://attacker.example", `http://127.0.0.1:${viewer.port + 1}`, "null"]
    ) {
      const response = await c.get("/api/jobs", { origin });
      assert.equal(response.status, 403, origin);
      assert.match(await response.text(), /refused: requests from/);
    }
    assert.equal(
      (await c.get("/api/jobs", { origin: `http://localhost:${viewer.port}` })).status,
      200,
    );
  });

  it("only reads: any other method is refused", async () => {
    for (const method of ["POST", "PUT", "DELETE", "PATCH"]) {
      const response = await fetch(`${c.base}/api/jobs`, {
        method,
        headers: { "x-loom-token": c.token },
      });
      assert.equal(response.status, 405, method);
    }
  });

  it("answers carry headers that keep the token and the page to this tab", async () => {
    const response = await c.get("/api/jobs");
    assert.equal(response.headers.get("referrer-policy"), "no-referrer");
    assert.equal(response.headers.get("x-frame-options"), "DENY");
    assert.equal(response.headers.get("cache-control"), "no-store");
    assert.match(response.headers.get("content-security-policy")!, /default-src 'self'/);
  });

  it("never shows an API key given by the environment or --api-key", async () => {
    const paths = [
      "/",
      "/assets/app.js",
      "/api/jobs",
      "/api/files/0/rows",
      "/api/files/0/rows/1",
      `/api/jobs/${fixture.merged}/rows`,
      `/api/jobs/${fixture.merged}/rows/4`,
      `/api/jobs/${fixture.pending}/rows`,
    ];
    for (const path of paths) {
      const response = await c.get(path);
      const text = [...response.headers].join("\n") + (await response.text());
      for (const secret of Object.values(VIEW_SECRETS)) {
        assert.ok(!text.includes(secret), `${path} shows a key`);
        assert.ok(!text.includes(secret.slice(3, 15)), `${path} shows part of a key`);
      }
    }
  });
});
