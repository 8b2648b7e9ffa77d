/**
 * Output files: the default name, the overwrite rule, and atomic writing (a temporary file in
 * the same directory, renamed into place once complete, so no crash leaves half a file).
 * @module
 */
import { mkdir, open, readdir, rename, rm, stat } from "node:fs/promises";
import { basename, dirname, extname, join } from "node:path";
import process from "node:process";

const TMP_SUFFIX = ".loom-tmp";

/** Replaces characters that are unsafe in file names (`/`, `:`, spaces, …) with `_`. */
export function safeFileComponent(value: string): string {
  return value.replace(/[^A-Za-z0-9._-]/g, "_");
}

/**
 * The default output path: `<name>_results_<provider>_<model>.<ext>` beside the input, where
 * `.gz` is dropped (`data.csv.gz` → `data_results_openai_gpt-4o-mini.csv`).
 */
export function defaultOutputPath(input: string, provider: string, model: string): string {
  const file = basename(input).replace(/\.gz$/i, "");
  const ext = extname(file);
  const name = ext ? file.slice(0, -ext.length) : file;
  return join(dirname(input), `${name}_results_${safeFileComponent(provider)}_${safeFileComponent(model)}${ext}`);
}

/** True when a file exists at `path`. */
export async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

function tempPrefix(path: string): string {
  return `.${basename(path)}.`;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as { code?: string }).code === "EPERM";
  }
}

/** Removes temporary files a killed run left beside `path` (those whose process is gone). */
export async function removeStaleTemps(path: string): Promise<void> {
  const dir = dirname(path);
  const prefix = tempPrefix(path);
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return;
  }
  for (const name of names) {
    if (!name.startsWith(prefix) || !name.endsWith(TMP_SUFFIX)) continue;
    const pid = Number(name.slice(prefix.length, -TMP_SUFFIX.length).split(".")[0]);
    if (Number.isInteger(pid) && !isAlive(pid)) await rm(join(dir, name), { force: true });
  }
}

/**
 * Writes text chunks to `path` atomically: into `.<name>.<pid>.loom-tmp` beside it, flushed to
 * disk, then renamed over `path`. On any error (or abort) the temporary file is removed and
 * `path` is left as it was.
 */
export async function writeFileAtomic(path: string, chunks: AsyncIterable<string>): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await removeStaleTemps(path);
  const tmp = join(dirname(path), `${tempPrefix(path)}${process.pid}${TMP_SUFFIX}`);
  const file = await open(tmp, "w");
  try {
    for await (const chunk of chunks) await file.write(chunk);
    await file.sync();
    await file.close();
    await rename(tmp, path);
  } catch (error) {
    await file.close().catch(() => {});
    await rm(tmp, { force: true });
    throw error;
  }
}
