/**
 * What went wrong talking to the PostgreSQL store, said once and clearly: which store (its URL with
 * the password masked), what happened, and what to do. Error codes are PostgreSQL's SQLSTATEs
 * (Appendix A of its manual) or Node's socket error codes.
 * @module
 */
import { EXIT, LoomError } from "../../../core/base/errors.ts";

/** Where the fault happened: while opening the store (nothing done yet) or mid-run. */
export type Phase = "open" | "run";

/** The store a message names and what is needed to tell faults apart. */
export interface FaultContext {
  /** The URL with its password masked. */
  readonly location: string;
  readonly user: string;
  readonly database: string;
  readonly host: string;
  readonly port: number;
  /** The password, only to scrub it from any message that might echo it. */
  readonly secret?: string;
}

const UNREACHABLE = new Set([
  "ECONNREFUSED",
  "ENOTFOUND",
  "EAI_AGAIN",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EADDRNOTAVAIL",
]);
const GONE = new Set(["ECONNRESET", "EPIPE", "57P01", "57P02", "57P03", "08000", "08003", "08006"]);

/** Turns any error of the driver into one {@link LoomError} (a LoomError passes through). */
export function storeFault(error: unknown, phase: Phase, where: FaultContext): LoomError {
  if (LoomError.isInstance(error)) return error;
  const raw = error instanceof Error ? error : new Error(String(error));
  const code = (raw as { code?: unknown }).code;
  const text = raw.message;
  const store = `the PostgreSQL store at ${where.location}`;
  let message: string;
  if (typeof code === "string" && UNREACHABLE.has(code)) {
    message = `cannot reach ${store}: ${describeSocket(code, where)}; ` +
      "check that the server runs and that LOOM_STATE names the right host and port";
  } else if (/timeout expired|timeout exceeded|connection timeout/i.test(text)) {
    message = `cannot reach ${store}: no answer in time; ` +
      "check that the server runs and that LOOM_STATE names the right host and port";
  } else if (
    code === "28P01" || /client password must be a string|password authentication/i.test(text)
  ) {
    const missing = /must be a string/i.test(text);
    message = `${store} refused ${missing ? "to connect without a password" : "the password"} ` +
      `for user "${where.user}": check the password in LOOM_STATE, PGPASSWORD or ~/.pgpass`;
  } else if (code === "28000") {
    message = `${store} does not let user "${where.user}" in (${text}): ` +
      "check the user in LOOM_STATE or PGUSER, and the server's pg_hba.conf";
  } else if (code === "3D000") {
    message = `${store}: database "${where.database}" does not exist; create it: ` +
      `createdb -h ${where.host} -p ${where.port} -U ${where.user} ${where.database}`;
  } else if (code === "42501") {
    message = `${store}: permission denied (${text}); user "${where.user}" needs to own the ` +
      `database or be granted CREATE and USAGE on its schema public`;
  } else if (
    (typeof code === "string" && GONE.has(code)) ||
    /Connection terminated|terminating connection|not queryable|Client has encountered a connection error/i
      .test(text)
  ) {
    message = `${store} went away mid-run (${text}); ` +
      "what was saved before stays saved: run the command again once the server is back";
  } else {
    message = `${store}: ${text}${typeof code === "string" ? ` (${code})` : ""}`;
  }
  const exitCode = phase === "open" ? EXIT.usage : EXIT.failed;
  return new LoomError(scrub(message, where.secret), { exitCode, cause: scrubbed(raw, where) });
}

function describeSocket(code: string, where: FaultContext): string {
  const address = `${where.host}:${where.port}`;
  if (code === "ECONNREFUSED") return `nothing listens on ${address} (connection refused)`;
  if (code === "ENOTFOUND" || code === "EAI_AGAIN") return `host "${where.host}" is unknown`;
  if (code === "ETIMEDOUT") return `${address} did not answer in time`;
  return `${address} is unreachable (${code})`;
}

function scrub(text: string, secret?: string): string {
  return secret ? text.split(secret).join("***") : text;
}

/**
 * The cause as a plain error: its message (scrubbed) and code only. The driver's own error may
 * carry the connection (`error.client`, set by pg-pool), whose settings hold the password.
 */
function scrubbed(error: Error, where: FaultContext): Error {
  const copy = new Error(scrub(error.message, where.secret));
  const code = (error as { code?: unknown }).code;
  if (code !== undefined) (copy as { code?: unknown }).code = code;
  return copy;
}
