/**
 * File listings for tests that check what Loom wrote.
 * @module
 */
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";

/** Every regular file under a directory, recursively (nothing when it does not exist). */
export function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? filesUnder(join(dir, e.name)) : e.isFile() ? [join(dir, e.name)] : []
  );
}
