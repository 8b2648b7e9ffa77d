/**
 * What the Anthropic emulator's modules share: the models and API versions it knows, its ids and
 * timestamps, and the error envelope (`{"type":"error","error":{type,message},"request_id"}`).
 * @module
 */
import type { ErrorObject, ErrorResponse } from "@anthropic-ai/sdk/resources/shared";
import { hexId } from "../../answers.ts";
import { HttpError } from "../../server.ts";

/**
 * Model ids accepted by default: the `Model` union of `@anthropic-ai/sdk` 1.14, less
 * `claude-mythos-preview`, past the end-of-life date (2026-06-30) the SDK lists for it.
 */
export const KNOWN_MODELS: readonly string[] = [
  "claude-fable-5-2",
  "claude-mythos-5-2",
  "claude-haiku-5-5",
  "claude-sonnet-5-5",
  "claude-fable-5-1",
  "claude-opus-5-5",
  "claude-mythos-5-1",
  "claude-sonnet-5",
  "claude-fable-5",
  "claude-mythos-5",
  "claude-opus-5",
  "claude-opus-4-8",
  "claude-opus-4-7",
  "claude-opus-4-6",
  "claude-sonnet-4-6",
  "claude-haiku-4-5",
  "claude-haiku-4-5-20251001",
  "claude-opus-4-5",
  "claude-opus-4-5-20251101",
  "claude-sonnet-4-5",
  "claude-sonnet-4-5-20250929",
];

/** The version SDK 1.x sends; it removed `temperature`, `top_p` and `top_k`. */
export const VERSION_2026 = "2026-10-21";
/** The version SDK 0.x (and most curl examples) send. */
export const VERSION_2023 = "2023-06-01";
/** `anthropic-version` values the emulator accepts. */
export const VERSIONS: readonly string[] = [VERSION_2023, VERSION_2026];

/** HTTP status ↔ `error.type`, per the API's error reference. */
const ERROR_TYPES: Record<number, string> = {
  400: "invalid_request_error",
  401: "authentication_error",
  402: "billing_error",
  403: "permission_error",
  404: "not_found_error",
  408: "timeout_error",
  409: "conflict_error",
  413: "request_too_large",
  429: "rate_limit_error",
  500: "api_error",
  504: "timeout_error",
  529: "overloaded_error",
};

/** Every `error.type` the API uses, so a caller's code is kept only when it is one of them. */
const KNOWN_TYPES = new Set([
  ...Object.values(ERROR_TYPES),
  "memory_precondition_failed_error",
  "memory_path_conflict_error",
]);

/** The `error.type` for a status; a code that is not an Anthropic type (the server's own) is ignored. */
export function errorType(status: number, code?: string): string {
  if (code && KNOWN_TYPES.has(code)) return code;
  return ERROR_TYPES[status] ?? (status >= 500 ? "api_error" : "invalid_request_error");
}

/**
 * The standard error envelope, as answered and as embedded in an errored batch result: the SDK's
 * `ErrorResponse`. Its `error.type` union lacks types the API documents (`request_too_large`,
 * `timeout_error` at 408), so the type is the emulator's string, cast once here.
 */
export function errorEnvelope(type: string, message: string, requestId: string): ErrorResponse {
  return {
    type: "error",
    error: { type, message } as ErrorObject,
    request_id: requestId,
  } satisfies ErrorResponse;
}

/** A 400 `invalid_request_error`, the answer to most malformed requests. */
export function invalid(message: string): HttpError {
  return new HttpError(400, message, "invalid_request_error");
}

/** Ids in the API's style: a prefix, `01`, then 22 opaque characters (deterministic from `n`). */
export function makeId(prefix: "msg" | "msgbatch" | "req", n: number): string {
  return `${prefix}_01${hexId(n, 22)}`;
}

/** RFC 3339 with microseconds and `Z`, as the API writes timestamps. */
export function timestamp(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
}

/** A value that is a plain JSON object. */
export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
