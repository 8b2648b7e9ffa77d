/**
 * OpenRouter's batch objects in Loom's terms: a batch's status, and each entry of the `results`
 * a batch in a final status carries (read with {@link chatCompletionResult}, as sync answers are,
 * so `usage.cost` reaches Loom the same way).
 * @module
 */
import type { BatchOutcome, BatchState, BatchStatus } from "../../../core/spec/provider.ts";
import { answerError, type CompletionWithErrors } from "../openai/answer-error.ts";
import { type ChatCompletionLike, chatCompletionResult } from "../openai/request.ts";

const PROVIDER = "openrouter";

/** OpenRouter's batch statuses in Loom's terms (`finalizing` and `cancelling` still run). */
const STATES: Readonly<Record<string, BatchState>> = {
  validating: "validating",
  in_progress: "in_progress",
  finalizing: "in_progress",
  cancelling: "in_progress",
  completed: "completed",
  failed: "failed",
  expired: "expired",
  cancelled: "cancelled",
};

/** The final statuses: a batch in one carries its `results`. */
export const TERMINAL = new Set(["completed", "failed", "expired", "cancelled"]);

/** The parts of a BatchObject (create, get and list answers) Loom reads. */
export interface BatchObject {
  readonly id: string;
  readonly status: string;
  readonly model?: string;
  readonly created_at?: number;
  readonly request_counts?: { total?: number; completed?: number; failed?: number } | null;
  readonly error?: { message?: string } | null;
  readonly results?: readonly unknown[] | null;
}

/** A batch's status in Loom's terms. An unknown status counts as running, with the word kept. */
export function batchStatus(batch: BatchObject): BatchStatus {
  const counts = batch.request_counts;
  const message = batch.error?.message;
  return {
    state: STATES[batch.status] ?? "in_progress",
    providerState: batch.status,
    ...(counts
      ? { counts: { total: counts.total, succeeded: counts.completed, failed: counts.failed } }
      : {}),
    ...(typeof message === "string" && message.trim() ? { message } : {}),
  };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * The outcome one entry of a batch's `results` stands for, or undefined when it is not a result.
 * A 2xx response is an answer, unless its body reports a failure (OpenRouter's error inside a
 * 200, as sync answers can); another status is that request's failure; a result without a
 * response carries an `error` (`{message, type, param, error_type?}`).
 */
export function resultOutcome(result: unknown): BatchOutcome | undefined {
  if (!isObject(result) || typeof result.custom_id !== "string") return undefined;
  const customId = result.custom_id;
  const { response, error } = result;
  if (isObject(response) && typeof response.status_code === "number") {
    const status = response.status_code;
    const body = response.body;
    if (status >= 200 && status < 300) {
      if (!isObject(body)) {
        return {
          customId,
          error: `${status}: the answer is not a Chat Completion`,
          kind: "failed",
        };
      }
      const failure = answerError(body as CompletionWithErrors, PROVIDER);
      if (failure) return { customId, error: failure.message, kind: "failed" };
      return { customId, result: chatCompletionResult(body as ChatCompletionLike) };
    }
    const inner = isObject(body) && isObject(body.error) ? body.error.message : undefined;
    return {
      customId,
      error: `${status}: ${typeof inner === "string" && inner ? inner : "no error message"}`,
      kind: "failed",
    };
  }
  if (isObject(error)) {
    const type = typeof error.type === "string" && error.type ? error.type : undefined;
    const message = typeof error.message === "string" && error.message
      ? error.message
      : "no error message";
    // unverified: the type OpenRouter gives a request its batch's end left unrun (OpenAI's
    // batch error codes, which the emulator uses); any other error is the request's failure.
    const kind = type === "batch_expired"
      ? "expired"
      : type === "batch_cancelled"
      ? "cancelled"
      : "failed";
    return { customId, error: type ? `${type}: ${message}` : message, kind };
  }
  return undefined;
}

/** What a request of a batch that ended without running it gets. */
export const NOT_RUN: Readonly<Record<string, { kind: "expired" | "cancelled"; error: string }>> = {
  expired: { kind: "expired", error: "the batch expired before this request ran" },
  cancelled: { kind: "cancelled", error: "the batch was cancelled before this request ran" },
};
