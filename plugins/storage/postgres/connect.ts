/**
 * Connection settings of the PostgreSQL store, the way libpq finds them: what the URL says, then
 * the `PG*` environment variables (PGHOST, PGPORT, PGUSER, PGDATABASE, PGPASSWORD, and PGSSLMODE
 * through `pg`), then for a password `~/.pgpass` (or `PGPASSFILE`). Credentials never come from
 * anywhere else, and nothing here prints them.
 * @module
 */
import { createReadStream, type ReadStream, type Stats } from "node:fs";
import { stat } from "node:fs/promises";
import { createRequire } from "node:module";
import type { ClientConfig } from "pg";
import { parseIntoClientConfig } from "pg-connection-string";

type Env = Readonly<Record<string, string | undefined>>;

/** The settings a password-file line is matched against. */
interface PgPassTarget {
  host?: string;
  port?: number;
  database?: string;
  user?: string;
}

/** The parts of the `pgpass` package's helper used here (it ships no types). */
interface PgPassHelper {
  /** `PGPASSFILE`, else `~/.pgpass`, from the environment given. */
  getFileName(env: Env): string;
  /** Whether the file may be used (a regular file, mode 0600 or stricter). */
  usePgPass(stats: Stats, file: string): boolean;
  /** The password of the first matching line, or undefined. */
  getPassword(target: PgPassTarget, stream: ReadStream, done: (pw?: string) => void): void;
}

/**
 * The pool settings for `url`. A password absent from the URL is looked up when connecting:
 * PGPASSWORD, then the password file. (`pg` would read the file itself, but from the process's
 * environment and with a deprecation warning, so we call its `pgpass` helper ourselves through
 * the documented password function.)
 */
export function clientConfig(url: string, env: Env): ClientConfig {
  const parsed = parseIntoClientConfig(url);
  const config: ClientConfig = {
    ...parsed,
    host: parsed.host || env.PGHOST || "localhost",
    port: Number(parsed.port || env.PGPORT || 5432),
    user: parsed.user || env.PGUSER || env.USER || env.LOGNAME,
    database: parsed.database || env.PGDATABASE || parsed.user || env.PGUSER || env.USER,
  };
  if (!parsed.password) {
    // pg accepts undefined here (no password), though its types say string.
    config.password = (() => env.PGPASSWORD ?? passwordFromFile(config, env)) as () => Promise<
      string
    >;
  }
  return config;
}

/**
 * Looks the password up in the password file the way `pgpass` does for `pg`, but with the
 * environment Loom was given (its PGPASSFILE and HOME), not necessarily the process's.
 */
async function passwordFromFile(config: ClientConfig, env: Env): Promise<string | undefined> {
  const helper = createRequire(import.meta.url)("pgpass/lib/helper.js") as PgPassHelper;
  const file = helper.getFileName(env);
  const stats = await stat(file).catch(() => undefined);
  if (!stats || !helper.usePgPass(stats, file)) return undefined;
  const target = {
    host: config.host,
    port: config.port,
    database: config.database,
    user: config.user,
  };
  return await new Promise((resolve) =>
    helper.getPassword(target, createReadStream(file), resolve)
  );
}

/** The user and database the settings name (for messages such as "createdb …"). */
export function target(
  config: ClientConfig,
): { user: string; database: string; host: string; port: number } {
  return {
    user: config.user ?? "",
    database: config.database ?? "",
    host: config.host ?? "localhost",
    port: config.port ?? 5432,
  };
}
