/**
 * When to stop a sync run that the provider keeps refusing. A refusal Loom cannot place (a 400
 * with an unknown code) is the row's error, and the run goes on; but when the same refusal comes
 * back for many rows in a row, it is the job's (a parameter the model refuses, say), and asking
 * for every remaining row would only repeat it.
 * @module
 */
import { LoomProviderError } from "../base/errors.ts";

/** Rows refused alike, one after the other, that stop a run. */
export const REFUSAL_STREAK = 20;

/** What the provider refused, or undefined for any other outcome. Duck-typed, as `fatal` is. */
export function refusalOf(error: unknown): { status?: number; message: string } | undefined {
  if (!(error instanceof Error) || (error as { refused?: unknown }).refused !== true) {
    return undefined;
  }
  const status = (error as { status?: unknown }).status;
  return { status: typeof status === "number" ? status : undefined, message: error.message };
}

/**
 * The shape of a refusal: its status and message with every word that holds a digit blanked, so
 * that counts ("got 9001 tokens") and ids (a request id in the body) do not tell refusals apart.
 */
function shapeOf(refusal: { status?: number; message: string }): string {
  return `${refusal.status ?? ""} ${refusal.message.replace(/[\w-]*\d[\w-]*/g, "#")}`;
}

/** Counts rows refused alike in a row, in the order their answers arrive. */
export class RefusalStreak {
  readonly #limit: number;
  #shape = "";
  #count = 0;

  constructor(limit = REFUSAL_STREAK) {
    this.#limit = limit;
  }

  /** A row got an answer (or failed otherwise): the streak is broken. */
  reset(): void {
    this.#count = 0;
    this.#shape = "";
  }

  /** A row was refused: true when this refusal completes a streak that stops the run. */
  refused(refusal: { status?: number; message: string }): boolean {
    const shape = shapeOf(refusal);
    this.#count = shape === this.#shape ? this.#count + 1 : 1;
    this.#shape = shape;
    return this.#count >= this.#limit;
  }

  /** The error that stops the run, saying why and what is kept. */
  stopError(refusal: { status?: number; message: string }, cached: boolean): LoomProviderError {
    return this.#stop(
      refusal,
      cached
        ? "the answers so far are cached, so a rerun resumes from them"
        : "the cache is off, so a rerun starts over",
      "run again",
    );
  }

  /** The error that stops a token count (`loom tokens`, `--count-tokens`), saying why. */
  countStopError(refusal: { status?: number; message: string }): LoomProviderError {
    return this.#stop(refusal, "the count is incomplete", "count again");
  }

  #stop(
    refusal: { status?: number; message: string },
    kept: string,
    again: string,
  ): LoomProviderError {
    return new LoomProviderError(
      `stopped: the provider refused ${this.#count} rows in a row with "${refusal.message}"; ` +
        `${kept}. Fix what the message names (the job's model, params or prompt) and ${again}`,
      { status: refusal.status, fatal: true },
    );
  }
}
