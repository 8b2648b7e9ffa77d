/**
 * HTTP failures of provider APIs in Loom's terms, shared by every SDK-based provider, and the one
 * place that decides what a failure does to a run:
 * - retry what a retry can fix (rate limits, overload, 5xx, timeouts, dropped connections);
 * - stop the run at once on what fails every row alike: a refused key (401, 403), exhausted
 *   credits or quota (402, or a provider's `fatal` code), an unknown model (404);
 * - fail only the row on any other refusal (400, 413, 422, …). A code the provider lists as the
 *   prompt's own (`rowOnly`) is just the row's error; any other is `refused`: the row's error too,
 *   but the sync run stops when many rows in a row are refused alike (a refused parameter, say).
 * @module
 */
import { errorMessage, LoomProviderError } from "../../../core/base/errors.ts";
import { urlWithoutSecrets, withConnectionTarget } from "./connection-target.ts";

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
  /** 400-class codes that concern one row's prompt only (never counted as a job-wide refusal). */
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
export function httpFailure(
  provider: string,
  failure: HttpFailure,
  codes: ErrorCodes = {},
  cause?: unknown,
): LoomProviderError {
  const { status, code } = failure;
  const message = `${provider}: ${failure.message}`;
  if (code !== undefined && codes.fatal?.has(code)) {
    return new LoomProviderError(`${message} (no retry can fix this: check the account)`, {
      status,
      fatal: true,
      cause,
    });
  }
  // A refusal the provider says is the prompt's own fails that row only, whatever its status
  // (OpenRouter's moderation flag is a 403).
  if (
    code !== undefined && codes.rowOnly?.has(code) && status >= 400 && status < 500 &&
    status !== 429
  ) {
    return new LoomProviderError(message, { status, cause });
  }
  if (status === 401 || status === 403) {
    return new LoomProviderError(`${message} (check the API key)`, { status, fatal: true, cause });
  }
  // Out of credits (OpenRouter's 402, openrouter.ai/docs/errors): no row can succeed.
  if (status === 402) {
    return new LoomProviderError(`${message} (no retry can fix this: check the account)`, {
      status,
      fatal: true,
      cause,
    });
  }
  // A generate call's 404 is the job's model (or deployment), alike for every row; a batch's, a
  // batch that is gone.
  if (status === 404) return new LoomProviderError(message, { status, fatal: true, cause });
  if (status === 408 || status === 409 || status === 429 || status >= 500) {
    return new LoomProviderError(message, {
      status,
      retryable: true,
      retryAfterMs: failure.retryAfterMs ?? retryAfterMs(failure.headers),
      cause,
    });
  }
  return new LoomProviderError(message, { status, refused: true, cause });
}

/**
 * Where a provider's client sends its calls, for the failures whose error does not say: an SDK's
 * timeout names neither the host nor the limit.
 */
export interface Endpoint {
  /** The client's base URL (`provider_options.base_url`, or the provider's public one). */
  readonly url: string;
  /** The client's limit on one call (`provider_options.timeout_ms`, or the default). */
  readonly timeoutMs: number;
}

/** The endpoint of an SDK client that has the usual `baseURL` and `timeout` (OpenAI's, Anthropic's). */
export function endpointOf(
  client: { readonly baseURL: string; readonly timeout: number },
): Endpoint {
  return { url: client.baseURL, timeoutMs: client.timeout };
}

/**
 * A connection that failed or timed out before any answer: worth retrying. The message says
 * where it was going: the place the error names, else the client's endpoint; a call that timed
 * out (`timedOut`) names the endpoint and its limit, and the two ways out.
 */
export function connectionFailure(
  provider: string,
  error: unknown,
  endpoint?: Endpoint,
  timedOut = false,
): LoomProviderError {
  const message = timedOut && endpoint
    ? `${provider}: no answer from ${
      urlWithoutSecrets(endpoint.url)
    } within ${endpoint.timeoutMs} ms (the call timed out): check that the server is up and reachable, or allow more time ` +
      "with provider_options.timeout_ms"
    : withConnectionTarget(`${provider}: ${errorMessage(error)}`, error, endpoint?.url);
  return new LoomProviderError(message, { retryable: true, cause: error });
}
