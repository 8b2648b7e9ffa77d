/**
 * The harness's cache (`node_modules/.cache/loom-contract/`): derived files that are slow to make
 * (the Anthropic SDK's schemas), keyed by what they come from.
 * @module
 */
import { mkdirSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { repoRoot } from "../../core/test-support/paths.ts";

/** The cache folder, created on first use. */
export function cacheDir(): string {
  const dir = join(repoRoot(), "node_modules", ".cache", "loom-contract");
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** Writes through a temporary name and a rename: test files running at once never read half a file. */
export function writeAtomically(path: string, text: string): void {
  const temp = `${path}.${process.pid}.tmp`;
  writeFileSync(temp, text);
  renameSync(temp, path);
}
