/**
 * Temporary directories for tests, removed when the test file finishes.
 * @module
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { after } from "node:test";

const made: string[] = [];
const removeAll = () => {
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
};
// Registered when the test file imports this module (a hook registered from inside a running
// test would be scoped to that test); the exit handler covers runners that skip root hooks.
after(removeAll);
process.on("exit", removeAll);

/** A fresh empty directory, deleted after the test file's last test. */
export function tempDir(prefix = "loom-test-"): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  made.push(dir);
  return dir;
}
