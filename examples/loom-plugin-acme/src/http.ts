/**
 * HTTP calls to the endpoint, in Loom's terms: every failure is a `LoomProviderError` that says
 * whether a retry can help, and no message ever holds the key.
 * @module
 */
import { LoomError, LoomProviderError } from "loom-batch/plugin";

/** Where calls go and how. */
export interface Endpoint {
  /** `base_url`, without a trailing slash. */
  readonly baseURL: string;
  readonly apiKey: string;
  /** The limit on one call, answer included. */
  readonly timeoutMs: number;
  /** The variable that holds the key, for messages. */
  readonly keyVar: string;
}

/** One call: a JSON body, or a form (a file upload). */
export interface Call {
  readonly method: "GET" | "POST" | "DELETE";
  readonly json?: unknown;
  readonly form?: FormData;
  readonly signal?: AbortSignal;
  /** Never sent twice, not even by the runtime (a batch create: each one is billed). */
  readonly once?: boolean;
}

/**
 * Sends a call to `path` under the endpoint and hands the response (a 2xx) to `read` while the
 * call's time runs, so a connection lost mid-answer fails the same way as one never made.
 */
export async function send<T>(
  endpoint: Endpoint,
  path: string,
  call: Call,
  read: (res: Response) => Promise<T>,
): Promise<T> {
  const timeout = AbortSignal.timeout(endpoint.timeoutMs);
  try {
    const res = await fetch(`${endpoint.baseURL}${path}`, {
      method: call.method,
      headers: {
        authorization: `Bearer ${endpoint.apiKey}`,
        ...(call.json !== undefined && { "content-type": "application/json" }),
      },
      body: call.form ?? (call.json === undefined ? undefined : JSON.stringify(call.json)),
      signal: call.signal ? AbortSignal.any([call.signal, timeout]) : timeout,
      ...(call.once && freshConnection()),
    });
    if (!res.ok) throw httpError(res, parseJSON(await res.text()), endpoint);
    return await read(res);
  } catch (error) {
    if (LoomError.isInstance(error)) throw error; // a failure already told in Loom's terms
    // The run was interrupted: the abort goes up as it is, not as a provider failure.
    if (call.signal?.aborted) throw call.signal.reason ?? error;
    // Node's fetch says "fetch failed"; the cause says why (ECONNREFUSED, a reset, …).
    const cause = (error as { cause?: { message?: unknown } }).cause?.message;
    const why = timeout.aborted
      ? `no answer within ${endpoint.timeoutMs} ms (allow more with provider_options.timeout_ms)`
      : `${(error as Error).message}${typeof cause === "string" ? `: ${cause}` : ""}`;
    const message = hideKey(`acme: calling ${safeURL(endpoint.baseURL)} failed: ${why}`, endpoint);
    throw new LoomProviderError(message, { retryable: true, cause: error });
  }
}

/** {@link send}, reading the answer as JSON. */
export function sendJSON(endpoint: Endpoint, path: string, call: Call): Promise<unknown> {
  return send(endpoint, path, call, async (res) => {
    const text = await res.text();
    const body = parseJSON(text);
    if (body === undefined) {
      const shown = hideKey(text.slice(0, 200), endpoint);
      throw new LoomProviderError(`acme: ${path} answered with no JSON: ${shown}`);
    }
    return body;
  });
}

let unpooled: unknown;

/**
 * Deno's fetch sends a request again on a new connection when the pooled keep-alive one it went
 * out on closes before the answer, POST or not: a batch created, then the connection reset, would
 * be created twice. A connection nothing else used is not resent (the call fails, and Loom treats
 * the create as in doubt), so such a call gets a client without an idle pool. Node's fetch never
 * resends: there this adds nothing.
 */
function freshConnection(): RequestInit {
  type Deno = { createHttpClient?(options: { poolMaxIdlePerHost: number }): unknown };
  const deno = (globalThis as { Deno?: Deno }).Deno;
  if (typeof deno?.createHttpClient !== "function") return {};
  unpooled ??= deno.createHttpClient({ poolMaxIdlePerHost: 0 });
  return { client: unpooled } as RequestInit;
}

/** An HTTP failure: a refused key stops the run, a transient fault is retried. */
function httpError(res: Response, body: unknown, endpoint: Endpoint): LoomProviderError {
  const said = (body as { error?: { message?: unknown } } | undefined)?.error?.message;
  const detail = typeof said === "string" ? said.slice(0, 500) : res.statusText;
  const message = hideKey(`acme: HTTP ${res.status}: ${detail}`, endpoint);
  const status = res.status;
  if (status === 401 || status === 403) {
    return new LoomProviderError(`${message} (check ${endpoint.keyVar})`, { status, fatal: true });
  }
  if (status === 429 || status === 408 || status >= 500) {
    return new LoomProviderError(message, {
      status,
      retryable: true,
      retryAfterMs: retryAfterMs(res.headers),
    });
  }
  // An unknown model, path or batch is the same for every row.
  if (status === 404) {
    return new LoomProviderError(`${message} (check base_url and the model)`, {
      status,
      fatal: true,
    });
  }
  // Any other refusal fails the row; many rows refused alike stop the run.
  return new LoomProviderError(message, { status, refused: true });
}

/** The wait the server asked for: `retry-after-ms`, else `retry-after` (seconds or a date). */
export function retryAfterMs(headers: Headers): number | undefined {
  const ms = Number(headers.get("retry-after-ms") ?? NaN);
  if (Number.isFinite(ms) && ms >= 0) return ms;
  const after = headers.get("retry-after");
  if (after === null) return undefined;
  const seconds = Number(after);
  if (after.trim() !== "" && Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(after);
  return Number.isFinite(date) ? Math.max(0, date - Date.now()) : undefined;
}

export function parseJSON(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined; // an error page of a proxy, say: the status tells what happened
  }
}

/** Some servers echo the key they refused: it never reaches a message. */
export function hideKey(text: string, endpoint: Endpoint): string {
  return endpoint.apiKey.length >= 4 ? text.replaceAll(endpoint.apiKey, "***") : text;
}

/** A URL for messages: no user name or password from `https://user:pass@host`. */
export function safeURL(url: string): string {
  const parsed = new URL(url);
  parsed.username = "";
  parsed.password = "";
  return parsed.href.replace(/\/+$/, "");
}
