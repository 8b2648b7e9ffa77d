/**
 * OpenRouter's batch objects in Loom's terms: a batch's status, and each entry of the `results`
 * a batch in a final status carries (read with `chatCompletionResult`, as sync answers are,
 * so `usage.cost` reaches Loom the same way).
 * @module
 */
import type { BatchOutcome, BatchStatus } from "../../../core/spec/provider.ts";
import { answerError, type CompletionWithErrors } from "../openai/answer-error.ts";
import {
  BATCH_STATES,
  resultOutcome as openaiResultOutcome,
  TERMINAL_STATES,
} from "../openai/batch.ts";

const PROVIDER = "openrouter";

/** The final statuses: a batch in one carries its `results`. */
export const TERMINAL = TERMINAL_STATES;

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
    state: BATCH_STATES[batch.status] ?? "in_progress",
    providerState: batch.status,
    ...(counts
      ? { counts: { total: counts.total, succeeded: counts.completed, failed: counts.failed } }
      : {}),
    ...(typeof message === "string" && message.trim() ? { message } : {}),
  };
}

/**
 * The outcome one entry of a batch's `results` stands for, or undefined when it is not a result.
 * The entries copy OpenAI's output lines (read by the same code), but an error names its kind in
 * `type` (`{message, type, param, error_type?}`), and a 2xx body may report a failure inside it
 * (OpenRouter's error in a 200, as sync answers can). unverified: the type OpenRouter gives a
 * request its batch's end left unrun (OpenAI's `batch_expired`/`batch_cancelled`, which the
 * emulator uses); any other error is the request's failure.
 */
export function resultOutcome(result: unknown): BatchOutcome | undefined {
  return openaiResultOutcome(result, {
    errorKind: "type",
    answerFailure: (body) => answerError(body as CompletionWithErrors, PROVIDER),
  });
}

/** What a request of a batch that ended without running it gets. */
export const NOT_RUN: Readonly<Record<string, { kind: "expired" | "cancelled"; error: string }>> = {
  expired: { kind: "expired", error: "the batch expired before this request ran" },
  cancelled: { kind: "cancelled", error: "the batch was cancelled before this request ran" },
};
