/**
 * The PostgreSQL store itself (loaded only when a `postgres://` state is opened, see `mod.ts`).
 * Every atomic step of the contract is one statement or one transaction; lease and cache times
 * come from the server's clock. Any driver error becomes one {@link LoomError} naming the store
 * with its password masked (see `faults.ts`).
 * @module
 */
import { randomUUID } from "node:crypto";
import pg from "pg";
import {
  assertJobId,
  type LeaseAttempt,
  type LeaseInfo,
  type ResultRow,
  type StorageV2,
  type StoredJob,
  type StoredRun,
} from "../../../core/spec/storage.ts";
import { maskUrl } from "../../../core/state/open.ts";
import { PageSize } from "../../../core/state/page-size.ts";
import { LoomUsageError } from "../../../core/base/errors.ts";
import { coalesceWrites } from "./coalesce.ts";
import { clientConfig, target } from "./connect.ts";
import { type FaultContext, type Phase, storeFault } from "./faults.ts";
import { migrate, SERVER_NOW_MS } from "./schema.ts";

/** Options of {@link openPostgresStorage}. */
export interface PostgresStorageOptions {
  /** `postgres://…` or `postgresql://…`; what it leaves out comes from libpq's variables. */
  readonly url: string;
  /** Environment for libpq's variables (default: the process's). */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Most connections kept open at once (default 10). */
  readonly maxConnections?: number;
  /** How long to wait for a connection before saying the server cannot be reached (15 s). */
  readonly connectTimeoutMs?: number;
}

/** An error thrown while reading the caller's rows (passed on to the caller as it was). */
class RowsFailed {
  readonly error: unknown;
  constructor(error: unknown) {
    this.error = error;
  }
}

/** `rows`, with any error it throws wrapped in {@link RowsFailed}. */
async function* guarded<T>(rows: Iterable<T> | AsyncIterable<T>): AsyncIterable<T> {
  const iterator = Symbol.asyncIterator in rows
    ? rows[Symbol.asyncIterator]()
    : (rows as Iterable<T>)[Symbol.iterator]();
  while (true) {
    let next: IteratorResult<T>;
    try {
      next = await iterator.next();
    } catch (error) {
      throw new RowsFailed(error);
    }
    if (next.done) return;
    yield next.value;
  }
}

/**
 * Whether `error` left the connection unusable (then it is dropped, not reused): anything but an
 * error the server reported on a live session, except the server shutting the session down.
 */
function connectionLost(error: unknown): boolean {
  const code = (error as { code?: unknown } | undefined)?.code;
  if (typeof code !== "string" || !/^[0-9A-Z]{5}$/.test(code)) return true;
  return code.startsWith("08") || code.startsWith("57");
}

/** Rows per INSERT when saving results (and their characters at most), and per page when reading them. */
const WRITE_BATCH = 5000;
/**
 * A megabyte of values an INSERT: `pg` builds the `text[]` literal in one synchronous stretch, and
 * 8 MiB of it (a 1M fetch's whole shard) left old-generation garbage that a badly timed collection
 * let pile up: the fetch's peak was 297–340 MiB in 7 runs, 204–216 MiB in 5 at 1 MiB.
 */
const WRITE_BATCH_CHARS = 1024 * 1024;
const READ_PAGE = 2000;
/** Characters of values per read page, about (a run of outcomes is dozens of them). */
const READ_PAGE_CHARS = 1024 * 1024;

/**
 * Connects, creates or migrates the schema, and returns the store.
 * @throws LoomError (exit code 2) when the server cannot be reached, refuses the login, has no
 * such database, or holds a schema from a newer Loom.
 */
export async function openPostgresStorage(options: PostgresStorageOptions): Promise<StorageV2> {
  if (!/^postgres(ql)?:\/\//i.test(options.url)) {
    throw new LoomUsageError(
      `not a PostgreSQL URL: ${JSON.stringify(maskUrl(options.url))}; ` +
        "write postgres://user@host:5432/database",
    );
  }
  const config = clientConfig(options.url, options.env ?? process.env);
  const where: FaultContext = {
    location: maskUrl(options.url),
    ...target(config),
    secret: typeof config.password === "string" && config.password ? config.password : undefined,
  };
  const pool = new pg.Pool({
    ...config,
    max: options.maxConnections ?? 10,
    connectionTimeoutMillis: options.connectTimeoutMs ?? 15_000,
    idleTimeoutMillis: 10_000,
    // An idle pool never keeps the process alive.
    allowExitOnIdle: true,
  });
  // An idle connection that breaks (server restart) emits 'error' on the pool; without a
  // listener that would crash the process. The next query reports the fault instead.
  pool.on("error", () => {});
  const fault = (phase: Phase) => (error: unknown) =>
    Promise.reject(storeFault(error, phase, where));

  try {
    const client = await pool.connect();
    try {
      await migrate(client, where.location);
    } finally {
      client.release();
    }
  } catch (error) {
    await pool.end().catch(() => {});
    throw storeFault(error, "open", where);
  }

  /** Reads in progress, each holding a connection until it ends. */
  const readers = new Set<{ client: pg.PoolClient; released: boolean }>();

  /** Runs one statement. */
  const query = <R extends pg.QueryResultRow>(sql: string, params: unknown[] = []) =>
    pool.query<R>(sql, params).catch(fault("run"));

  /** Runs `work` on one connection, guarded against its 'error' event while checked out. */
  async function withClient<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await pool.connect().catch(fault("run"));
    let broken: Error | undefined;
    const onError = (error: Error) => (broken = error);
    client.on("error", onError);
    try {
      return await work(client);
    } catch (error) {
      // The caller's own rows failed: the connection is fine, and the error is theirs.
      if (error instanceof RowsFailed) throw error.error;
      if (connectionLost(error)) broken ??= error as Error;
      throw storeFault(error, "run", where);
    } finally {
      client.off("error", onError);
      client.release(broken);
    }
  }

  /** Runs `work` in a transaction, rolled back when it throws. */
  const transaction = <T>(work: (client: pg.PoolClient) => Promise<T>, begin = "BEGIN") =>
    withClient(async (client) => {
      await client.query(begin);
      try {
        const result = await work(client);
        await client.query("COMMIT");
        return result;
      } catch (error) {
        await client.query("ROLLBACK").catch(() => {});
        throw error;
      }
    });

  const lease = (row: { holder: string; token: string; expires_at: string }): LeaseInfo => ({
    holder: row.holder,
    token: row.token,
    expiresAt: Number(row.expires_at),
  });

  return {
    specificationVersion: "loom.storage.v2",
    name: "postgres",
    location: where.location,
    jobs: {
      async get(id) {
        assertJobId(id);
        const { rows } = await query<StoredJob>(
          "SELECT id, revision, record FROM loom_jobs WHERE id = $1",
          [id],
        );
        return rows[0];
      },
      async list() {
        return (await query<StoredJob>("SELECT id, revision, record FROM loom_jobs")).rows;
      },
      async put(id, record, expected) {
        assertJobId(id);
        const { rows } = expected === 0
          ? await query<{ revision: number }>(
            "INSERT INTO loom_jobs (id, revision, record) VALUES ($1, 1, $2) " +
              "ON CONFLICT (id) DO NOTHING RETURNING revision",
            [id, record],
          )
          : await query<{ revision: number }>(
            "UPDATE loom_jobs SET revision = revision + 1, record = $2 " +
              "WHERE id = $1 AND revision = $3 RETURNING revision",
            [id, record, expected],
          );
        return rows[0]?.revision;
      },
      async remove(id) {
        assertJobId(id);
        await transaction(async (client) => {
          for (const table of ["loom_results", "loom_result_sets", "loom_attachments"]) {
            await client.query(`DELETE FROM ${table} WHERE job = $1`, [id]);
          }
          await client.query("DELETE FROM loom_leases WHERE name = $1", [`job:${id}`]);
          await client.query("DELETE FROM loom_jobs WHERE id = $1", [id]);
        });
      },
    },
    runs: {
      async get(id) {
        const { rows } = await query<{ record: string }>(
          "SELECT record FROM loom_runs WHERE id = $1",
          [id],
        );
        return rows[0]?.record;
      },
      async list() {
        return (await query<StoredRun>("SELECT id, record FROM loom_runs")).rows;
      },
      async put(id, record) {
        assertJobId(id);
        await query(
          "INSERT INTO loom_runs (id, record) VALUES ($1, $2) " +
            "ON CONFLICT (id) DO UPDATE SET record = excluded.record",
          [id, record],
        );
      },
      async remove(id) {
        await query("DELETE FROM loom_runs WHERE id = $1", [id]);
      },
    },
    results: {
      async put(job, shard, rows) {
        assertJobId(job);
        await transaction(async (client) => {
          // Marking the set first locks its row, so two writers of one shard take turns.
          await client.query(
            "INSERT INTO loom_result_sets (job, shard, saved_at) " +
              `VALUES ($1, $2, ${SERVER_NOW_MS}) ` +
              "ON CONFLICT (job, shard) DO UPDATE SET saved_at = excluded.saved_at",
            [job, shard],
          );
          await client.query("DELETE FROM loom_results WHERE job = $1 AND shard = $2", [
            job,
            shard,
          ]);
          let numbers: number[] = [];
          let values: string[] = [];
          let chars = 0;
          const flush = async () => {
            if (numbers.length === 0) return;
            await client.query(
              "INSERT INTO loom_results (job, shard, row_no, value) " +
                "SELECT $1, $2, r, v FROM unnest($3::int[], $4::text[]) AS t(r, v)",
              [job, shard, numbers, values],
            );
            numbers = [];
            values = [];
            chars = 0;
          };
          for await (const row of guarded(rows)) {
            numbers.push(row.row);
            values.push(row.value);
            chars += row.value.length;
            if (numbers.length >= WRITE_BATCH || chars >= WRITE_BATCH_CHARS) await flush();
          }
          await flush();
        });
      },
      async has(job, shard) {
        const { rows } = await query(
          "SELECT 1 FROM loom_result_sets WHERE job = $1 AND shard = $2",
          [job, shard],
        );
        return rows.length > 0;
      },
      read(job, shard) {
        // Keyset pages inside one REPEATABLE READ transaction: every page comes from the same
        // snapshot, so a put committed meanwhile is not seen half-way.
        return {
          async *[Symbol.asyncIterator]() {
            const client = await pool.connect().catch(fault("run"));
            let broken: Error | undefined;
            const onError = (error: Error) => (broken = error);
            client.on("error", onError);
            const reader = { client, released: false };
            readers.add(reader);
            let open = false;
            try {
              await client.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
              open = true;
              let after = -1;
              const size = new PageSize(READ_PAGE, READ_PAGE_CHARS);
              while (true) {
                const limit = size.rows;
                const { rows } = await client.query<{ row_no: number; value: string }>(
                  "SELECT row_no, value FROM loom_results " +
                    "WHERE job = $1 AND shard = $2 AND row_no > $3 ORDER BY row_no LIMIT $4",
                  [job, shard, after, limit],
                );
                let chars = 0;
                for (const r of rows) {
                  chars += r.value.length;
                  yield { row: r.row_no, value: r.value } as ResultRow;
                }
                if (rows.length < limit) break;
                after = rows[rows.length - 1].row_no;
                size.after(rows.length, chars);
              }
              open = false;
              await client.query("COMMIT");
            } catch (error) {
              if (connectionLost(error)) broken ??= error as Error;
              throw storeFault(error, "run", where);
            } finally {
              readers.delete(reader);
              if (!reader.released) {
                reader.released = true;
                // Left early (break): end the read-only transaction before reuse.
                if (open && !broken) await client.query("ROLLBACK").catch(() => {});
                client.off("error", onError);
                client.release(broken);
              }
            }
          },
        };
      },
    },
    attachments: {
      async put(job, name, value) {
        assertJobId(job);
        await query(
          "INSERT INTO loom_attachments (job, name, value) VALUES ($1, $2, $3) " +
            "ON CONFLICT (job, name) DO UPDATE SET value = excluded.value",
          [job, name, value],
        );
      },
      async get(job, name) {
        const { rows } = await query<{ value: string }>(
          "SELECT value FROM loom_attachments WHERE job = $1 AND name = $2",
          [job, name],
        );
        return rows[0]?.value;
      },
    },
    leases: {
      async acquire(name, holder, ttlMs, replacing): Promise<LeaseAttempt> {
        // Loops only when the lease we were refused is released before we could read it.
        while (true) {
          const taken = await query<{ holder: string; token: string; expires_at: string }>(
            "INSERT INTO loom_leases AS l (name, holder, token, expires_at) " +
              `VALUES ($1, $2, $3, ${SERVER_NOW_MS} + $4) ` +
              "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, " +
              "token = excluded.token, expires_at = excluded.expires_at " +
              `WHERE l.expires_at <= ${SERVER_NOW_MS} OR l.token = $5 ` +
              "RETURNING holder, token, expires_at",
            [name, holder, randomUUID(), Math.ceil(ttlMs), replacing ?? null],
          );
          if (taken.rows[0]) return { ok: true, lease: lease(taken.rows[0]) };
          const current = await query<{ holder: string; token: string; expires_at: string }>(
            "SELECT holder, token, expires_at FROM loom_leases WHERE name = $1",
            [name],
          );
          if (current.rows[0]) return { ok: false, current: lease(current.rows[0]) };
        }
      },
      async renew(name, token, ttlMs) {
        const { rowCount } = await query(
          `UPDATE loom_leases SET expires_at = ${SERVER_NOW_MS} + $3 ` +
            "WHERE name = $1 AND token = $2",
          [name, token, Math.ceil(ttlMs)],
        );
        return (rowCount ?? 0) > 0;
      },
      async release(name, token) {
        await query("DELETE FROM loom_leases WHERE name = $1 AND token = $2", [name, token]);
      },
    },
    cache: {
      async get(key) {
        const { rows } = await query<{ value: string }>(
          "SELECT value FROM loom_cache WHERE key = $1",
          [key],
        );
        return rows[0]?.value;
      },
      async getMany(keys) {
        const { rows } = await query<{ key: string; value: string }>(
          "SELECT key, value FROM loom_cache WHERE key = ANY($1::text[])",
          [[...new Set(keys)]],
        );
        return new Map(rows.map((row) => [row.key, row.value]));
      },
      set: coalesceWrites(async (keys, values) => {
        await query(
          `INSERT INTO loom_cache (key, value, stored_at) SELECT k, v, ${SERVER_NOW_MS} ` +
            "FROM unnest($1::text[], $2::text[]) AS t(k, v) " +
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value, stored_at = excluded.stored_at",
          [keys, values],
        );
      }),
      async clear() {
        return (await query("DELETE FROM loom_cache")).rowCount ?? 0;
      },
      async prune(before) {
        return (await query("DELETE FROM loom_cache WHERE stored_at < $1", [Math.floor(before)]))
          .rowCount ?? 0;
      },
      async stats() {
        const { rows } = await query<
          { entries: string; bytes: string; oldest: string | null; newest: string | null }
        >(
          "SELECT count(*) AS entries, " +
            "coalesce(sum(octet_length(key) + octet_length(value)), 0) AS bytes, " +
            "min(stored_at) AS oldest, max(stored_at) AS newest FROM loom_cache",
        );
        const { entries, bytes, oldest, newest } = rows[0];
        return {
          entries: Number(entries),
          bytes: Number(bytes),
          oldest: oldest === null ? undefined : Number(oldest),
          newest: newest === null ? undefined : Number(newest),
        };
      },
    },
    async close() {
      // A read nobody finished (an iterator dropped without return()) would hold its connection,
      // and pool.end() would wait for it forever: drop those connections first.
      for (const reader of readers) {
        reader.released = true;
        reader.client.release(new Error("the store was closed"));
      }
      readers.clear();
      await pool.end();
    },
  };
}
