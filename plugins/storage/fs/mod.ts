/**
 * The `fs` storage plugin (the default): one file per key under a directory (default
 * `LOOM_HOME`). Writes go to a private temporary file that is renamed into place, so a reader
 * (or a rerun after SIGKILL) never sees a torn value. Directories are 0700, files 0600.
 *
 * Several Loom processes may share the directory (a run writing the cache while `loom cache
 * clear` empties it): clearing removes files one by one and leaves a folder another process has
 * just written into, and a write whose folder was removed under it makes the folder again.
 * Temporary files of killed writers are swept once they are old and their process is gone.
 * @module
 */
import { randomBytes } from "node:crypto";
import {
  mkdir,
  readdir,
  readFile,
  rename,
  rm,
  rmdir,
  stat,
  unlink,
  writeFile,
} from "node:fs/promises";
import { join, resolve } from "node:path";
import process from "node:process";
import { definePlugin } from "../../../core/plugin.ts";
import { assertStorageKey, type StorageV1 } from "../../../core/spec/storage.ts";
import {
  errorMessage,
  LoomError,
  LoomUsageError,
  systemFaultMessage,
} from "../../../core/errors.ts";
import { isAlive } from "../../../core/output.ts";

/** Suffix of in-progress writes; never listed as keys. */
const TMP_SUFFIX = ".loom-tmp";
/**
 * A temporary file this old whose process is gone is a killed writer's. The age guards against
 * a writer whose pid this process cannot see (another container sharing the folder); a write
 * takes milliseconds.
 */
export const STALE_TEMP_MS = 10 * 60_000;
/** Attempts of a write whose folder another process keeps removing (`cache clear`). */
const WRITE_ATTEMPTS = 3;

/** Options of the `fs` storage plugin. */
export interface FsStorageOptions {
  /** Root directory; default Loom's home. */
  dir?: string;
}

function codeOf(error: unknown): string | undefined {
  return (error as { code?: string })?.code;
}

function isNotFound(error: unknown): boolean {
  return codeOf(error) === "ENOENT";
}

/** The writer's pid in a temporary file's name (`<key>.<pid>.<random>.loom-tmp`). */
function tempOwner(name: string): number | undefined {
  if (!name.endsWith(TMP_SUFFIX)) return undefined;
  const parts = name.slice(0, -TMP_SUFFIX.length).split(".");
  const pid = Number(parts.at(-2));
  return parts.length >= 3 && Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

/** True when `name` in `dir` is a temporary file left by a writer that is gone. */
async function isStaleTemp(dir: string, name: string, now = Date.now()): Promise<boolean> {
  const pid = tempOwner(name);
  if (pid === undefined || pid === process.pid || isAlive(pid)) return false;
  const info = await stat(join(dir, name)).catch(() => undefined);
  return info !== undefined && now - info.mtimeMs >= STALE_TEMP_MS;
}

/** Removes the stale temporary files of one folder; returns how many. */
export async function sweepStaleTemps(dir: string): Promise<number> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return 0;
  }
  let swept = 0;
  for (const name of names) {
    if (!(await isStaleTemp(dir, name))) continue;
    await rm(join(dir, name), { force: true });
    swept++;
  }
  return swept;
}

/** Removes an empty folder; one that is gone or that another process has just written into stays. */
async function removeDirIfEmpty(dir: string): Promise<void> {
  try {
    await rmdir(dir);
  } catch (error) {
    if (!["ENOENT", "ENOTEMPTY", "EEXIST"].includes(codeOf(error) ?? "")) throw error;
  }
}

/** Creates a filesystem storage rooted at `dir`. */
export function createFsStorage(dir: string): StorageV1 {
  const root = resolve(dir);
  /** Folders whose stale temporary files this instance has already swept. */
  const swept = new Set<string>();
  const fileOf = (key: string) => {
    assertStorageKey(key);
    return join(root, ...key.split("/"));
  };
  const dirOf = (prefix: string) => {
    const trimmed = prefix.replace(/\/+$/, "");
    if (trimmed === "") return root;
    assertStorageKey(trimmed);
    return join(root, ...trimmed.split("/"));
  };

  async function* walk(dirPath: string, keyPrefix: string): AsyncGenerator<string> {
    let entries;
    try {
      entries = await readdir(dirPath, { withFileTypes: true });
    } catch (error) {
      if (isNotFound(error)) return;
      throw error;
    }
    for (const entry of entries) {
      const key = keyPrefix ? `${keyPrefix}/${entry.name}` : entry.name;
      if (entry.isDirectory()) yield* walk(join(dirPath, entry.name), key);
      else if (entry.isFile() && !entry.name.endsWith(TMP_SUFFIX)) yield key;
    }
  }

  /**
   * Removes every entry under a folder, file by file, and counts the keys removed. What cannot
   * be removed is collected in `failures` and the rest still goes.
   */
  async function removeTree(dirPath: string, failures: unknown[]): Promise<number> {
    let entries;
    try {
      entries = await readdir(dirPath, { withFileTypes: true });
    } catch (error) {
      if (!isNotFound(error)) failures.push(error);
      return 0;
    }
    let removed = 0;
    for (const entry of entries) {
      const path = join(dirPath, entry.name);
      try {
        if (entry.isDirectory()) {
          removed += await removeTree(path, failures);
          await removeDirIfEmpty(path);
        } else if (entry.name.endsWith(TMP_SUFFIX)) {
          // A live writer's temporary file is left: it becomes an entry when renamed.
          if (await isStaleTemp(dirPath, entry.name)) await rm(path, { force: true });
        } else {
          await unlink(path);
          removed++;
        }
      } catch (error) {
        if (!isNotFound(error)) failures.push(error);
      }
    }
    return removed;
  }

  return {
    specificationVersion: "loom.storage.v1",
    name: "fs",
    location: root,
    async get(key) {
      try {
        return await readFile(fileOf(key), "utf8");
      } catch (error) {
        if (isNotFound(error)) return undefined;
        throw error;
      }
    },
    async set(key, value) {
      const file = fileOf(key);
      const parent = join(file, "..");
      for (let attempt = 1;; attempt++) {
        await mkdir(parent, { recursive: true, mode: 0o700 });
        if (!swept.has(parent)) {
          swept.add(parent);
          await sweepStaleTemps(parent);
        }
        const tmp = `${file}.${process.pid}.${randomBytes(4).toString("hex")}${TMP_SUFFIX}`;
        try {
          await writeFile(tmp, value, { mode: 0o600 });
          await rename(tmp, file);
          return;
        } catch (error) {
          await rm(tmp, { force: true });
          // The folder was removed between mkdir and the write (a concurrent clear): make it again.
          if (!isNotFound(error) || attempt >= WRITE_ATTEMPTS) throw error;
        }
      }
    },
    async delete(key) {
      await rm(fileOf(key), { force: true });
    },
    keys(prefix) {
      const trimmed = prefix.replace(/\/+$/, "");
      return walk(dirOf(trimmed), trimmed);
    },
    async clear(prefix) {
      const top = dirOf(prefix);
      // A folder that cannot be read at all is the plain fault, for the caller to report.
      try {
        await readdir(top);
      } catch (error) {
        if (isNotFound(error)) return 0;
        throw error;
      }
      const failures: unknown[] = [];
      const removed = await removeTree(top, failures);
      if (top !== root) await removeDirIfEmpty(top).catch((error) => failures.push(error));
      if (failures.length) {
        const first = failures[0];
        throw new LoomError(
          `removed ${removed} entr${
            removed === 1 ? "y" : "ies"
          } under ${top}, but could not remove ${failures.length} ` +
            `${failures.length === 1 ? "file or folder" : "files or folders"}: ${
              systemFaultMessage(first) ?? errorMessage(first)
            }`,
          { cause: first },
        );
      }
      return removed;
    },
  };
}

export default definePlugin({
  apiVersion: 1,
  kind: "storage",
  name: "fs",
  description: "Files under LOOM_HOME (default ~/.loom), written atomically and privately.",
  create(options, context) {
    const { dir, ...rest } = options as FsStorageOptions & Record<string, unknown>;
    const unknown = Object.keys(rest);
    if (unknown.length) {
      throw new LoomUsageError(`fs storage: unknown option(s) ${unknown.join(", ")} (known: dir)`);
    }
    if (dir !== undefined && typeof dir !== "string") {
      throw new LoomUsageError("fs storage: dir must be a string");
    }
    return createFsStorage(dir ?? context.home);
  },
});
