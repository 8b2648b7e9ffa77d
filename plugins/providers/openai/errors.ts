/**
 * OpenAI SDK errors in Loom's terms (see `_shared/http-errors.ts` for the rules).
 * @module
 */
import { APIConnectionError, APIConnectionTimeoutError, APIError, APIUserAbortError } from "openai";
import { connectionFailure, endpointOf, httpFailure } from "../_shared/http-errors.ts";

const CODES = {
  // 400 codes that concern one row's prompt, not the job.
  rowOnly: new Set([
    "context_length_exceeded",
    "string_above_max_length",
    "content_filter",
    "invalid_prompt",
    "moderation_flagged",
  ]),
  // A 429 that no wait will fix.
  fatal: new Set(["insufficient_quota"]),
};

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
  const code = typeof error.code === "string"
    ? error.code
    : flaggedByOpenRouter(error, provider)
    ? "moderation_flagged"
    : undefined;
  return httpFailure(
    provider,
    { status: error.status ?? 0, code, headers: error.headers, message: error.message },
    CODES,
    error,
  );
}

/**
 * OpenRouter answers 403 when the model requires moderation and the row's input was flagged
 * (openrouter.ai/docs/errors, which also says a bad or disabled key is a 401): that row's
 * problem, not the key's. unverified: the member names `reasons` and `flagged_input` of
 * `error.metadata` come from a secondary source (the docs page's moderation section was not
 * readable); a 403 without them stays a refused key.
 */
function flaggedByOpenRouter(error: InstanceType<typeof APIError>, provider: string): boolean {
  if (provider !== "openrouter" || error.status !== 403) return false;
  const metadata = (error.error as { metadata?: Record<string, unknown> } | undefined)?.metadata;
  return metadata !== undefined && ("flagged_input" in metadata || "reasons" in metadata);
}
