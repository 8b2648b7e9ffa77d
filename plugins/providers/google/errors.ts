/**
 * Gemini's errors in Loom's terms, for sync calls and batches alike. The API answers with a
 * google.rpc.Status body (`{error: {code, message, status, details}}`); a wrong key is a 400
 * whose details name `API_KEY_INVALID`, which Loom treats like a 401: the run stops.
 * @module
 */
import type { LoomProviderError } from "../../../core/errors.ts";
import { httpFailure } from "../_shared/http-errors.ts";

interface RpcStatus {
  readonly message?: string;
  readonly status?: string;
  readonly details?: ReadonlyArray<{ readonly reason?: string }>;
}

function rpcStatus(body: string): RpcStatus | undefined {
  try {
    return (JSON.parse(body) as { error?: RpcStatus }).error;
  } catch {
    return undefined;
  }
}

/** A failed Gemini call (`status` and the body's text) as a Loom provider error. */
export function googleFailure(status: number, body: string, headers?: Headers, cause?: unknown): LoomProviderError {
  const rpc = rpcStatus(body);
  const keyRefused = rpc?.details?.some((d) => d.reason === "API_KEY_INVALID") === true;
  const message = rpc?.message ? `${status} ${rpc.status ?? ""}: ${rpc.message}`.replace(" :", ":") : body || `HTTP ${status}`;
  return httpFailure("google", { status: keyRefused ? 401 : status, code: rpc?.status, headers, message }, {}, cause);
}
