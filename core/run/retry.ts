/**
 * Retrying a provider call: transient failures (rate limits, overload, 5xx, dropped
 * connections) are tried again with exponential backoff and jitter, honouring the provider's
 * `retry-after`, within a bounded number of attempts and a cap on total waiting. Anything not
 * marked retryable fails at once.
 * @module
 */
import { setTimeout as sleep } from "node:timers/promises";
import { LoomError } from "../errors.ts";

/** How hard to retry. */
export interface RetryPolicy {
  /** Attempts in all, the first included (default 6). */
  readonly maxAttempts: number;
  /** First backoff delay (default 500 ms); doubles each attempt. */
  readonly baseDelayMs: number;
  /** Longest single wait (default 60 s), also for a provider's `retry-after`. */
  readonly maxDelayMs: number;
  /** Total waiting allowed for one call (default 10 min); past it the last error stands. */
  readonly maxTotalWaitMs: number;
}

/** The defaults. */
export const DEFAULT_RETRY: RetryPolicy = { maxAttempts: 6, baseDelayMs: 500, maxDelayMs: 60_000, maxTotalWaitMs: 600_000 };

/** What a retryable error may say about waiting. */
interface RetryHints {
  retryable?: unknown;
  retryAfterMs?: unknown;
}

/** True for a Loom error marked retryable (from any copy of Loom). */
export function isRetryable(error: unknown): boolean {
  return LoomError.isInstance(error) && (error as RetryHints).retryable === true;
}

/** The wait before attempt `attempt + 1`: the provider's hint, else backoff with jitter. */
export function retryDelay(error: unknown, attempt: number, policy: RetryPolicy, random = Math.random): number {
  const hinted = (error as RetryHints).retryAfterMs;
  if (typeof hinted === "number" && hinted >= 0) return Math.min(hinted, policy.maxDelayMs);
  const backoff = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** attempt);
  return Math.round(backoff * (0.75 + 0.25 * random())); // jitter spreads retries of many workers
}

/**
 * Calls `fn` until it succeeds, fails with a non-retryable error, or the attempts or the waiting
 * budget run out (then the last error is thrown). `onRetry` hears of each retry.
 */
export async function withRetries<T>(
  fn: () => Promise<T>,
  options: { policy?: RetryPolicy; signal?: AbortSignal; onRetry?: (error: unknown, waitMs: number) => void } = {},
): Promise<T> {
  const policy = options.policy ?? DEFAULT_RETRY;
  let waited = 0;
  for (let attempt = 0;; attempt++) {
    try {
      return await fn();
    } catch (error) {
      if (!isRetryable(error) || attempt + 1 >= policy.maxAttempts || options.signal?.aborted) throw error;
      const wait = retryDelay(error, attempt, policy);
      if (waited + wait > policy.maxTotalWaitMs) throw error;
      waited += wait;
      options.onRetry?.(error, wait);
      await sleep(wait, undefined, { signal: options.signal });
    }
  }
}
