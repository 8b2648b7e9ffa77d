/**
 * Failures reported inside an HTTP 200 Chat Completion. OpenRouter answers with status 200 once
 * generation has started upstream, so a failure after that arrives in the body: as a top-level
 * `error` (no choices), or inside the choice, `choices[].error` with `finish_reason: "error"`,
 * next to the text generated before it failed. Both carry OpenRouter's `ErrorResponse`
 * (`{code: number, message, metadata?}`, the code an HTTP status). Such a text is no answer: it is
 * turned into a row error (never written as an answer, never cached), retried where the code says
 * a retry can help.
 * @module
 */
import { LoomProviderError } from "../../../core/base/errors.ts";

/** OpenRouter's error object, as far as Loom reads it. */
interface BodyError {
  readonly code?: unknown;
  readonly message?: unknown;
}

/** The parts of a completion where a failure can hide. */
export interface CompletionWithErrors {
  readonly error?: BodyError | null;
  readonly choices?:
    | ReadonlyArray<
      { readonly finish_reason?: string | null; readonly error?: BodyError | null } | null
    >
    | null;
}

/**
 * The error a completion reports in its body, if any: a top-level `error`, or the first choice's
 * `error` / `finish_reason: "error"`. The code decides: 408, 429 and 5xx are worth retrying;
 * 401 (the key) and 402 (no credits) fail every row alike and stop the run; any other code (a
 * moderation flag, a refused output) fails this row only. An error without a numeric code is an
 * upstream failure mid-answer, taken as a 502.
 */
export function answerError(
  completion: CompletionWithErrors,
  provider: string,
): LoomProviderError | undefined {
  const choice = completion.choices?.[0];
  const failure = completion.error ?? choice?.error ??
    (choice?.finish_reason === "error" ? {} : undefined);
  if (!failure) return undefined;
  const status = typeof failure.code === "number" ? failure.code : 502;
  const where = completion.error ? "" : " (in the answer's choice, after generation started)";
  const text = typeof failure.message === "string" && failure.message
    ? failure.message
    : "the answer ended with an error";
  const message = `${provider}: ${status} ${text}${where}`;
  if (status === 401 || status === 402) {
    const fix = status === 401 ? "check the API key" : "add credits";
    return new LoomProviderError(`${message} (${fix})`, { status, fatal: true });
  }
  return new LoomProviderError(message, {
    status,
    retryable: status === 408 || status === 429 || status >= 500,
  });
}
