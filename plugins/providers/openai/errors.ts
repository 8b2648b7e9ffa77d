/**
 * OpenAI SDK errors in Loom's terms (see `_shared/http-errors.ts` for the rules).
 * @module
 */
import { APIConnectionError, APIError, APIUserAbortError } from "openai";
import { connectionFailure, httpFailure } from "../_shared/http-errors.ts";

const CODES = {
  // 400 codes that concern one row's prompt, not the job.
  rowOnly: new Set(["context_length_exceeded", "string_above_max_length", "content_filter", "invalid_prompt"]),
  // A 429 that no wait will fix.
  fatal: new Set(["insufficient_quota"]),
};

/** Converts an error thrown by the SDK (or anything else) into a `LoomProviderError`. */
export function toProviderError(error: unknown, provider: string): unknown {
  if (error instanceof APIUserAbortError) return error;
  if (error instanceof APIConnectionError) return connectionFailure(provider, error);
  if (!(error instanceof APIError)) return error;
  const code = typeof error.code === "string" ? error.code : undefined;
  return httpFailure(provider, { status: error.status ?? 0, code, headers: error.headers, message: error.message }, CODES, error);
}
