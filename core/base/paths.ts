/**
 * Paths as people read them: relative to the working directory when the file is inside it, so
 * messages say `data/articles.csv:17`, not `/home/me/project/data/articles.csv:17`.
 * @module
 */
import { isAbsolute, relative, sep } from "node:path";
import process from "node:process";

/** `path` relative to `cwd` when it lies inside it, otherwise as given. */
export function displayPath(path: string, cwd: string = process.cwd()): string {
  const rel = relative(cwd, path);
  if (!rel || rel === ".." || rel.startsWith(`..${sep}`) || isAbsolute(rel)) return path;
  return rel;
}
