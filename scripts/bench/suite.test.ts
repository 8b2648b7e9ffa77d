/**
 * The benchmark suite must keep working (it is how the speed targets are checked): a tiny run on
 * the current runtime prints every command with a ratio and a peak.
 */
import { spawnSync } from "node:child_process";
import { test } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import { runtimeName } from "../../core/base/runtime.ts";
import { repoRoot } from "../../core/test-support/paths.ts";

test("npm run bench: every command measured against the baseline", () => {
  const runtime = runtimeName() === "deno" ? "deno" : "node";
  const args = ["--rows", "300", "--reps", "1", "--runtime", runtime];
  const command = runtime === "deno"
    ? [process.execPath, ["run", "-A", "scripts/bench/suite.ts", ...args]] as const
    : [process.execPath, ["scripts/bench/suite.ts", ...args]] as const;
  const result = spawnSync(command[0], command[1], { cwd: repoRoot(), encoding: "utf8" });
  assert.equal(result.status, 0, result.stderr);
  const names = ["baseline", "sync run", "batch submit", "batch fetch", "tokens", "plan"];
  for (const name of [...names, "batch round trip"]) {
    const line = result.stdout.split("\n").find((l) => l.trim().startsWith(name + " "));
    assert.ok(line, `no line for ${name} in:\n${result.stdout}`);
    const [, ratio, peak] = /([\d.]+)×\s+peak\s+(\d+) MiB/.exec(line) ?? [];
    assert.ok(Number(ratio) > 0 && Number(peak) > 10, line);
  }
  assert.match(result.stdout, new RegExp(`${runtime}, 300 rows`));
});
