/**
 * The viewer's scratch folder for its row indexes (`loom-view-*` in the system's temp folder). A
 * viewer killed outright (SIGKILL, a closed terminal's lost session) cannot remove its own; so
 * each folder names the process that made it in a `pid` file, and every start removes the folders
 * whose process is gone. A folder without that file, or whose process still runs, is left alone.
 * @module
 */
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";

const PREFIX = "loom-view-";
const OWNER = "pid";

/** Whether process `pid` still runs (on this machine). Unsure counts as running. */
function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code !== "ESRCH";
  }
}

/** Removes the scratch folders in `parent` left by viewers that are no longer running. */
export async function removeStaleSpills(parent = tmpdir()): Promise<string[]> {
  const removed: string[] = [];
  const names = await readdir(parent).catch(() => [] as string[]);
  for (const name of names) {
    if (!name.startsWith(PREFIX)) continue;
    const dir = join(parent, name);
    const owner = await readFile(join(dir, OWNER), "utf8").catch(() => undefined);
    const pid = Number(owner);
    if (owner === undefined || !Number.isInteger(pid) || pid <= 0 || running(pid)) continue;
    await rm(dir, { recursive: true, force: true }).catch(() => {});
    removed.push(dir);
  }
  return removed;
}

/** Makes this viewer's scratch folder in `parent`, first removing those of dead viewers. */
export async function makeSpillFolder(parent = tmpdir()): Promise<string> {
  await removeStaleSpills(parent);
  const dir = await mkdtemp(join(parent, PREFIX));
  await writeFile(join(dir, OWNER), String(process.pid));
  return dir;
}
