/**
 * `loom view --actions` over HTTP: read-only without the flag; with it, every refusal (no header
 * token, a foreign Origin, no confirmation, a job busy elsewhere), then Fetch, Cancel and Retry
 * doing what `loom fetch`, `cancel` and `retry` do, a retry never submitted twice, and no key in
 * any answer.
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { Viewer } from "../commands/view.ts";
import { JobStore } from "../../core/batch/store.ts";
import { loomHome } from "../../core/base/runtime.ts";
import { Registry } from "../../core/plugins/registry.ts";
import { openStore } from "../../core/state/open.ts";
import {
  client,
  VIEW_SECRETS,
  viewerOn,
  type ViewFixture,
  viewFixture,
} from "../../core/test-support/view.ts";
import { actionViewerOn, submitEchoJob } from "../../core/test-support/view-actions.ts";
import { runCli } from "../../core/test-support/run-cli.ts";
import { tempDir } from "../../core/test-support/temp.ts";
import { startEmulator } from "../../emulator/mod.ts";

describe("loom view --actions over HTTP", () => {
  let fixture: ViewFixture;
  /** Ends after one status check: the first fetch finds it running, the second merges it. */
  let soon: string;
  let viewer: Viewer;
  let c: ReturnType<typeof client>;
  /** Every answer's text, checked for keys at the end. */
  const seen: string[] = [];

  const post = async (
    id: string,
    action: string,
    { body = '{"confirm":true}', headers = {} as Record<string, string> } = {},
  ) => {
    const response = await fetch(`${c.base}/api/jobs/${id}/actions/${action}`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-loom-token": c.token, ...headers },
      body,
    });
    const text = await response.text();
    seen.push(text);
    // deno-lint-ignore no-explicit-any
    let json: any;
    try {
      json = JSON.parse(text);
    } catch { /* a guard's refusal is plain text */ }
    return { status: response.status, text, json };
  };
  const jobs = async () => {
    const { status, body } = await c.json("/api/jobs");
    assert.equal(status, 200);
    seen.push(JSON.stringify(body));
    return body;
  };
  // deno-lint-ignore no-explicit-any
  const job = async (id: string): Promise<any> =>
    (await jobs()).jobs.find((j: { id: string }) => j.id === id);

  before(async () => {
    fixture = await viewFixture();
    soon = await submitEchoJob(fixture, "soon", 1);
    viewer = await actionViewerOn(fixture);
    c = client(viewer);
  });
  after(() => viewer?.stop());

  it("without --actions: the page offers none and a POST is refused with 405", async () => {
    const readOnly = await viewerOn(fixture);
    try {
      const r = client(readOnly);
      assert.equal((await r.json("/api/jobs")).body.actions, false);
      const response = await fetch(`${r.base}/api/jobs/${soon}/actions/fetch`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-loom-token": r.token },
        body: '{"confirm":true}',
      });
      assert.equal(response.status, 405);
      assert.match(await response.text(), /only reads \(loom view --actions allows/);
      assert.equal((await r.get("/api/actions")).status, 404);
    } finally {
      await readOnly.stop();
    }
  });

  it("with --actions: the page is told so and gets the token for its header", async () => {
    assert.equal((await jobs()).actions, true);
    const { status, body } = await c.json("/api/actions");
    assert.equal(status, 200);
    assert.deepEqual(body, { actions: ["fetch", "cancel", "retry"], token: c.token });
  });

  it("refuses an action without the token in X-Loom-Token (the cookie or the URL is not enough)", async () => {
    const noHeader = (extra: RequestInit["headers"], query = "") =>
      fetch(`${c.base}/api/jobs/${soon}/actions/fetch${query}`, {
        method: "POST",
        headers: { "content-type": "application/json", ...extra },
        body: '{"confirm":true}',
      });
    const byCookie = await noHeader({ cookie: `loom_view_${viewer.port}=${c.token}` });
    assert.equal(byCookie.status, 403);
    assert.match(await byCookie.text(), /X-Loom-Token header/);
    assert.equal((await noHeader({}, `?token=${c.token}`)).status, 403);
    assert.equal((await post(soon, "fetch", { headers: { "x-loom-token": "wrong" } })).status, 403);
    assert.equal((await job(soon)).status, "2 validating", "nothing was done");
  });

  it("refuses a foreign Origin, and a method other than POST", async () => {
    for (
      const origin of ["http://attacker.example", "null", `http://127.0.0.1:${viewer.port + 1}`]
    ) {
      assert.equal((await post(soon, "fetch", { headers: { origin } })).status, 403, origin);
    }
    const put = await fetch(`${c.base}/api/jobs/${soon}/actions/fetch`, {
      method: "PUT",
      headers: { "content-type": "application/json", "x-loom-token": c.token },
      body: '{"confirm":true}',
    });
    assert.equal(put.status, 405);
    assert.equal((await job(soon)).status, "2 validating", "nothing was done");
  });

  it("refuses an action not confirmed, not JSON, unknown, or on a job that does not exist", async () => {
    for (const body of ["{}", '{"confirm":"yes"}', '{"confirm":false}', "confirm"]) {
      const r = await post(soon, "fetch", { body });
      assert.equal(r.status, 400, body);
      assert.match(r.json.error, /must be confirmed: send \{"confirm": true\}/);
    }
    const form = await post(soon, "fetch", {
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: "confirm=true",
    });
    assert.equal(form.status, 400);
    assert.match(form.json.error, /takes a JSON body/);
    const unknown = await post(soon, "delete");
    assert.equal(unknown.status, 404);
    assert.match(unknown.json.error, /no action "delete": fetch, cancel or retry/);
    const missing = await post("nosuchjob", "fetch");
    assert.equal(missing.status, 404);
    assert.match(missing.json.error, /no batch job "nosuchjob"/);
    assert.equal((await job(soon)).status, "2 validating", "nothing was done");
  });

  it("Fetch: batches still running are only checked; once ended they are merged, and the job stays", async () => {
    const first = await post(soon, "fetch", { headers: { origin: c.base } });
    assert.equal(first.status, 200, first.text);
    assert.equal(first.json.merged, false);
    assert.match(first.json.message, /have not all ended \(2 in_progress\); nothing was merged/);
    const second = await post(soon, "fetch");
    assert.equal(second.status, 200, second.text);
    assert.deepEqual(
      [second.json.merged, second.json.rows, second.json.answered, second.json.failed],
      [true, 6, 6, 0],
    );
    assert.match(
      second.json.message,
      /merged job \S+ into soon\.csv: 6 rows, 6 answered, 0 failed/,
    );
    const shown = await job(soon);
    assert.deepEqual([shown.status, shown.outputReady, shown.answered], ["merged", true, 6]);
    const rows = await c.json(`/api/jobs/${soon}/rows`);
    assert.equal(rows.status, 200);
    assert.equal(rows.body.rows.length, 6);
    const again = await post(soon, "fetch");
    assert.equal(again.json.message, `job ${soon} was already merged into soon.csv`);
  });

  it("Cancel: asks the provider to cancel every running batch; a Fetch then merges them as failed", async () => {
    const r = await post(fixture.pending, "cancel");
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.cancelled, 3);
    assert.deepEqual(r.json.notCancelled, []);
    assert.equal(r.json.status, "3 cancelled");
    assert.match(r.json.message, /cancellation requested for job \S+ \(3 cancelled\)/);
    const fetched = await post(fixture.pending, "fetch");
    assert.deepEqual([fetched.json.merged, fetched.json.failed], [true, 6]);
  });

  it("Retry: submits the failed rows once; a second click or tab at the same time is refused", async () => {
    const before = (await job(fixture.merged)).shards.length;
    const [a, b] = await Promise.all([
      post(fixture.merged, "retry"),
      post(fixture.merged, "retry"),
    ]);
    const ok = [a, b].filter((r) => r.status === 200);
    const refused = [a, b].filter((r) => r.status === 409);
    assert.equal(ok.length, 1, `${a.text} ${b.text}`);
    assert.equal(refused.length, 1, `${a.text} ${b.text}`);
    assert.equal(ok[0].json.retried, 2);
    assert.match(ok[0].json.message, /submitted 2 row\(s\) of job \S+ again as new batches/);
    assert.match(refused[0].json.error, /already running|being worked on/);
    // Later, the retry's batches are not fetched yet: a third is refused by the core's own rule.
    const third = await post(fixture.merged, "retry");
    assert.equal(third.status, 409);
    assert.match(third.json.error, /results are not fetched yet; run loom fetch/);
    const shown = await job(fixture.merged);
    assert.equal(shown.shards.length, before + 1, "one retry batch, not two");
    assert.equal(shown.active, true);
  });

  it("a job another Loom holds (its lease) is refused with 409, and left as it was", async () => {
    const storage = await openStore(new Registry(), {
      env: fixture.env,
      home: loomHome(fixture.env),
    }, () => {});
    try {
      const other = new JobStore(storage, fixture.env, fixture.dir);
      const r = await other.withLockedJob(fixture.merged, () => post(fixture.merged, "fetch"));
      assert.equal(r.status, 409);
      assert.match(r.json.error, /job \S+ is being worked on by another Loom/);
    } finally {
      await storage.close();
    }
  });

  it("no answer holds a key (given by --api-key or the environment)", () => {
    assert.ok(seen.length > 20);
    for (const text of seen) {
      for (const secret of Object.values(VIEW_SECRETS)) {
        assert.ok(!text.includes(secret), `an answer shows a key: ${text}`);
        assert.ok(!text.includes(secret.slice(3, 15)), `an answer shows part of a key: ${text}`);
      }
    }
  });
});

describe("loom view --api-key", () => {
  it("is refused without --actions (a read-only viewer sends nothing), exit 2", async () => {
    const result = await runCli(["view", "--api-key", VIEW_SECRETS.flag], {
      env: { LOOM_HOME: tempDir("loom-view-key-") },
    });
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, /--api-key is for --actions/);
    assert.ok(!(result.stdout + result.stderr).includes(VIEW_SECRETS.flag));
  });
});

describe("loom view --actions: a provider that quotes the key back", () => {
  let fixture: ViewFixture;
  let emulator: Awaited<ReturnType<typeof startEmulator>>;
  let viewer: Viewer;
  before(async () => {
    fixture = await viewFixture();
    // The key the viewer is given (--api-key) is the only one the emulator takes; it refuses to
    // cancel, quoting that key in its reason, and refuses status checks of the job's batches
    // once cancelled, the same way, with a status that stops the command.
    emulator = await startEmulator({
      provider: "openai",
      apiKey: VIEW_SECRETS.flag,
      faults: [{
        match: { method: "POST", path: "/cancel" },
        action: { kind: "status", status: 400, message: `no cancel for ${VIEW_SECRETS.flag}` },
      }],
    });
    for (const name of ["quoted", "quoted-cli"]) {
      writeFileSync(
        join(fixture.dir, `${name}.yaml`),
        "dataset: { path: in.csv }\nprompt: { column: text }\nprovider: openai\nmodel: gpt-4o-mini\n" +
          `provider_options: { base_url: "${emulator.baseURL}" }\noutput: { path: ${name}.csv }\n`,
      );
    }
    viewer = await actionViewerOn(fixture);
  });
  after(async () => {
    await viewer?.stop();
    await emulator?.stop();
  });

  const submit = async (name: string) => {
    const run = await runCli(["run", `${name}.yaml`, "--api-key", VIEW_SECRETS.flag], {
      cwd: fixture.dir,
      env: fixture.env,
    });
    const id = /submitted job (\S+):/.exec(run.stdout)?.[1];
    assert.ok(id, run.stderr);
    return id;
  };

  it("a cancel the provider refuses: its reason is shown, the key in it redacted", async () => {
    const id = await submit("quoted");
    const c = client(viewer);
    const response = await fetch(`${c.base}/api/jobs/${id}/actions/cancel`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-loom-token": c.token },
      body: '{"confirm":true}',
    });
    const text = await response.text();
    assert.equal(response.status, 200, text);
    const body = JSON.parse(text);
    assert.equal(body.notCancelled.length, 1, text);
    assert.match(body.notCancelled[0].error, /no cancel for \[redacted\]/);
    assert.match(body.message, /1 batch\(es\) could not be cancelled/);
    const jobs = await (await c.get("/api/jobs")).text();
    // The same through `loom cancel`: the core scrubs the reason (the viewer only makes sure).
    const cli = await runCli([
      "cancel",
      await submit("quoted-cli"),
      "--json",
      "--api-key",
      VIEW_SECRETS.flag,
    ], {
      cwd: fixture.dir,
      env: fixture.env,
    });
    assert.match(cli.stdout, /no cancel for \[redacted\]/, cli.stderr);
    for (const shown of [text, jobs, cli.stdout + cli.stderr]) {
      for (const secret of Object.values(VIEW_SECRETS)) {
        assert.ok(!shown.includes(secret.slice(3, 15)), `an answer shows a key: ${shown}`);
      }
    }
  });
});
