/**
 * The `fs` storage plugin (the default): one file per key under a directory (default
 * `LOOM_HOME`). Writes go to a private temporary file that is renamed into place, so a reader
 * (or a rerun after SIGKILL) never sees a torn value. Directories are 0700, files 0600.
 * @module
 */
import { randomBytes } from "node:crypto";
import { mkdir, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import process from "node:process";
import { definePlugin } from "../../../core/plugin.ts";
import { assertStorageKey, type StorageV1 } from "../../../core/spec/storage.ts";
import { LoomUsageError } from "../../../core/errors.ts";

/** Suffix of in-progress writes; never listed as keys. */
const TMP_SUFFIX = ".loom-tmp";

/** Options of the `fs` storage plugin. */
export interface FsStorageOptions {
  /** Root directory; default Loom's home. */
  dir?: string;
}

function isNotFound(error: unknown): boolean {
  return (error as { code?: string })?.code === "ENOENT";
}

/** Creates a filesystem storage rooted at `dir`. */
export function createFsStorage(dir: string): StorageV1 {
  const root = resolve(dir);
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
      await mkdir(parent, { recursive: true, mode: 0o700 });
      const tmp = `${file}.${process.pid}.${randomBytes(4).toString("hex")}${TMP_SUFFIX}`;
      try {
        await writeFile(tmp, value, { mode: 0o600 });
        await rename(tmp, file);
      } catch (error) {
        await rm(tmp, { force: true });
        throw error;
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
      let count = 0;
      for await (const _ of this.keys(prefix)) count++;
      // Removing the directory also sweeps temporary files left by a killed writer.
      await rm(dirOf(prefix), { recursive: true, force: true });
      return count;
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
    if (unknown.length) throw new LoomUsageError(`fs storage: unknown option(s) ${unknown.join(", ")} (known: dir)`);
    if (dir !== undefined && typeof dir !== "string") throw new LoomUsageError("fs storage: dir must be a string");
    return createFsStorage(dir ?? context.home);
  },
});
