/**
 * The state database's schema, as ordered migrations. `PRAGMA user_version` holds how many have
 * been applied; a file whose version is higher was written by a newer Loom and is refused, so an
 * older Loom never misreads (or damages) state it does not understand.
 *
 * Tables:
 * - `jobs`: one record per batch job, with the revision compare-and-set checks;
 * - `result_sets`: one row per saved (`current = 1`) or in-progress (`current = 0`) set of a
 *   shard's results; `results` holds the rows of each set. A put writes a new set in small
 *   transactions, then makes it current and drops the old one in one transaction, so readers see
 *   one set or the other and the write lock is never held while the caller produces rows;
 * - `attachments`, `leases`, and `cache` (with an index on the stored time for stats and prune).
 * @module
 */
import type { DatabaseSync } from "node:sqlite";
import { LoomUsageError } from "../../../core/base/errors.ts";

/** Marks the file as Loom's (`PRAGMA application_id`, any 32-bit number: "LOOM" in ASCII). */
export const APPLICATION_ID = 0x4c4f4f4d;

/** Migration `i` brings the schema from version `i` to `i + 1`. Never edit one; append. */
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE jobs (
     id TEXT PRIMARY KEY,
     revision INTEGER NOT NULL,
     record TEXT NOT NULL
   );
   CREATE TABLE result_sets (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     job TEXT NOT NULL,
     shard INTEGER NOT NULL,
     current INTEGER NOT NULL DEFAULT 0,
     writer TEXT NOT NULL
   );
   CREATE UNIQUE INDEX result_sets_current ON result_sets (job, shard) WHERE current = 1;
   CREATE INDEX result_sets_job ON result_sets (job);
   CREATE TABLE results (
     set_id INTEGER NOT NULL,
     row INTEGER NOT NULL,
     value TEXT NOT NULL,
     PRIMARY KEY (set_id, row)
   );
   CREATE TABLE attachments (
     job TEXT NOT NULL,
     name TEXT NOT NULL,
     value TEXT NOT NULL,
     PRIMARY KEY (job, name)
   );
   CREATE TABLE leases (
     name TEXT PRIMARY KEY,
     holder TEXT NOT NULL,
     token TEXT NOT NULL,
     expires_at INTEGER NOT NULL
   );
   CREATE TABLE cache (
     key TEXT PRIMARY KEY,
     value TEXT NOT NULL,
     stored_at INTEGER NOT NULL,
     bytes INTEGER NOT NULL
   );
   CREATE INDEX cache_stored_at ON cache (stored_at, bytes);`,
];

/** The schema version this Loom writes. */
export const SCHEMA_VERSION = MIGRATIONS.length;

const pragma = (db: DatabaseSync, name: string): number =>
  Number(Object.values(db.prepare(`PRAGMA ${name}`).get() ?? {})[0] ?? 0);

/**
 * Brings `db` (the file `file`) to {@link SCHEMA_VERSION}, in one transaction with the write lock,
 * so two processes opening a new file at once create the tables once.
 * @throws LoomUsageError for a file of a newer Loom, or a SQLite database that is not Loom's.
 */
export function migrate(db: DatabaseSync, file: string): void {
  // Checked before taking the write lock: most opens find the schema current, and a newer
  // Loom's file is refused even where it cannot be written.
  const found = pragma(db, "user_version");
  refuseNewer(found, file);
  if (found === SCHEMA_VERSION && isLooms(db)) return;
  inTransaction(db, () => {
    const version = pragma(db, "user_version");
    refuseNewer(version, file);
    if (!isLooms(db)) {
      throw new LoomUsageError(
        `${file} is a SQLite database of another program, not Loom's state: ` +
          "set LOOM_STATE to another file",
      );
    }
    for (let v = version; v < SCHEMA_VERSION; v++) db.exec(MIGRATIONS[v]);
    db.exec(`PRAGMA application_id = ${APPLICATION_ID}`);
    db.exec(`PRAGMA user_version = ${SCHEMA_VERSION}`);
  });
}

/**
 * Runs `work` in one transaction that holds the write lock from its start (`BEGIN IMMEDIATE`, so
 * two writers never both read and then collide), and commits it; rolls back if it throws. `work`
 * is synchronous: nothing else runs on the connection in between.
 */
export function inTransaction<T>(db: DatabaseSync, work: () => T): T {
  db.exec("BEGIN IMMEDIATE");
  try {
    const result = work();
    db.exec("COMMIT");
    return result;
  } catch (error) {
    try {
      db.exec("ROLLBACK");
    } catch {
      // SQLite already rolled back (some errors end the transaction themselves).
    }
    throw error;
  }
}

function refuseNewer(version: number, file: string): void {
  if (version <= SCHEMA_VERSION) return;
  throw new LoomUsageError(
    `${file} was written by a newer Loom (state schema version ${version}; this Loom knows up ` +
      `to ${SCHEMA_VERSION}): upgrade Loom, or set LOOM_STATE to another file`,
  );
}

/** Loom's file, or a new empty one. */
function isLooms(db: DatabaseSync): boolean {
  const id = pragma(db, "application_id");
  if (id === APPLICATION_ID) return true;
  const tables = db.prepare("SELECT count(*) AS n FROM sqlite_schema").get() as { n: number };
  return id === 0 && tables.n === 0;
}
