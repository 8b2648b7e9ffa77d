/**
 * The state database's schema, as ordered migrations. `PRAGMA user_version` holds how many have
 * been applied; a file whose version is higher was written by a newer Loom and is refused, so an
 * older Loom never misreads (or damages) state it does not understand.
 *
 * Tables:
 * - `jobs`: one record per batch job, with the revision compare-and-set checks;
 * - `result_sets`: one row per saved (`current = 1`) or in-progress (`current = 0`) set of a
 *   shard's results; its rows are in a file of its own (`segments` not null, result-files.ts)
 *   or in `results`. A put writes a new set (the file, or small transactions), then makes it current
 *   and drops the old one in one transaction, so readers see one set or the other and the write
 *   lock is never held while the caller produces rows;
 * - `attachments`, `leases`, `runs` (sync run records);
 * - `cache`: one row per entry, found through `h` (a 52-bit number derived from the key, see
 *   {@link cacheSlot}) under a unique index, the full key stored beside the value and compared on
 *   every lookup; an index on the stored time serves stats and prune.
 * @module
 */
import { createHash } from "node:crypto";
import type { DatabaseSync } from "node:sqlite";
import { LoomUsageError } from "../../../core/base/errors.ts";

/** Marks the file as Loom's (`PRAGMA application_id`, any 32-bit number: "LOOM" in ASCII). */
export const APPLICATION_ID = 0x4c4f4f4d;

/**
 * Migration `i` brings the schema from version `i` to `i + 1`: SQL, or a step that needs code.
 * Never edit one; append.
 */
const MIGRATIONS: readonly (string | ((db: DatabaseSync) => void))[] = [
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
  cacheBySlot,
  // Migration 3: a set's rows may be in a file beside the database (result-files.ts): then
  // `segments` holds its segments' bounds (JSON). An older Loom would read such a set as empty, so
  // it refuses this version.
  "ALTER TABLE result_sets ADD COLUMN segments TEXT",
  // Migration 4: records of sync runs (`StorageV2.runs`), one row each.
  "CREATE TABLE runs (id TEXT PRIMARY KEY, record TEXT NOT NULL)",
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
    for (let v = version; v < SCHEMA_VERSION; v++) {
      const step = MIGRATIONS[v];
      if (typeof step === "string") db.exec(step);
      else step(db);
    }
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

/**
 * Migration 2: the cache keyed by {@link cacheSlot} instead of the key's text. A text primary key
 * of random 64-character keys is a large index written at random: every commit rewrote most of
 * its leaf pages (a cold 100k-row run spent more time there than in everything else). A 52-bit
 * integer index is a fifth of its size, and the rows themselves are appended in insertion order.
 * The v1 entries are copied with their times; of two keys with one slot (improbable: 52 bits)
 * the one stored later is kept, as a set would.
 */
function cacheBySlot(db: DatabaseSync): void {
  db.exec(`CREATE TABLE cache_by_slot (
     h INTEGER NOT NULL,
     key TEXT NOT NULL,
     value TEXT NOT NULL,
     stored_at INTEGER NOT NULL,
     bytes INTEGER NOT NULL
   );
   CREATE UNIQUE INDEX cache_h ON cache_by_slot (h);`);
  const copy = db.prepare(
    "INSERT INTO cache_by_slot (h, key, value, stored_at, bytes) VALUES (?, ?, ?, ?, ?) " +
      "ON CONFLICT (h) DO UPDATE SET key = excluded.key, value = excluded.value, " +
      "stored_at = excluded.stored_at, bytes = excluded.bytes",
  );
  const old = db.prepare("SELECT key, value, stored_at, bytes FROM cache ORDER BY stored_at");
  for (const row of old.iterate()) {
    const { key, value, stored_at, bytes } = row as {
      key: string;
      value: string;
      stored_at: number;
      bytes: number;
    };
    copy.run(cacheSlot(key), key, value, stored_at, bytes);
  }
  db.exec(`DROP TABLE cache;
   ALTER TABLE cache_by_slot RENAME TO cache;
   CREATE INDEX cache_stored_at ON cache (stored_at, bytes);`);
}

/** Hex digits of a slot: 13 (52 bits), the most whole digits an exact JS number holds. */
const SLOT_DIGITS = 13;

/**
 * The cache's slot of `key`: a number below 2⁵², the same for a key every time. A key as Loom
 * makes them (SHA-256 in lowercase hex) is uniform already: its first 13 digits are the slot
 * (taken from any key of 64 characters that starts with 13 lowercase hex digits). Any other key
 * (the contract allows any string) takes those of its own SHA-256. 52 bits, not 63: the slot
 * stays an exact JS number (no BigInt per row, and a plain JSON number in a lookup's list), and
 * two of a million entries share one with a chance of about 1 in 9,000 (n² / 2⁵³). Sharing one
 * costs a miss, never a wrong answer: a lookup compares the stored key, and a set replaces the
 * entry in its slot.
 */
export function cacheSlot(key: string): number {
  const slot = key.length === 64 ? hexPrefix(key) : -1;
  return slot >= 0 ? slot : hexPrefix(createHash("sha256").update(key).digest("hex"));
}

/**
 * The number the first {@link SLOT_DIGITS} characters of `text` spell in lowercase hex, or -1.
 * Read a digit at a time: a regular expression test of the whole key cost three times as much
 * (every key of a run is looked up and set).
 */
function hexPrefix(text: string): number {
  let n = 0;
  for (let i = 0; i < SLOT_DIGITS; i++) {
    const c = text.charCodeAt(i);
    const digit = c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : -1;
    if (digit < 0) return -1;
    n = n * 16 + digit;
  }
  return n;
}
