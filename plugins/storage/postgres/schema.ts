/**
 * The store's tables, created and migrated by Loom. Migrations run in order, each once, in one
 * transaction under an advisory lock, so two machines opening a new database at the same moment
 * neither clash nor migrate twice. `loom_schema` holds the version reached; a database a newer
 * Loom migrated further is refused rather than misread.
 * @module
 */
import type pg from "pg";
import { EXIT, LoomError } from "../../../core/base/errors.ts";

/** Times are bigint milliseconds since the epoch, read from the server's clock. */
export const SERVER_NOW_MS = "(extract(epoch from clock_timestamp()) * 1000)::bigint";

/** Migration N (1-based) brings the schema from version N-1 to N. Append only; never edit one. */
export const MIGRATIONS: readonly string[] = [
  `CREATE TABLE loom_jobs (
     id text PRIMARY KEY,
     revision integer NOT NULL,
     record text NOT NULL
   );
   CREATE TABLE loom_result_sets (
     job text NOT NULL,
     shard integer NOT NULL,
     saved_at bigint NOT NULL,
     PRIMARY KEY (job, shard)
   );
   CREATE TABLE loom_results (
     job text NOT NULL,
     shard integer NOT NULL,
     row_no integer NOT NULL,
     value text NOT NULL,
     PRIMARY KEY (job, shard, row_no)
   );
   CREATE TABLE loom_attachments (
     job text NOT NULL,
     name text NOT NULL,
     value text NOT NULL,
     PRIMARY KEY (job, name)
   );
   CREATE TABLE loom_leases (
     name text PRIMARY KEY,
     holder text NOT NULL,
     token text NOT NULL,
     expires_at bigint NOT NULL
   );
   CREATE TABLE loom_cache (
     key text PRIMARY KEY,
     value text NOT NULL,
     stored_at bigint NOT NULL
   );
   CREATE INDEX loom_cache_stored_at ON loom_cache (stored_at);`,
  // Records of sync runs (`StorageV2.runs`), one row each.
  `CREATE TABLE loom_runs (id text PRIMARY KEY, record text NOT NULL);`,
];

/** The schema version this Loom writes. */
export const SCHEMA_VERSION = MIGRATIONS.length;

/** Key of the transaction-scoped advisory lock that serialises migrations ("LOOM"). */
const MIGRATION_LOCK = 0x4c4f4f4d;

/**
 * Brings the database to {@link SCHEMA_VERSION}; returns the version found before.
 * @throws LoomError when a newer Loom already migrated the database further.
 */
export async function migrate(
  client: pg.ClientBase,
  location: string,
  migrations: readonly string[] = MIGRATIONS,
): Promise<number> {
  await client.query("BEGIN");
  try {
    await client.query("SELECT pg_advisory_xact_lock($1)", [MIGRATION_LOCK]);
    await client.query("CREATE TABLE IF NOT EXISTS loom_schema (version integer NOT NULL)");
    const found = await client.query<{ version: number }>("SELECT version FROM loom_schema");
    const before = found.rows[0]?.version ?? 0;
    if (before > migrations.length) {
      throw new LoomError(
        `the PostgreSQL store at ${location} was written by a newer Loom (schema version ` +
          `${before}; this Loom knows up to ${migrations.length}): upgrade Loom to use it`,
        { exitCode: EXIT.usage },
      );
    }
    for (const sql of migrations.slice(before)) await client.query(sql);
    if (found.rows.length === 0) {
      await client.query("INSERT INTO loom_schema (version) VALUES ($1)", [migrations.length]);
    } else if (before < migrations.length) {
      await client.query("UPDATE loom_schema SET version = $1", [migrations.length]);
    }
    await client.query("COMMIT");
    return before;
  } catch (error) {
    await client.query("ROLLBACK").catch(() => {});
    throw error;
  }
}
