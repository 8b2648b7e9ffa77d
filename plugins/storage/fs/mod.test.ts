import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { after, describe, it } from "node:test";
import { storageConformance } from "../../../core/testing/storage-conformance.ts";
import { LoomError } from "../../../core/errors.ts";
import { createFsStorage, STALE_TEMP_MS } from "./mod.ts";

const root = mkdtempSync(join(tmpdir(), "loom-fs-"));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;

storageConformance({
  name: "fs",
  create: () => createFsStorage(join(root, `s${n++}`)),
  reopen: (first) => createFsStorage(first.location),
});

describe("fs storage", () => {
  it("writes private files and leaves no temporary files behind", async () => {
    const dir = join(root, "private");
    const s = createFsStorage(dir);
    await s.set("cache/ab/key", "value");
    if (process.platform !== "win32") {
      assert.equal(statSync(join(dir, "cache", "ab", "key")).mode & 0o777, 0o600);
      assert.equal(statSync(join(dir, "cache", "ab")).mode & 0o777, 0o700);
    }
    assert.deepEqual(readdirSync(join(dir, "cache", "ab")), ["key"]);
  });

  describe("temporary files of killed writers", () => {
    // A pid that was running a moment ago and is gone now, as a SIGKILLed run's is.
    const deadPid = spawnSync(process.execPath, ["--version"]).pid!;
    const old = new Date(Date.now() - STALE_TEMP_MS - 60_000);

    /** A folder of the cache with one entry and three temporary files: old dead, young dead, old live. */
    function leftovers(dir: string) {
      const folder = join(dir, "cache", "v1", "ab");
      mkdirSync(folder, { recursive: true });
      writeFileSync(join(folder, "abkey"), "{}");
      const temps = {
        oldDead: `abkey.${deadPid}.0a0b0c0d.loom-tmp`,
        youngDead: `abother.${deadPid}.01020304.loom-tmp`,
        oldLive: `abthird.${process.ppid}.0f0e0d0c.loom-tmp`,
      };
      for (const name of Object.values(temps)) writeFileSync(join(folder, name), "half a value");
      utimesSync(join(folder, temps.oldDead), old, old);
      utimesSync(join(folder, temps.oldLive), old, old);
      return { folder, temps };
    }

    it("a write sweeps the old ones of dead processes from its folder, and only those", async () => {
      const dir = join(root, "stale-set");
      const { folder, temps } = leftovers(dir);
      await createFsStorage(dir).set("cache/v1/ab/abnew", "value");
      assert.deepEqual(
        readdirSync(folder).sort(),
        ["abkey", "abnew", temps.oldLive, temps.youngDead].sort(),
      );
    });

    it("clear removes the entries and the stale temporary files, counts only entries, and keeps a live writer's", async () => {
      const dir = join(root, "stale-clear");
      const { folder, temps } = leftovers(dir);
      const s = createFsStorage(dir);
      assert.equal(await s.clear("cache"), 1);
      assert.deepEqual(readdirSync(folder).sort(), [temps.oldLive, temps.youngDead].sort());
      for await (const key of s.keys("cache")) assert.fail(`a key is left: ${key}`);
    });
  });

  it("clear removes what it can and then says what it could not remove, and why", async (t) => {
    const dir = join(root, "stuck");
    const s = createFsStorage(dir);
    await s.set("cache/v1/aa/aakey", "1");
    await s.set("cache/v1/bb/bbkey", "2");
    await s.set("cache/v1/cc/cckey", "3");
    // An immutable file cannot be removed, even by root (chattr needs Linux and a filesystem that has it).
    const stuck = join(dir, "cache", "v1", "bb", "bbkey");
    if (spawnSync("chattr", ["+i", stuck]).status !== 0) {
      return t.skip("chattr +i is not available here");
    }
    try {
      await assert.rejects(s.clear("cache"), (error: Error) => {
        assert.ok(LoomError.isInstance(error));
        assert.equal(
          error.message,
          `removed 2 entries under ${join(dir, "cache")}, but could not remove 1 file or folder: ` +
            `cannot remove ${stuck}: operation not permitted [EPERM]; check the permissions or choose another place`,
        );
        return true;
      });
      assert.deepEqual(readdirSync(join(dir, "cache", "v1")), ["bb"]);
    } finally {
      spawnSync("chattr", ["-i", stuck]);
    }
  });
});
