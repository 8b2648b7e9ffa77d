/**
 * Google's error vocabulary: the `google.rpc.Status` body `{"error":{code,message,status,details?}}`
 * every Google API answers with, the canonical status names per HTTP status, the numeric
 * `google.rpc.Code`s long-running operations carry, and the messages the Gemini API sends for
 * bad credentials and common faults.
 * @module
 */
import { HttpError, type Reply } from "../../server.ts";
import type { RpcStatusJson } from "./wire.ts";

/** Canonical status name per HTTP status, as Google's front end maps them. */
const STATUS_NAMES: Record<number, string> = {
  400: "INVALID_ARGUMENT",
  401: "UNAUTHENTICATED",
  403: "PERMISSION_DENIED",
  404: "NOT_FOUND",
  409: "ALREADY_EXISTS",
  413: "INVALID_ARGUMENT",
  429: "RESOURCE_EXHAUSTED",
  499: "CANCELLED",
  500: "INTERNAL",
  501: "UNIMPLEMENTED",
  502: "UNAVAILABLE",
  503: "UNAVAILABLE",
  504: "DEADLINE_EXCEEDED",
};

/**
 * `google.rpc.Code` numbers. An Operation's `error` is a bare `google.rpc.Status` and carries
 * these (CANCELLED is 1), unlike the HTTP error envelope whose `code` is the HTTP status.
 */
export const RPC_CODES = {
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const satisfies Record<string, number>;

/**
 * The framework's default fault messages (worded after OpenAI). A fault rule without its own
 * message gets Google's wording instead, so a 429 reads like Gemini's.
 */
const FRAMEWORK_DEFAULTS = new Set([
  "Rate limit reached for requests",
  "Overloaded",
  "Invalid authentication",
  "The server had an error while processing your request.",
]);

/** What the Gemini API says for common statuses (from public reports of real answers). */
function googleDefault(status: number): string | undefined {
  if (status === 429) {
    return "You exceeded your current quota, please check your plan and billing details. " +
      "For more information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.";
  }
  if (status === 500) {
    return "An internal error has occurred. Please retry or report in " +
      "https://developers.generativeai.google/guide/troubleshooting";
  }
  if (status === 503) return "The model is overloaded. Please try again later.";
  if (status === 504) return "Deadline expired before operation could complete.";
  return undefined;
}

/**
 * The `google.rpc.Status` error reply. `code` may name the status (`FAILED_PRECONDITION`, …);
 * any other code (the framework's `invalid_request_error`, say) is ignored in favour of the HTTP
 * status's canonical name. `extra.details` becomes `error.details`.
 */
export function errorReply(
  status: number,
  message: string,
  code?: string,
  extra?: Record<string, unknown>,
  retryDelaySeconds = 1,
): Reply {
  const name = code !== undefined && code in RPC_CODES
    ? code
    : STATUS_NAMES[status] ?? (status >= 500 ? "INTERNAL" : "UNKNOWN");
  const text = (FRAMEWORK_DEFAULTS.has(message) || message === `Error ${status}`)
    ? googleDefault(status) ?? message
    : message;
  let details = Array.isArray(extra?.details) ? extra.details : undefined;
  // Gemini's quota errors say when to come back in a google.rpc.RetryInfo (error_details.proto:
  // `retry_delay`, a Duration, in JSON "<seconds>s" with at most 9 fractional digits). The SDK
  // ignores it; Loom waits for it. Gemini documents no `retry-after` header, so none is sent
  // unless a fault rule asks for one.
  if (status === 429 && !details) {
    details = [{
      "@type": "type.googleapis.com/google.rpc.RetryInfo",
      retryDelay: `${Number(retryDelaySeconds.toFixed(9))}s`,
    }];
  }
  const error: Record<string, unknown> = { code: status, message: text, status: name };
  if (details) error.details = details;
  return { status, json: { error } };
}

/** One entry of a `google.rpc.BadRequest` detail. */
export interface FieldViolation {
  field?: string;
  description: string;
}

/** A 400 INVALID_ARGUMENT, with `BadRequest.fieldViolations` when given (as Google's JSON parser adds). */
export function invalidArgument(message: string, violations?: FieldViolation[]): HttpError {
  const details = violations?.length
    ? [{ "@type": "type.googleapis.com/google.rpc.BadRequest", fieldViolations: violations }]
    : undefined;
  return new HttpError(400, message, "INVALID_ARGUMENT", details ? { details } : undefined);
}

/** An error with an explicit canonical status name. */
export function googleError(status: number, message: string, name: string): HttpError {
  return new HttpError(status, message, name);
}

/** The 400 for a key that is not the emulator's (Gemini answers 400, not 401). */
export function apiKeyInvalid(): HttpError {
  const message = "API key not valid. Please pass a valid API key.";
  return new HttpError(400, message, "INVALID_ARGUMENT", {
    details: [
      {
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        reason: "API_KEY_INVALID",
        domain: "googleapis.com",
        metadata: { service: "generativelanguage.googleapis.com" },
      },
      { "@type": "type.googleapis.com/google.rpc.LocalizedMessage", locale: "en-US", message },
    ],
  });
}

/** The 403 for a request with no credentials at all. */
export function unregisteredCaller(): HttpError {
  return googleError(
    403,
    "Method doesn't allow unregistered callers (callers without established identity). " +
      "Please use API Key or other form of API consumer identity to call this API.",
    "PERMISSION_DENIED",
  );
}

/** The 401 for an OAuth bearer token the emulator cannot verify (it only takes API keys). */
export function badBearer(): HttpError {
  return googleError(
    401,
    "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other " +
      "valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.",
    "UNAUTHENTICATED",
  );
}

/** The 403 the Files API answers for a file that does not exist (it does not say 404). */
export function fileNotFound(id: string): HttpError {
  return googleError(
    403,
    `You do not have permission to access the File ${id} or it may not exist.`,
    "PERMISSION_DENIED",
  );
}

/**
 * A per-request error inside batch output. The batch proto types it as a `google.rpc.Status`
 * (InlinedResponse.error), so it carries the numeric `google.rpc.Code` and no `status` name,
 * unlike the HTTP error envelope. unverified: that results-file lines use the same shape (the
 * batch guide shows only successful lines).
 */
export function requestError(name: keyof typeof RPC_CODES, message: string): RpcStatusJson {
  return { code: RPC_CODES[name], message };
}

/** The 404 for a model the emulator does not serve, worded as the real API words it. */
export function unknownModel(model: string, version: string, method: string): HttpError {
  return googleError(
    404,
    `models/${model} is not found for API version ${version}, or is not supported for ${method}. ` +
      "Call ListModels to see the list of available models and their supported methods.",
    "NOT_FOUND",
  );
}
