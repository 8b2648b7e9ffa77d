/**
 * HTTP failures of provider APIs in Loom's terms, shared by every SDK-based provider: retry
 * what a retry can fix (rate limits, overload, 5xx, timeouts, dropped connections), stop the run
 * on what fails every row alike (a bad key, an exhausted quota, an unknown model, a refused
 * parameter), and fail only the row for problems of its own prompt.
 * @module
 */
import { errorMessage, LoomProviderError } from "../../../core/errors.ts";
import { withConnectionTarget } from "./connection-target.ts";

/** One failed HTTP call, as an SDK reports it. */
export interface HttpFailure {
  readonly status: number;
  /** The provider's error code or type (`insufficient_quota`, `overloaded_error`, …). */
  readonly code?: string;
  readonly headers?: Headers;
  readonly message: string;
  /** A wait the provider asked for by other means than headers (e.g. in the error body); wins over them. */
  readonly retryAfterMs?: number;
}

/** Provider-specific codes that change the default classification. */
export interface ErrorCodes {
  /** 400-class codes that concern one row's prompt only. */
  readonly rowOnly?: ReadonlySet<string>;
  /** Codes that no retry can fix even on a retryable status (an exhausted quota on a 429). */
  readonly fatal?: ReadonlySet<string>;
}

/** Milliseconds the server asked us to wait (`retry-after-ms`, else `retry-after` seconds or date). */
export function retryAfterMs(headers: Headers | undefined): number | undefined {
  if (headers?.has("retry-after-ms")) {
    const ms = Number(headers.get("retry-after-ms"));
    if (Number.isFinite(ms) && ms >= 0) return ms;
  }
  const after = headers?.get("retry-after");
  if (after == null) return undefined;
  const seconds = Number(after);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(after);
  return Number.isFinite(date) ? Math.max(0, date - Date.now()) : undefined;
}

/** Classifies an HTTP failure. */
export function httpFailure(provider: string, failure: HttpFailure, codes: ErrorCodes = {}, cause?: unknown): LoomProviderError {
  const { status, code } = failure;
  const message = `${provider}: ${failure.message}`;
  if (code !== undefined && codes.fatal?.has(code)) {
    return new LoomProviderError(`${message} (no retry can fix this: check the account)`, { status, fatal: true, cause });
  }
  if (status === 401 || status === 403) {
    return new LoomProviderError(`${message} (check the API key)`, { status, fatal: true, cause });
  }
  if (status === 408 || status === 409 || status === 429 || status >= 500) {
    return new LoomProviderError(message, { status, retryable: true, retryAfterMs: failure.retryAfterMs ?? retryAfterMs(failure.headers), cause });
  }
  const rowOnly = code !== undefined && codes.rowOnly?.has(code) === true;
  return new LoomProviderError(message, { status, fatal: !rowOnly, cause });
}

/** A connection that failed or timed out before any answer: worth retrying. */
export function connectionFailure(provider: string, error: unknown): LoomProviderError {
  return new LoomProviderError(withConnectionTarget(`${provider}: ${errorMessage(error)}`, error), { retryable: true, cause: error });
}
