/**
 * `loom list --runs`: the sync runs recorded in the state store, as a table and as JSON lines,
 * through the real CLI with the offline echo provider.
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { runCli } from "../core/test-support/run-cli.ts";
import { tempDir } from "../core/test-support/temp.ts";

describe("loom list --runs", () => {
  it("lists each recorded sync run, oldest first; says so when there is none", async () => {
    const dir = tempDir("loom-list-runs-");
    writeFileSync(join(dir, "in.csv"), "text\nalpha\nbravo\ncharlie\n");
    const env = { LOOM_HOME: join(dir, "home") };
    const none = await runCli(["list", "--runs"], { cwd: dir, env });
    assert.equal(none.code, 0, none.stderr);
    assert.equal(none.stdout, "no sync runs recorded\n");
    const run = (out: string) =>
      runCli(
        ["run", "-f", "in.csv", "-c", "text", "-p", "echo", "-m", "m", "--sync", "-o", out, "-q"],
        { cwd: dir, env },
      );
    assert.equal((await run("one.csv")).code, 0);
    assert.equal((await run("two.csv")).code, 0);

    const table = await runCli(["list", "--runs"], { cwd: dir, env });
    assert.equal(table.code, 0, table.stderr);
    const lines = table.stdout.trimEnd().split("\n");
    assert.match(lines[0], /^ID\s+PROVIDER\s+MODEL\s+INPUT\s+STATUS\s+ROWS\s+COST\s+AGE$/);
    assert.equal(lines.length, 3);
    for (const line of lines.slice(1)) {
      assert.match(
        line,
        /^run-\d{8}-[0-9a-f]{6}\s+echo\s+m\s+in\.csv\s+finished\s+3 ok, 0 failed of 3\s+\d+s$/,
      );
    }

    const json = await runCli(["list", "--runs", "--json"], { cwd: dir, env });
    assert.equal(json.code, 0, json.stderr);
    const runs = json.stdout.trim().split("\n").map((l) => JSON.parse(l));
    assert.deepEqual(runs.map((r) => [r.output, r.answered, r.cached]), [
      ["one.csv", 3, 0],
      ["two.csv", 3, 3],
    ]);
    assert.equal(runs[0].perMinute.reduce((a: number, b: number) => a + b, 0), 3);
  });
});
