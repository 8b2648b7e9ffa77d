/**
 * The `postgres` storage plugin: Loom's state in a PostgreSQL database, shared by every machine
 * that opens the same URL (`LOOM_STATE=postgres://user@host:5432/loom` or `--state URL`).
 *
 * Driver: `pg` (node-postgres), pure JavaScript (no `pg-native`), runs on Node and Deno, and the
 * most used PostgreSQL client on npm. It was picked over `postgres` (postgres.js) because it
 * follows libpq for what the URL leaves out (PGHOST, PGPORT, PGUSER, PGPASSWORD, PGSSLMODE …) and
 * its `pgpass` companion reads `~/.pgpass` / `PGPASSFILE` the way libpq does, so a team's
 * existing PostgreSQL credentials work unchanged and no password needs to sit in a job file.
 *
 * The driver is loaded only when a store is opened, not when the plugin list is.
 * @module
 */
import { definePlugin } from "../../../core/plugins/plugin.ts";
import type { StorageV2 } from "../../../core/spec/storage.ts";
import type { PostgresStorageOptions } from "./store.ts";

export type { PostgresStorageOptions } from "./store.ts";

/**
 * Connects, creates or migrates the schema, and returns the store.
 * @throws LoomError (exit code 2) when the server cannot be reached, refuses the login, has no
 * such database, or holds a schema from a newer Loom.
 */
export async function createPostgresStorage(options: PostgresStorageOptions): Promise<StorageV2> {
  const { openPostgresStorage } = await import("./store.ts");
  return await openPostgresStorage(options);
}

export default definePlugin({
  apiVersion: 1,
  kind: "storage",
  name: "postgres",
  description: "state shared by a team in a PostgreSQL database (LOOM_STATE=postgres://…)",
  create: (options, context) =>
    createPostgresStorage({ url: String(options.url ?? ""), env: context.env }),
});
