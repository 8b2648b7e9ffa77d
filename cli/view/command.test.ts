/**
 * `loom view` as a user runs it: it prints the URL, serves until Ctrl-C and then stops cleanly;
 * bad input is one line naming it and what to do, exit 2.
 */
import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer } from "node:net";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { runtimeName } from "../../core/base/runtime.ts";
import { type CliResult, runCli, spawnCli } from "../../core/test-support/run-cli.ts";
import { tempDir } from "../../core/test-support/temp.ts";

function setup() {
  const dir = tempDir("loom-view-cli-");
  writeFileSync(join(dir, "out.jsonl"), '{"id":1,"llm_response":"hi","llm_error":null}\n');
  return { dir, env: { LOOM_HOME: join(dir, "home") } };
}

/**
 * Exit 0 after Ctrl-C. Deno, as the parent, reports a child's exit after kill(SIGINT) as death by
 * that signal (see cli.test.ts); the message says the viewer stopped itself either way.
 */
function stoppedCleanly(result: CliResult): void {
  if (result.signal === "SIGINT" && runtimeName() === "deno") assert.equal(result.code, null);
  else assert.equal(result.code, 0, result.stderr);
  assert.match(result.stderr, /viewer stopped \(SIGINT\)\n$/);
}

describe("loom view on the command line", () => {
  it("prints the URL, serves the page, and Ctrl-C stops it with exit 0", async () => {
    const t = setup();
    const { child, done } = spawnCli(["view", "out.jsonl"], { cwd: t.dir, env: t.env });
    let out = "";
    child.stdout!.on("data", (d) => (out += d));
    while (!out.includes("\n")) await once(child.stdout!, "data");
    const url = new URL(out.trim());
    assert.equal(url.hostname, "127.0.0.1");
    assert.equal(url.hash, "#/files/0");
    const page = await fetch(url);
    assert.equal(page.status, 200);
    const rows = await (await fetch(new URL("/api/files/0/rows", url), {
      headers: { "x-loom-token": url.searchParams.get("token")! },
    })).json() as { rows: { fields: { llm_response: string } }[] };
    assert.equal(rows.rows[0].fields.llm_response, "hi");
    child.kill("SIGINT");
    const result = await done;
    stoppedCleanly(result);
    assert.match(result.stderr, /viewing on 127\.0\.0\.1:\d+ .*Ctrl-C stops it/);
    assert.match(result.stderr, /viewer stopped \(SIGINT\)/);
    await assert.rejects(fetch(new URL("/", url)), "nothing listens any more");
  });

  it("a new start has a new token", async () => {
    const t = setup();
    const urls: string[] = [];
    for (let i = 0; i < 2; i++) {
      const { child, done } = spawnCli(["view"], { cwd: t.dir, env: t.env });
      let out = "";
      child.stdout!.on("data", (d) => (out += d));
      while (!out.includes("\n")) await once(child.stdout!, "data");
      urls.push(out.trim());
      child.kill("SIGINT");
      stoppedCleanly(await done);
    }
    const tokens = urls.map((u) => new URL(u).searchParams.get("token"));
    assert.notEqual(tokens[0], tokens[1]);
    assert.equal(new URL(urls[0]).hash, "", "no target: the jobs page");
  });

  it("bad input: one line naming it and what to do, exit 2", async () => {
    const t = setup();
    writeFileSync(join(t.dir, "notes.txt"), "x");
    const busy = createServer().listen(0, "127.0.0.1");
    await once(busy, "listening");
    const port = (busy.address() as { port: number }).port;
    try {
      for (
        const [args, env, pattern] of [
          [
            ["view", "missing.csv"],
            {},
            /^loom: output file not found: missing\.csv; give the path/,
          ],
          [
            ["view", "20200101-abcdef"],
            {},
            /^loom: no batch job "20200101-abcdef" \(see loom list/,
          ],
          [["view", "notes.txt"], {}, /^loom: notes\.txt: loom view cannot tell its format/],
          [["view", "home"], {}, /^loom: home is a directory, not an output file/],
          [
            ["view", "--port", String(port)],
            {},
            new RegExp(
              `^loom: port ${port} on 127\\.0\\.0\\.1 is in use by another program: pick another with --port`,
            ),
          ],
          [["view", "--port", "http"], {}, /^loom: --port takes a port number/],
          [
            ["view"],
            { LOOM_STATE: "postgres://u:pw-secret@127.0.0.1:1/db" },
            /^loom: cannot reach the PostgreSQL store at postgres:\/\/u:\*\*\*@127\.0\.0\.1:1\/db/,
          ],
        ] as const
      ) {
        const result = await runCli([...args], { cwd: t.dir, env: { ...t.env, ...env } });
        assert.equal(result.code, 2, `${args.join(" ")}: ${result.stderr}`);
        assert.match(result.stderr, pattern);
        assert.equal(result.stderr.trim().split("\n").length, 1, result.stderr);
        assert.equal(result.stdout, "");
        assert.ok(!result.stderr.includes("pw-secret"));
      }
    } finally {
      busy.close();
    }
  });
});
