/**
 * The postgres store passes the storage conformance suite, against a real server: each test gets
 * a fresh empty database, and `reopen` a second instance on the same URL (another machine).
 */
import { after, describe } from "node:test";
import type { StorageV2 } from "../../../core/spec/storage.ts";
import { type PostgresServer, startPostgres } from "../../../core/test-support/postgres.ts";
import { storageConformance } from "../../../core/testing/storage-conformance.ts";
import { createPostgresStorage } from "./mod.ts";

let server: Promise<PostgresServer> | undefined;
const opened: StorageV2[] = [];
const urls = new WeakMap<StorageV2, string>();

async function open(url: string): Promise<StorageV2> {
  const store = await createPostgresStorage({ url });
  opened.push(store);
  urls.set(store, url);
  return store;
}

describe("postgres (real server)", () => {
  after(async () => {
    await Promise.all(opened.map((store) => store.close().catch(() => {})));
    await (await server)?.stop();
  });

  storageConformance({
    name: "postgres",
    create: async () => open(await (server ??= startPostgres()).then((s) => s.createDatabase())),
    reopen: (first) => open(urls.get(first)!),
  });
});
