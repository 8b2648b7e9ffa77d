/**
 * Connection settings of the PostgreSQL store, the way libpq finds them: what the URL says, then
 * the `PG*` environment variables (PGHOST, PGPORT, PGUSER, PGDATABASE, PGPASSWORD, and PGSSLMODE
 * through `pg`), then for a password `~/.pgpass` (or `PGPASSFILE`). Credentials never come from
 * anywhere else, and nothing here prints them.
 * @module
 */
import { createRequire } from "node:module";
import type { ClientConfig } from "pg";
import { parseIntoClientConfig } from "pg-connection-string";

type Env = Readonly<Record<string, string | undefined>>;

/** What the `pgpass` package exports: looks a password up for these connection settings. */
type PgPassLookup = (
  connection: { host?: string; port?: number; database?: string; user?: string },
  done: (password: string | undefined) => void,
) => void;

/**
 * The pool settings for `url`. A password absent from the URL is looked up when connecting:
 * PGPASSWORD, then the password file. (`pg` would read the file itself but warns that this is
 * deprecated, so we call its `pgpass` helper through the documented password function.)
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
    config.password = (() => env.PGPASSWORD ?? passwordFromFile(config)) as () => Promise<string>;
  }
  return config;
}

function passwordFromFile(config: ClientConfig): Promise<string | undefined> {
  const lookup = createRequire(import.meta.url)("pgpass") as PgPassLookup;
  return new Promise((resolve) =>
    lookup({
      host: config.host,
      port: config.port,
      database: config.database,
      user: config.user,
    }, resolve)
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
