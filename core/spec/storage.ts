/**
 * The storage plugin contract, version 1: a small key/value store for job state and the response
 * cache. Keys are `/`-separated paths of safe characters (`[A-Za-z0-9._-]` segments); values are
 * strings (JSON by convention). Writes must be atomic: a reader sees the old value or the new one,
 * never a torn one, even if the process is killed mid-write.
 * @module
 */

/** A key/value storage backend (version 1). */
export interface StorageV1 {
  readonly specificationVersion: "loom.storage.v1";
  /** Registry name, e.g. `fs`. */
  readonly name: string;
  /** Where the data lives, for messages (a directory, a URL); never contains secrets. */
  readonly location: string;
  /** The value, or undefined when the key is absent. */
  get(key: string): Promise<string | undefined>;
  /** Stores a value atomically, replacing any previous one. */
  set(key: string, value: string): Promise<void>;
  /** Removes a key; removing an absent key is not an error. */
  delete(key: string): Promise<void>;
  /** Every key under a prefix (`cache/` lists the whole cache), in no particular order. */
  keys(prefix: string): AsyncIterable<string>;
  /** Removes every key under a prefix; returns how many were removed. */
  clear(prefix: string): Promise<number>;
  /** Releases handles; the instance is not used afterwards. */
  dispose?(): Promise<void>;
}

const KEY = /^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/;

/** Throws unless `key` is a valid storage key (no `..`, no empty segments, no odd characters). */
export function assertStorageKey(key: string): void {
  if (!KEY.test(key) || key.split("/").some((s) => s === "." || s === "..")) {
    throw new TypeError(`invalid storage key: ${JSON.stringify(key)}`);
  }
}
