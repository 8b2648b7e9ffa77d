/**
 * Anthropic SDK errors in Loom's terms (see `_shared/http-errors.ts` for the rules).
 * @module
 */
import {
  APIConnectionError,
  APIConnectionTimeoutError,
  APIError,
  APIUserAbortError,
} from "@anthropic-ai/sdk";
import { connectionFailure, endpointOf, httpFailure } from "../_shared/http-errors.ts";

const CODES = {
  // A spend cap or billing problem is not fixed by waiting.
  fatal: new Set(["billing_error", "enforced_spend_limit_reached", "credit_balance_too_low"]),
};

/** The API's error envelope: `{type: "error", error: {type, message, details?}, request_id}`. */
interface ErrorBody {
  error?: { type?: unknown; message?: unknown; details?: { error_code?: unknown } };
}

/**
 * What to show of an API error: `<status> <type>: <message>` from the envelope (the way batch
 * results show a row's error), since the SDK's own message is the status and the raw JSON body.
 * Anything else (a proxy's HTML page, no body) keeps the SDK's message.
 */
function messageOf(error: APIError): string {
  const inner = (error.error as ErrorBody | undefined)?.error;
  if (typeof inner?.message !== "string") return error.message;
  const type = typeof inner.type === "string" ? `${inner.type}: ` : "";
  return `${error.status ?? ""} ${type}${inner.message}`.trim();
}

/**
 * Converts an error thrown by the SDK (or anything else) into a `LoomProviderError`; a failed
 * connection names the `client`'s endpoint when the error does not say where.
 */
export function toProviderError(
  error: unknown,
  provider: string,
  client?: { readonly baseURL: string; readonly timeout: number },
): unknown {
  if (error instanceof APIUserAbortError) return error;
  if (error instanceof APIConnectionError) {
    const timedOut = error instanceof APIConnectionTimeoutError;
    return connectionFailure(provider, error, client && endpointOf(client), timedOut);
  }
  if (!(error instanceof APIError)) return error;
  const inner = (error.error as ErrorBody | undefined)?.error;
  const errorCode = inner?.details?.error_code;
  const code = typeof errorCode === "string"
    ? errorCode
    : typeof inner?.type === "string"
    ? inner.type
    : undefined;
  const failure = {
    status: error.status ?? 0,
    code,
    headers: error.headers,
    message: messageOf(error),
  };
  // An empty balance comes as a plain 400 invalid_request_error whose message says so
  // (anthropics/anthropic-sdk-typescript#618): the whole run stops, as for billing_error.
  if (error.status === 400 && /credit balance is too low/i.test(failure.message)) {
    return httpFailure(provider, { ...failure, code: "credit_balance_too_low" }, CODES, error);
  }
  // "prompt is too long" concerns one row only.
  if (error.status === 400 && /prompt is too long/i.test(failure.message)) {
    return httpFailure(provider, { ...failure, code: "prompt_too_long" }, {
      rowOnly: new Set(["prompt_too_long"]),
    }, error);
  }
  return httpFailure(provider, failure, CODES, error);
}
