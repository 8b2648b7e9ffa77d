/**
 * The `fetch` the provider's SDK client calls through (`httpOptions.fetch`). The SDK's `ApiError`
 * keeps a failed response's status and body but not its headers, so a `retry-after` header would
 * be lost; here a failed response becomes Loom's error at once, headers and all (the body's
 * RetryInfo is read too, see `errors.ts`), and the SDK passes that error on unchanged.
 *
 * A custom fetch also changes one thing on Node: the SDK turns off undici's own 300-second header
 * and body timeouts only for its default fetch, so they are turned off here the same way (per
 * request, over undici's global dispatcher), leaving `timeout_ms` as the only bound on a call.
 * @module
 */
import { googleFailure } from "./errors.ts";

/** Where Node's bundled undici keeps its global dispatcher (the registered symbol its setGlobalDispatcher uses). */
const GLOBAL_DISPATCHER = Symbol.for("undici.globalDispatcher.1");

interface Dispatcher {
  dispatch(options: Record<string, unknown>, handler: unknown): boolean;
}

/** A per-request dispatcher over undici's global one with its timeouts off; undefined off Node. */
function untimedDispatcher(): Dispatcher | undefined {
  const globals = globalThis as unknown as Record<symbol, unknown> & { Deno?: unknown; process?: { versions?: { node?: unknown } } };
  if (globals.Deno !== undefined || typeof globals.process?.versions?.node !== "string") return undefined;
  // Node creates the global dispatcher lazily, on its first fetch or Headers.
  if (globals[GLOBAL_DISPATCHER] === undefined) new Headers();
  const global = globals[GLOBAL_DISPATCHER] as Dispatcher | undefined;
  if (typeof global?.dispatch !== "function") return undefined;
  return { dispatch: (options, handler) => global.dispatch({ ...options, headersTimeout: 0, bodyTimeout: 0 }, handler) };
}

/** A `fetch` for `@google/genai` that fails with Loom's error, `retryAfterMs` included. */
export function googleFetch(base: typeof fetch = fetch): typeof fetch {
  const dispatcher = untimedDispatcher();
  return async (input, init) => {
    const response = await base(input, dispatcher ? { ...init, dispatcher } as unknown as RequestInit : init);
    if (response.ok) return response;
    const body = (await response.text().catch(() => "")).trim();
    // A google.rpc.Status body is read as such; anything else (a proxy's page) is shown in part.
    const text = body.startsWith("{") ? body : `${response.status} ${response.statusText}${body ? `: ${body.slice(0, 300)}` : ""}`;
    throw googleFailure(response.status, text, response.headers);
  };
}
