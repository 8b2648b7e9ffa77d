/**
 * Temporary directories for tests, removed when the test file finishes.
 * @module
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after } from "node:test";

const made: string[] = [];
let hooked = false;

/** A fresh empty directory, deleted after the test file's last test. */
export function tempDir(prefix = "loom-test-"): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  made.push(dir);
  if (!hooked) {
    hooked = true;
    after(() => {
      for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true });
    });
  }
  return dir;
}
