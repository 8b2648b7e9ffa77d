/**
 * Gemini's errors in Loom's terms, for sync calls and batches alike. The API answers with a
 * google.rpc.Status body (`{error: {code, message, status, details}}`); a wrong key is a 400
 * whose details name `API_KEY_INVALID`, which Loom treats like a 401: the run stops. A 429 says
 * when to come back in a `google.rpc.RetryInfo` detail (`retryDelay`, a protobuf Duration such
 * as `"37s"` or `"0.5s"`), which the retry honours.
 * @module
 */
import type { LoomProviderError } from "../../../core/base/errors.ts";
import {
  connectionFailure,
  type Endpoint,
  httpFailure,
  retryAfterMs,
} from "../_shared/http-errors.ts";

/** Gemini's public endpoint: where calls go without `provider_options.base_url`. */
export const GEMINI_URL = "https://generativelanguage.googleapis.com";

/**
 * A Gemini call that got no answer, naming `endpoint`. The SDK enforces `timeout_ms` by aborting
 * the call without a reason (`createAttemptSignal` in @google/genai), so an abort the caller did
 * not ask for (callers check their own signal first) is that timeout, unless `timedOut` says.
 */
export function googleConnectionFailure(
  error: unknown,
  endpoint: Endpoint,
  timedOut = (error as { name?: unknown } | null)?.name === "AbortError",
): LoomProviderError {
  return connectionFailure("google", error, endpoint, timedOut);
}

/** The `@type` of a `google.rpc.RetryInfo` entry in `details` (google/rpc/error_details.proto). */
const RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo";

interface RpcDetail {
  readonly "@type"?: string;
  readonly reason?: string;
  readonly retryDelay?: unknown;
}

interface RpcStatus {
  readonly message?: string;
  readonly status?: string;
  readonly details?: ReadonlyArray<RpcDetail>;
}

function rpcStatus(body: string): RpcStatus | undefined {
  try {
    return (JSON.parse(body) as { error?: RpcStatus }).error;
  } catch {
    return undefined;
  }
}

/**
 * Milliseconds in a protobuf JSON Duration (`"<seconds>[.<up to 9 digits>]s"`), or undefined for
 * anything else. A negative delay means "now".
 */
export function durationMs(value: unknown): number | undefined {
  if (typeof value !== "string") return undefined;
  const match = /^(-?\d+(?:\.\d{1,9})?)s$/.exec(value.trim());
  return match ? Math.max(0, Math.round(Number(match[1]) * 1000)) : undefined;
}

/** The wait a google.rpc.Status asks for in its RetryInfo detail, in milliseconds. */
function retryInfoMs(rpc: RpcStatus | undefined): number | undefined {
  const details = Array.isArray(rpc?.details) ? rpc.details : [];
  const info = details.find((d) => d?.["@type"] === RETRY_INFO);
  return durationMs(info?.retryDelay);
}

/**
 * A failed Gemini call (`status` and the body's text) as a Loom provider error. The wait before a
 * retry is the longer of a `retry-after` header (when the caller has the headers) and the body's
 * RetryInfo, so neither hint is cut short.
 */
export function googleFailure(
  status: number,
  body: string,
  headers?: Headers,
  cause?: unknown,
): LoomProviderError {
  const rpc = rpcStatus(body);
  const keyRefused = rpc?.details?.some((d) => d?.reason === "API_KEY_INVALID") === true;
  const message = rpc?.message
    ? `${status} ${rpc.status ?? ""}: ${rpc.message}`.replace(" :", ":")
    : body || `HTTP ${status}`;
  const hints = [retryAfterMs(headers), retryInfoMs(rpc)].filter((ms): ms is number =>
    ms !== undefined
  );
  return httpFailure(
    "google",
    {
      status: keyRefused ? 401 : status,
      code: rpc?.status,
      headers,
      message,
      retryAfterMs: hints.length ? Math.max(...hints) : undefined,
    },
    {},
    cause,
  );
}
