/**
 * OpenAI SDK errors in Loom's terms: whether a retry can help (rate limits, overload, 5xx,
 * dropped connections, timeouts), or whether no row can succeed so the run should stop (a bad
 * key, an exhausted quota, an unknown model, a parameter the API refuses).
 * @module
 */
import { APIConnectionError, APIError, APIUserAbortError } from "openai";
import { errorMessage, LoomProviderError } from "../../../core/errors.ts";

/** Codes of 400 errors that belong to one row (its prompt), not to the whole job. */
const ROW_CODES = new Set(["context_length_exceeded", "string_above_max_length", "content_filter", "invalid_prompt"]);

/** Milliseconds the server asked us to wait (`retry-after-ms`, else `retry-after`). */
function retryAfterMs(headers: Headers | undefined): number | undefined {
  const ms = Number(headers?.get("retry-after-ms"));
  if (Number.isFinite(ms) && ms >= 0 && headers?.has("retry-after-ms")) return ms;
  const after = headers?.get("retry-after");
  if (after == null) return undefined;
  const seconds = Number(after);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(after);
  return Number.isFinite(date) ? Math.max(0, date - Date.now()) : undefined;
}

/** Converts an error thrown by the SDK (or anything else) into a `LoomProviderError`. */
export function toProviderError(error: unknown, provider: string): unknown {
  if (error instanceof APIUserAbortError) return error;
  if (error instanceof APIConnectionError) {
    return new LoomProviderError(`${provider}: ${errorMessage(error)}`, { retryable: true, cause: error });
  }
  if (!(error instanceof APIError)) return error;
  const status = error.status ?? 0;
  const code = typeof error.code === "string" ? error.code : undefined;
  const message = `${provider}: ${error.message}`;
  if (status === 401 || status === 403) {
    return new LoomProviderError(`${message} (check the API key)`, { status, fatal: true, cause: error });
  }
  if (status === 429 && code === "insufficient_quota") {
    return new LoomProviderError(`${message} (the account's quota is exhausted)`, { status, fatal: true, cause: error });
  }
  if (status === 408 || status === 409 || status === 429 || status >= 500) {
    return new LoomProviderError(message, { status, retryable: true, retryAfterMs: retryAfterMs(error.headers), cause: error });
  }
  // A refused parameter or an unknown model fails every row alike: stop instead of paying per row.
  const rowOnly = status === 400 && code !== undefined && ROW_CODES.has(code);
  return new LoomProviderError(message, { status, fatal: !rowOnly, cause: error });
}
