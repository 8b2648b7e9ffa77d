/**
 * The viewer's scratch folders: one killed outright leaves its folder behind, and the next start
 * removes it; folders of running viewers, or not made by a viewer, are kept.
 */
import assert from "node:assert/strict";
import { once } from "node:events";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { describe, it } from "node:test";
import { spawnCli } from "../../core/test-support/run-cli.ts";
import { tempDir } from "../../core/test-support/temp.ts";
import { makeSpillFolder, removeStaleSpills } from "./spill.ts";

/** A pid no process has: past Linux's largest (4194304). */
const DEAD_PID = 4_999_999;

describe("loom view's scratch folders", () => {
  it("a new folder names its process; the next start removes only dead viewers' folders", async () => {
    const parent = tempDir("loom-spill-");
    const mine = await makeSpillFolder(parent);
    assert.equal(readFileSync(join(mine, "pid"), "utf8"), String(process.pid));
    const dead = join(parent, "loom-view-dead");
    mkdirSync(dead);
    writeFileSync(join(dead, "pid"), String(DEAD_PID));
    writeFileSync(join(dead, "0.rows"), "spilled rows");
    const foreign = join(parent, "loom-view-foreign");
    mkdirSync(foreign);
    const other = join(parent, "not-loom");
    mkdirSync(other);
    writeFileSync(join(other, "pid"), String(DEAD_PID));

    assert.deepEqual(await removeStaleSpills(parent), [dead]);
    assert.ok(!existsSync(dead), "the dead viewer's folder is gone");
    assert.ok(existsSync(mine), "a running viewer's folder stays");
    assert.ok(existsSync(foreign), "a folder without a pid file is not ours to remove");
    assert.ok(existsSync(other), "other folders are never touched");
  });

  it("a viewer killed with SIGKILL leaves its folder; the next viewer removes it", async () => {
    const dir = tempDir("loom-view-kill-");
    const tmp = join(dir, "tmp");
    mkdirSync(tmp);
    writeFileSync(join(dir, "out.jsonl"), '{"id":1,"llm_response":"hi","llm_error":null}\n');
    const env = { LOOM_HOME: join(dir, "home"), TMPDIR: tmp };
    const started: ReturnType<typeof spawnCli>[] = [];
    const start = async () => {
      const viewer = spawnCli(["view", "out.jsonl"], { cwd: dir, env });
      started.push(viewer);
      let out = "";
      viewer.child.stdout!.on("data", (d) => (out += d));
      while (!out.includes("\n")) await once(viewer.child.stdout!, "data");
      return viewer;
    };
    try {
      const first = await start();
      const left = readdirSync(tmp).filter((n) => n.startsWith("loom-view-"));
      assert.equal(left.length, 1, `one scratch folder in ${tmp}: ${left}`);
      first.child.kill("SIGKILL");
      await first.done;
      assert.ok(existsSync(join(tmp, left[0])), "SIGKILL leaves the folder behind");

      const second = await start();
      const now = readdirSync(tmp).filter((n) => n.startsWith("loom-view-"));
      assert.equal(now.length, 1, `only the running viewer's folder: ${now}`);
      assert.notEqual(now[0], left[0]);
      second.child.kill("SIGINT");
      await second.done;
      assert.deepEqual(readdirSync(tmp).filter((n) => n.startsWith("loom-view-")), []);
    } finally {
      // A failed check must not leave a viewer running (the test run would never end).
      for (const { child } of started) {
        if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      }
    }
  });
});
