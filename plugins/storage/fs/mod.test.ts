import assert from "node:assert/strict";
import { mkdtempSync, rmSync, statSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { after, describe, it } from "node:test";
import { storageConformance } from "../../../core/testing/storage-conformance.ts";
import { createFsStorage } from "./mod.ts";

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
});
