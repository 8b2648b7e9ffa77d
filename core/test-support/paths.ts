/**
 * Paths for Loom's own tests, which run from source (Deno) and from `dist/` (Node).
 * @module
 */
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root: the nearest folder above this file with a deno.json. */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "deno.json"))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error("cannot find the repository root (no deno.json above)");
    dir = parent;
  }
  return dir;
}
