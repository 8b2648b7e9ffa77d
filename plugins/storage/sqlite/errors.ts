/**
 * What SQLite's errors mean for a Loom user: a {@link LoomError} that names the database file and
 * says what to do, instead of a stack trace. Errors that are none of these (a bug in a statement)
 * are left as they are.
 * @module
 */
import { closeSync, openSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import process from "node:process";
import {
  errorMessage,
  LoomError,
  LoomUsageError,
  systemFaultMessage,
} from "../../../core/base/errors.ts";

/** SQLite's primary result codes (the low 8 bits of an extended code), from sqlite3.h. */
export const SQLITE = {
  BUSY: 5,
  LOCKED: 6,
  READONLY: 8,
  IOERR: 10,
  CORRUPT: 11,
  FULL: 13,
  CANTOPEN: 14,
  NOTADB: 26,
} as const;

/**
 * SQLite's own texts for those codes (sqlite3ErrStr), for runtimes whose errors carry no code.
 * unverified: Deno's node:sqlite errors have only `code: "ERR_SQLITE_ERROR"` and SQLite's text as
 * the message (observed with Deno 2.9; Node 22 adds `errcode` and `errstr`).
 */
const TEXTS: ReadonlyArray<[RegExp, number]> = [
  [/database or disk is full/i, SQLITE.FULL],
  [/readonly database/i, SQLITE.READONLY],
  [/database is locked/i, SQLITE.BUSY],
  [/database table is locked/i, SQLITE.LOCKED],
  [/disk image is malformed/i, SQLITE.CORRUPT],
  [/file is not a database/i, SQLITE.NOTADB],
  [/unable to open database file/i, SQLITE.CANTOPEN],
  [/disk I\/O error/i, SQLITE.IOERR],
];

/** The primary result code of a `node:sqlite` error, or undefined for any other error. */
export function sqliteCode(error: unknown): number | undefined {
  const e = error as { code?: unknown; errcode?: unknown } | null;
  if (typeof e !== "object" || e === null || e.code !== "ERR_SQLITE_ERROR") return undefined;
  if (typeof e.errcode === "number") return e.errcode & 0xff;
  const message = errorMessage(error);
  return TEXTS.find(([text]) => text.test(message))?.[1];
}

/**
 * Why the folder of `file` cannot take a write (a read-only filesystem, say), in Loom's words;
 * found by writing a probe file there (Deno's `access` checks only the mode bits).
 */
function folderFault(file: string, home: string | undefined): string | undefined {
  const probe = join(dirname(file), `.loom-probe-${process.pid}`);
  try {
    closeSync(openSync(probe, "w", 0o600));
    rmSync(probe, { force: true });
    return undefined;
  } catch (error) {
    return systemFaultMessage(error, home);
  }
}

/** Where the file is, for messages: `the state database /x/state.db`. */
const named = (file: string) => `the state database ${file}`;

/** What to do about a place that cannot be used, with LOOM_HOME or LOOM_STATE as the way out. */
function elsewhere(file: string, home: string | undefined): string {
  const inHome = home !== undefined && file.startsWith(`${home}/`);
  return inHome
    ? `fix it, or set LOOM_HOME (now ${home}) or LOOM_STATE to another place`
    : "fix it, or set LOOM_STATE to another file";
}

/**
 * `error` as Loom tells it, when it is a known fault of the database file (full disk, read-only,
 * busy, damaged, not a database, cannot open) or of the system (from `node:fs`); otherwise
 * `error` itself. `home` is LOOM_HOME, named when the file lies under it.
 */
export function storeError(error: unknown, file: string, home?: string): unknown {
  if (LoomError.isInstance(error)) return error;
  const code = sqliteCode(error);
  const said = errorMessage(error);
  const cause = { cause: error };
  switch (code) {
    case SQLITE.FULL:
      return new LoomError(
        `cannot write ${named(file)}: the disk is full [SQLITE_FULL]; ` +
          "free some space and run the command again",
        cause,
      );
    case SQLITE.READONLY:
      return new LoomError(
        `cannot write ${named(file)}: it is read-only (the file, its folder or the filesystem) ` +
          `[SQLITE_READONLY]; ${elsewhere(file, home)}`,
        cause,
      );
    case SQLITE.BUSY:
    case SQLITE.LOCKED:
      return new LoomError(
        `${named(file)} is busy: another Loom process kept it locked too long ` +
          `[${code === SQLITE.BUSY ? "SQLITE_BUSY" : "SQLITE_LOCKED"}]; run the command again`,
        cause,
      );
    case SQLITE.CORRUPT:
      return new LoomError(
        `${named(file)} is damaged (${said}) [SQLITE_CORRUPT]; move it away and run again ` +
          "(its jobs and cached answers are then forgotten), or restore a backup",
        cause,
      );
    case SQLITE.NOTADB:
      return new LoomUsageError(
        `${file} is not a SQLite database (${said}), so Loom cannot keep its state there ` +
          "[SQLITE_NOTADB]; move the file away, or set LOOM_STATE to another file",
        cause,
      );
    case SQLITE.CANTOPEN: {
      // The folder says why: a read-only filesystem, a folder that is gone or not writable.
      const folder = folderFault(file, home);
      if (folder !== undefined) {
        return new LoomError(`cannot open ${named(file)}: ${folder}`, cause);
      }
      return new LoomError(
        `cannot open ${named(file)} [SQLITE_CANTOPEN]: its folder must exist and be writable; ` +
          elsewhere(file, home),
        cause,
      );
    }
    case SQLITE.IOERR:
      return new LoomError(
        `cannot use ${named(file)}: input/output error (${said}) [SQLITE_IOERR]; check the disk`,
        cause,
      );
  }
  const fault = systemFaultMessage(error, home);
  if (fault !== undefined) {
    // `cannot open /x/state.db: …` says it once: `cannot open the state database /x/state.db: …`.
    const said = fault.includes(file)
      ? fault.replace(file, named(file))
      : `${named(file)}: ${fault}`;
    return new LoomError(said, cause);
  }
  return error;
}
