/**
 * Keeping a sync run within a provider's limits. Requests are paced, not burst: each start is
 * spaced so that neither requests per minute nor (estimated) tokens per minute can be exceeded
 * in any minute. On top of that, concurrency backs off when the provider keeps answering 429
 * (halved on each rate-limit answer, grown back by one every few successes).
 * @module
 */
import { setTimeout as sleep } from "node:timers/promises";

/** Limits from the job's `sync:` settings. */
export interface RateLimits {
  /** Requests per minute. */
  readonly rpm?: number;
  /** Tokens per minute (input estimate plus `max_tokens`). */
  readonly tpm?: number;
}

/**
 * Spacing is stretched by 0.5%, so that network jitter between our start and the provider's
 * clock cannot push a minute at the provider over the limit.
 */
const PACE_MARGIN = 1.005;

/** Paces request starts to stay within the limits. */
export class RatePacer {
  readonly #limits: RateLimits;
  readonly #now: () => number;
  #nextByRequests = 0;
  #nextByTokens = 0;

  constructor(limits: RateLimits, now: () => number = () => performance.now()) {
    this.#limits = limits;
    this.#now = now;
  }

  /** True when there is anything to pace. */
  get active(): boolean {
    return Boolean(this.#limits.rpm || this.#limits.tpm);
  }

  /**
   * Reserves the next start for a request of `tokens` tokens and returns how long to wait for
   * it. Reservations are made in call order, so concurrent callers never share a slot.
   */
  reserve(tokens: number): number {
    const now = this.#now();
    const start = Math.max(now, this.#nextByRequests, this.#nextByTokens);
    if (this.#limits.rpm) this.#nextByRequests = start + PACE_MARGIN * 60_000 / this.#limits.rpm;
    if (this.#limits.tpm) {
      this.#nextByTokens = start + PACE_MARGIN * (Math.max(1, tokens) * 60_000) / this.#limits.tpm;
    }
    return start - now;
  }

  /** Waits for the next start (see {@link reserve}). */
  async acquire(tokens: number, signal?: AbortSignal): Promise<void> {
    if (!this.active) return; // nothing to pace: no clock to read, nothing to reserve
    const wait = this.reserve(tokens);
    if (wait > 0) await sleep(wait, undefined, { signal });
  }
}

/** A concurrency cap that shrinks when the provider pushes back and grows back slowly. */
export class AdaptiveGate {
  readonly #max: number;
  #limit: number;
  #active = 0;
  #successes = 0;
  readonly #waiting: Array<() => void> = [];

  constructor(max: number) {
    this.#max = Math.max(1, max);
    this.#limit = this.#max;
  }

  /** The current cap. */
  get limit(): number {
    return this.#limit;
  }

  /** Takes a slot when one is free now; false (and nothing taken) when not. */
  tryAcquire(): boolean {
    if (this.#active >= this.#limit || this.#waiting.length) return false;
    this.#active++;
    return true;
  }

  /** Waits for a slot. */
  async acquire(): Promise<void> {
    while (this.#active >= this.#limit) {
      await new Promise<void>((resolve) => this.#waiting.push(resolve));
    }
    this.#active++;
  }

  /** Frees a slot. */
  release(): void {
    this.#active--;
    this.#waiting.shift()?.();
  }

  /** The provider answered 429: halve the cap (at least 1). */
  backOff(): void {
    this.#limit = Math.max(1, Math.floor(this.#limit / 2));
    this.#successes = 0;
  }

  /** A call succeeded: every `limit` successes in a row raise the cap by one, up to the maximum. */
  succeeded(): void {
    if (this.#limit >= this.#max) return;
    if (++this.#successes >= this.#limit) {
      this.#successes = 0;
      this.#limit++;
      this.#waiting.shift()?.();
    }
  }
}

/** Tokens a request will use at most, estimated: 4 characters a token, plus `max_tokens`. */
export function estimateTokens(texts: readonly string[], maxTokens: number | undefined): number {
  const chars = texts.reduce((n, t) => n + t.length, 0);
  return Math.ceil(chars / 4) + (maxTokens ?? 0);
}
