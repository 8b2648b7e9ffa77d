/**
 * Where a failed connection was going, read from the error an SDK wraps: SDKs report only
 * "Connection error.", and a user with no base URL set would not know Loom tried the provider's
 * public endpoint. The runtimes put the place in the cause: Node's socket errors carry
 * `address`/`port` (or `hostname` when the name did not resolve), Deno's fetch names the URL in
 * its message.
 * @module
 */

/** Causes followed at most (an SDK error → fetch's TypeError → the socket error → …). */
const MAX_DEPTH = 6;

/** Node's socket error fields that say where. */
interface SocketErrorFields {
  readonly code?: unknown;
  readonly address?: unknown;
  readonly port?: unknown;
  readonly hostname?: unknown;
}

// `address` and `port` are documented on Node's SystemError (nodejs.org, errors.md). `hostname`
// on a getaddrinfo error is not: unverified: seen on Node 20 and 22 (ENOTFOUND, EAI_AGAIN).
// Deno's "error sending request for url (…)" message is not documented either: unverified: seen
// on Deno 2; when its wording changes, the message just goes without the place.
function placeOf(error: object): string | undefined {
  const { code, address, port, hostname } = error as SocketErrorFields;
  if (typeof address === "string") {
    return `could not connect to ${address}${typeof port === "number" ? `:${port}` : ""}`;
  }
  if (typeof hostname === "string") {
    return code === "ENOTFOUND" || code === "EAI_AGAIN"
      ? `could not resolve ${hostname}`
      : `could not reach ${hostname}`;
  }
  const message = error instanceof Error ? error.message : undefined;
  const url = message && /\bfor url \(([^)\s]+)\)/.exec(message)?.[1];
  return url ? `could not reach ${urlWithoutSecrets(url)}` : undefined;
}

/** The URL's origin and path: a query may hold a key (`?key=`), user info a password. */
export function urlWithoutSecrets(url: string): string {
  try {
    const { origin, pathname } = new URL(url);
    return `${origin}${pathname}`;
  } catch {
    return "the provider's endpoint";
  }
}

/**
 * A few words on where a connection failed (`could not connect to 127.0.0.1:8080`, `could not
 * resolve api.openai.com`), or undefined when the error does not say.
 */
export function connectionTarget(error: unknown, depth = 0): string | undefined {
  if (typeof error !== "object" || error === null || depth > MAX_DEPTH) return undefined;
  const here = placeOf(error);
  if (here) return here;
  // Node tries each address of a name in turn and reports them together.
  const errors = (error as { errors?: unknown }).errors;
  if (Array.isArray(errors)) {
    for (const inner of errors) {
      const found = connectionTarget(inner, depth + 1);
      if (found) return found;
    }
  }
  return connectionTarget((error as { cause?: unknown }).cause, depth + 1);
}

/**
 * `message`, followed by where the connection failed when the error says (`… (could not connect
 * to 127.0.0.1:8080)`), else by the URL the client was calling (`fallbackUrl`), when given.
 */
export function withConnectionTarget(
  message: string,
  error: unknown,
  fallbackUrl?: string,
): string {
  const target = connectionTarget(error) ??
    (fallbackUrl === undefined ? undefined : `could not reach ${urlWithoutSecrets(fallbackUrl)}`);
  return target ? `${message} (${target})` : message;
}
