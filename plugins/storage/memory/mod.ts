/**
 * The `memory` storage plugin: a Map that lives as long as the process. For tests and for runs
 * that should leave nothing on disk (`--no-cache` needs no storage at all).
 * @module
 */
import { definePlugin } from "../../../core/plugin.ts";
import { assertStorageKey, type StorageV1 } from "../../../core/spec/storage.ts";

/** Creates an empty in-memory storage. */
export function createMemoryStorage(): StorageV1 {
  const data = new Map<string, string>();
  const under = (prefix: string) => {
    const p = prefix.replace(/\/+$/, "");
    return (key: string) => p === "" || key === p || key.startsWith(`${p}/`);
  };
  return {
    specificationVersion: "loom.storage.v1",
    name: "memory",
    location: "memory",
    // async, so a bad key rejects like every other backend instead of throwing synchronously
    async get(key) {
      assertStorageKey(key);
      return data.get(key);
    },
    async set(key, value) {
      assertStorageKey(key);
      data.set(key, value);
    },
    async delete(key) {
      assertStorageKey(key);
      data.delete(key);
    },
    async *keys(prefix) {
      const match = under(prefix);
      for (const key of [...data.keys()]) if (match(key)) yield key;
    },
    async clear(prefix) {
      const match = under(prefix);
      let count = 0;
      for (const key of [...data.keys()]) {
        if (match(key)) {
          data.delete(key);
          count++;
        }
      }
      return count;
    },
  };
}

export default definePlugin({
  apiVersion: 1,
  kind: "storage",
  name: "memory",
  description: "In-process memory; nothing survives the process.",
  create: () => createMemoryStorage(),
});
