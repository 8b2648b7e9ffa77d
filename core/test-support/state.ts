/**
 * Reading a test's state store directly (the default SQLite file under its `LOOM_HOME`), where
 * running `loom list` would cost a process.
 * @module
 */
import { Registry } from "../registry.ts";
import type { StorageV2 } from "../spec/storage.ts";

/** Opens the default store of `home` (the caller closes it). */
export function openHomeStore(home: string): Promise<StorageV2> {
  return new Registry().create("storage", "sqlite", {}, { env: {}, home });
}

/** Runs `work` on the default store of `home`, closing it afterwards. */
export async function withHomeStore<T>(
  home: string,
  work: (store: StorageV2) => Promise<T>,
): Promise<T> {
  const store = await openHomeStore(home);
  try {
    return await work(store);
  } finally {
    await store.close();
  }
}

/** The ids of the jobs recorded in `home`'s store, sorted. */
export function jobIdsIn(home: string): Promise<string[]> {
  return withHomeStore(home, async (store) => (await store.jobs.list()).map((j) => j.id).sort());
}
