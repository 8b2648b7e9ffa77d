/**
 * Loom's error classes. Every error Loom raises on purpose is a {@link LoomError}; the CLI prints
 * its message as is (no stack) and maps {@link LoomError.exitCode} to the process exit code.
 *
 * A `Symbol.for` marker makes `isInstance` work across duplicate copies of Loom, so a third-party
 * plugin that bundles its own copy still raises errors the core recognises.
 * @module
 */

const MARKER = Symbol.for("loom.error");

/** Exit codes of the CLI: 0 success, 1 the run failed, 2 usage error or unsupported operation. */
export const EXIT = { ok: 0, failed: 1, usage: 2, interrupted: 130 } as const;

/** Base class of every error Loom raises deliberately. */
export class LoomError extends Error {
  readonly [MARKER] = true;
  /** Process exit code the CLI uses when this error ends a command. */
  readonly exitCode: number;

  constructor(message: string, options?: { cause?: unknown; exitCode?: number }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = "LoomError";
    this.exitCode = options?.exitCode ?? EXIT.failed;
  }

  /** True for any LoomError, including ones from another copy of Loom. */
  static isInstance(error: unknown): error is LoomError {
    return typeof error === "object" && error !== null && MARKER in error;
  }
}

/** The user asked for something malformed or unsupported (exit code 2). */
export class LoomUsageError extends LoomError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, { ...options, exitCode: EXIT.usage });
    this.name = "LoomUsageError";
  }
}

/**
 * Another Loom holds what this one needs (a job's lease): nothing was done, and the same command
 * works once the other is done (exit code 2).
 */
export class LoomBusyError extends LoomUsageError {
  constructor(message: string) {
    super(message);
    this.name = "LoomBusyError";
  }
}

/**
 * True for an error that must stop the whole command (a key that stopped working, a provider that
 * refuses every request), from any copy of Loom: never a row's or a shard's problem alone.
 */
export function isFatal(error: unknown): boolean {
  return LoomError.isInstance(error) && (error as { fatal?: unknown }).fatal === true;
}

/** One problem found in a job file or in the flags, with where it is. */
export interface JobIssue {
  /** Where: `file:line:column` for a job file, `--flag` for a command-line option. */
  where: string;
  /** Dotted key path inside the job, e.g. `dataset.path`; empty for the document itself. */
  path: string;
  /** What is wrong and what was expected. */
  message: string;
}

/** A job file (or the flags standing in for one) is invalid; lists every problem at once. */
export class LoomJobError extends LoomUsageError {
  readonly issues: readonly JobIssue[];

  constructor(issues: readonly JobIssue[], header = "invalid job") {
    const lines = issues.map((i) => `  ${i.where}: ${i.path ? `${i.path}: ` : ""}${i.message}`);
    super(
      `${header} (${issues.length} problem${issues.length === 1 ? "" : "s"}):\n${lines.join("\n")}`,
    );
    this.name = "LoomJobError";
    this.issues = issues;
  }
}

/** A dataset could not be read; names the file and the line or row. */
export class LoomDataError extends LoomError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, { ...options, exitCode: EXIT.usage });
    this.name = "LoomDataError";
  }
}

/** A plugin could not be found, loaded, or does not follow the plugin contract. */
export class LoomPluginError extends LoomUsageError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "LoomPluginError";
  }
}

/**
 * A provider call failed. Providers throw this from `generate`; the sync executor turns it into
 * the row's `llm_error` (a single row's failure is data, not a crash) unless `fatal` is set.
 */
export class LoomProviderError extends LoomError {
  /** HTTP status when there was one. */
  readonly status?: number;
  /** Worth trying again later (rate limits, overload, 5xx, dropped connections). */
  readonly retryable: boolean;
  /** Retrying any row is pointless (bad key, exhausted quota): stop the whole run. */
  readonly fatal: boolean;
  /**
   * The provider refused the request for a reason Loom cannot tell is the row's own or the
   * job's (a 400 with an unrecognised code): the row fails, and many rows in a row refused alike
   * stop the run.
   */
  readonly refused: boolean;
  /** Milliseconds the provider asked us to wait before retrying, when it said. */
  readonly retryAfterMs?: number;

  constructor(
    message: string,
    options: {
      status?: number;
      retryable?: boolean;
      fatal?: boolean;
      refused?: boolean;
      retryAfterMs?: number;
      cause?: unknown;
    } = {},
  ) {
    super(message, { cause: options.cause, exitCode: EXIT.failed });
    this.name = "LoomProviderError";
    this.status = options.status;
    this.retryable = options.retryable ?? false;
    this.fatal = options.fatal ?? false;
    this.refused = options.refused ?? false;
    this.retryAfterMs = options.retryAfterMs;
  }
}

const INCOMPLETE = Symbol.for("loom.incomplete-results");

/**
 * A batch's results were read, but not all of them: lines that are not a result, responses with
 * no request to match, results the provider no longer keeps. A provider's `BatchApi.results`
 * yields every outcome it could read and then throws this; the core keeps those outcomes and
 * gives the other rows this message. Any other error from `results` fails the fetch (the shard is
 * read again next time): a bug or an outage never turns answers that exist into a partial merge.
 */
export class LoomIncompleteResultsError extends LoomError {
  readonly [INCOMPLETE] = true;

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "LoomIncompleteResultsError";
  }

  /** True for this error, including one from another copy of Loom (a bundling plugin's). */
  static override isInstance(error: unknown): error is LoomIncompleteResultsError {
    return typeof error === "object" && error !== null && INCOMPLETE in error;
  }
}

/** The run was interrupted (Ctrl-C); what finished is kept and a rerun resumes. */
export class LoomInterruptedError extends LoomError {
  constructor(message: string) {
    super(message, { exitCode: EXIT.interrupted });
    this.name = "LoomInterruptedError";
  }
}

/**
 * What an operating-system error means for the user and what to do about it, by error code.
 * `place`: the fix is a usable place (so, under LOOM_HOME, another LOOM_HOME).
 */
const SYSTEM_FAULTS: Readonly<Record<string, { what: string; todo?: string; place?: true }>> = {
  ENOSPC: { what: "the disk is full", todo: "free some space and run the command again" },
  EDQUOT: {
    what: "the disk quota is exhausted",
    todo: "free some space and run the command again",
  },
  EROFS: { what: "the filesystem is read-only", todo: "choose a writable place", place: true },
  EACCES: {
    what: "permission denied",
    todo: "check the permissions or choose another place",
    place: true,
  },
  EPERM: {
    what: "operation not permitted",
    todo: "check the permissions or choose another place",
    place: true,
  },
  ENOTDIR: {
    what: "a part of the path is a file, not a folder",
    todo: "choose another place",
    place: true,
  },
  EISDIR: { what: "it is a folder, not a file", todo: "choose another place", place: true },
  ENOTEMPTY: {
    what: "the folder changed while it was being removed (another loom command at work?)",
    todo: "run the command again",
  },
  EBUSY: { what: "it is in use by another program", todo: "try again" },
  EMFILE: {
    what: "too many open files",
    todo: "raise the limit (ulimit -n) or use fewer workers (--workers)",
  },
  ENFILE: {
    what: "too many open files on the system",
    todo: "raise the limit or use fewer workers (--workers)",
  },
  EIO: {
    what: "input/output error (the disk or the network filesystem failed)",
    todo: "check the disk",
  },
  ENAMETOOLONG: { what: "the path is too long", todo: "choose a shorter one", place: true },
  ELOOP: { what: "too many symbolic links in the path", place: true },
  ENOENT: { what: "no such file or folder" },
};

/**
 * What the failed system call was doing, for messages (`cannot <verb> <path>`). Node documents
 * `syscall` on its SystemError; unverified: Deno's node:fs names (`readdir` where Node says
 * `scandir`) are as observed with the Deno in this tree, not from a published list.
 */
const SYSTEM_CALLS: Readonly<Record<string, string>> = {
  mkdir: "create the folder",
  scandir: "read the folder",
  readdir: "read the folder",
  opendir: "read the folder",
  rmdir: "remove the folder",
  unlink: "remove",
  rm: "remove",
  rename: "rename",
  open: "open",
  write: "write",
  read: "read",
  stat: "read",
  lstat: "read",
  access: "use",
  chmod: "change the permissions of",
  fsync: "write",
};

/**
 * A one-line message for an operational fault (disk full, read-only filesystem, permissions, a
 * file where a folder should be, too many open files, …) anywhere in `error`'s cause chain, or
 * undefined when it is none. Names the path and what to do; when the path is under `home`
 * (LOOM_HOME), says so, since that is where Loom keeps its state and the user can move it.
 */
export function systemFaultMessage(error: unknown, home?: string): string | undefined {
  let e: unknown = error;
  for (
    let depth = 0;
    typeof e === "object" && e !== null && depth < 4;
    depth++, e = (e as { cause?: unknown }).cause
  ) {
    const { code, syscall, path } = e as { code?: unknown; syscall?: unknown; path?: unknown };
    const fault = typeof code === "string" ? SYSTEM_FAULTS[code] : undefined;
    if (!fault) continue;
    const verb = typeof syscall === "string" ? SYSTEM_CALLS[syscall] ?? syscall : "use";
    const where = typeof path === "string" ? ` ${path}` : "";
    const failed = syscall === undefined && path === undefined ? "" : `cannot ${verb}${where}: `;
    const inHome = home !== undefined && typeof path === "string" &&
      (path === home || path.startsWith(`${home}/`) || path.startsWith(`${home}\\`));
    const todo = inHome && fault.place
      ? `fix it, or set LOOM_HOME (now ${home}) to another folder`
      : `${fault.todo ?? "check the path"}${inHome ? ` (LOOM_HOME is ${home})` : ""}`;
    return `${failed}${fault.what} [${code}]; ${todo}`;
  }
  return undefined;
}

/** Message of any thrown value, for row errors and logs. */
export function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}
