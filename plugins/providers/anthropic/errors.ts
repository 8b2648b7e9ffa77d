/**
 * Anthropic SDK errors in Loom's terms (see `_shared/http-errors.ts` for the rules).
 * @module
 */
import { APIConnectionError, APIError, APIUserAbortError } from "@anthropic-ai/sdk";
import { connectionFailure, httpFailure } from "../_shared/http-errors.ts";

const CODES = {
  // A spend cap or billing problem is not fixed by waiting.
  fatal: new Set(["billing_error", "enforced_spend_limit_reached", "credit_balance_too_low"]),
};

/** Converts an error thrown by the SDK (or anything else) into a `LoomProviderError`. */
export function toProviderError(error: unknown, provider: string): unknown {
  if (error instanceof APIUserAbortError) return error;
  if (error instanceof APIConnectionError) return connectionFailure(provider, error);
  if (!(error instanceof APIError)) return error;
  const body = error.error as { error?: { type?: string; details?: { error_code?: string } } } | undefined;
  const code = body?.error?.details?.error_code ?? body?.error?.type;
  const failure = { status: error.status ?? 0, code, headers: error.headers, message: error.message };
  // An empty balance comes as a plain 400 invalid_request_error whose message says so
  // (anthropics/anthropic-sdk-typescript#618): the whole run stops, as for billing_error.
  if (error.status === 400 && /credit balance is too low/i.test(error.message)) {
    return httpFailure(provider, { ...failure, code: "credit_balance_too_low" }, CODES, error);
  }
  // "prompt is too long" concerns one row only.
  if (error.status === 400 && /prompt is too long/i.test(error.message)) {
    return httpFailure(provider, { ...failure, code: "prompt_too_long" }, { rowOnly: new Set(["prompt_too_long"]) }, error);
  }
  return httpFailure(provider, failure, CODES, error);
}
