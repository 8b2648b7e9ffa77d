/**
 * Retrying a provider call: transient failures (rate limits, overload, 5xx, dropped
 * connections) are tried again with exponential backoff and jitter, never sooner than the
 * provider's `retry-after`. Failures are bounded by a number of attempts and a cap on total
 * waiting; a rate limit (429, or Anthropic's 529 overloaded) is the provider saying "not now",
 * not a failure of the call, so it spends waiting only: a storm that ends within the waiting
 * budget loses no call, however many workers shared it. Anything not marked retryable fails at
 * once.
 * @module
 */
import process from "node:process";
import { setTimeout as sleep } from "node:timers/promises";
import { LoomError, LoomProviderError } from "../base/errors.ts";

/** How hard to retry. */
export interface RetryPolicy {
  /** Attempts in all, the first included (default 6); rate-limit answers do not count. */
  readonly maxAttempts: number;
  /** First backoff delay (default 500 ms); doubles each attempt. */
  readonly baseDelayMs: number;
  /** Longest single wait (default 60 s), also for a provider's `retry-after`. */
  readonly maxDelayMs: number;
  /** Total waiting allowed for one call (default 10 min); a wait that would pass it is not begun: the last error stands. */
  readonly maxTotalWaitMs: number;
}

/** The defaults. */
export const DEFAULT_RETRY: RetryPolicy = {
  maxAttempts: 6,
  baseDelayMs: 500,
  maxDelayMs: 60_000,
  maxTotalWaitMs: 600_000,
};

/**
 * The policy in force: the defaults, with the total waiting per call set by
 * `LOOM_RETRY_WAIT_SECONDS` when it holds a number (a user who would rather fail fast than wait
 * out a long rate limit; the chaos harness makes a storm outlast the budget in seconds).
 */
export function retryPolicy(
  env: Readonly<Record<string, string | undefined>> = process.env,
): RetryPolicy {
  const seconds = Number(env.LOOM_RETRY_WAIT_SECONDS);
  if (!env.LOOM_RETRY_WAIT_SECONDS || !Number.isFinite(seconds) || seconds < 0) {
    return DEFAULT_RETRY;
  }
  return { ...DEFAULT_RETRY, maxTotalWaitMs: Math.round(seconds * 1000) };
}

/** What a retryable error may say about waiting. */
interface RetryHints {
  retryable?: unknown;
  retryAfterMs?: unknown;
  status?: unknown;
}

/** True for a Loom error marked retryable (from any copy of Loom). */
export function isRetryable(error: unknown): boolean {
  return LoomError.isInstance(error) && (error as RetryHints).retryable === true;
}

/** True for a retryable rate-limit answer: 429, or 529 (Anthropic's "overloaded"). */
export function isRateLimited(error: unknown): boolean {
  const status = (error as RetryHints).status;
  return isRetryable(error) && (status === 429 || status === 529);
}

/**
 * The wait before attempt `attempt + 1`: backoff with jitter, or the provider's hint when that
 * is longer. A hint is when to come back at the earliest: a `retry-after: 0` in a storm must not
 * turn the backoff into a burst of attempts that all meet the storm.
 */
export function retryDelay(
  error: unknown,
  attempt: number,
  policy: RetryPolicy,
  random = Math.random,
): number {
  const backoff = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** attempt);
  const jittered = Math.round(backoff * (0.75 + 0.25 * random())); // jitter spreads retries of many workers
  const hinted = (error as RetryHints).retryAfterMs;
  return typeof hinted === "number" && hinted > jittered
    ? Math.min(hinted, policy.maxDelayMs)
    : jittered;
}

/**
 * Calls `fn` until it succeeds, fails with a non-retryable error, or the attempts or the waiting
 * budget run out (then the last error is thrown). Rate-limit answers spend no attempt, only
 * waiting. `onRetry` hears of each retry.
 */
export async function withRetries<T>(
  fn: () => Promise<T>,
  options: {
    policy?: RetryPolicy;
    signal?: AbortSignal;
    onRetry?: (error: unknown, waitMs: number) => void;
    /**
     * The first attempt was made already and failed with this error (a caller that makes the
     * first attempt itself, so that a call that succeeds at once costs no retry machinery).
     */
    firstFailure?: { error: unknown };
  } = {},
): Promise<T> {
  const policy = options.policy ?? retryPolicy();
  let waited = 0;
  let failures = 0; // attempts spent, rate limits excluded
  for (let attempt = 0;; attempt++) {
    try {
      if (attempt === 0 && options.firstFailure) throw options.firstFailure.error;
      return await fn();
    } catch (error) {
      if (!isRetryable(error) || options.signal?.aborted) throw error;
      if (!isRateLimited(error) && ++failures >= policy.maxAttempts) throw error;
      // Backoff grows with every attempt, rate-limited ones included.
      const wait = retryDelay(error, attempt, policy);
      if (waited + wait > policy.maxTotalWaitMs) throw error;
      waited += wait;
      options.onRetry?.(error, wait);
      await sleep(wait, undefined, { signal: options.signal });
    }
  }
}

/**
 * A transient failure that outlasted the retries, told as such, with what the user can do next
 * (`resume`, e.g. that the job is intact and the command can be run again); any other error as
 * it is. For commands whose state survives the failure (batch submit, fetch, status, cancel).
 */
export function gaveUp(error: unknown, resume: string): unknown {
  if (!isRetryable(error)) return error;
  const { status } = error as { status?: number };
  return new LoomProviderError(`${(error as Error).message} (gave up after retrying; ${resume})`, {
    status,
    retryable: true,
    cause: error,
  });
}
