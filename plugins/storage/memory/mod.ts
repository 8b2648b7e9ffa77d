/**
 * The `memory` storage plugin: Maps that live as long as the process. For tests, and the
 * reference for what the contract means: every method here is the whole rule, without a database.
 * @module
 */
import { Buffer } from "node:buffer";
import { randomUUID } from "node:crypto";
import { definePlugin } from "../../../core/plugins/plugin.ts";
import {
  assertJobId,
  type LeaseInfo,
  type ResultRow,
  type StorageV2,
  type StoredJob,
} from "../../../core/spec/storage.ts";

/** Creates an empty in-memory storage; `now` is its clock (for lease expiry). */
export function createMemoryStorage(now: () => number = Date.now): StorageV2 {
  const jobs = new Map<string, StoredJob>();
  const results = new Map<string, ResultRow[]>();
  const attachments = new Map<string, string>();
  const leases = new Map<string, LeaseInfo>();
  const cache = new Map<string, { value: string; at: number }>();
  const runs = new Map<string, string>();
  const shardKey = (job: string, shard: number) => `${job}\0${shard}`;
  const owned = (job: string) => (key: string) => key.startsWith(`${job}\0`);
  return {
    specificationVersion: "loom.storage.v2",
    name: "memory",
    location: "memory",
    jobs: {
      // async, so a bad id rejects like every other backend instead of throwing synchronously
      async get(id) {
        assertJobId(id);
        return jobs.get(id);
      },
      async list() {
        return [...jobs.values()];
      },
      async put(id, record, expected) {
        assertJobId(id);
        if ((jobs.get(id)?.revision ?? 0) !== expected) return undefined;
        jobs.set(id, { id, record, revision: expected + 1 });
        return expected + 1;
      },
      async remove(id) {
        assertJobId(id);
        jobs.delete(id);
        for (const map of [results, attachments]) {
          for (const key of [...map.keys()]) if (owned(id)(key)) map.delete(key);
        }
        leases.delete(`job:${id}`);
      },
    },
    results: {
      async put(job, shard, rows) {
        assertJobId(job);
        const list: ResultRow[] = [];
        for await (const row of rows) list.push({ row: row.row, value: row.value });
        results.set(shardKey(job, shard), list.sort((a, b) => a.row - b.row));
      },
      async has(job, shard) {
        return results.has(shardKey(job, shard));
      },
      async *read(job, shard) {
        yield* results.get(shardKey(job, shard)) ?? [];
      },
    },
    attachments: {
      async put(job, name, value) {
        assertJobId(job);
        attachments.set(`${job}\0${name}`, value);
      },
      async get(job, name) {
        return attachments.get(`${job}\0${name}`);
      },
    },
    leases: {
      async acquire(name, holder, ttlMs, replacing) {
        const current = leases.get(name);
        if (current && current.expiresAt > now() && current.token !== replacing) {
          return { ok: false, current };
        }
        const lease = { holder, token: randomUUID(), expiresAt: now() + ttlMs };
        leases.set(name, lease);
        return { ok: true, lease };
      },
      async renew(name, token, ttlMs) {
        const current = leases.get(name);
        if (current?.token !== token) return false;
        leases.set(name, { ...current, expiresAt: now() + ttlMs });
        return true;
      },
      async release(name, token) {
        if (leases.get(name)?.token === token) leases.delete(name);
      },
    },
    runs: {
      async get(id) {
        return runs.get(id);
      },
      async list() {
        return [...runs].map(([id, record]) => ({ id, record }));
      },
      async put(id, record) {
        assertJobId(id);
        runs.set(id, record);
      },
      async remove(id) {
        runs.delete(id);
      },
    },
    cache: {
      async get(key) {
        return cache.get(key)?.value;
      },
      async getMany(keys) {
        const found = new Map<string, string>();
        for (const key of keys) {
          const entry = cache.get(key);
          if (entry) found.set(key, entry.value);
        }
        return found;
      },
      async set(key, value) {
        cache.set(key, { value, at: now() });
      },
      async clear() {
        const n = cache.size;
        cache.clear();
        return n;
      },
      async prune(before) {
        let n = 0;
        for (const [key, entry] of [...cache]) {
          if (entry.at < before) {
            cache.delete(key);
            n++;
          }
        }
        return n;
      },
      async stats() {
        let bytes = 0;
        let oldest: number | undefined;
        let newest: number | undefined;
        for (const [key, { value, at }] of cache) {
          bytes += Buffer.byteLength(key) + Buffer.byteLength(value);
          oldest = oldest === undefined ? at : Math.min(oldest, at);
          newest = newest === undefined ? at : Math.max(newest, at);
        }
        return { entries: cache.size, bytes, oldest, newest };
      },
    },
    async close() {},
  };
}

export default definePlugin({
  apiVersion: 1,
  kind: "storage",
  name: "memory",
  description: "in-process storage that is gone when Loom exits (tests)",
  create: () => createMemoryStorage(),
});
