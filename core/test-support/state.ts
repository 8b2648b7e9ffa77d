/**
 * Reading a test's state store directly (the default SQLite file under its `LOOM_HOME`, or the
 * store a `LOOM_STATE` URL names), where running `loom list` would cost a process.
 * @module
 */
import { Registry } from "../plugins/registry.ts";
import type { StorageV2 } from "../spec/storage.ts";
import { openStore } from "../state/open.ts";

/** Opens the store of `home` (or `state`, a `LOOM_STATE` value); the caller closes it. */
export function openHomeStore(home: string, state?: string): Promise<StorageV2> {
  return openStore(new Registry(), { env: state ? { LOOM_STATE: state } : {}, home });
}

/** Runs `work` on the store of `home` (or `state`), closing it afterwards. */
export async function withHomeStore<T>(
  home: string,
  work: (store: StorageV2) => Promise<T>,
  state?: string,
): Promise<T> {
  const store = await openHomeStore(home, state);
  try {
    return await work(store);
  } finally {
    await store.close();
  }
}

/** The ids of the jobs recorded in `home`'s store (or `state`'s), sorted. */
export function jobIdsIn(home: string, state?: string): Promise<string[]> {
  return withHomeStore(
    home,
    async (store) => (await store.jobs.list()).map((j) => j.id).sort(),
    state,
  );
}
