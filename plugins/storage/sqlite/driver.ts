/**
 * Loads `node:sqlite` (built into Node ≥ 22.13 and Deno ≥ 2.2) once, without the
 * "SQLite is an experimental feature" warning Node prints on its first import. Only that one
 * warning is dropped, and only while the module loads; every other warning passes through.
 * @module
 */
import process from "node:process";

/** The `node:sqlite` module. */
export type SqliteModule = typeof import("node:sqlite");

/** Node's wording (lib/sqlite.js calls `emitExperimentalWarning('SQLite')`). */
const EXPERIMENTAL = "SQLite is an experimental feature";

let loading: Promise<SqliteModule> | undefined;

/** Whether `emitWarning`'s arguments are Node's warning about SQLite being experimental. */
function isSqliteExperimentalWarning(warning: unknown, rest: unknown[]): boolean {
  const message = typeof warning === "string" ? warning : (warning as Error | null)?.message;
  const type = typeof rest[0] === "string"
    ? rest[0]
    : (rest[0] as { type?: unknown } | undefined)?.type ?? (warning as Error | null)?.name;
  return type === "ExperimentalWarning" && String(message).startsWith(EXPERIMENTAL);
}

/** `node:sqlite`, imported on first use with its experimental warning silenced. */
export function loadSqlite(): Promise<SqliteModule> {
  loading ??= (async () => {
    const emitWarning = process.emitWarning;
    process.emitWarning = function (this: unknown, warning: unknown, ...rest: unknown[]) {
      if (isSqliteExperimentalWarning(warning, rest)) return;
      return Reflect.apply(emitWarning, this, [warning, ...rest]);
    } as typeof process.emitWarning;
    try {
      return await import("node:sqlite");
    } finally {
      process.emitWarning = emitWarning;
    }
  })();
  return loading;
}
