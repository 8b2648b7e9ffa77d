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
    super(`${header} (${issues.length} problem${issues.length === 1 ? "" : "s"}):\n${lines.join("\n")}`);
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

/** The run was interrupted (Ctrl-C); what finished is kept and a rerun resumes. */
export class LoomInterruptedError extends LoomError {
  constructor(message: string) {
    super(message, { exitCode: EXIT.interrupted });
    this.name = "LoomInterruptedError";
  }
}

/** Message of any thrown value, for row errors and logs. */
export function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}
