/**
 * The PostgreSQL store against a real server (core/test-support/postgres.ts): schema and
 * migrations, the faults a user meets and their messages, concurrency between two instances.
 */
import assert from "node:assert/strict";
import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type AddressInfo, createServer, type Socket } from "node:net";
import { inspect } from "node:util";
import { after, before, describe, it } from "node:test";
import pg from "pg";
import { LoomError } from "../../../core/base/errors.ts";
import type { LeaseAttempt, StorageV2 } from "../../../core/spec/storage.ts";
import {
  freePort,
  type PostgresServer,
  startPostgres,
} from "../../../core/test-support/postgres.ts";
import plugin, { createPostgresStorage } from "./mod.ts";
import { migrate, MIGRATIONS, SCHEMA_VERSION } from "./schema.ts";

const PASSWORD = "Sup3r-S3cret-Pa55";

let server: PostgresServer;
const open: StorageV2[] = [];

async function store(url: string, env: Record<string, string | undefined> = {}) {
  const s = await createPostgresStorage({ url, env });
  open.push(s);
  return s;
}

async function sql<R extends pg.QueryResultRow>(url: string, text: string, params: unknown[] = []) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<R>(text, params)).rows;
  } finally {
    await client.end();
  }
}

/** The LoomError `work` rejects with; fails unless it is one and the password is nowhere in it. */
async function loomError(work: () => Promise<unknown>): Promise<LoomError> {
  try {
    await work();
  } catch (error) {
    assert.ok(LoomError.isInstance(error), `not a LoomError: ${inspect(error)}`);
    assert.ok(!inspect(error, { depth: 5 }).includes(PASSWORD), "the password leaked");
    return error;
  }
  assert.fail("expected a rejection");
}

const withoutPassword = (url: string) => url.replace(`:${PASSWORD}@`, "@");

describe("postgres storage", () => {
  before(async () => {
    server = await startPostgres({ password: PASSWORD });
  });
  after(async () => {
    await Promise.all(open.map((s) => s.close().catch(() => {})));
    await server?.stop();
  });

  it("creates its schema on a fresh database and masks the password in location", async () => {
    const url = await server.createDatabase();
    const s = await store(url);
    assert.equal(s.name, "postgres");
    assert.equal(s.location, url.replace(PASSWORD, "***"));
    assert.ok(!s.location.includes(PASSWORD));
    const tables = await sql<{ name: string }>(
      url,
      "SELECT tablename AS name FROM pg_tables WHERE tablename LIKE 'loom_%' ORDER BY 1",
    );
    assert.deepEqual(tables.map((t) => t.name), [
      "loom_attachments",
      "loom_cache",
      "loom_jobs",
      "loom_leases",
      "loom_result_sets",
      "loom_results",
      "loom_runs",
      "loom_schema",
    ]);
    assert.deepEqual(await sql(url, "SELECT version FROM loom_schema"), [
      { version: SCHEMA_VERSION },
    ]);
  });

  it("lets several instances open a fresh database at once, migrating it once", async () => {
    const url = await server.createDatabase();
    const stores = await Promise.all([1, 2, 3, 4].map(() => store(url)));
    assert.deepEqual(await sql(url, "SELECT version FROM loom_schema"), [
      { version: SCHEMA_VERSION },
    ]);
    await stores[0].cache.set("a".repeat(64), "v");
    assert.equal(await stores[3].cache.get("a".repeat(64)), "v");
  });

  it("applies only the migrations a database has not had, in order, once", async () => {
    const url = await server.createDatabase();
    await (await store(url)).close();
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      const next = [...MIGRATIONS, "CREATE TABLE loom_added (x integer)"];
      assert.equal(await migrate(client, "here", next), SCHEMA_VERSION);
      assert.equal(await migrate(client, "here", next), next.length);
      const { rows } = await client.query("SELECT version FROM loom_schema");
      assert.deepEqual(rows, [{ version: next.length }]);
    } finally {
      await client.end();
    }
  });

  it("refuses a database a newer Loom migrated further", async () => {
    const url = await server.createDatabase();
    await (await store(url)).close();
    await sql(url, "UPDATE loom_schema SET version = 99");
    const error = await loomError(() => store(url));
    assert.match(
      error.message,
      new RegExp(
        `written by a newer Loom \\(schema version 99; this Loom knows up to ${SCHEMA_VERSION}\\)`,
      ),
    );
    assert.ok(error.message.includes(url.replace(PASSWORD, "***")));
    assert.equal(error.exitCode, 2);
  });

  it("says clearly when nothing listens on the port", async () => {
    const port = await freePort();
    const url = `postgres://loom:${PASSWORD}@127.0.0.1:${port}/loom`;
    const error = await loomError(() => store(url));
    assert.equal(
      error.message,
      `cannot reach the PostgreSQL store at postgres://loom:***@127.0.0.1:${port}/loom: ` +
        `nothing listens on 127.0.0.1:${port} (connection refused); ` +
        "check that the server runs and that LOOM_STATE names the right host and port",
    );
    assert.equal(error.exitCode, 2);
  });

  it("says clearly when the server does not answer in time", async () => {
    // A listener that accepts connections and never says a word.
    const sockets = new Set<Socket>();
    const silent = createServer((socket) => void sockets.add(socket));
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    const { port } = silent.address() as AddressInfo;
    try {
      const url = `postgres://loom:${PASSWORD}@127.0.0.1:${port}/loom`;
      const started = Date.now();
      const error = await loomError(() =>
        createPostgresStorage({ url, env: {}, connectTimeoutMs: 300 })
      );
      assert.equal(
        error.message,
        `cannot reach the PostgreSQL store at postgres://loom:***@127.0.0.1:${port}/loom: ` +
          "no answer in time; check that the server runs and that LOOM_STATE names the right " +
          "host and port",
      );
      assert.ok(Date.now() - started < 20_000);
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }
  });

  it("says clearly when the host is unknown", async () => {
    const error = await loomError(() =>
      store(`postgres://loom:${PASSWORD}@no-such-host.invalid/x`)
    );
    assert.match(
      error.message,
      /^cannot reach the PostgreSQL store at postgres:\/\/loom:\*\*\*@no-such-host\.invalid\/x: host "no-such-host\.invalid" is unknown/,
    );
  });

  it("says the password was refused, and where to fix it, without the password", async () => {
    const wrong = `postgres://loom:${PASSWORD}-but-wrong@127.0.0.1:${server.port}/postgres`;
    const error = await loomError(() => store(wrong));
    assert.equal(
      error.message,
      `the PostgreSQL store at postgres://loom:***@127.0.0.1:${server.port}/postgres refused ` +
        `the password for user "loom": check the password in LOOM_STATE, PGPASSWORD or ~/.pgpass`,
    );
  });

  it("says so when the server wants a password and none was given", async () => {
    const url = withoutPassword(server.url());
    const env = { PGPASSFILE: join(tmpdir(), "loom-no-such-pgpass") };
    const error = await loomError(() => store(url, env));
    assert.match(error.message, /refused to connect without a password for user "loom"/);
  });

  it("takes the password from PGPASSWORD when the URL has none", async () => {
    const s = await store(withoutPassword(server.url()), { PGPASSWORD: PASSWORD });
    assert.equal(s.location, withoutPassword(server.url()));
    await s.cache.set("b".repeat(64), "ok");
  });

  it("takes the password from the password file (PGPASSFILE / ~/.pgpass)", async () => {
    const home = await mkdtemp(join(tmpdir(), "loom-pgpass-"));
    try {
      const line = `127.0.0.1:${server.port}:*:loom:${PASSWORD}\n`;
      await writeFile(join(home, ".pgpass"), line, { mode: 0o600 });
      await writeFile(join(home, "other"), line, { mode: 0o600 });
      const url = withoutPassword(server.url());
      for (const env of [{ HOME: home }, { PGPASSFILE: join(home, "other") }]) {
        const s = await store(url, env);
        assert.equal(await s.cache.get("c".repeat(64)), undefined);
      }
      // A file others can read is ignored, as libpq does.
      await chmod(join(home, ".pgpass"), 0o644);
      const error = await loomError(() => store(url, { HOME: home }));
      assert.match(error.message, /refused to connect without a password/);
    } finally {
      await rm(home, { recursive: true, force: true });
    }
  });

  it("says a missing database is missing and how to create it", async () => {
    const error = await loomError(() => store(server.url("no_such_db")));
    assert.equal(
      error.message,
      `the PostgreSQL store at postgres://loom:***@127.0.0.1:${server.port}/no_such_db: ` +
        `database "no_such_db" does not exist; create it: ` +
        `createdb -h 127.0.0.1 -p ${server.port} -U loom no_such_db`,
    );
    assert.equal(error.exitCode, 2);
  });

  it("says permission was denied when the user may not create the tables", async () => {
    const url = await server.createDatabase();
    await sql(
      server.url(),
      `DO $$ BEGIN
      IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'visitor') THEN
        CREATE ROLE visitor LOGIN PASSWORD '${PASSWORD}';
      END IF; END $$`,
    );
    const visitor = url.replace("//loom:", "//visitor:");
    const error = await loomError(() => store(visitor));
    assert.match(
      error.message,
      /^the PostgreSQL store at postgres:\/\/visitor:\*\*\*@.*: permission denied \(permission denied for schema public\)/,
    );
  });

  it("lets exactly one of two instances win each compare-and-set", async () => {
    const url = await server.createDatabase();
    const [a, b] = [await store(url), await store(url)];
    for (let round = 0; round < 20; round++) {
      const id = `job-${round}`;
      const created = await Promise.all([a.jobs.put(id, "a", 0), b.jobs.put(id, "b", 0)]);
      assert.deepEqual(created.filter((r) => r !== undefined), [1]);
      const updated = await Promise.all([a.jobs.put(id, "a2", 1), b.jobs.put(id, "b2", 1)]);
      assert.deepEqual(updated.filter((r) => r !== undefined), [2]);
      const winner = updated[0] === 2 ? "a2" : "b2";
      assert.deepEqual(await b.jobs.get(id), { id, revision: 2, record: winner });
    }
  });

  it("lets two instances replace one shard's results at once, one set winning whole", async () => {
    const url = await server.createDatabase();
    const [a, b] = [await store(url), await store(url)];
    const rows = (n: number, tag: string) =>
      Array.from({ length: n }, (_, row) => ({ row, value: `${tag}${row}` }));
    for (let round = 0; round < 5; round++) {
      await Promise.all([
        a.results.put("j", 3, rows(3000, "a")),
        b.results.put("j", 3, rows(2500, "b")),
      ]);
      const read: string[] = [];
      for await (const r of a.results.read("j", 3)) read.push(r.value);
      const tag = read[0][0];
      assert.deepEqual(read, rows(tag === "a" ? 3000 : 2500, tag).map((r) => r.value));
    }
  });

  it("commits cache writes made at once together, the last value of a key winning", async () => {
    const url = await server.createDatabase();
    const s = await store(url);
    const key = (k: number) => k.toString(16).padStart(64, "0");
    await Promise.all(Array.from({ length: 200 }, (_, i) => s.cache.set(key(i % 50), `v${i}`)));
    for (let k = 0; k < 50; k++) assert.equal(await s.cache.get(key(k)), `v${150 + k}`);
    assert.equal((await s.cache.stats()).entries, 50);
    const [{ commits }] = await sql<{ commits: string }>(
      url,
      "SELECT count(DISTINCT xmin::text) AS commits FROM loom_cache",
    );
    assert.ok(Number(commits) <= 3, `200 writes in ${commits} commits`);
  });

  it("expires leases on the server's clock", async () => {
    const url = await server.createDatabase();
    const [a, b] = [await store(url), await store(url)];
    const [{ now }] = await sql<{ now: string }>(
      url,
      "SELECT (extract(epoch from clock_timestamp()) * 1000)::bigint AS now",
    );
    const first = await a.leases.acquire("job:x", "A", 400);
    assert.ok(first.ok);
    const serverNow = Number(now);
    assert.ok(first.lease.expiresAt >= serverNow + 400, "expiry is server time + ttl");
    assert.ok(first.lease.expiresAt < serverNow + 400 + 30_000);
    const refused = await b.leases.acquire("job:x", "B", 400);
    assert.deepEqual(refused, { ok: false, current: first.lease });
    let taken: LeaseAttempt = refused;
    for (let i = 0; i < 200 && !taken.ok; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      taken = await b.leases.acquire("job:x", "B", 60_000);
    }
    assert.ok(taken.ok, "the lease expired and was taken over");
    assert.equal(taken.lease.holder, "B");
    assert.equal(await a.leases.renew("job:x", first.lease.token, 1000), false);
  });

  it("keeps the previous results when the rows being saved fail, and reads a snapshot", async () => {
    const url = await server.createDatabase();
    const s = await store(url);
    const rows = (n: number, tag: string) =>
      Array.from({ length: n }, (_, row) => ({ row, value: `${tag}${row}` }));
    await s.results.put("j", 0, rows(5000, "old"));
    const broke = new Error("the input broke");
    async function* failing() {
      yield* rows(6000, "new");
      throw broke;
    }
    await assert.rejects(s.results.put("j", 0, failing()), (error) => error === broke);
    const reading = s.results.read("j", 0)[Symbol.asyncIterator]();
    try {
      assert.deepEqual((await reading.next()).value, { row: 0, value: "old0" });
      await s.results.put("j", 0, rows(7000, "new"));
      let count = 1;
      for (let next = await reading.next(); !next.done; next = await reading.next()) {
        assert.equal(next.value.value, `old${next.value.row}`);
        count++;
      }
      assert.equal(count, 5000, "the reader saw the set it started on");
    } finally {
      await reading.return?.(); // a failed assertion must not leave a connection checked out
    }
    let fresh = 0;
    for await (const r of s.results.read("j", 0)) assert.equal(r.value, `new${fresh++}`);
    assert.equal(fresh, 7000);
  });

  it("closes, and lets the process exit, even with a read left unfinished", async () => {
    const s = await createPostgresStorage({ url: await server.createDatabase() });
    await s.results.put("j", 0, [{ row: 0, value: "a" }, { row: 1, value: "b" }]);
    const reading = s.results.read("j", 0)[Symbol.asyncIterator]();
    assert.deepEqual((await reading.next()).value, { row: 0, value: "a" });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const closed = await Promise.race([
      s.close().then(() => "closed"),
      new Promise((resolve) => timer = setTimeout(() => resolve("still open"), 10_000)),
    ]);
    clearTimeout(timer);
    assert.equal(closed, "closed");
  });

  it("is the registered postgres plugin and reads libpq variables from its context", async () => {
    const s = await plugin.create({ url: withoutPassword(server.url()) }, {
      env: { PGPASSWORD: PASSWORD },
      home: tmpdir(),
    });
    open.push(s);
    assert.equal(plugin.name, "postgres");
    assert.equal(await s.cache.get("d".repeat(64)), undefined);
  });
});

describe("postgres storage when the server goes away", () => {
  it("rejects with a clear error, never crashes, and closes", async () => {
    const lonely = await startPostgres({ password: PASSWORD });
    let s: StorageV2 | undefined;
    try {
      s = await createPostgresStorage({ url: await lonely.createDatabase() });
      const rows = Array.from({ length: 4500 }, (_, row) => ({ row, value: `v${row}` }));
      await s.results.put("j", 1, rows);
      await s.cache.set("e".repeat(64), "kept");
      // Several idle pooled connections, each of which the shutdown breaks.
      const store = s;
      await Promise.all([1, 2, 3, 4].map(() => store.cache.get("e".repeat(64))));
      const reading = s.results.read("j", 1)[Symbol.asyncIterator]();
      assert.equal((await reading.next()).value?.row, 0);
      await lonely.stop();
      const midRead = await loomError(async () => {
        for (let next = await reading.next(); !next.done; next = await reading.next());
      });
      assert.match(midRead.message, /^the PostgreSQL store at postgres:\/\/loom:\*\*\*@127/);
      assert.match(midRead.message, /went away mid-run|cannot reach/);
      assert.equal(midRead.exitCode, 1);
      const later = await loomError(() => s!.cache.get("e".repeat(64)));
      assert.match(later.message, /went away mid-run|cannot reach/);
      assert.equal(later.exitCode, 1);
    } finally {
      await s?.close();
      await lonely.stop();
    }
  });
});
